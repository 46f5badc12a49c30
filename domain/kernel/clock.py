"""The only source of business time.

Business time is the real time plus the offset of the stored business clock (`business_clock` table, zero unless
moved in development mode: deploy/demo_clock.py). The offset is cached per process and refreshed, at most once a
second, at the boundaries (the API request, each Celery task, the command-line tools) by
`domain.kernel.business_clock.refresh`: `now()` stays synchronous. Tests install a `FixedClock`, which wins over the
stored clock. The API, the database session (through the `app.now` setting read by the `app_now()` SQL function
used in column defaults: set whenever the clock is `shifted`) and the worker all read it from here. Token checks
and audit timestamps use `real_now()`.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

ROME = ZoneInfo("Europe/Rome")


def real_now() -> datetime:
    """The wall clock, whatever the business clock says: token checks, audit timestamps."""
    return datetime.now(UTC)


def audit_now() -> datetime:
    """When a request really happened, for the audit trail: the real time, never moved by the demo clock's offset.
    Only a FixedClock installed in the process (tests) freezes it too, so that tests read stable audit times."""
    return _clock.now() if _clock.fixed else real_now()


class SystemClock:
    """Real time plus the stored offset (read by `business_clock.refresh`)."""

    fixed = False

    def __init__(self, offset: timedelta = timedelta(0)):
        self.offset = offset
        self.loaded_at: float | None = None  # time.monotonic() of the last read of the stored offset

    @property
    def shifted(self) -> bool:
        return bool(self.offset)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def set_offset(self, offset: timedelta) -> None:
        self.offset, self.loaded_at = offset, time.monotonic()

    def stale(self, max_age: float) -> bool:
        return self.loaded_at is None or time.monotonic() - self.loaded_at >= max_age


class FixedClock:
    """A clock that only moves when told to."""

    fixed = True
    shifted = True

    def __init__(self, at: datetime):
        if at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._at = at

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = at

    def advance(self, **delta: float) -> datetime:
        self._at = self._at + timedelta(**delta)
        return self._at


_clock: SystemClock | FixedClock = SystemClock()
# Set only while the demo clock runs the daily jobs of a day it crossed (`on_day`): task-local, so concurrent
# requests keep the process clock.
_override: ContextVar[datetime | None] = ContextVar("clock_override", default=None)


def get_clock() -> SystemClock | FixedClock:
    return _clock


def set_clock(clock: SystemClock | FixedClock) -> None:
    global _clock
    _clock = clock


def now() -> datetime:
    return _override.get() or _clock.now()


def shifted() -> bool:
    """Whether business time differs from the database's own now(): then it must reach `app_now()`."""
    return _override.get() is not None or _clock.shifted


@contextmanager
def at(instant: datetime) -> Iterator[None]:
    """Business time is `instant` for the current task only (the demo clock replays the days it crossed)."""
    token = _override.set(instant)
    try:
        yield
    finally:
        _override.reset(token)


def today_rome() -> date:
    return now().astimezone(ROME).date()


def rome_day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a calendar day in Europe/Rome, as aware datetimes (DST-safe)."""
    start = datetime(day.year, day.month, day.day, tzinfo=ROME)
    nxt = day + timedelta(days=1)
    return start, datetime(nxt.year, nxt.month, nxt.day, tzinfo=ROME)


def rome_period_bounds(start_day: date, end_day_inclusive: date) -> tuple[datetime, datetime]:
    return rome_day_bounds(start_day)[0], rome_day_bounds(end_day_inclusive)[1]
