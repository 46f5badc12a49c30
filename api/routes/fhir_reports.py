"""FHIR façade: the LEPS and Piano di Zona indicators as MeasureReport (summary), the same numbers as
GET /api/reports/indicators for the same caller, stratified by sub-ambito and comune of residence."""
from __future__ import annotations

from fastapi import Query, Request

from api.deps import Session
from api.routes.fhir import FhirResponse, access, base_url, fhir_router, match, searchset
from domain.kernel import clock
from domain.kernel.errors import Invalid, NotFound
from domain.reporting import definitions, indicators, service
from domain.security.permissions import Permission
from integrations.fhir import measure_report

STRATA = ("sub_ambito", "comune")


async def _reports(session, principal, year: int, codes: str | None) -> list[dict]:
    """One MeasureReport per indicator: the Ambito total and the strata the caller may see."""
    by = {g: await service.indicator_report(session, principal=principal, year=year, by=g, indicator=codes)
          for g in STRATA}
    out = []
    for d in by["comune"].definitions:
        strata = {g: [r for r in by[g].rows if r.code == d.code and r.grouping == g] for g in STRATA}
        total = next(r for r in by["comune"].rows if r.code == d.code and r.grouping == "ambito")
        out.append(measure_report.to_fhir(d, year, principal.ambito_id, total, strata))
    return out


def _year(period: str | None) -> int:
    if period is None:
        return clock.today_rome().year
    value = period.removeprefix("eq")
    if len(value) != 4 or not value.isdigit():
        raise Invalid("period", "indicare l'anno (es. 2026 o eq2026)")
    try:
        return indicators.check_year(int(value))
    except Invalid as e:  # the same check, named after the FHIR parameter
        raise Invalid("period", e.reason) from None


def _codes(measure: str | None) -> str | None:
    if measure is None:
        return None
    code = measure.rsplit("/", 1)[-1]
    if code not in definitions.registry():
        raise Invalid("measure", "indicatore sconosciuto")
    return code


@fhir_router.get("/MeasureReport", name="fhir:MeasureReport:search-type")
async def search_measure_reports(
        request: Request, session: Session,
        principal: access("MeasureReport", "read", Permission.report_read),
        period: str | None = Query(default=None, description="L'anno (2026 o eq2026); predefinito l'anno in corso."),
        measure: str | None = Query(default=None, description="Il codice dell'indicatore o il suo Measure canonico."),
) -> FhirResponse:
    year = _year(period)
    reports = await _reports(session, principal, year, _codes(measure))
    base = base_url(request)
    entries = [match(base, "MeasureReport", r["id"], r) for r in reports]
    return FhirResponse(searchset(request, entries, None, len(entries)))


@fhir_router.get("/MeasureReport/{report_id}", name="fhir:MeasureReport:read")
async def read_measure_report(report_id: str, session: Session,
                              principal: access("MeasureReport", "read", Permission.report_read)) -> FhirResponse:
    parsed = measure_report.parse_id(report_id)
    if parsed is None or parsed[0] not in definitions.registry():
        raise NotFound("Indicatore non trovato.")
    code, year = parsed
    try:
        reports = await _reports(session, principal, year, code)
    except Invalid:  # a year out of range is no such report
        raise NotFound("Indicatore non trovato per l'anno.") from None
    return FhirResponse(reports[0])
