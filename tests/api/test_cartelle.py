from datetime import timedelta

from tests.factories.cartelle import create_assignment, create_cartella, create_person
from tests.support import bearer, make_user, org

PROBLEM = "application/problem+json"

# An error response rolls the request's session back, and in these tests that is the test's own session: rows set up
# by the test are committed (i.e. their savepoint released) before any request that is expected to fail, and ids are
# kept as plain values so nothing expired is touched afterwards.


async def worker(session, orgs="comune-crema", role="comune_social_worker"):
    u = await make_user(session, role, orgs)
    return u, bearer(u)


class TestOpenAndRead:
    async def test_open_list_get(self, client, session):
        _, h = await worker(session, orgs="comune-offanengo")  # the owning comune's social worker
        person = await create_person(session, comune="comune-offanengo")
        r = await client.post(f"/api/persons/{person.id}/cartelle", json={"area": "minori_famiglia"}, headers=h)
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["area_label"] == "Area Minori-famiglia" and body["status_label"] == "Aperta"
        assert body["owning_comune_id"] == str((await org(session, "comune-offanengo")).id)
        r = await client.get(f"/api/persons/{person.id}/cartelle", headers=h)
        assert r.status_code == 200 and [c["id"] for c in r.json()["items"]] == [body["id"]]
        r = await client.get(f"/api/cartelle/{body['id']}", headers=h)
        assert r.status_code == 200 and r.json()["transfers"] == [] and r.json()["version"] == 1

    async def test_duplicate_area_is_409(self, client, session):
        _, h = await worker(session)
        person = await create_person(session)
        url = f"/api/persons/{person.id}/cartelle"
        await session.commit()
        assert (await client.post(url, json={"area": "anziani"}, headers=h)).status_code == 201
        r = await client.post(url, json={"area": "anziani"}, headers=h)
        assert r.status_code == 409 and r.headers["content-type"].startswith(PROBLEM)

    async def test_bad_input_is_422_naming_the_field(self, client, session):
        _, h = await worker(session)
        person = await create_person(session)
        url = f"/api/persons/{person.id}/cartelle"
        await session.commit()
        r = await client.post(url, json={"area": "anziani", "colour": "blu"}, headers=h)
        assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
        assert [e["field"] for e in r.json()["errors"]] == ["colour"]
        r = await client.post(url, json={"area": "giardinaggio"}, headers=h)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "area"
        r = await client.post("/api/persons/not-a-uuid/cartelle", json={"area": "anziani"}, headers=h)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "person_id"

    async def test_no_comune_asks_for_owning_comune(self, client, session):
        _, h = await worker(session, orgs="ambito-crema", role="ambito_pua_social_worker")
        person = await create_person(session, comune=None)
        await session.commit()
        r = await client.post(f"/api/persons/{person.id}/cartelle", json={"area": "anziani"}, headers=h)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "owning_comune_id"

    async def test_other_ambito_is_404_and_missing_permission_403(self, client, session):
        _, h = await worker(session)
        person = await create_person(session)
        cid = (await client.post(f"/api/persons/{person.id}/cartelle", json={"area": "anziani"},
                                 headers=h)).json()["id"]
        pid = person.id
        _, other = await worker(session, orgs="comune-cremona")
        _, mmg = await worker(session, orgs="mmg-crema-1", role="mmg")
        _, coord = await worker(session, orgs="subambito-crema", role="sub_ambito_coordinator")
        await session.commit()
        for url in (f"/api/cartelle/{cid}", f"/api/cartelle/{cid}/history", f"/api/cartelle/{cid}/assignments",
                    f"/api/persons/{pid}/cartelle"):
            r = await client.get(url, headers=other)
            assert r.status_code == 404, url
        r = await client.post(f"/api/cartelle/{cid}/close", json={"reason": "x"}, headers=other)
        assert r.status_code == 404
        assert (await client.get(f"/api/cartelle/{cid}", headers=mmg)).status_code == 403
        assert (await client.get(f"/api/cartelle/{cid}", headers=coord)).status_code == 200
        r = await client.post(f"/api/cartelle/{cid}/close", json={"reason": "x"}, headers=coord)
        assert r.status_code == 403


class TestLifecycle:
    async def test_case_manager_transfer_close_history(self, client, session, clock):
        _, h = await worker(session)
        _, h_pandino = await worker(session, orgs="comune-pandino")
        cm1 = await make_user(session, "comune_social_worker", "comune-crema")
        cm2 = await make_user(session, "comune_social_worker", "comune-pandino")
        cm1_id, cm2_id = str(cm1.id), str(cm2.id)
        pandino_id = str((await org(session, "comune-pandino")).id)
        person = await create_person(session)
        await session.commit()
        c = (await client.post(f"/api/persons/{person.id}/cartelle", json={"area": "anziani"}, headers=h)).json()
        url = f"/api/cartelle/{c['id']}"

        r = await client.patch(url, json={"case_manager_id": cm1_id}, headers=h)
        assert r.status_code == 200 and r.json()["case_manager_id"] == cm1_id and r.json()["version"] == 2
        r = await client.patch(url, json={"case_manager_id": cm2_id, "version": 1}, headers=h)
        assert r.status_code == 409
        r = await client.patch(url, json={"case_manager_id": "boh"}, headers=h)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "case_manager_id"

        r = await client.post(f"{url}/transfer", json={"to_comune_id": pandino_id, "reason": "Trasloco"},
                              headers=h)
        assert r.status_code == 200, r.text
        assert r.json()["owning_comune_id"] == pandino_id
        assert [t["to_comune_id"] for t in r.json()["transfers"]] == [pandino_id]
        # the cartella now belongs to Pandino: Crema's social worker no longer reaches it, Pandino's does
        assert (await client.get(url, headers=h)).status_code == 404
        h = h_pandino

        clock.advance(hours=1)  # (the dev token lasts 8 hours)
        r = await client.patch(url, json={"case_manager_id": cm2_id}, headers=h)
        assert r.status_code == 200
        r = await client.get(f"{url}/assignments", headers=h)
        cms = [(a["user_id"], a["active"], a["reason_label"]) for a in r.json()["items"]]
        assert cms == [(cm1_id, False, "Case manager"), (cm2_id, True, "Case manager")]

        r = await client.post(f"{url}/close", json={"reason": "Obiettivi raggiunti"}, headers=h)
        assert r.status_code == 200 and r.json()["status"] == "closed" and r.json()["status_label"] == "Chiusa"
        r = await client.post(f"{url}/close", json={"reason": "di nuovo"}, headers=h)
        assert r.status_code == 409
        r = await client.post(f"{url}/close", json={"reason": ""}, headers=h)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "reason"

        r = await client.get(f"{url}/history", headers=h)
        assert r.status_code == 200
        steps = [(e["version"], e["action"]) for e in r.json()]
        assert steps == [(1, "opened"), (2, "case_manager_changed"), (3, "transferred"),
                         (4, "case_manager_changed"), (5, "closed")]
        assert r.json()[2]["action_label"] == "Trasferimento ad altro comune"


class TestAssignments:
    async def test_add_list_end(self, client, session, clock):
        _, h = await worker(session)
        assessor = await make_user(session, "cdc_assessor", "asst-crema-cdc-crema")
        meraki_id = str((await org(session, "ets-meraki")).id)
        person = await create_person(session)
        await session.commit()
        c = (await client.post(f"/api/persons/{person.id}/cartelle", json={"area": "disabili"}, headers=h)).json()
        url = f"/api/cartelle/{c['id']}/assignments"
        until = (clock.now() + timedelta(days=7)).isoformat()
        r = await client.post(url, json={"reason": "assessor", "user_id": str(assessor.id), "valid_to": until},
                              headers=h)
        assert r.status_code == 201, r.text
        a = r.json()
        assert a["active"] is True and a["reason_label"] == "Valutatore"
        r = await client.post(url, json={"reason": "provider", "organisation_id": meraki_id}, headers=h)
        assert r.status_code == 201
        r = await client.get(url, params={"active": "true", "limit": 1}, headers=h)
        assert len(r.json()["items"]) == 1 and r.json()["next_cursor"] == a["id"]

        r = await client.post(f"{url}/{a['id']}/end", headers=h)
        assert r.status_code == 200 and r.json()["active"] is False
        r = await client.post(f"{url}/{a['id']}/end", headers=h)
        assert r.status_code == 409
        r = await client.get(url, params={"active": "true"}, headers=h)
        assert [x["reason"] for x in r.json()["items"]] == ["provider"]

    async def test_bad_assignments(self, client, session):
        _, h = await worker(session)
        u = await make_user(session, "cdc_assessor", "asst-crema-cdc-crema")
        uid = str(u.id)
        person = await create_person(session)
        await session.commit()
        c = (await client.post(f"/api/persons/{person.id}/cartelle", json={"area": "disabili"}, headers=h)).json()
        url = f"/api/cartelle/{c['id']}/assignments"
        r = await client.post(url, json={"reason": "break_glass", "user_id": uid}, headers=h)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "reason"
        r = await client.post(url, json={"reason": "assessor"}, headers=h)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "user_id"
        r = await client.post(url, json={"reason": "assessor", "user_id": uid, "extra": 1}, headers=h)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "extra"
        r = await client.post(f"{url}/{c['id']}/end", headers=h)  # not an assignment of this cartella
        assert r.status_code == 404


class TestNobodyWidensTheirOwnAccess:
    """Issue 9, found by probing: a comune social worker of another comune who reaches a Crema cartella only
    through a team assignment tried to take over its access list."""

    async def test_a_team_member_of_another_comune_cannot_take_over_the_access_list(self, client, session):
        from tests.domain.security.access_setup import team_with

        owner, owner_h = await worker(session, orgs="comune-crema")
        outsider, outsider_h = await worker(session, orgs="comune-offanengo")
        asst, _ = await worker(session, orgs="asst-crema-pua", role="asst_pua_operator")
        person = await create_person(session, comune="comune-crema")
        c = await create_cartella(session, person=person)
        team = await team_with(session, outsider, "comune-offanengo")
        team_a = await create_assignment(session, cartella=c, reason="team", team_id=team.id)
        asst_a = await create_assignment(session, cartella=c, reason="assessor", user_id=asst.id)
        cid, team_aid, asst_aid, outsider_id = str(c.id), str(team_a.id), str(asst_a.id), str(outsider.id)
        await session.commit()
        base = f"/api/cartelle/{cid}"
        # The team assignment gives the outsider the case: they read it ...
        assert (await client.get(base, headers=outsider_h)).status_code == 200
        # ... but cannot give themselves an assignment of their own, add a provider, end the ASST assessor's
        # assignment or make themselves case manager.
        r = await client.post(f"{base}/assignments", headers=outsider_h,
                              json={"reason": "case_manager", "user_id": outsider_id})
        assert r.status_code == 403 and r.json()["reason"] == "not_owner"
        r = await client.post(f"{base}/assignments", headers=outsider_h,
                              json={"reason": "assessor", "user_id": outsider_id})
        assert r.status_code == 403
        r = await client.post(f"{base}/assignments/{asst_aid}/end", headers=outsider_h)
        assert r.status_code == 403
        r = await client.patch(base, headers=outsider_h, json={"case_manager_id": outsider_id})
        assert r.status_code == 403
        listed = (await client.get(f"{base}/assignments", headers=owner_h)).json()["items"]
        assert {a["id"] for a in listed} == {team_aid, asst_aid}  # nothing was added or ended
        # The owner ends the team assignment: the outsider no longer reaches the case, diary included.
        r = await client.post(f"{base}/assignments/{team_aid}/end", headers=owner_h)
        assert r.status_code == 200, r.text
        assert (await client.get(base, headers=outsider_h)).status_code == 404
        assert (await client.get(f"{base}/diary", headers=outsider_h)).status_code == 404
        # The owner still manages the list.
        r = await client.patch(base, headers=owner_h, json={"case_manager_id": str(owner.id)})
        assert r.status_code == 200 and r.json()["case_manager_id"] == str(owner.id)
