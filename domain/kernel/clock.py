"""The only source of business time.

Tests install a `FixedClock`; the API, the database session (through the `app.now` setting read by the
`app_now()` SQL function used in column defaults) and the worker all read it from here.
"""
from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

ROME = ZoneInfo("Europe/Rome")


class SystemClock:
    fixed = False

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that only moves when told to."""

    fixed = True

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


def _from_env() -> SystemClock | FixedClock:
    # A worker subprocess started by a test inherits the test's fixed time through this variable.
    fixed = os.environ.get("PUA_FIXED_NOW")
    return FixedClock(datetime.fromisoformat(fixed)) if fixed else SystemClock()


_clock: SystemClock | FixedClock = _from_env()


def get_clock() -> SystemClock | FixedClock:
    return _clock


def set_clock(clock: SystemClock | FixedClock) -> None:
    global _clock
    _clock = clock


def now() -> datetime:
    return _clock.now()


def today_rome() -> date:
    return now().astimezone(ROME).date()


def rome_day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a calendar day in Europe/Rome, as aware datetimes (DST-safe)."""
    start = datetime(day.year, day.month, day.day, tzinfo=ROME)
    nxt = day + timedelta(days=1)
    return start, datetime(nxt.year, nxt.month, nxt.day, tzinfo=ROME)


def rome_period_bounds(start_day: date, end_day_inclusive: date) -> tuple[datetime, datetime]:
    return rome_day_bounds(start_day)[0], rome_day_bounds(end_day_inclusive)[1]
