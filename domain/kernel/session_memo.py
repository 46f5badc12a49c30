"""Reference lookups remembered for one session (a request, a job, an import chunk): which comuni are the Ambito's,
whether a user is an operator. A bulk path asks the same question for every row; asking the database once per
session is enough, because nothing but the session itself changes those rows while it runs — and when it does (it
flushes a row of a watched table) or rolls back, what it remembered is forgotten.

    known = await session_memo.get(session, ("comuni", ambito_id), load)   # load(): the awaitable's result
    session_memo.put(session, ("comuni", ambito_id), value)                 # loaded with others
    session_memo.watch("organisation", "comuni")                           # a table name: any context may
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session as SyncSession

_KEY = "session_memo"
_watched: dict[str, set[str]] = {}
MISSING = object()  # what `peek` answers for a key not remembered (None is an answer)


def watch(table: str, prefix: str) -> None:
    """Forget the entries whose key starts with `prefix` when the session flushes a row of `table` (named, so a
    context watches another's table without importing it)."""
    _watched.setdefault(table, set()).add(prefix)


async def get(session, key: tuple[str, Hashable], load: Callable[[], Awaitable[Any]]) -> Any:
    value = peek(session, key)
    if value is MISSING:
        value = await load()
        put(session, key, value)
    return value


def peek(session, key: tuple[str, Hashable]) -> Any:
    """The remembered answer, or MISSING."""
    return session.info.get(_KEY, {}).get(key, MISSING)


def put(session, key: tuple[str, Hashable], value: Any) -> None:
    """Remember an answer loaded together with others (one statement for several keys)."""
    session.info.setdefault(_KEY, {})[key] = value


def _forget(session, prefixes: set[str] | None = None) -> None:
    memo = session.info.get(_KEY)
    if not memo:
        return
    if prefixes is None:
        memo.clear()
        return
    for key in [k for k in memo if k[0] in prefixes]:
        del memo[key]


@event.listens_for(SyncSession, "after_flush")
def _after_flush(session, flush_context) -> None:
    if not _watched or not session.info.get(_KEY):
        return
    touched: set[str] = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        touched |= _watched.get(getattr(obj, "__tablename__", ""), set())
    if touched:
        _forget(session, touched)


@event.listens_for(SyncSession, "after_soft_rollback")
def _after_rollback(session, previous_transaction) -> None:
    _forget(session)
