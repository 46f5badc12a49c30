"""The Italian calendar and ages: national holidays (Easter Monday included), working days, working hours, age on a
date.

Local patron days are not holidays here: a deadline in working days is the same in all 48 comuni.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

ROME = ZoneInfo("Europe/Rome")
_FIXED_HOLIDAYS = ((1, 1), (1, 6), (4, 25), (5, 1), (6, 2), (8, 15), (11, 1), (12, 8), (12, 25), (12, 26))


def easter(year: int) -> date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month = (h + ell - 7 * m + 114) // 31
    day = (h + ell - 7 * m + 114) % 31 + 1
    return date(year, month, day)


@lru_cache(maxsize=64)
def italian_holidays(year: int) -> frozenset[date]:
    """National public holidays of `year`."""
    return frozenset([date(year, m, d) for m, d in _FIXED_HOLIDAYS] + [easter(year) + timedelta(days=1)])


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in italian_holidays(day.year)


def add_working_days(start: datetime, days: int) -> datetime:
    """The same time of day (Europe/Rome) `days` working days after `start` (Monday-Friday, holidays excluded)."""
    local = start.astimezone(ROME)
    day, left = local.date(), days
    while left > 0:
        day += timedelta(days=1)
        if is_working_day(day):
            left -= 1
    return datetime.combine(day, local.time().replace(tzinfo=None), tzinfo=ROME)


def add_working_hours(start: datetime, hours: float, *, day_start: time, day_end: time) -> datetime:
    """The instant `hours` working hours after `start`, counting only the time between `day_start` and `day_end`
    (Europe/Rome wall clock) of working days. A start outside the window counts from the next opening."""
    if not day_start < day_end:
        raise ValueError("the working day must start before it ends")
    left = timedelta(hours=hours)
    cursor = start.astimezone(ROME)
    day = cursor.date()
    while True:
        if is_working_day(day):
            opens = datetime.combine(day, day_start, tzinfo=ROME)
            closes = datetime.combine(day, day_end, tzinfo=ROME)
            begin = max(cursor, opens)
            if begin < closes:
                if left <= closes - begin:
                    return begin + left
                left -= closes - begin
        day += timedelta(days=1)
        cursor = datetime.combine(day, time(0), tzinfo=ROME)


def age_on(birth_date: date | None, on: date) -> int | None:
    """Completed years on `on`; None when the birth date is unknown."""
    if birth_date is None:
        return None
    return on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))
