"""Versioned entities keep one `entity_history` row per version: who, when, which request, and the state.

    snapshot(row)                   -> JSON-safe dict of a SQLModel row (column values only)
    await record(session, ...)      -> adds the row (flushed with the caller's next flush or commit)
    entry(row, ...) / await write(session, [entries])
                                    -> rows of versions written now, in one statement (a hot path's several
                                       versions at once: no ORM object per row)
    await versions(session, ...)    -> every version of one entity, oldest first
    await last_of(session, ...)     -> the newest row an action wrote
"""
from __future__ import annotations

import enum
import uuid
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
import structlog

from domain.kernel import clock
from domain.kernel.models import EntityHistory

# One statement object: its cache key is computed once, and the rows go as one executemany.
_INSERT = sa.insert(EntityHistory.__table__)


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, enum.Enum):
        return _json_safe(value.value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_json_safe(v) for v in value]
    return str(value)


def snapshot(row: Any, *, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """The row's column values as a JSON-safe dict (uuid/date/datetime/enum become strings); generated columns
    are left out."""
    table = getattr(row, "__table__", None)
    if table is not None:
        # Generated columns (e.g. a search key) are derived, not state; after an UPDATE they are also expired.
        names = [c.key for c in table.columns if c.computed is None]
    else:  # a plain pydantic model or dict
        names = list(row.keys()) if isinstance(row, dict) else list(type(row).model_fields)
    get = row.get if isinstance(row, dict) else (lambda n: getattr(row, n, None))
    return {n: _json_safe(get(n)) for n in names if n not in exclude}


def current_request_id() -> str | None:
    rid = structlog.contextvars.get_contextvars().get("request_id")
    return str(rid)[:64] if rid else None


async def record(session, *, entity_type: str, entity_id: uuid.UUID, version: int, action: str,
                 data: dict[str, Any], actor_id: uuid.UUID | None = None) -> None:
    """Add one history row. The (entity_type, entity_id, version) triple is unique: writing the same version
    twice fails the unit of work, which is what concurrent writers of one entity must see."""
    session.add(EntityHistory(**_values(entity_type, entity_id, version, action, data, actor_id)))


def _values(entity_type: str, entity_id: uuid.UUID, version: int, action: str, data: dict[str, Any],
            actor_id: uuid.UUID | None) -> dict[str, Any]:
    return {"entity_type": entity_type, "entity_id": entity_id, "version": version, "action": action,
            "data": _json_safe(data), "actor_id": actor_id, "request_id": current_request_id(), "at": clock.now()}


def entry(row: Any, *, entity_type: str, action: str, actor_id: uuid.UUID | None,
          detail: dict[str, Any] | None = None, key: str = "state") -> dict[str, Any]:
    """The history row of `row`'s current version and state (under `key`, with an optional detail), taken now:
    a row not yet flushed has every column from its Python defaults, so two versions of a new row can be taken
    before its one INSERT."""
    data: dict[str, Any] = {key: snapshot(row)}
    if detail:
        data["detail"] = detail
    return _values(entity_type, row.id, row.version, action, data, actor_id)


async def write(session, entries: list[dict[str, Any]]) -> None:
    """Insert history rows now, in one statement. Same uniqueness rule as `record`."""
    if entries:
        await session.execute(_INSERT, entries)


async def versions(session, *, entity_type: str, entity_id: uuid.UUID, after_version: int | None = None,
                   limit: int | None = None) -> list[EntityHistory]:
    """The versions of an entity in order (keyset on the version number when paging)."""
    await session.flush()
    stmt = (sa.select(EntityHistory)
            .where(EntityHistory.entity_type == entity_type, EntityHistory.entity_id == entity_id)
            .order_by(EntityHistory.version, EntityHistory.id))
    if after_version is not None:
        stmt = stmt.where(EntityHistory.version > after_version)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list((await session.execute(stmt)).scalars())


async def last_of(session, *, entity_type: str, entity_id: uuid.UUID, action: str) -> EntityHistory | None:
    """The newest history row of an entity written by `action` (e.g. the triage of an access request)."""
    await session.flush()
    return (await session.execute(
        sa.select(EntityHistory)
        .where(EntityHistory.entity_type == entity_type, EntityHistory.entity_id == entity_id,
               EntityHistory.action == action)
        .order_by(EntityHistory.version.desc(), EntityHistory.id.desc()).limit(1))).scalar_one_or_none()


async def record_change(session, row: Any, *, entity_type: str, action: str, actor_id: uuid.UUID | None,
                        detail: dict[str, Any] | None = None, bump: bool = True, key: str = "state") -> None:
    """The usual way a versioned row keeps its history: bump `row.version`, flush, and store the new state (under
    `key`) with an optional detail of what changed."""
    if bump:
        row.version += 1
    session.add(row)
    await session.flush()
    await write(session, [entry(row, entity_type=entity_type, action=action, actor_id=actor_id, detail=detail,
                                key=key)])
