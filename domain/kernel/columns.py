"""Column helpers shared by every context, so all tables get the same time and key conventions."""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

from domain.kernel import clock
from domain.kernel.ids import new_id


def _remember_factory_signatures() -> None:
    """SQLModel fills a table row's omitted fields through pydantic's `FieldInfo.get_default`, which asks
    `inspect.signature` of the default factory on every call (pydantic 2.14: a builtin such as `list` has its text
    signature tokenised each time) — half the cost of building a row object. The answer depends only on the
    factory, so it is remembered per factory; an unhashable factory is asked every time as before."""
    from functools import cache

    from pydantic._internal import _fields

    original = getattr(_fields.takes_validated_data_argument, "__wrapped__", _fields.takes_validated_data_argument)
    remembered = cache(original)

    def takes_validated_data_argument(default_factory: Any) -> bool:
        try:
            return remembered(default_factory)
        except TypeError:
            return original(default_factory)

    takes_validated_data_argument.__wrapped__ = original  # type: ignore[attr-defined]
    _fields.takes_validated_data_argument = takes_validated_data_argument


_remember_factory_signatures()


def id_field() -> Any:
    return Field(default_factory=new_id, primary_key=True)


def created_at_field() -> Any:
    """Set by the application clock; `app_now()` is the database-side default for bulk loads."""
    return Field(default_factory=clock.now, sa_type=sa.DateTime(timezone=True),
                 sa_column_kwargs={"server_default": sa.text("app_now()"), "nullable": False})


def ts_field(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_type=sa.DateTime(timezone=True), nullable=nullable, index=index)


def fk(target: str, *, nullable: bool = False, index: bool = True, ondelete: str | None = None) -> Any:
    return Field(default=None, foreign_key=target, nullable=nullable, index=index, ondelete=ondelete)


def jsonb_field(default_factory=dict, nullable: bool = False) -> Any:
    return Field(default_factory=default_factory, sa_type=JSONB, nullable=nullable)


UUID = uuid.UUID
DateTime = datetime
