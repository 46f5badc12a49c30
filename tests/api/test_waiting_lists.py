"""Waiting lists over HTTP (issue 11): the lists and the Ambito ranking with positions computed on read, the RSA
operator's minimal view, an offer and its reply; bad input is problem+json naming the field and writes nothing;
an illegal move is the kernel's 409."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa

from domain.waiting_list.models import WaitingListEntry, WaitingListOffer
from tests.domain.waiting_list.setup import World, applicant
from tests.domain.waiting_list.test_service import SCENARIO_NOW, _abc
from tests.support import bearer

PROBLEM = "application/problem+json"


@pytest.fixture
async def world(session, clock):
    clock.set(SCENARIO_NOW)
    return await World().build(session)


async def _count(session, model) -> int:
    return (await session.execute(sa.select(sa.func.count()).select_from(model))).scalar_one()


def _problem(r, status: int, field: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert field in [e["field"] for e in r.json()["errors"]], r.json()


async def test_lists_ranking_and_an_offer_over_http(client, session, world, clock):
    w = world
    a, b, c = await _abc(session, w)
    sw, fbc = bearer(w.sw), bearer(w.fbc)
    x = (await client.get(f"/api/waiting-lists/units/{w.x.id}", headers=sw)).json()
    assert [(i["entry_id"], i["position"], i["total"]) for i in x["items"]] == [
        (str(a.entry.id), 1, 67), (str(c.entry.id), 2, 39)]
    assert x["items"][0]["score"] == {"barthel": 32, "caregiver": 20, "lives_alone": 10, "waiting": 5,
                                      "periods": 5, "total": 67, "urgent": False}
    ranking = (await client.get("/api/waiting-lists/ranking", params={"udo_type": "rsa"}, headers=sw)).json()
    assert [(i["entry_id"], i["urgent"]) for i in ranking["items"]] == [
        (str(b.entry.id), True), (str(a.entry.id), False), (str(c.entry.id), False)]
    # a comune of another sub-ambito sees the positions, not who holds them
    other = (await client.get(f"/api/waiting-lists/units/{w.x.id}", headers=bearer(w.crema_sw))).json()
    assert [(i["position"], i["entry_id"], i["person_id"], i["score"]) for i in other["items"]] == [
        (1, None, None, None), (2, None, None, None)]

    # the RSA operator: its own unit's list, the minimal view of the applicants, no Ambito ranking
    r = await client.get(f"/api/waiting-lists/applications/{a.entry.id}", headers=fbc)
    assert r.status_code == 200 and r.json()["view"] == "minimal"
    assert r.json()["barthel"] is None and r.json()["score"] is None and r.json()["vmd_id"] is None
    assert (await client.get(f"/api/waiting-lists/applications/{b.entry.id}", headers=fbc)).status_code == 404
    assert (await client.get("/api/waiting-lists/ranking", headers=fbc)).status_code == 403
    assert (await client.get(f"/api/waiting-lists/units/{w.y.id}", headers=fbc)).status_code == 404

    bed = await client.post(f"/api/waiting-lists/units/{w.x.id}/beds", json={"label": "Camera 12"}, headers=fbc)
    assert bed.status_code == 201, bed.text
    offer = await client.post("/api/waiting-lists/offers", json={"unit_id": str(w.x.id)}, headers=fbc)
    assert offer.status_code == 201, offer.text
    assert (offer.json()["entry_id"], offer.json()["position"]) == (str(a.entry.id), 1)
    oid = offer.json()["id"]
    r = await client.post(f"/api/waiting-lists/offers/{oid}/receipt", json={}, headers=sw)
    # two working days after the receipt (Wednesday 10 June → Friday 12 June, same time)
    assert datetime.fromisoformat(r.json()["reply_due_at"]) == datetime.fromisoformat("2026-06-12T10:00:00+02:00")

    clock.set(SCENARIO_NOW + timedelta(days=3))
    r = await client.post(f"/api/waiting-lists/offers/{oid}/accept", json={}, headers=fbc)
    _problem(r, 422, "replied_at")
    await session.refresh(a.entry)
    assert a.entry.state == "listed"
    assert (await session.get(WaitingListOffer, oid, populate_existing=True)).state == "open"


class TestBadInput:
    async def test_an_offer_for_a_unit_with_no_free_bed(self, client, session, world):
        await _abc(session, world)
        before = await _count(session, WaitingListOffer)
        r = await client.post("/api/waiting-lists/offers", json={"unit_id": str(world.x.id)},
                              headers=bearer(world.fbc))
        _problem(r, 422, "unit_id")
        assert await _count(session, WaitingListOffer) == before

    async def test_urgency_without_a_reason(self, client, session, world):
        a, _, _ = await _abc(session, world)
        r = await client.post(f"/api/waiting-lists/applications/{a.entry.id}/urgency",
                              json={"note": "Situazione molto grave"}, headers=bearer(world.sw))
        _problem(r, 422, "reason")
        await session.refresh(a.entry)
        assert a.entry.urgency == "none"

    async def test_listing_without_a_temporary_plan_and_with_an_unsigned_vmd(self, client, session, world):
        w = world
        x = await applicant(session, w, barthel=35, units=[w.x], application_date=date(2026, 6, 1))
        r = await client.post(f"/api/waiting-lists/applications/{x.entry.id}/decision", headers=bearer(w.sw),
                              json={"decision": "listed", "caregiver": "present", "lives_alone": False})
        _problem(r, 422, "temporary_plan_id")
        # a new application: its VMD just requested, nobody signed
        fresh = await client.post("/api/waiting-lists/applications", headers=bearer(w.sw), json={
            "person_id": str(x.person.id), "udo_type": "cdi",
            "unit_ids": [str(await _unit(session, "cdi-fbc-crema"))], "applicant": "person",
            "application_date": "2026-06-09", "cartella_id": str(x.cartella.id), "team_id": str(w.team.id)})
        assert fresh.status_code == 201, fresh.text
        due = datetime.fromisoformat(fresh.json()["assessment_due_at"])
        assert due == datetime.fromisoformat("2026-07-10T00:00:00+02:00")  # the end of the 30th day
        r = await client.post(f"/api/waiting-lists/applications/{fresh.json()['id']}/decision",
                              headers=bearer(w.sw), json={"decision": "listed", "caregiver": "present",
                                                          "lives_alone": False,
                                                          "temporary_plan_id": str(x.plan.id)})
        _problem(r, 422, "vmd_id")
        states = set((await session.execute(sa.select(WaitingListEntry.state).where(
            WaitingListEntry.person_id == x.person.id))).scalars())
        assert states == {"assessment_pending"}


async def _unit(session, code):
    return (await session.execute(sa.text("select id from service_unit where code = :c"), {"c": code})).scalar()


async def test_an_illegal_move_is_the_kernels_409(client, session, world):
    a, _, _ = await _abc(session, world)
    r = await client.post(f"/api/waiting-lists/applications/{a.entry.id}/confirm", json={},
                          headers=bearer(world.sw))
    assert r.status_code == 409 and r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert (body["state"], body["action"]) == ("listed", "confirm") and "withdraw" in body["allowed_actions"]


async def test_a_stale_version_is_refused(client, session, world):
    a, _, _ = await _abc(session, world)
    r = await client.post(f"/api/waiting-lists/applications/{a.entry.id}/exit", headers=bearer(world.sw),
                          json={"action": "withdraw", "version": a.entry.version - 1})
    assert r.status_code == 409 and r.json()["current_version"] == a.entry.version



async def test_the_history_of_an_application_with_the_cause_of_each_event(client, session, world):
    w = world
    a, b, _ = await _abc(session, w)
    r = await client.get(f"/api/waiting-lists/applications/{b.entry.id}/history", headers=bearer(w.sw))
    assert r.status_code == 200, r.text
    events = r.json()["items"]
    assert [e["action"] for e in events] == ["applied", "listed", "urgency_raised", "urgency_confirmed"]
    assert [e["version"] for e in events] == sorted(e["version"] for e in events)
    raised = events[2]
    assert raised["action_label"] == "Urgenza segnalata" and raised["cause"]["cause"] == "loss_of_home"
    assert (events[1]["state"], events[1]["state_label"]) == ("listed", "In lista d'attesa")
    # the RSA operator reaches A (who chose its unit) with the minimal view only, and B not at all
    fbc = bearer(w.fbc)
    r = await client.get(f"/api/waiting-lists/applications/{a.entry.id}/history", headers=fbc)
    assert r.status_code == 403 and r.headers["content-type"].startswith(PROBLEM)
    assert (await client.get(f"/api/waiting-lists/applications/{b.entry.id}/history", headers=fbc)).status_code == 404
    # a comune of another sub-ambito does not see it
    r = await client.get(f"/api/waiting-lists/applications/{a.entry.id}/history", headers=bearer(w.crema_sw))
    assert r.status_code == 404
