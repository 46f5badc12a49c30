"""Engine, sessions and the unit of work. Services receive a session and never commit; the boundary does."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session as SyncSession

from domain.kernel import clock
from domain.kernel.settings import get_settings

_engine: AsyncEngine | None = None
_sessionmaker: async_sessionmaker[AsyncSession] | None = None


def make_engine(url: str | None = None, **kwargs) -> AsyncEngine:
    s = get_settings()
    if "poolclass" not in kwargs:  # a NullPool (the workers') takes no size
        kwargs.setdefault("pool_size", s.db_pool_size)
    kwargs.setdefault("pool_pre_ping", False)
    # SQL errors must not carry bound values (names, codici fiscali) into logs or job error columns.
    kwargs.setdefault("hide_parameters", True)
    url = url or s.database_url
    if "+asyncpg" in url:
        # Bounded waits: a database that is down or restarting fails the request (503) instead of hanging it.
        if "poolclass" not in kwargs:
            kwargs.setdefault("pool_timeout", s.db_pool_timeout_seconds)
        kwargs["connect_args"] = {"timeout": s.db_connect_timeout_seconds,
                                  "command_timeout": s.db_command_timeout_seconds, **kwargs.get("connect_args", {})}
    return create_async_engine(url, echo=s.db_echo, **kwargs)


def get_engine() -> AsyncEngine:
    global _engine
    if _engine is None:
        _engine = make_engine()
    return _engine


def set_engine(engine: AsyncEngine | None) -> None:
    """Point the process (API, worker, a test app) at another engine."""
    global _engine, _sessionmaker
    _engine = engine
    _sessionmaker = None


def sessionmaker() -> async_sessionmaker[AsyncSession]:
    global _sessionmaker
    if _sessionmaker is None:
        _sessionmaker = async_sessionmaker(get_engine(), expire_on_commit=False, autoflush=False)
    return _sessionmaker


async def dispose_engine() -> None:
    global _engine, _sessionmaker
    if _engine is not None:
        await _engine.dispose()
    _engine, _sessionmaker = None, None


@event.listens_for(SyncSession, "after_begin")
def _share_business_clock(session, transaction, connection) -> None:
    # Column defaults call app_now(), which reads this transaction-local setting when business time is not the
    # database's now(): a fixed clock (tests) or a stored clock moved in development mode.
    if clock.shifted():
        connection.execute(sa.text("select set_config('app.now', :v, true)"), {"v": clock.now().isoformat()})


async def share_clock(session: AsyncSession) -> None:
    """Send business time to app_now() again in a transaction already begun (the clock moved inside it)."""
    if clock.shifted():
        await session.execute(sa.text("select set_config('app.now', :v, true)"), {"v": clock.now().isoformat()})


async def insert_pending(session: AsyncSession, tables: list[str]) -> None:
    """Insert the rows of these tables that wait in the session with one multi-row INSERT per table, in the order
    given (parents first), instead of the unit of work's bookkeeping per object: a bulk load (an import) builds
    its rows with the owners' builders, then writes them here. The objects leave the session (they are not
    refreshed afterwards); columns left empty in every row that the database fills (keys, defaults) are omitted."""
    pending = list(session.new)
    for name in tables:
        objs = [o for o in pending if getattr(o, "__tablename__", None) == name]
        if not objs:
            continue
        table = objs[0].__table__
        for o in objs:
            session.expunge(o)
        cols = [c for c in table.columns if c.computed is None]
        rows = [{c.key: getattr(o, c.key) for c in cols} for o in objs]
        filled_by_db = [c.key for c in cols if (c.server_default is not None or c is table.autoincrement_column)
                        and all(r[c.key] is None for r in rows)]
        for r in rows:
            for k in filled_by_db:
                del r[k]
        await session.execute(sa.insert(table), rows)


# SQLSTATEs that mean "the database cannot serve now", not "this request is wrong": connection exceptions (class
# 08), an administrator or crash shutdown and a server still starting (57P01-57P03), too many connections (53300).
_UNAVAILABLE_SQLSTATES = ("57P01", "57P02", "57P03", "53300")


def database_unavailable(exc: BaseException | None) -> bool:
    """Whether `exc` (or what caused it) says the database is down, restarting or unreachable: the request may be
    tried again later (503), nothing of it was committed. Connection refused or reset, a connect, pool or statement
    timeout, a connection invalidated by the driver, the SQLSTATEs above."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
            return True
        if isinstance(exc, (sa.exc.TimeoutError, ConnectionError, TimeoutError)):
            return True
        sqlstate = getattr(exc, "sqlstate", None) or getattr(getattr(exc, "orig", None), "sqlstate", None)
        if isinstance(sqlstate, str) and (sqlstate.startswith("08") or sqlstate in _UNAVAILABLE_SQLSTATES):
            return True
        exc = getattr(exc, "orig", None) if isinstance(exc, sa.exc.DBAPIError) else (exc.__cause__ or exc.__context__)
    return False
