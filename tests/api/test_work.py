"""The work queue over HTTP: my items (user, team, organisation), completion rules, permission."""
from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

import pytest

from domain.kernel import work_items as wi
from domain.security.models import Role, Team, TeamMember, TeamType
from tests.support import bearer, make_user, org

T0 = datetime.fromisoformat("2026-03-02T09:00:00+01:00")


@pytest.fixture
async def setup(session, clock):
    me = await make_user(session, Role.cot_operator, "asst-crema-cot", username="cot.queue")
    other = await make_user(session, Role.comune_social_worker, "comune-crema", username="as.queue")
    pua = await org(session, "asst-crema-pua")
    team = Team(ambito_id=pua.ambito_id, code="team-queue", name="PUA", type=TeamType.pua, organisation_id=pua.id)
    session.add(team)
    await session.flush()
    session.add(TeamMember(team_id=team.id, user_id=me.id, organisation_id=(await org(session, "asst-crema-cot")).id,
                           valid_from=date(2025, 1, 1)))
    cot = await org(session, "asst-crema-cot")
    crema = await org(session, "comune-crema")

    async def item(title, **kw):
        clock.advance(seconds=1)
        return await wi.create(session, kind=kw.pop("kind", "cot.evaluate"), title=title, source_type="test",
                               source_id=uuid.uuid4(), **kw)

    items = {
        "user": await item("Valutazione dimissione", assignee_user_id=me.id, due_at=T0 + timedelta(hours=48)),
        "team": await item("Triage PUA", assignee_team_id=team.id, kind="pua.triage"),
        "org": await item("Richiesta COT", assignee_org_id=cot.id, due_at=T0 - timedelta(hours=1)),
        "others": await item("Non mia", assignee_user_id=other.id),
        "crema": await item("Del comune", assignee_org_id=crema.id),
    }
    await session.commit()  # keep the rows when a refused request rolls back its own work
    return {"me": me.id, "other": other.id, "items": {k: v.id for k, v in items.items()}}


async def test_my_queue(client, setup):
    r = await client.get("/api/work-items/mine", headers=bearer(setup["me"]))
    assert r.status_code == 200, r.text
    page = r.json()
    ids = [x["id"] for x in page["items"]]
    it = setup["items"]
    assert ids == [str(it["org"]), str(it["user"]), str(it["team"])]  # overdue first, undated last
    org_item = page["items"][0]
    assert org_item["overdue"] is True and org_item["assigned_via"] == ["organisation"]
    assert org_item["state_label"] == "Da fare"
    assert page["items"][2]["assigned_via"] == ["team"] and page["next_cursor"] is None
    only = (await client.get("/api/work-items/mine", headers=bearer(setup["me"]),
                             params={"kind": "pua.triage"})).json()
    assert [x["id"] for x in only["items"]] == [str(it["team"])]
    first = (await client.get("/api/work-items/mine", headers=bearer(setup["me"]), params={"limit": 2})).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = (await client.get("/api/work-items/mine", headers=bearer(setup["me"]),
                             params={"limit": 2, "cursor": first["next_cursor"]})).json()
    assert [x["id"] for x in rest["items"]] == [str(it["team"])] and rest["next_cursor"] is None
    bad = await client.get("/api/work-items/mine", headers=bearer(setup["me"]), params={"cursor": "zzz"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "cursor"


async def test_complete(client, setup):
    it, me, other = setup["items"], setup["me"], setup["other"]
    r = await client.post(f"/api/work-items/{it['team']}/complete", headers=bearer(other))
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    r = await client.post(f"/api/work-items/{it['team']}/complete", headers=bearer(me))
    assert r.status_code == 200 and r.json()["state"] == "done" and r.json()["completed_by"] == str(me)
    r = await client.post(f"/api/work-items/{it['team']}/complete", headers=bearer(me))
    assert r.status_code == 409
    r = await client.post(f"/api/work-items/{uuid.uuid4()}/complete", headers=bearer(me))
    assert r.status_code == 404
    queue = (await client.get("/api/work-items/mine", headers=bearer(me))).json()
    assert str(it["team"]) not in [x["id"] for x in queue["items"]]


async def test_queue_needs_the_permission(client, session):
    analyst = await make_user(session, Role.analyst, "udp-crema")
    await session.commit()
    r = await client.get("/api/work-items/mine", headers=bearer(analyst))
    assert r.status_code == 403 and "work.queue" in r.json()["detail"]
