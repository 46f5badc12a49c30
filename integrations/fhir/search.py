"""FHIR search parameters of type `date` (R4 §3.1.1.4.2 and §3.1.1.5.3): a value with a prefix, read as the
window of instants the search asks for.

A value names a range by its precision: `2026` is the whole year, `2026-03` the month, `2026-03-02` the day (in
Europe/Rome: a date without time is the server's local day), `2026-03-02T08:30+01:00` the minute, with seconds the
second. The prefixes turn that range into a window on the element's instant:

    eq (the default)  inside the range          lt, eb   before the range starts
    ge                from the range's start     le       before the range ends
    gt, sa            from the range's end       ne, ap   refused: not a single window

Repeating a parameter is AND (`_lastUpdated=ge2026-01-01&_lastUpdated=lt2026-02-01`): the windows intersect. A
comma (OR) is refused rather than read wrongly.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta

from domain.kernel.errors import Invalid
from domain.kernel.validity import ROME, Span

_VALUE = re.compile(r"^(?P<prefix>eq|ne|gt|lt|ge|le|sa|eb|ap)?(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
                    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.\d+)?)?"
                    r"(?P<tz>Z|[+-]\d{2}:\d{2}))?)?)?$")
REFUSED = {"ne": "il prefisso ne non è gestito", "ap": "il prefisso ap non è gestito"}


def _add_months(moment: datetime, months: int) -> datetime:
    y, m = divmod(moment.month - 1 + months, 12)
    return moment.replace(year=moment.year + y, month=m + 1)


def _range(m: re.Match) -> tuple[datetime, datetime]:
    year, month, day = int(m["year"]), int(m["month"] or 1), int(m["day"] or 1)
    if m["hour"] is not None:
        tz = "+00:00" if m["tz"] == "Z" else m["tz"]
        start = datetime.fromisoformat(f"{m['year']}-{m['month']}-{m['day']}T{m['hour']}:{m['minute']}:"
                                       f"{m['second'] or '00'}{tz}")
        return start, start + (timedelta(seconds=1) if m["second"] is not None else timedelta(minutes=1))
    start = datetime(year, month, day, tzinfo=ROME)
    # wall-clock arithmetic on an aware datetime: the next local midnight, whatever the DST change in between
    return start, (start + timedelta(days=1) if m["day"] is not None
                   else _add_months(start, 1 if m["month"] is not None else 12))


def date_span(values: list[str] | None, name: str) -> Span | None:
    """The window the values of date parameter `name` ask for (None when the parameter is absent); a value that is
    not a date with an optional prefix is an Invalid naming the parameter."""
    if not values:
        return None
    span = Span()
    for raw in values:
        if "," in raw:
            raise Invalid(name, "più valori separati da virgola (OR) non sono gestiti: ripetere il parametro (AND)")
        # an unencoded "+" of a time zone arrives as a space (form decoding): read it as the "+" it was
        m = _VALUE.match(raw.strip().replace(" ", "+"))
        if m is None:
            raise Invalid(name, "atteso [prefisso]AAAA[-MM[-GG[Thh:mm[:ss](Z|±hh:mm)]]], es. ge2026-03-01")
        prefix = m["prefix"] or "eq"
        if prefix in REFUSED:
            raise Invalid(name, REFUSED[prefix])
        try:
            start, end = _range(m)
        except ValueError:
            raise Invalid(name, "data inesistente") from None
        span &= {"eq": Span(start, end), "lt": Span(None, start), "eb": Span(None, start), "le": Span(None, end),
                 "ge": Span(start, None), "gt": Span(end, None), "sa": Span(end, None)}[prefix]
    return span
