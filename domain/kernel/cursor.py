"""One keyset cursor codec for every list: the position is sealed (AES-GCM), so no key value of a row (a surname,
a date of birth) is readable in a URL, and a cursor that was altered, truncated or made for another list is
refused with 400 (`Invalid("cursor", …)`) instead of silently paging from somewhere else.

    token = cursor.encode("persons.search", [surname, given, str(id)])
    surname, given, id_ = cursor.decode("persons.search", token)

The key comes from the `CURSOR_KEY` setting (every API replica must share it); without it a key is kept in the
development keys folder. A new key only invalidates the cursors in flight.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import uuid
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.kernel.errors import DomainError
from domain.kernel.settings import get_settings

_NONCE = 12


class BadCursor(DomainError):
    status = 400
    title = "Cursore non valido"
    code = "invalid_cursor"

    def __init__(self, field: str = "cursor"):
        reason = "cursore non valido o scaduto: ripartire dalla prima pagina"
        super().__init__(f"{field}: {reason}", errors=[{"field": field, "reason": reason}])


@lru_cache
def _key() -> bytes:
    s = get_settings()
    if s.cursor_key:
        return hashlib.sha256(s.cursor_key.encode()).digest()
    path = s.dev_keys_dir / "cursor.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(secrets.token_bytes(32))
        try:
            os.link(tmp, path)  # atomic: the API and the worker starting together keep one key
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_bytes()


def reset_key() -> None:
    """Forget the cached key (tests that change the setting)."""
    _key.cache_clear()


def encode(kind: str, position: Any) -> str:
    """Seal a JSON-serialisable position for the list `kind` (the kind is authenticated, not stored)."""
    nonce = secrets.token_bytes(_NONCE)
    raw = json.dumps(position, separators=(",", ":"), default=str).encode()
    sealed = AESGCM(_key()).encrypt(nonce, raw, kind.encode())
    return base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")


def decode(kind: str, token: str, *, field: str = "cursor") -> Any:
    """The position sealed by `encode` for the same `kind`; BadCursor (400) for anything else."""
    try:
        blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        if len(blob) <= _NONCE:
            raise ValueError
        raw = AESGCM(_key()).decrypt(blob[:_NONCE], blob[_NONCE:], kind.encode())
        return json.loads(raw)
    except (ValueError, TypeError, InvalidTag, UnicodeDecodeError):
        raise BadCursor(field) from None


def encode_time_id(kind: str, at: datetime, id_: Any) -> str:
    """The common keyset position: a timestamp and the row's id (newest-first lists)."""
    return encode(kind, [at, id_])


def decode_time_id(kind: str, token: str, *, id_type: Callable[[Any], Any] = uuid.UUID) -> tuple[datetime, Any]:
    try:
        at, id_ = decode(kind, token)
        return datetime.fromisoformat(at), id_type(id_)
    except (TypeError, ValueError):
        raise BadCursor() from None


def newest_first(stmt: Any, at_col: Any, id_col: Any, kind: str, token: str | None, limit: int) -> Any:
    """`stmt` paged newest first on (at, id): after the position sealed in `token`, with one row more than `limit`
    so that `next_token` knows whether a next page exists."""
    if token:
        at, id_ = decode_time_id(kind, token)
        stmt = stmt.where(sa.tuple_(at_col, id_col) < sa.tuple_(sa.literal(at), sa.literal(id_)))
    return stmt.order_by(at_col.desc(), id_col.desc()).limit(limit + 1)


def next_token(kind: str, rows: list, limit: int, position: Callable[[Any], tuple[datetime, Any]]) -> str | None:
    """The cursor of the page after `rows` (fetched by `newest_first`), or None on the last page."""
    return encode_time_id(kind, *position(rows[limit - 1])) if len(rows) > limit else None
