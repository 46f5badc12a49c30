"""The stored business clock: read at the boundaries, written only by the demo clock (deploy/demo_clock.py).

`refresh()` is what the API request boundary, each Celery task and the command-line tools call before working: it
reads the stored offset when the cached one is older than `MAX_AGE_SECONDS`, on a connection of its own (before the
unit of work begins, so the session's `app.now` already carries the new time). A `FixedClock` (tests) wins: then
nothing is read.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from domain.kernel import clock
from domain.kernel.db import get_engine
from domain.kernel.models import BusinessClock, EntityHistory, Job, WorkItem
from domain.kernel.settings import get_settings

log = logging.getLogger("domain.kernel.business_clock")

MAX_AGE_SECONDS = 1.0
_SELECT = sa.select(BusinessClock.offset_seconds).where(BusinessClock.id == 1)


async def read_offset(bind: AsyncSession | AsyncEngine) -> timedelta:
    """The stored offset (zero if the row is missing)."""
    if isinstance(bind, AsyncEngine):
        async with bind.connect() as conn:
            seconds = (await conn.execute(_SELECT)).scalar_one_or_none()
    else:
        seconds = (await bind.execute(_SELECT)).scalar_one_or_none()
    return timedelta(seconds=seconds or 0)


async def refresh(engine: AsyncEngine | None = None, *, max_age: float = MAX_AGE_SECONDS) -> None:
    """Bring the process clock up to the stored offset if the cached one is older than `max_age` seconds.
    Never fails the caller: on a database error the cached offset stays (and is tried again in a second)."""
    c = clock.get_clock()
    if not isinstance(c, clock.SystemClock) or not c.stale(max_age):
        return
    if not get_settings().dev_mode:  # only development moves the clock: production never reads or follows the row
        c.set_offset(timedelta(0))
        return
    try:
        offset = await read_offset(engine or get_engine())
    except Exception as e:  # noqa: BLE001  (the boundary goes on with the cached offset)
        log.warning("business clock not read: %s", type(e).__name__)
        offset = c.offset
    c.set_offset(offset)


def adopt(offset: timedelta) -> None:
    """The process moved the stored clock itself: take the new offset at once (a FixedClock still wins)."""
    c = clock.get_clock()
    if isinstance(c, clock.SystemClock):
        c.set_offset(offset)


async def store(session: AsyncSession, offset: timedelta, *, by=None) -> None:
    await session.execute(sa.update(BusinessClock).where(BusinessClock.id == 1).values(
        offset_seconds=offset.total_seconds(), changed_at=clock.real_now(), changed_by=by))


async def newest_record(session: AsyncSession) -> datetime | None:
    """The business time of the newest record already written (history, work items, jobs): the clock may not go
    back past it without `force`."""
    q = sa.select(sa.func.greatest(
        sa.select(sa.func.max(EntityHistory.at)).scalar_subquery(),
        sa.select(sa.func.max(WorkItem.created_at)).scalar_subquery(),
        sa.select(sa.func.max(Job.created_at)).scalar_subquery()))
    return (await session.execute(q)).scalar_one_or_none()
