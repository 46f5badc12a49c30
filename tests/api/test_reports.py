"""GET /api/reports/indicators: who sees which rows, small cells over HTTP, CSV and XLSX with Italian headers, and
bad input answered as problem+json naming the parameter. The numbers themselves are tested on the domain
(tests/domain/reporting)."""
from __future__ import annotations

import io
from datetime import date

import pytest

from domain.pua import service
from domain.registry import cartelle
from domain.security.models import Role
from tests.domain.pua.helpers import (
    complex_answers,
    create,
    elderly_woman,
    mmg_referral,
    setup_pua,
    simple_answers,
    triaged,
)
from tests.factories.registry import insert_person
from tests.support import bearer, make_user, org

pytestmark = pytest.mark.api
URL = "/api/reports/indicators"
PROBLEM = "application/problem+json"


async def _six_requests(session):
    """Six requests of a resident of Offanengo on 2 March 2026, four of them triaged (P1 = 4 / 6)."""
    pua = await setup_pua(session)
    person = await elderly_woman(session)
    for answers in (simple_answers(age=82), complex_answers(), simple_answers(age=82), complex_answers()):
        await triaged(session, pua, person, answers)
    mmg = await pua.principal(session, pua.mmg)
    for _ in range(2):
        await service.register_request(session, principal=mmg, data=create(mmg_referral(person.id)))
    await session.commit()


def rows(body, code="P1"):
    return [r for r in body["rows"] if r["code"] == code]


async def test_the_analyst_sees_every_comune_with_small_cells_suppressed(session, client):
    await _six_requests(session)
    h = bearer(await make_user(session, Role.analyst, "ambito-crema"))
    r = await client.get(URL, params={"year": 2026, "by": "comune", "indicator": "P1"}, headers=h)
    assert r.status_code == 200, r.text
    p1 = rows(r.json())
    offanengo = await org(session, "comune-offanengo")
    mine = next(x for x in p1 if x["key"] == str(offanengo.id))
    # 4 first levels out of 6 requests: the numerator is small, so the value and the status are withheld too
    assert (mine["numerator"], mine["denominator"], mine["value"], mine["status"]) == ("<5", 6, None, "withheld")
    assert p1[-1]["grouping"] == "ambito" and p1[-1]["denominator"] == 6 and p1[-1]["numerator"] == "<5"
    assert len([x for x in p1 if x["grouping"] == "comune"]) == 48  # every comune, with zeros where none
    assert all(x["reference"].startswith("docs/indicators.md") for x in p1)


async def test_a_comune_sees_its_own_comune_and_the_ambito_total(session, client):
    await _six_requests(session)
    h = bearer(await make_user(session, Role.comune_social_worker, "comune-crema"))
    r = await client.get(URL, params={"year": 2026, "by": "comune", "indicator": "P1"}, headers=h)
    assert r.status_code == 200, r.text
    crema = await org(session, "comune-crema")
    p1 = rows(r.json())
    assert [(x["grouping"], x["key"]) for x in p1] == [("comune", str(crema.id)), ("ambito", None)]
    assert (p1[0]["numerator"], p1[0]["denominator"], p1[0]["value"]) == (0, 0, None)
    assert p1[0]["status"] == "no_target" and p1[1]["denominator"] == 6
    by_sub = await client.get(URL, params={"year": 2026, "by": "sub_ambito", "indicator": "P1"}, headers=h)
    assert [x["grouping"] for x in rows(by_sub.json())] == ["ambito"]


async def test_a_coordinator_sees_its_sub_ambito(session, client):
    await _six_requests(session)
    h = bearer(await make_user(session, Role.sub_ambito_coordinator, "subambito-soncino"))
    r = await client.get(URL, params={"year": 2026, "by": "sub_ambito", "indicator": "P1"}, headers=h)
    soncino = await org(session, "subambito-soncino")
    assert [(x["grouping"], x["key"]) for x in rows(r.json())] == [("sub_ambito", str(soncino.id)), ("ambito", None)]
    assert rows(r.json())[0]["denominator"] == 6  # Offanengo is in the Soncino sub-ambito


async def test_the_second_ambito_sees_only_its_own(session, client):
    await _six_requests(session)
    h = bearer(await make_user(session, Role.analyst, "ambito-cremona-test"))
    r = await client.get(URL, params={"year": 2026, "indicator": "P1,P4,D6"}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ambito_id"] == str((await org(session, "ambito-cremona-test")).id)
    assert [(x["code"], x["numerator"], x["denominator"]) for x in body["rows"]] == [
        ("P1", 0, 0), ("P4", 0, 0), ("D6", 0, 0)]
    assert [x["status"] for x in body["rows"]] == ["no_target", "not_computable", "not_computable"]
    assert body["rows"][1]["target"] == "≥ 75%" and body["rows"][2]["reading"] == "cohort"


async def test_waiting_times_by_urgency(session, client):
    h = bearer(await make_user(session, Role.analyst, "ambito-crema"))
    r = await client.get(URL, params={"year": 2026, "by": "urgency", "indicator": "ATTESA-MEDIANA,ATTESA-P90"},
                         headers=h)
    assert r.status_code == 200, r.text
    got = [(x["code"], x["label"], x["numerator"], x["denominator"], x["value"], x["unit"]) for x in r.json()["rows"]]
    assert got == [("ATTESA-MEDIANA", "Ordinaria", 0, None, None, "days"),
                   ("ATTESA-MEDIANA", "Urgente (confermata)", 0, None, None, "days"),
                   ("ATTESA-MEDIANA", "Ambito Territoriale Sociale di Crema", 0, None, None, "days"),
                   ("ATTESA-P90", "Ordinaria", 0, None, None, "days"),
                   ("ATTESA-P90", "Urgente (confermata)", 0, None, None, "days"),
                   ("ATTESA-P90", "Ambito Territoriale Sociale di Crema", 0, None, None, "days")]


async def test_csv_and_xlsx_with_italian_headers(session, client):
    await _six_requests(session)
    h = bearer(await make_user(session, Role.csc_operator, "csc-crema"))
    r = await client.get(URL, params={"year": 2026, "indicator": "P1", "format": "csv"}, headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = r.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("Codice;Indicatore;Raggruppamento;Gruppo;Numeratore;Denominatore;Valore;Obiettivo")
    assert lines[1].split(";")[4:6] == ["<5", "6"]
    x = await client.get(URL, params={"year": 2026, "indicator": "P4", "format": "xlsx"}, headers=h)
    assert x.status_code == 200 and "spreadsheetml" in x.headers["content-type"]
    import openpyxl

    ws = openpyxl.load_workbook(io.BytesIO(x.content)).active
    sheet = list(ws.values)
    assert sheet[0][0] == "Codice" and sheet[1][0] == "P4" and sheet[1][7] == "≥ 75%"
    page = await client.get(URL, params={"year": 2026, "indicator": "P1", "format": "html"}, headers=h)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<th>Numeratore</th>" in page.text and "<td>&lt;5</td>" in page.text and "<script" not in page.text


@pytest.mark.parametrize(("params", "field"), [
    ({"year": 1999}, "year"),
    ({"year": 2031}, "year"),
    ({"by": "provincia"}, "by"),
    ({"reading": "sometimes"}, "reading"),
    ({"indicator": "P1,ZZ9"}, "indicator"),
    ({"indicator": "P1", "by": "area"}, "by"),
    ({"indicator": "P1", "by": "udo_type"}, "by"),
    ({"reading": "cohort", "cutoff": "2025-12-31", "year": 2026}, "cutoff"),
    ({"reading": "cohort", "cutoff": "9999-12-31", "year": 2026}, "cutoff"),
])
async def test_bad_input_names_the_parameter(session, client, params, field):
    h = bearer(await make_user(session, Role.analyst, "ambito-crema"))
    r = await client.get(URL, params=params, headers=h)
    assert r.status_code in (400, 422) and r.headers["content-type"].startswith(PROBLEM), r.text
    assert [e["field"] for e in r.json()["errors"]] == [field]


async def test_roles_without_the_permission_are_refused(session, client):
    h = bearer(await make_user(session, Role.ward_staff, "asst-crema-reparto-medicina"))
    r = await client.get(URL, headers=h)
    assert r.status_code == 403 and r.headers["content-type"].startswith(PROBLEM)


# ---------------------------------------------------------------------------------------------------- FHIR
async def test_the_same_numbers_as_measure_report(session, client):
    await _six_requests(session)
    h = bearer(await make_user(session, Role.analyst, "ambito-crema"))
    api = (await client.get(URL, params={"year": 2026, "indicator": "P1,D6", "by": "comune"}, headers=h)).json()
    r = await client.get("/fhir/MeasureReport", params={"period": "2026", "measure": "P1"}, headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json"), r.text
    bundle = r.json()
    assert bundle["type"] == "searchset" and bundle["total"] == 1
    mr = bundle["entry"][0]["resource"]
    assert (mr["resourceType"], mr["id"], mr["type"], mr["status"]) == ("MeasureReport", "P1-2026", "summary",
                                                                         "pending")
    assert mr["period"] == {"start": "2026-01-01", "end": "2026-12-31"}
    group = mr["group"][0]
    assert group["code"]["coding"][0]["code"] == "P1"
    num, den = group["population"]
    # the Ambito numerator is 4: withheld as in /api ("<5"), never given as a count
    assert "count" not in num and num["extension"][0]["valueString"] == "<5"
    assert den["count"] == rows(api)[-1]["denominator"] == 6 and "measureScore" not in group
    comuni = next(s for s in group["stratifier"] if s["code"][0]["coding"][0]["code"] == "comune")
    assert len(comuni["stratum"]) == 48
    offanengo = await org(session, "comune-offanengo")
    mine = next(s for s in comuni["stratum"] if s["value"]["coding"][0]["code"] == str(offanengo.id))
    assert mine["population"][1]["count"] == 6
    read = await client.get("/fhir/MeasureReport/D6-2026", headers=h)
    assert read.status_code == 200 and read.json()["group"][0]["population"][1]["count"] == 0
    assert (await client.get("/fhir/MeasureReport/ZZ-2026", headers=h)).status_code == 404
    for period in ("duemila", "2019", "9999"):
        bad = await client.get("/fhir/MeasureReport", params={"period": period}, headers=h)
        assert bad.status_code in (400, 422) and "period" in bad.text, bad.text
    meta = (await client.get("/fhir/metadata", headers=h)).json()
    mr_cap = next(x for x in meta["rest"][0]["resource"] if x["type"] == "MeasureReport")
    assert {i["code"] for i in mr_cap["interaction"]} == {"read", "search-type"}
    assert {p["name"] for p in mr_cap["searchParam"]} == {"period", "measure"}
    every = (await client.get("/fhir/MeasureReport", params={"period": "eq2026"}, headers=h)).json()
    from domain.reporting import definitions

    assert [e["resource"]["id"] for e in every["entry"]] == [f"{c}-2026" for c in definitions.codes()]
    wait = next(e["resource"] for e in every["entry"] if e["resource"]["id"] == "ATTESA-MEDIANA-2026")
    assert wait["group"][0]["population"][0]["code"]["coding"][0]["code"] == "initial-population"
    refused = await client.get("/fhir/MeasureReport", headers=bearer(
        await make_user(session, Role.ward_staff, "asst-crema-reparto-medicina")))
    assert refused.status_code == 403


async def test_complementary_suppression_over_http(session, client):
    """Offanengo 3 requests, Izano 6, both in the Soncino sub-ambito: Offanengo is "<5", and Izano is withheld too
    ("n.d."), else Offanengo = sub-ambito − Izano. Neither can be worked out from what is shown: x + y = 9 with x
    in 1-4 and y at least 5 leaves four possibilities."""
    pua = await setup_pua(session)
    mmg = await pua.principal(session, pua.mmg)
    for comune, n in (("comune-offanengo", 3), ("comune-izano", 6)):
        person = await insert_person(session, comune=comune, sex="F", birth_date=date(1940, 2, 2))
        for _ in range(n):
            await service.register_request(session, principal=mmg, data=create(mmg_referral(person.id)))
    await session.commit()
    h = bearer(await make_user(session, Role.analyst, "ambito-crema"))
    by_comune = rows((await client.get(URL, params={"year": 2026, "by": "comune", "indicator": "P1"},
                                       headers=h)).json())
    offanengo, izano = await org(session, "comune-offanengo"), await org(session, "comune-izano")
    den = {x["key"]: x["denominator"] for x in by_comune}
    assert (den[str(offanengo.id)], den[str(izano.id)], den[None]) == ("<5", "n.d.", 9)
    assert all(x["value"] is None and x["status"] == "withheld" for x in by_comune if x["key"] in (
        str(offanengo.id), str(izano.id)))
    by_sub = rows((await client.get(URL, params={"year": 2026, "by": "sub_ambito", "indicator": "P1"},
                                    headers=h)).json())
    soncino = await org(session, "subambito-soncino")
    assert {x["key"]: x["denominator"] for x in by_sub}[str(soncino.id)] == 9
    # every other comune shows 0: the two hidden cells are the only unknowns, and their sum leaves them open
    assert sum(x["denominator"] for x in by_comune if isinstance(x["denominator"], int) and x["key"]) == 0


# ---------------------------------------------------------------------------------------------------- yearly report
async def test_the_yearly_leps_report_over_three_years(session, client):
    await _six_requests(session)
    h = bearer(await make_user(session, Role.analyst, "ambito-crema"))
    r = await client.get("/api/reports/leps", params={"year": 2026}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["years"] == [2024, 2025, 2026]
    p1 = next(i for i in body["indicators"] if i["code"] == "P1")
    assert [(p["year"], p["numerator"], p["denominator"]) for p in p1["points"]] == [
        (2024, 0, 0), (2025, 0, 0), (2026, "<5", 6)]
    p4 = next(i for i in body["indicators"] if i["code"] == "P4")
    assert [p["target"] for p in p4["points"]] == [None, "≥ 50%", "≥ 75%"]
    assert (await client.get("/api/reports/leps", params={"year": 2020}, headers=h)).json()["years"] == [2020]
    page = await client.get("/api/reports/leps", params={"year": 2026, "format": "html"}, headers=h)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text.count("<svg") == len(body["indicators"]) and "<script" not in page.text
    assert "P4 — Valutazioni multidimensionali integrate ASST/Ambito" in page.text
    x = await client.get("/api/reports/leps", params={"year": 2026, "format": "xlsx"}, headers=h)
    import openpyxl

    sheet = list(openpyxl.load_workbook(io.BytesIO(x.content)).active.values)
    assert sheet[0][:3] == ("Codice", "Indicatore", "Anno") and len(sheet) == 1 + 3 * len(body["indicators"])
    bad = await client.get("/api/reports/leps", params={"year": 2019}, headers=h)
    assert bad.status_code in (400, 422) and [e["field"] for e in bad.json()["errors"]] == ["year"]


# ---------------------------------------------------------------------------------------------------- drill-down
async def test_persons_behind_a_number_within_the_callers_scope(session, client):
    pua = await setup_pua(session)
    person = await elderly_woman(session)
    for answers in (simple_answers(age=82), complex_answers()):
        await triaged(session, pua, person, answers)
    offanengo_sw = await pua.principal(session, pua.comune_sw)
    await cartelle.open_cartella(session, principal=offanengo_sw, person_id=person.id, area="anziani")
    await session.commit()
    offanengo = await org(session, "comune-offanengo")
    url = f"{URL}/P1/persons"
    params = {"year": 2026, "part": "denominator", "by": "comune", "key": str(offanengo.id)}
    mine = await client.get(url, params=params, headers=bearer(pua.comune_sw))
    assert mine.status_code == 200, mine.text
    assert mine.json()["person_ids"] == [str(person.id)] and mine.json()["truncated"] is False
    # the comune of Crema reaches no cartella of hers: the same cell lists nobody for it
    other = await client.get(url, params=params, headers=bearer(pua.other_comune_sw))
    assert other.status_code == 200 and other.json()["person_ids"] == []
    # aggregates only: the analyst may not drill down
    h = bearer(await make_user(session, Role.analyst, "ambito-crema"))
    assert (await client.get(url, params=params, headers=h)).status_code == 403
    for bad, field in (({"part": "both"}, "part"), ({"key": "not-a-uuid"}, "key"), ({"by": "udo_type"}, "by")):
        r = await client.get(url, params={**params, **bad}, headers=bearer(pua.comune_sw))
        assert r.status_code in (400, 422) and [e["field"] for e in r.json()["errors"]] == [field], r.text
    assert (await client.get(f"{URL}/ZZ/persons", headers=bearer(pua.comune_sw))).status_code in (400, 422)
