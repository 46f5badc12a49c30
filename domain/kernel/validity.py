"""Validity periods: one convention for every "valid from … to …" in the domain.

A period is half-open, `[valid_from, valid_to)`: it applies from `valid_from` included up to `valid_to` excluded,
and an open end (`valid_to is None`) never ends. The same rule holds for dates (role assignments, team
memberships, relations, consents: `valid_to` is the first day on which the row no longer applies) and for
instants (cartella assignments, grants). Writing every check through `active_on` / `active_sql` keeps the
Python checks and the SQL filters identical.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

Moment = date | datetime


def active_on(valid_from: Moment | None, valid_to: Moment | None, at: Moment) -> bool:
    """True when `at` lies in `[valid_from, valid_to)`; a missing start means "since always"."""
    return (valid_from is None or valid_from <= at) and (valid_to is None or at < valid_to)


def row_active_on(row: Any, at: Moment) -> bool:
    """`active_on` for an object with `valid_from` / `valid_to` attributes."""
    return active_on(row.valid_from, row.valid_to, at)


def active_sql(model: Any, at: Any) -> ColumnElement[bool]:
    """The SQL twin of `active_on` for a model (or alias) with `valid_from` / `valid_to` columns. `at` may be a value,
    a column or a bind parameter evaluated at execution."""
    start, end = model.valid_from, model.valid_to
    begun = sa.or_(start.is_(None), start <= at) if _nullable(start) else start <= at
    return sa.and_(begun, sa.or_(end.is_(None), end > at))


def overlaps_sql(model: Any, start: Moment, end: Moment | None) -> ColumnElement[bool]:
    """Rows of `model` whose period shares a moment with `[start, end)`."""
    cond = sa.or_(model.valid_to.is_(None), model.valid_to > start)
    return cond if end is None else sa.and_(cond, model.valid_from < end)


def overlaps(a_from: Moment | None, a_to: Moment | None, b_from: Moment | None, b_to: Moment | None) -> bool:
    """Two half-open periods share at least one moment; None is unbounded, and an empty period (from == to)
    overlaps nothing."""
    if _empty(a_from, a_to) or _empty(b_from, b_to):
        return False
    return (a_to is None or b_from is None or b_from < a_to) and (b_to is None or a_from is None or a_from < b_to)


ROME = ZoneInfo("Europe/Rome")


@dataclass(frozen=True)
class Span:
    """A half-open window of instants `[start, end)` a search asks for (either end open): the one way a list is
    filtered by a time, whatever door the criterion came through (the FHIR date parameters, for one)."""
    start: datetime | None = None
    end: datetime | None = None

    def __and__(self, other: Span) -> Span:
        starts = [x for x in (self.start, other.start) if x is not None]
        ends = [x for x in (self.end, other.end) if x is not None]
        return Span(max(starts) if starts else None, min(ends) if ends else None)

    @property
    def empty(self) -> bool:
        return self.start is not None and self.end is not None and self.start >= self.end

    def sql(self, column: Any) -> ColumnElement[bool]:
        """The rows whose instant `column` lies in the window (a NULL never does)."""
        return _within(column, self.start, self.end)

    def days_sql(self, column: Any) -> ColumnElement[bool]:
        """The same for a date column: a day is in the window when its first instant (midnight in Rome) is."""
        return _within(column, _first_day_from(self.start) if self.start is not None else None,
                       _first_day_from(self.end) if self.end is not None else None)


def _within(column: Any, lo: Moment | None, hi: Moment | None) -> ColumnElement[bool]:
    """`lo <= column < hi` with either bound open; an empty window (lo >= hi) matches nothing."""
    if lo is not None and hi is not None and lo >= hi:
        return sa.false()
    conds = [column.is_not(None)]
    conds += [column >= lo] if lo is not None else []
    conds += [column < hi] if hi is not None else []
    return sa.and_(*conds)


def _first_day_from(instant: datetime) -> date:
    """The first day whose midnight in Rome is at or after `instant`."""
    day = instant.astimezone(ROME).date()
    return day if datetime(day.year, day.month, day.day, tzinfo=ROME) >= instant else day + timedelta(days=1)


def _nullable(attr: Any) -> bool:
    try:
        return bool(attr.property.columns[0].nullable)
    except (AttributeError, IndexError):
        return True


def _empty(start: Moment | None, end: Moment | None) -> bool:
    return start is not None and end is not None and start >= end
