"""MeasureReport (R4, type `summary`) ⇐ one indicator of the report for one Ambito and year: the Ambito's numerator
and denominator as the group's populations, the value as measureScore, and the strata by sub-ambito and comune
that the caller may see. A count hidden to protect a small cell has no `count`: an extension carries "<5" or
"n.d." instead, so a client never reads a number the /api report withholds."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.kernel import clock
from domain.reporting.definitions import Definition
from domain.reporting.service import Row
from integrations.fhir import r4, systems

MEASURE = f"{systems.BASE}/Measure"
INDICATOR = f"{systems.BASE}/CodeSystem/indicatore"
STRATIFIER = f"{systems.BASE}/CodeSystem/stratificazione"
GROUP = f"{systems.BASE}/CodeSystem/gruppo"
WITHHELD_COUNT = f"{systems.BASE}/StructureDefinition/conteggio-protetto"
POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
UCUM = "http://unitsofmeasure.org"
STRATIFIER_LABELS = {"sub_ambito": "Sub-ambito di residenza", "comune": "Comune di residenza"}


def report_id(code: str, year: int) -> str:
    return f"{code}-{year}"


def parse_id(value: str) -> tuple[str, int] | None:
    code, _, year = value.rpartition("-")
    return (code, int(year)) if code and year.isdigit() and len(year) == 4 else None


def _population(kind: str, count: int | str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"code": {"coding": [{"system": POPULATION, "code": kind}]}}
    if isinstance(count, int):
        out["count"] = count
    elif count is not None:
        out["extension"] = [{"url": WITHHELD_COUNT, "valueString": str(count)}]
    return out


def _populations(d: Definition, row: Row) -> list[dict[str, Any]]:
    if d.kind != "ratio":  # a count, or the items a waiting time is measured on
        return [_population("initial-population", row.numerator)]
    return [_population("numerator", row.numerator), _population("denominator", row.denominator)]


def _score(row: Row) -> dict[str, Any]:
    if row.value is None:
        return {}
    unit = {"percent": {"unit": "%"}, "days": {"unit": "giorni", "system": UCUM, "code": "d"}}.get(row.unit, {})
    return {"measureScore": {"value": float(row.value), **unit}}


def to_fhir(d: Definition, year: int, ambito_id: Any, total: Row, strata: dict[str, list[Row]],
            generated: datetime | None = None) -> dict[str, Any]:
    """The MeasureReport of `d` for `year`: `total` is the Ambito row, `strata` the visible rows by grouping."""
    stratifiers = []
    for grouping, rows in strata.items():
        if not rows:
            continue
        stratifiers.append({
            "code": [{"coding": [{"system": STRATIFIER, "code": grouping}], "text": STRATIFIER_LABELS[grouping]}],
            "stratum": [{"value": {"coding": [{"system": GROUP, "code": r.key or "non_attribuito",
                                               "display": r.label}], "text": r.label},
                         "population": _populations(d, r), **_score(r)} for r in rows]})
    group: dict[str, Any] = {
        "code": {"coding": [{"system": INDICATOR, "code": d.code, "display": d.title}], "text": d.title},
        "population": _populations(d, total), **_score(total)}
    if stratifiers:
        group["stratifier"] = stratifiers
    finished = clock.today_rome().year > year
    doc = {
        "resourceType": "MeasureReport", "id": report_id(d.code, year),
        "status": "complete" if finished else "pending",  # the year still running: numbers will move
        "type": "summary", "measure": f"{MEASURE}/{d.code}",
        "date": (generated or clock.now()).isoformat(),
        "reporter": {"reference": f"Organization/{ambito_id}"},
        "period": {"start": f"{year}-01-01", "end": f"{year}-12-31"},
        "group": [group],
    }
    return r4.dump(r4.parse(doc, expected="MeasureReport"))
