"""The indicator report a principal may see: which indicators, which rows (its scope), small cells suppressed,
value and status against the year's target, audited. Every number is computed when asked (no stored counts)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from domain.kernel.errors import Forbidden, Invalid
from domain.registry import policy as registry_policy
from domain.reporting import definitions, indicators, sources, suppression
from domain.reporting.definitions import Definition
from domain.security import audit
from domain.security.models import Role
from domain.security.permissions import Permission
from domain.security.principal import Principal
from domain.territory import queries as territory

ENTITY = "indicator_report"
# Roles that see the whole Ambito's rows (CSC analysts and the Ufficio di Piano, the Ambito's PUA social workers);
# a comune social worker sees its comuni and the Ambito totals, a sub-ambito coordinator its sub-ambito.
AMBITO_WIDE = (Role.analyst, Role.csc_operator, Role.ambito_pua_social_worker)
UNATTRIBUTED = "Non attribuito (residenti fuori Ambito o senza comune)"

STATUS_LABELS = {
    "met": "Obiettivo raggiunto", "not_met": "Obiettivo non raggiunto", "no_target": "Nessun obiettivo per l'anno",
    "not_computable": "Non calcolabile (denominatore zero)", "withheld": "Non divulgabile (celle piccole)",
}
READING_LABELS = {"same_period": "Stesso periodo", "cohort": "Coorte con data limite",
                  "event_date": "Per data dell'evento"}
GROUPING_LABELS = {"ambito": "Ambito", "sub_ambito": "Sub-ambito", "comune": "Comune", "area": "Area",
                   "udo_type": "Tipologia di unità d'offerta", "urgency": "Urgenza",
                   "trigger": "Tipo di servizio richiesto"}


@dataclass(frozen=True)
class Row:
    code: str
    title: str
    grouping: str
    key: str | None  # organisation id or area code; None for the Ambito and "non attribuito"
    label: str
    numerator: int | str
    denominator: int | str | None
    value: Decimal | None
    target: str | None
    target_value: float | None
    status: str
    unit: str
    reading: str
    cutoff: Any
    reference: str
    seed: str


@dataclass(frozen=True)
class Report:
    year: int
    by: str
    ambito_id: uuid.UUID
    ambito_name: str
    rows: list[Row]
    definitions: list[Definition]


def require_reader(principal: Principal) -> None:
    if Permission.report_read not in principal.permissions:
        raise Forbidden("Permesso mancante: report.read", missing=[Permission.report_read.value])


def visible_keys(principal: Principal, tree: list[tuple]) -> set[tuple[str, Any]] | None:
    """The rows below the Ambito the principal may see (None: all of them)."""
    if principal.has_role(*AMBITO_WIDE):
        return None
    subs = set(principal.orgs_for(Role.sub_ambito_coordinator))
    comuni = set(principal.orgs_for(Role.comune_social_worker))
    keys: set[tuple[str, Any]] = set()
    for org_id, kind, _name, part_of in tree:
        if str(kind) == "sub_ambito" and org_id in subs:
            keys.add(("sub_ambito", org_id))
        if str(kind) == "comune" and (org_id in comuni or part_of in subs):
            keys.add(("comune", org_id))
    return keys


def _tables(counts: indicators.Counts, d: Definition) -> list[suppression.Equation]:
    subs = sorted({k for k in counts.num if k[0] == "sub_ambito"}, key=repr)
    eqs = [suppression.Equation(indicators.TOTAL, tuple(subs))]
    for s in subs:
        members = tuple(sorted((c for c, p in counts.parent.items() if p == s), key=repr))
        if s[1] is None:  # "non attribuito" has no comune: its one comune cell is the same count
            members = (("comune", None),) if ("comune", None) in counts.num else ()
        if members:
            eqs.append(suppression.Equation(s, members))
    for dim in d.stratifications:
        if dim not in definitions.TERRITORY:
            eqs.append(suppression.Equation(indicators.TOTAL, tuple(sorted(
                (k for k in counts.num if k[0] == dim), key=repr))))
    return eqs


def _status(d: Definition, year: int, value: Decimal | None, withheld: bool) -> str:
    target = d.target(year)
    if withheld:
        return "withheld"
    if target is None:
        return "no_target"
    if value is None:
        return "not_computable"
    return "met" if target.met(float(value)) else "not_met"


def resolve(indicator: str | None, by: str) -> list[Definition]:
    if by not in definitions.GROUPINGS:
        raise Invalid("by", f"raggruppamento sconosciuto: usare {', '.join(definitions.GROUPINGS)}")
    reg = definitions.registry()
    if indicator is None:
        return list(reg.values())
    wanted = [c.strip() for c in indicator.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in reg]
    if unknown or not wanted:
        raise Invalid("indicator", "indicatore sconosciuto: " + ", ".join(unknown or [indicator]))
    out = [reg[c] for c in wanted]
    if by != "ambito" and any(by not in d.stratifications for d in out):
        raise Invalid("by", "l'indicatore non si stratifica per " + GROUPING_LABELS[by].lower())
    return out


@dataclass(frozen=True)
class Scope:
    """What a principal's rows are built from: the Ambito's territory, its names and the rows it may see."""

    tree: list[tuple]
    names: dict
    ambito_name: str
    visible: set[tuple[str, Any]] | None


async def scope_of(session: AsyncSession, principal: Principal) -> Scope:
    tree = await territory.ambito_tree(session, principal.ambito_id)
    ambito_name = (await territory.org_names(session, [principal.ambito_id])).get(principal.ambito_id, "Ambito")
    return Scope(tree=tree, names={org_id: name for org_id, _k, name, _p in tree}, ambito_name=ambito_name,
                 visible=visible_keys(principal, tree))


async def indicator_report(session: AsyncSession, *, principal: Principal, year: int, by: str = "ambito",
                           reading: str | None = None, cutoff: date | None = None,
                           indicator: str | None = None) -> Report:
    """The indicators of the principal's Ambito for one year, grouped `by`, as the principal may see them."""
    require_reader(principal)
    indicators.check_year(year)
    defs = resolve(indicator, by)
    readings = {d.code: indicators.reading_for(d, year, reading, cutoff) for d in defs}
    scope = await scope_of(session, principal)
    rows: list[Row] = []
    for d in defs:
        rows.extend(await definition_rows(session, d, ambito_id=principal.ambito_id, year=year, by=by,
                                          r=readings[d.code], scope=scope))
    audit.record(action="read", object_type=ENTITY, object_ids=[], result_count=len(rows))
    return Report(year=year, by=by, ambito_id=principal.ambito_id, ambito_name=scope.ambito_name, rows=rows,
                  definitions=defs)


async def definition_rows(session: AsyncSession, d: Definition, *, ambito_id: uuid.UUID, year: int, by: str,
                          r: indicators.Reading, scope: Scope) -> list[Row]:
    """The rows of one indicator in the report (its cells suppressed on their own tables): the unit an export job
    computes per step."""
    names, visible = scope.names, scope.visible
    counts = await indicators.compute(session, d, ambito_id=ambito_id, r=r, tree=scope.tree)
    eqs = _tables(counts, d)
    np, nc = suppression.suppress(counts.num, eqs)
    dp, dc = suppression.suppress(counts.den, eqs) if counts.den is not None else (set(), set())
    grouping = by if by in d.stratifications else "ambito"
    keys = [indicators.TOTAL] if grouping == "ambito" else [
        k for k in counts.num if k[0] == grouping and _shows(k, visible, counts)]
    keys.sort(key=lambda k: (k[1] is None, _label(k, names), str(k[1])))
    if grouping != "ambito":
        keys.append(indicators.TOTAL)
    rows: list[Row] = []
    for k in keys:
        num, den = counts.num[k], (counts.den[k] if counts.den is not None else None)
        withheld = k in np | nc | dp | dc
        if counts.stat is not None:  # a duration: its statistic, rounded like every value
            stat = counts.stat.get(k)
            value = None if withheld or stat is None else stat.quantize(indicators.FOUR)
        else:
            value = None if withheld else indicators.value_of(num, den, d)
        target = d.target(year)
        rows.append(Row(
            code=d.code, title=d.title, grouping=k[0], key=None if k[1] is None else str(k[1]),
            label=scope.ambito_name if k == indicators.TOTAL else _label(k, names),
            numerator=suppression.shown(num, k, np, nc),
            denominator=None if den is None else suppression.shown(den, k, dp, dc),
            value=value, target=target.label if target else None,
            target_value=target.value if target else None, status=_status(d, year, value, withheld),
            unit=d.unit, reading=r.name, cutoff=r.cutoff if r.name == "cohort" else None,
            reference=d.reference, seed=d.seed))
    return rows


def _shows(k: tuple[str, Any], visible: set | None, counts: indicators.Counts) -> bool:
    if k[0] not in definitions.TERRITORY:
        return True  # Ambito-wide totals by area, UDO type or urgency: every reader of the report sees them
    if visible is None:
        # "non attribuito" only when something is counted there
        return k[1] is not None or counts.num.get(k, 0) > 0 or bool(counts.den and counts.den.get(k, 0) > 0)
    return k in visible


def _label(k: tuple[str, Any], names: dict) -> str:
    if k[1] is None:
        return UNATTRIBUTED
    if k[0] not in definitions.TERRITORY:
        return sources.dimension_label(k[0], str(k[1]))
    return names.get(k[1], str(k[1]))


# ---------------------------------------------------------------------------------------------------- yearly report
TREND_YEARS = 3


@dataclass(frozen=True)
class Trend:
    definition: Definition
    points: list[tuple[int, Row]]  # (year, the Ambito row of that year), oldest first


@dataclass(frozen=True)
class LepsReport:
    year: int
    years: list[int]
    ambito_name: str
    trends: list[Trend]


def trend_years(year: int) -> list[int]:
    """The years of the yearly report: the year and the two before it, from the first year the platform holds."""
    return [y for y in range(year - TREND_YEARS + 1, year + 1) if y >= indicators.FIRST_YEAR]


async def leps_report(session: AsyncSession, *, principal: Principal, year: int) -> LepsReport:
    """The yearly report of one Ambito: every indicator's Ambito row in the year and the two before it (from the
    first year the platform holds), with the targets; the same numbers, readings and small-cell rules as the
    indicator report of each year."""
    indicators.check_year(year)
    years = trend_years(year)
    by_year = {y: await indicator_report(session, principal=principal, year=y) for y in years}
    trends = [Trend(d, [(y, next(r for r in by_year[y].rows if r.code == d.code)) for y in years])
              for d in by_year[year].definitions]
    return LepsReport(year=year, years=years, ambito_name=by_year[year].ambito_name, trends=trends)


# ---------------------------------------------------------------------------------------------------- drill-down
MAX_PERSONS = 1000


@dataclass(frozen=True)
class PersonsBehind:
    code: str
    part: str
    grouping: str
    key: str | None
    person_ids: list[uuid.UUID]
    truncated: bool


async def persons_behind(session: AsyncSession, *, principal: Principal, code: str, year: int, part: str,
                         by: str = "ambito", key: str | None = None, reading: str | None = None,
                         cutoff: date | None = None, limit: int = 200) -> PersonsBehind:
    """From a number to the persons behind it: only for roles that reach persons case by case, and only the
    persons their row scope reaches (the registry's case filter: owning comune, assignments, consent, break-glass);
    the list may therefore be shorter than the count. Ids only: each person is read through its own route, with
    the caller's projection. Every person listed is in the access log."""
    if Permission.report_drilldown not in principal.permissions:
        raise Forbidden("Permesso mancante: report.drilldown", missing=[Permission.report_drilldown.value])
    indicators.check_year(year)
    if part not in ("numerator", "denominator"):
        raise Invalid("part", "usare numerator o denominator")
    d, = resolve(code, by)
    r = indicators.reading_for(d, year, reading, cutoff)
    value: Any = key
    if by in ("sub_ambito", "comune") and key is not None:
        try:
            value = uuid.UUID(key)
        except ValueError:
            raise Invalid("key", "identificativo del sub-ambito o del comune non valido") from None
    limit = max(1, min(int(limit), MAX_PERSONS))
    ids = await indicators.persons_behind(
        session, d, ambito_id=principal.ambito_id, r=r, part=part, grouping=by, key=value,
        row_filter=lambda person: registry_policy.case_access_filter(principal, person), limit=limit)
    shown = ids[:limit]
    audit.record(action="search", object_type=PERSONS_ENTITY, object_ids=[], person_ids=shown,
                 result_count=len(shown))
    return PersonsBehind(code=d.code, part=part, grouping=by, key=key, person_ids=shown, truncated=len(ids) > limit)


PERSONS_ENTITY = "indicator_persons"
