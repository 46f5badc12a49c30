"""Services over HTTP (issue 13), tried as a case manager would: a plan with SAD 6 h/week → the order accepted by a
cooperative → four weeks of delivery with one week at 3 h, flagged once in the case manager's queue → closure; the
case counts as "run entirely in the system"; planned and delivered cost are hours × unit cost. Bad input is
problem+json naming the field and writes nothing; illegal moves are the kernel's 409; the provider sees only its
orders (minimal view) and writes only its own delivery log."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from domain.kernel.models import WorkItem
from domain.security.models import Role
from domain.services import jobs
from domain.services.models import Activation, Delivery, WeekFlag
from tests.domain.services.setup import MONDAY, build_case
from tests.support import bearer, make_user

PROBLEM = "application/problem+json"
A = "/api/services/activations"


@pytest.fixture
async def case(session, clock):
    clock.set(MONDAY)
    return await build_case(session, clock)


async def _count(session, model, *where) -> int:
    return (await session.execute(sa.select(sa.func.count()).select_from(model).where(*where))).scalar_one()


def _problem(r, status: int, field: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert field in [e["field"] for e in r.json()["errors"]], r.json()


async def _order(client, c, **body) -> dict:
    r = await client.post(A, json={"intervention_id": str(c.sad.id), **body}, headers=bearer(c.w.sw))
    assert r.status_code == 201, r.text
    return r.json()


async def _running(client, c) -> str:
    """Ordered, accepted by the cooperative, started on Monday 2 March."""
    aid = (await _order(client, c))["id"]
    assert (await client.post(f"{A}/{aid}/accept", json={}, headers=bearer(c.coop))).status_code == 200
    r = await client.post(f"{A}/{aid}/start", json={"start_date": "2026-03-02"}, headers=bearer(c.coop))
    assert r.status_code == 200, r.text
    return aid


async def _deliver(client, c, aid: str, day: str, hours: str, user=None):
    return await client.post(f"{A}/{aid}/deliveries", json={"delivered_on": day, "hours": hours,
                                                            "note": "Igiene personale e spesa"},
                             headers=bearer(user or c.coop))


async def test_sad_journey_flagged_once_closed_run_in_system_costs(client, session, case, clock):
    c = case
    sw, coop = bearer(c.w.sw), bearer(c.coop)
    ordered = await _order(client, c)
    assert (ordered["state"], ordered["intensity_value"], ordered["intensity_unit"]) == ("requested", "6.00",
                                                                                        "hours_week")
    assert (ordered["unit_cost"], ordered["funding_source"], ordered["end_date"]) == ("21.50", "fna", "2026-03-30")
    aid = ordered["id"]
    # the cooperative finds the order in its queue, reads it with the minimal view (no cost, no plan) and accepts
    queue = (await client.get("/api/work-items/mine", headers=coop)).json()["items"]
    assert [i["kind"] for i in queue] == ["services.activation_request"]
    seen = (await client.get(f"{A}/{aid}", headers=coop)).json()
    assert (seen["view"], seen["unit_cost"], seen["plan_id"]) == ("minimal", None, None)
    assert (await client.get(f"{A}/{aid}", headers=bearer(c.other_coop))).status_code == 404
    r = await client.post(f"{A}/{aid}/start", json={}, headers=coop)
    assert r.status_code == 409 and r.json()["allowed_actions"] == ["accept", "decline"]
    assert (await client.post(f"{A}/{aid}/accept", json={}, headers=coop)).json()["state"] == "accepted"
    assert (await client.post(f"{A}/{aid}/start", json={"start_date": "2026-03-02"}, headers=coop)
            ).json()["state"] == "active"

    # four weeks: 3 h on Monday and Thursday, except the third week (3 h only)
    days = {date(2026, 3, 2): "3", date(2026, 3, 5): "3", date(2026, 3, 9): "3", date(2026, 3, 12): "3",
            date(2026, 3, 16): "3", date(2026, 3, 23): "3", date(2026, 3, 26): "3"}
    for day, hours in days.items():
        clock.set(MONDAY + timedelta(days=(day - date(2026, 3, 2)).days))
        assert (await _deliver(client, c, aid, day.isoformat(), hours)).status_code == 201
        await jobs.daily(session, {})  # the daily job runs every day; it flags a week once
    clock.set(MONDAY + timedelta(days=28))  # Monday 30 March: the four weeks are over
    await jobs.daily(session, {})
    await jobs.daily(session, {})
    items = list((await session.execute(sa.select(WorkItem).where(WorkItem.kind == jobs.BELOW_KIND))).scalars())
    assert [(i.assignee_user_id, str(i.source_id), i.data["week_start"], i.data["delivered"]) for i in items] == [
        (c.w.sw.id, aid, "2026-03-16", "3.00")]
    mine = (await client.get("/api/work-items/mine", params={"kind": jobs.BELOW_KIND}, headers=sw)).json()["items"]
    assert len(mine) == 1
    summary = (await client.get(f"{A}/{aid}/summary", headers=sw)).json()
    assert [(w["start"], w["planned"], w["delivered"], w["below_threshold"], w["flagged"]) for w in summary["weeks"]] \
        == [("2026-03-02", "6.00", "6.00", False, False), ("2026-03-09", "6.00", "6.00", False, False),
            ("2026-03-16", "6.00", "3.00", True, True), ("2026-03-23", "6.00", "6.00", False, False)]
    assert [(m["start"], m["planned"], m["delivered"]) for m in summary["months"]] == [("2026-03-01", "24.00",
                                                                                        "21.00")]
    # the order ended by itself at its planned end (the daily job), the intervention with it
    got = (await client.get(f"{A}/{aid}", headers=sw)).json()
    assert (got["state"], got["end_reason"], got["end_date"]) == ("ended", "period_over", "2026-03-30")
    assert got["run_in_system"] is True
    # the plan closes; the case is counted; costs are hours × unit cost
    r = await client.post(f"/api/care-plans/{c.plan.id}/complete", json={"reason": "Obiettivi raggiunti"},
                          headers=sw)
    assert r.status_code == 200, r.text
    ind = (await client.get("/api/services/indicators/sad", headers=bearer(c.analyst))).json()
    assert (ind["sad_ended"], ind["run_in_system"]) == (1, 1)
    cost = (await client.get(f"/api/services/plans/{c.plan.id}/costs", headers=sw)).json()
    assert (cost["planned_cost"], cost["delivered_cost"], cost["co_payment"]) == ("516.00", "451.50", "0.00")
    assert cost["by_funding_source"] == [{"funding_source": "fna", "planned_cost": "516.00",
                                          "delivered_cost": "451.50", "co_payment": "0.00"}]
    assert [(ln["planned_quantity"], ln["delivered_quantity"]) for ln in cost["lines"]] == [("24.00", "21.00")]
    assert (await client.get(f"/api/services/plans/{c.plan.id}/costs", headers=coop)).status_code == 403


class TestBadInput:
    async def test_delivery_before_start_after_end_negative_hours_writes_nothing(self, client, session, case, clock):
        c = case
        aid = await _running(client, c)
        clock.set(MONDAY + timedelta(days=40))
        before = await _count(session, Delivery)
        _problem(await _deliver(client, c, aid, "2026-03-01", "2"), 422, "delivered_on")
        _problem(await _deliver(client, c, aid, "2026-03-30", "2"), 422, "delivered_on")
        _problem(await _deliver(client, c, aid, "2026-03-03", "-1"), 422, "hours")
        r = await client.post(f"{A}/{aid}/deliveries", headers=bearer(c.coop), json={
            "delivered_on": "2026-03-03", "hours": "2", "operator_user_id": str(c.w.sw.id)})
        _problem(r, 422, "operator_user_id")  # not an operator of the cooperative
        assert await _count(session, Delivery) == before

    async def test_provider_not_accredited_is_refused_naming_the_field(self, client, session, case):
        c = case
        before = await _count(session, Activation)
        r = await client.post(A, json={"intervention_id": str(c.sad.id), "provider_org_id": str(c.meraki.id)},
                              headers=bearer(c.w.sw))
        _problem(r, 422, "provider_org_id")
        assert "accreditato" in r.json()["detail"]
        assert await _count(session, Activation) == before

    async def test_accreditation_period_counts(self, client, session, case):
        c = case
        r = await client.post("/api/catalogue/accreditations", headers=bearer(c.admin), json={
            "organisation_id": str(c.meraki.id), "service_type": "sad", "valid_from": "2026-04-01"})
        assert r.status_code == 201, r.text
        r = await client.post(A, json={"intervention_id": str(c.sad.id), "provider_org_id": str(c.meraki.id)},
                              headers=bearer(c.w.sw))
        _problem(r, 422, "provider_org_id")  # accredited from April; the order starts on 2 March
        r = await client.post(A, json={"intervention_id": str(c.sad.id), "provider_org_id": str(c.meraki.id),
                                       "start_date": "2026-04-01", "end_date": "2026-05-01", "unit_cost": "20"},
                              headers=bearer(c.w.sw))
        assert r.status_code == 201, r.text

    async def test_decline_needs_a_reason_and_raises_the_case_managers_item(self, client, session, case):
        c = case
        aid = (await _order(client, c))["id"]
        r = await client.post(f"{A}/{aid}/decline", json={"reason": ""}, headers=bearer(c.coop))
        assert r.status_code == 422
        r = await client.post(f"{A}/{aid}/decline", json={"reason": "Nessun operatore disponibile"},
                              headers=bearer(c.coop))
        assert r.json()["state"] == "declined"
        mine = (await client.get("/api/work-items/mine", params={"kind": "services.activation_declined"},
                                 headers=bearer(c.w.sw))).json()["items"]
        assert len(mine) == 1
        # a new order to the same intervention is possible once the first is declined
        assert (await _order(client, c))["state"] == "requested"


class TestWhoDoesWhat:
    async def test_provider_writes_only_its_own_log_and_the_case_side_none(self, client, session, case, clock):
        c = case
        aid = await _running(client, c)
        assert (await _deliver(client, c, aid, "2026-03-02", "3", user=c.other_coop)).status_code == 404
        assert (await _deliver(client, c, aid, "2026-03-02", "3", user=c.w.sw)).status_code == 403
        assert (await client.get(f"{A}/{aid}", headers=bearer(c.coordinator))).json()["view"] == "full"
        mine = (await client.get(A, headers=bearer(c.coop))).json()["items"]
        assert [i["id"] for i in mine] == [aid]
        assert (await client.get(A, headers=bearer(c.other_coop))).json()["items"] == []

    async def test_suspend_resume_end_and_illegal_moves(self, client, session, case, clock):
        c = case
        aid = await _running(client, c)
        sw = bearer(c.w.sw)
        r = await client.post(f"{A}/{aid}/suspend", json={"reason": "Ricovero ospedaliero"}, headers=sw)
        assert r.json()["state"] == "suspended"
        r = await client.post(f"{A}/{aid}/suspend", json={"reason": "Di nuovo"}, headers=sw)
        assert r.status_code == 409 and set(r.json()["allowed_actions"]) == {"resume", "end", "deliver"}
        assert (await client.post(f"{A}/{aid}/resume", json={}, headers=bearer(c.coop))).json()["state"] == "active"
        clock.set(MONDAY + timedelta(days=3))
        assert (await _deliver(client, c, aid, "2026-03-04", "2")).status_code == 201
        r = await client.post(f"{A}/{aid}/end", json={"reason": "person_request", "end_date": "2026-03-04"},
                              headers=sw)
        _problem(r, 422, "end_date")  # a delivery on the 4th: the service ended after it
        r = await client.post(f"{A}/{aid}/end", json={"reason": "person_request"}, headers=sw)
        assert (r.json()["state"], r.json()["end_date"]) == ("ended", "2026-03-05")
        assert (await session.execute(sa.select(sa.func.count()).select_from(WeekFlag))).scalar_one() == 0


async def test_suspended_days_are_not_planned_nor_flagged(client, session, case, clock):
    """A hospital stay from Tuesday, recorded on Thursday, back home on Sunday: the suspended days are not planned,
    so the week is measured against the two days of service it had and is not flagged."""
    c = case
    aid = await _running(client, c)
    sw = bearer(c.w.sw)
    clock.set(MONDAY + timedelta(days=1))
    assert (await _deliver(client, c, aid, "2026-03-02", "3")).status_code == 201
    clock.set(MONDAY + timedelta(days=3))  # Thursday
    r = await client.post(f"{A}/{aid}/suspend", json={"reason": "Ricovero", "from_date": "2026-03-02"}, headers=sw)
    _problem(r, 422, "from_date")  # a delivery is logged on the 2nd
    r = await client.post(f"{A}/{aid}/suspend", json={"reason": "Ricovero", "from_date": "2026-03-03"}, headers=sw)
    assert r.json()["state"] == "suspended"
    clock.set(MONDAY + timedelta(days=6))  # Sunday: back home
    assert (await client.post(f"{A}/{aid}/resume", json={}, headers=sw)).json()["state"] == "active"
    clock.set(MONDAY + timedelta(days=7))
    await jobs.daily(session, {})
    week = (await client.get(f"{A}/{aid}/summary", headers=sw)).json()["weeks"][0]
    # suspended 3, 4, 5, 6, 7 March (5 days): 2 days of service planned, 6 × 2 / 7 = 1.71 h, 3 h delivered
    assert (week["planned"], week["delivered"], week["below_threshold"], week["flagged"]) == ("1.71", "3.00", False,
                                                                                             False)
    assert (await session.execute(sa.select(sa.func.count()).select_from(WeekFlag))).scalar_one() == 0


async def test_cost_of_a_plan_before_any_order_is_estimated_from_the_accreditation(client, session, case):
    c = case
    cost = (await client.get(f"/api/services/plans/{c.plan.id}/costs", headers=bearer(c.w.sw))).json()
    assert [(ln["activation_id"], ln["unit_cost"], ln["planned_quantity"], ln["planned_cost"]) for ln in cost["lines"]
            ] == [(None, "21.50", "24.00", "516.00")]
    assert (await client.get(f"/api/services/plans/{c.plan.id}/costs", headers=bearer(c.coordinator))
            ).status_code == 200
    assert (await client.get(f"/api/services/plans/{c.plan.id}/costs", headers=bearer(c.w.outsider))
            ).status_code == 200  # another social worker of Offanengo: the comune's case
    crema = await make_user(session, Role.comune_social_worker, "comune-crema")
    assert (await client.get(f"/api/services/plans/{c.plan.id}/costs", headers=bearer(crema))).status_code == 404
