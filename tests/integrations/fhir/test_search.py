"""FHIR date search parameters read as a window of instants: the precision of the value, its prefix, AND of
repeated values, and the refusals that name the parameter."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from domain.kernel.errors import Invalid
from domain.kernel.validity import ROME, Span
from integrations.fhir.search import date_span


def rome(*args: int) -> datetime:
    return datetime(*args, tzinfo=ROME)


@pytest.mark.parametrize("value, span", [
    ("2026", Span(rome(2026, 1, 1), rome(2027, 1, 1))),
    ("2026-12", Span(rome(2026, 12, 1), rome(2027, 1, 1))),
    ("2026-03-02", Span(rome(2026, 3, 2), rome(2026, 3, 3))),
    ("eq2026-03-02", Span(rome(2026, 3, 2), rome(2026, 3, 3))),
    ("ge2026-03-02", Span(rome(2026, 3, 2), None)),
    ("gt2026-03-02", Span(rome(2026, 3, 3), None)),
    ("sa2026-03", Span(rome(2026, 4, 1), None)),
    ("lt2026-03-02", Span(None, rome(2026, 3, 2))),
    ("eb2026-03-02", Span(None, rome(2026, 3, 2))),
    ("le2026-03-02", Span(None, rome(2026, 3, 3))),
    ("2026-03-02T08:30+01:00", Span(rome(2026, 3, 2, 8, 30), rome(2026, 3, 2, 8, 31))),
    ("ge2026-03-02T07:30:15Z", Span(rome(2026, 3, 2, 8, 30, 15), None)),
    ("ge2026-03-02T08:30 01:00", Span(rome(2026, 3, 2, 8, 30), None)),  # "+01:00" sent unencoded
    ("le2026-03-02T07:30:15.250Z", Span(None, rome(2026, 3, 2, 8, 30, 16))),
])
def test_a_value_is_the_window_its_precision_and_prefix_say(value, span):
    assert date_span([value], "_lastUpdated") == span


def test_the_day_of_a_clock_change_is_the_local_day():
    # 29 March 2026: Italy moves to summer time, the day lasts 23 hours
    s = date_span(["2026-03-29"], "date")
    assert s.end.astimezone(UTC) - s.start.astimezone(UTC) == timedelta(hours=23)
    assert s.end.astimezone(ROME).isoformat() == "2026-03-30T00:00:00+02:00"


def test_repeated_values_intersect_and_absence_is_none():
    assert date_span(["ge2026-03-01", "lt2026-04-01"], "date") == Span(rome(2026, 3, 1), rome(2026, 4, 1))
    assert date_span(["ge2026-04-01", "lt2026-03-01"], "date").empty
    assert date_span(None, "date") is None and date_span([], "date") is None


@pytest.mark.parametrize("value, reason", [
    ("2026-03-01,2026-03-05", "virgola"),
    ("ne2026-03-01", "ne"),
    ("ap2026-03-01", "ap"),
    ("2026-02-30", "inesistente"),
    ("2026-13", "inesistente"),
    ("01/03/2026", "atteso"),
    ("2026-03-02T08:30", "atteso"),  # a time needs its zone
    ("xx2026", "atteso"),
])
def test_what_is_not_one_window_is_refused_naming_the_parameter(value, reason):
    with pytest.raises(Invalid) as e:
        date_span([value], "authored-on")
    assert e.value.errors[0]["field"] == "authored-on" and reason in e.value.errors[0]["reason"]


def _compiled(cond) -> str:
    return str(cond.compile(compile_kwargs={"literal_binds": True}))


def test_the_sql_of_an_empty_window_matches_nothing_and_dates_use_the_local_midnight():
    col, day = sa.column("at", sa.DateTime(timezone=True)), sa.column("d", sa.Date())
    assert _compiled(Span(rome(2026, 3, 2), rome(2026, 3, 1)).sql(col)) == "false"
    # from 2 March 10:00 (Rome) to 4 March 00:00: the days whose midnight is inside are 3 March only
    sql = _compiled(Span(rome(2026, 3, 2, 10), rome(2026, 3, 4)).days_sql(day))
    assert f"d >= '{date(2026, 3, 3)}'" in sql and f"d < '{date(2026, 3, 4)}'" in sql
    assert _compiled(Span(rome(2026, 3, 2, 10), rome(2026, 3, 3)).days_sql(day)) == "false"
