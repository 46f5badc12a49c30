"""Measures over HTTP (issue 13): a Pro.Vi application assessed eligible, active May 2026 → April 2027, ends by
itself after April (the daily job on the movable business clock); a call whose budget runs out holds the next
eligible applications waiting for funds in rank order (application date, then the VMD's need score) and funds them
in that order when the budget grows; a closed call and an amount above the cap are refused naming the field,
nothing written."""
from __future__ import annotations

from datetime import date, datetime

import pytest
import sqlalchemy as sa

from domain.measures import jobs
from domain.measures.models import MeasureApplication
from tests.domain.services.setup import MONDAY, build_case
from tests.factories.cartelle import create_person
from tests.support import bearer, make_user

PROBLEM = "application/problem+json"
M = "/api/measures/applications"


@pytest.fixture
async def case(session, clock):
    clock.set(MONDAY)
    return await build_case(session, clock)


def _problem(r, status: int, field: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert field in [e["field"] for e in r.json()["errors"]], r.json()


async def _call(client, c, *, measure="pro_vi", budget="10000", opens="2026-03-01", closes="2026-04-15",
                cap="4800") -> dict:
    admin = bearer(c.admin)
    r = await client.patch(f"/api/catalogue/measures/{measure}", json={"max_amount": cap}, headers=admin)
    assert r.status_code == 200, r.text
    r = await client.post("/api/catalogue/measure-calls", headers=admin, json={
        "measure_code": measure, "title": "Pro.Vi 2026-2027", "opens_on": opens, "closes_on": closes,
        "budget": budget})
    assert r.status_code == 201, r.text
    return r.json()


async def _eligible_with_project(client, c, call_id: str, **body) -> str:
    sw = bearer(c.w.sw)
    r = await client.post(M, headers=sw, json={"call_id": call_id, "person_id": str(c.w.person.id),
                                               "cartella_id": str(c.w.cartella.id), **body})
    assert r.status_code == 201, r.text
    aid = r.json()["id"]
    for action, payload in (("assessment", {"vmd_id": str(c.vmd.id)}), ("eligibility", {"eligible": True}),
                            ("project", {"plan_id": str(c.plan.id)})):
        r = await client.post(f"{M}/{aid}/{action}", json=payload, headers=sw)
        assert r.status_code == 200, r.text
    assert r.json()["state"] == "project_defined"
    return aid


async def test_pro_vi_active_may_to_april_ends_by_itself(client, session, case, clock):
    c = case
    call = await _call(client, c)
    aid = await _eligible_with_project(client, c, call["id"], requested_amount="4800")
    sw = bearer(c.w.sw)
    got = (await client.get(f"{M}/{aid}", headers=sw)).json()
    assert got["need_score"] == 65  # 100 - Barthel 35 of the VMD
    r = await client.post(f"{M}/{aid}/activation", json={"amount": "4800"}, headers=sw)
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["period_start"], r.json()["period_end"]) == ("active", "2026-05-01",
                                                                                     "2027-05-01")
    assert (await client.post(f"{M}/{aid}/monitoring", json={}, headers=sw)).json()["state"] == "monitoring"
    figures = (await client.get(f"/api/measures/calls/{call['id']}", headers=bearer(c.analyst))).json()
    assert (figures["committed"], figures["available"], figures["status_counts"]) == ("4800.00", "5200.00",
                                                                                      {"monitoring": 1})
    # per measure, over every call of the Ambito: the same counts; another Ambito sees none of them
    catalogue = {m["code"]: m for m in (await client.get("/api/catalogue/measures", headers=bearer(c.analyst)))
                 .json()["items"]}
    assert (catalogue["pro_vi"]["status_counts"], catalogue["pro_vi"]["committed"]) == ({"monitoring": 1}, "4800.00")
    assert catalogue["b1"]["status_counts"] == {} and catalogue["b1"]["committed"] == "0"
    outsider = bearer(await make_user(session, "analyst", "ambito-cremona-test"))
    other = {m["code"]: m for m in (await client.get("/api/catalogue/measures", headers=outsider)).json()["items"]}
    assert other["pro_vi"]["status_counts"] == {}
    clock.set(datetime.fromisoformat("2027-04-30T09:00:00+02:00"))  # still April: running
    await jobs.daily(session, {})
    assert (await client.get(f"{M}/{aid}", headers=sw)).json()["state"] == "monitoring"
    clock.set(datetime.fromisoformat("2027-05-01T06:00:00+02:00"))  # the period is over
    await jobs.daily(session, {})
    got = (await client.get(f"{M}/{aid}", headers=sw)).json()
    assert (got["state"], got["end_reason"]) == ("ended", "period_over")


async def test_budget_runs_out_next_eligible_wait_in_rank_order(client, session, case, clock):
    c = case
    call = await _call(client, c, budget="6000")
    first = await _eligible_with_project(client, c, call["id"])
    sw = bearer(c.w.sw)
    assert (await client.post(f"{M}/{first}/activation", json={"amount": "4000"}, headers=sw)
            ).json()["state"] == "active"
    # three more eligible applications with a project (other persons): the dates and need scores decide the rank
    rows = {}
    for name, applied, need in (("late", date(2026, 3, 2), 90), ("early_low", date(2026, 3, 1), 40),
                                ("early_high", date(2026, 3, 1), 70)):
        p = await create_person(session, comune="comune-offanengo")
        a = MeasureApplication(ambito_id=c.w.person.ambito_id, call_id=call["id"], measure_code="pro_vi",
                               person_id=p.id, comune_id=p.residence_comune_id, application_date=applied,
                               state="project_defined", need_score=need, vmd_id=c.vmd.id, plan_id=c.plan.id,
                               version=1)
        session.add(a)
        await session.flush()
        rows[name] = str(a.id)
    for name in ("late", "early_low", "early_high"):  # all beyond the 2,000 left: they wait, none refused
        r = await client.post(f"{M}/{rows[name]}/activation", json={"amount": "3000"}, headers=sw)
        assert r.status_code == 200 and r.json()["state"] == "waiting_funds", r.text
    waiting = (await client.get(f"/api/measures/calls/{call['id']}/waiting", headers=sw)).json()
    assert [i["application_id"] for i in waiting["items"]] == [rows["early_high"], rows["early_low"], rows["late"]]
    assert waiting["rank_by"] == ["application_date", "need_score"]
    assert (await client.get(f"{M}/{rows['early_low']}", headers=sw)).json()["waiting_rank"] == 2
    # the last in rank withdraws: it held no funds, nothing is released
    r = await client.post(f"{M}/{rows['late']}/withdraw", json={}, headers=sw)
    assert r.json()["state"] == "withdrawn"
    # the budget grows by 3,500: the first in rank is funded, the second still waits
    r = await client.patch(f"/api/catalogue/measure-calls/{call['id']}", json={"budget": "9500"},
                           headers=bearer(c.admin))
    assert r.status_code == 200, r.text
    assert (r.json()["committed"], r.json()["available"], r.json()["waiting_amount"]) == ("7000.00", "2500.00",
                                                                                          "3000.00")
    states = {n: (await client.get(f"{M}/{rows[n]}", headers=sw)).json()["state"] for n in ("early_high",
                                                                                            "early_low")}
    assert states == {"early_high": "active", "early_low": "waiting_funds"}


class TestBadInput:
    async def test_closed_call_and_amount_above_cap_write_nothing(self, client, session, case):
        c = case
        sw = bearer(c.w.sw)
        closed = await _call(client, c, opens="2026-01-01", closes="2026-02-15")
        count = (await session.execute(sa.select(sa.func.count()).select_from(MeasureApplication))).scalar_one()
        r = await client.post(M, headers=sw, json={"call_id": closed["id"], "person_id": str(c.w.person.id)})
        _problem(r, 422, "call_id")
        call = await _call(client, c)
        r = await client.post(M, headers=sw, json={"call_id": call["id"], "person_id": str(c.w.person.id),
                                                   "requested_amount": "5000"})
        _problem(r, 422, "requested_amount")
        assert (await session.execute(sa.select(sa.func.count()).select_from(MeasureApplication))
                ).scalar_one() == count
        aid = await _eligible_with_project(client, c, call["id"])
        r = await client.post(f"{M}/{aid}/activation", json={"amount": "4800.01"}, headers=sw)
        _problem(r, 422, "amount")
        r = await client.post(f"{M}/{aid}/activation", json={"amount": "100", "period_start": "2026-06-01"},
                              headers=sw)
        _problem(r, 422, "period_start")  # Pro.Vi starts on 1 May
        got = (await client.get(f"{M}/{aid}", headers=sw)).json()
        assert (got["state"], got["amount"]) == ("project_defined", None)
        r = await client.post(f"{M}/{aid}/monitoring", json={}, headers=sw)
        assert r.status_code == 409 and "activate" in r.json()["allowed_actions"]

    async def test_not_eligible_needs_a_reason(self, client, session, case):
        c = case
        sw = bearer(c.w.sw)
        call = await _call(client, c)
        r = await client.post(M, headers=sw, json={"call_id": call["id"], "person_id": str(c.w.person.id)})
        aid = r.json()["id"]
        await client.post(f"{M}/{aid}/assessment", json={"vmd_id": str(c.vmd.id)}, headers=sw)
        _problem(await client.post(f"{M}/{aid}/eligibility", json={"eligible": False}, headers=sw), 422, "reason")
        r = await client.post(f"{M}/{aid}/eligibility", json={"eligible": False, "reason": "Età inferiore a 18 anni"},
                              headers=sw)
        assert r.json()["state"] == "not_eligible"
