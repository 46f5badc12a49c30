"""Computing an indicator for one Ambito and one year: the period, the reading, one query per indicator over its
source (every grouping at once, GROUPING SETS), then the table of cells the report shows. Counting rules:
docs/indicators.md; defaults chosen: docs/decisions/reporting.md."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.kernel import clock
from domain.kernel.errors import Invalid
from domain.reporting import definitions, sources
from domain.reporting.definitions import Definition
from domain.territory import queries as territory

FIRST_YEAR = 2020  # the oldest data the platform holds (imports from GeCaS start there)
MAX_CUTOFF_YEARS = 10  # a cohort followed longer than this is another question (and date arithmetic has an end)
TOTAL = ("ambito", None)
FOUR = Decimal("0.0001")


# ---------------------------------------------------------------------------------------------------- period, reading
def year_bounds(year: int) -> tuple[datetime, datetime]:
    """[1 Jan 00:00, 1 Jan 00:00) of the year, Europe/Rome local midnight (never UTC)."""
    return clock.rome_period_bounds(date(year, 1, 1), date(year, 12, 31))


def check_year(year: int) -> int:
    last = clock.today_rome().year
    if not FIRST_YEAR <= year <= last:
        raise Invalid("year", f"anno fuori dall'intervallo consentito ({FIRST_YEAR}-{last})")
    return year


@dataclass(frozen=True)
class Reading:
    name: str
    lo: datetime
    hi: datetime
    cutoff: datetime  # completions counted up to this instant (excluded); same_period: the period end

    @property
    def first_day(self) -> date:
        return self.lo.astimezone(clock.ROME).date()

    @property
    def end_day(self) -> date:  # the first day after the period
        return self.hi.astimezone(clock.ROME).date()


def reading_for(d: Definition, year: int, reading: str | None = None, cutoff: date | None = None) -> Reading:
    """The reading asked for (or the definition's default) and its cut-off. `cutoff` is a Rome calendar day,
    included: completions up to its end count."""
    name = reading or d.default_reading
    if name not in definitions.READINGS:
        raise Invalid("reading", f"lettura sconosciuta: usare {', '.join(definitions.READINGS)}")
    lo, hi = year_bounds(year)
    if cutoff is not None:
        if name != "cohort":
            raise Invalid("cutoff", "la data limite vale solo con la lettura per coorte (reading=cohort)")
        if cutoff < date(year, 1, 1):
            raise Invalid("cutoff", "la data limite precede il periodo")
        if cutoff > date(year + MAX_CUTOFF_YEARS, 12, 31):
            raise Invalid("cutoff", f"la data limite è oltre {MAX_CUTOFF_YEARS} anni dalla fine del periodo")
        return Reading(name, lo, hi, clock.rome_day_bounds(cutoff)[1])
    if name == "cohort":
        # duration indicators: the period end plus their limit, so an item started on the last evening is judged
        # on its own clock (a COT request at 23:00 on 31 December evaluated at 08:00 on 1 January is on time)
        if d.limit is not None:
            end = clock.rome_day_bounds(hi.astimezone(clock.ROME).date() + timedelta(days=d.limit.days - 1))[1] \
                if d.limit_in_days else hi + d.limit  # calendar days to a Rome midnight; hours elapsed
            return Reading(name, lo, hi, end)
        return Reading(name, lo, hi, max(hi, clock.now()))
    return Reading(name, lo, hi, hi)


def _in_period(ev: sources.Event, r: Reading) -> Any:
    if ev.is_date:
        return sa.and_(ev.expr >= r.first_day, ev.expr < r.end_day)
    return sa.and_(ev.expr >= r.lo, ev.expr < r.hi)


def _before(ev: sources.Event, instant: datetime) -> Any:
    if ev.is_date:
        return ev.expr < instant.astimezone(clock.ROME).date()
    return ev.expr < instant


def _conds(src: sources.Source, names: tuple[str, ...], d: Definition) -> list[Any]:
    ctx = sources.Context(limit=d.limit, params=d.params)
    return [src.conditions[n](ctx) for n in names]


def counting(d: Definition, src: sources.Source, r: Reading) -> tuple[Any, Any | None]:
    """(numerator condition, denominator condition) over one row of the source."""
    start = src.events[d.start_event]
    if d.kind == "snapshot":  # open at the end of the period: opened before it, not closed before it
        opened, closed = src.events["opened_at"], src.events["closed_at"]
        return sa.and_(opened.expr < r.hi, sa.or_(closed.expr.is_(None), closed.expr >= r.hi)), None
    if d.kind in ("count", "duration"):  # items of the year (a duration: its statistic is in compute())
        num = d.numerator
        return sa.and_(_in_period(start, r), *_conds(src, num.where, d),
                       _before(src.events[num.event], r.cutoff)), None  # type: ignore[index]
    den, num = d.denominator, d.numerator
    assert den is not None
    den_where = _conds(src, den.where, d)
    num_where = _conds(src, num.where, d)
    den_event = src.events[den.event] if den.event else None
    num_event = src.events[num.event]  # type: ignore[index]
    if r.name == "event_date":  # each count by its own date
        den_c = sa.and_(_in_period(den_event or start, r), *den_where)
        num_c = sa.and_(_in_period(num_event, r), *den_where, *num_where)
        return num_c, den_c
    den_c = sa.and_(_in_period(start, r), *den_where, *([_before(den_event, r.cutoff)] if den_event else []))
    num_c = sa.and_(den_c, *num_where, _before(num_event, r.cutoff))
    return num_c, den_c


# ---------------------------------------------------------------------------------------------------- one query
Key = tuple[str, Any]


@dataclass
class Counts:
    """Numerator and denominator of every cell of one indicator: ("ambito", None), ("sub_ambito", id|None),
    ("comune", id|None), (grouping, value) for the area, the UDO type, the urgency; `parent` maps a comune cell to
    its sub-ambito cell."""

    num: dict[Key, int] = field(default_factory=dict)
    den: dict[Key, int] | None = None
    parent: dict[Key, Key] = field(default_factory=dict)
    stat: dict[Key, Decimal | None] | None = None  # duration indicators: the median, p90 or mean of each cell, in days


def _count(d: Definition, src: sources.Source, cond: Any) -> Any:
    if d.counts == "persons":  # after de-duplication: a merged person counts once
        return sa.func.count(sa.distinct(src.person)).filter(cond)
    return sa.func.count().filter(cond)


async def compute(session: AsyncSession, d: Definition, *, ambito_id: uuid.UUID, r: Reading,
                  tree: list[tuple]) -> Counts:
    """The counts of one indicator for the Ambito, every grouping in one statement."""
    src = sources.source(d.source)
    num_c, den_c = counting(d, src, r)
    t = territory.comune_facts()
    # a comune outside this Ambito (or none) is "non attribuito": residents of elsewhere are not a comune of ours
    frm = src.from_.outerjoin(t, sa.and_(t.c.id == src.comune, t.c.ambito_id == ambito_id))
    sub, com = t.c.sub_ambito_id, t.c.id
    dims = {name: src.dims[name] for name in d.stratifications if name in src.dims}
    sets = [sa.tuple_(sub, com), sa.tuple_(sub), sa.text("()")] + [sa.tuple_(e) for e in dims.values()]
    # GROUPING(x) is 1 when x is left out of the row's grouping set
    cols = [sub.label("sub"), com.label("com"), sa.func.grouping(sub).label("g_sub"),
            sa.func.grouping(com).label("g_com"), _count(d, src, num_c).label("num")]
    for i, e in enumerate(dims.values()):
        cols += [e.label(f"d{i}"), sa.func.grouping(e).label(f"g{i}")]
    if den_c is not None:
        cols.append(_count(d, src, den_c).label("den"))
    if d.kind == "duration":
        q = definitions.STATISTICS[d.statistic]  # type: ignore[index]
        days = src.durations[d.duration]  # type: ignore[index]
        stat = sa.func.avg(days) if q is None else sa.func.percentile_cont(q).within_group(days)
        cols.append(stat.filter(num_c).label("stat"))
    where = [src.ambito == ambito_id, *src.population]
    # only rows that can count, so the scan stays on the period's rows: outside the event_date reading the
    # numerator is a part of the denominator, and the denominator alone is the plain range the indexes serve
    if den_c is None:
        where.append(num_c)
    else:
        where.append(den_c if r.name != "event_date" else sa.or_(num_c, den_c))
    stmt = sa.select(*cols).select_from(frm).where(*where).group_by(sa.func.grouping_sets(*sets))
    out = Counts(den={} if den_c is not None else None, stat={} if d.kind == "duration" else None)

    def zero(key: Key) -> None:
        out.num[key] = 0
        if out.den is not None:
            out.den[key] = 0
        if out.stat is not None:
            out.stat[key] = None

    # every sub-ambito, comune and value of a grouping has a row, with zeros where nothing was counted
    for org_id, kind, _name, part_of in tree:
        zero((str(kind), org_id))
        if str(kind) == "comune":
            out.parent[("comune", org_id)] = ("sub_ambito", part_of)
    zero(TOTAL)
    for name in dims:
        for value in sources.dimension_values(name):
            zero((name, value))
    for row in (await session.execute(stmt)).all():
        m = row._mapping
        if not row.g_com:
            key: Key = ("comune", row.com)
            out.parent[key] = ("sub_ambito", row.sub)
        elif not row.g_sub:
            key = ("sub_ambito", row.sub)
        else:
            key = next(((name, m[f"d{i}"]) for i, name in enumerate(dims) if not m[f"g{i}"]), TOTAL)
        out.num[key] = int(row.num)
        if out.den is not None:
            out.den[key] = int(row.den)
        if out.stat is not None:
            out.stat[key] = None if row.stat is None else Decimal(str(row.stat))
    return out


def value_of(num: int, den: int | None, d: Definition) -> Decimal | None:
    """num / den rounded to 4 decimals (half up); null when the denominator is 0; a count is its own value."""
    if den is None:
        return Decimal(num)
    if den == 0:
        return None
    return (Decimal(num) / Decimal(den)).quantize(FOUR, rounding=ROUND_HALF_UP)


# ---------------------------------------------------------------------------------------------------- drill-down
async def persons_behind(session: AsyncSession, d: Definition, *, ambito_id: uuid.UUID, r: Reading, part: str,
                         grouping: str, key: Any, row_filter: Any, limit: int) -> list[uuid.UUID]:
    """The persons (de-duplicated ids) counted in one cell, among those `row_filter` lets the caller reach, by
    id; at most `limit` + 1 so the caller knows when the list is cut."""
    src = sources.source(d.source)
    num_c, den_c = counting(d, src, r)
    if part == "denominator" and den_c is None:
        raise Invalid("part", "l'indicatore non ha denominatore")
    cond = num_c if part == "numerator" else den_c
    t = territory.comune_facts()
    frm = src.from_.outerjoin(t, sa.and_(t.c.id == src.comune, t.c.ambito_id == ambito_id))
    where = [src.ambito == ambito_id, *src.population, cond, row_filter(src.person)]
    column = {"comune": t.c.id, "sub_ambito": t.c.sub_ambito_id, **src.dims}.get(grouping)
    if grouping != "ambito":
        if column is None or (grouping not in definitions.TERRITORY and grouping not in d.stratifications):
            raise Invalid("by", "l'indicatore non si stratifica così")
        where.append(column.is_(None) if key is None else column == key)
    stmt = sa.select(src.person).select_from(frm).where(*where).distinct().order_by(src.person).limit(limit + 1)
    return list((await session.execute(stmt)).scalars())
