"""Administration of users, system clients, role assignments and teams; `/me`; principal cache invalidation."""
from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from domain.kernel.settings import get_settings
from domain.security.models import Role, RoleAssignment
from tests.support import bearer, make_user, org


@pytest.fixture
async def admin(session):
    return await make_user(session, Role.system_admin, "ambito-crema", username="admin.test")


class AdminHeaders(dict):
    """An administrator's headers, with a second administrator's beside them: grants of roles that reach personal
    data wait for a second administrator's approval (separation of duties)."""

    approver: dict


@pytest.fixture
async def admin_h(admin, session):
    h = AdminHeaders(bearer(admin))
    h.approver = bearer(await make_user(session, Role.system_admin, "ambito-crema", username="admin.second"))
    return h


async def _approve(client, h, assignment: dict) -> dict:
    if not assignment["pending"]:
        return assignment
    r = await client.post(f"/api/admin/role-assignments/{assignment['id']}/approve", headers=h.approver)
    assert r.status_code == 200 and r.json()["pending"] is False and r.json()["active"] is True, r.text
    return r.json()


async def _create(client, h, **body):
    r = await client.post("/api/admin/users", headers=h, json=body)
    assert r.status_code == 201, r.text
    user = r.json()
    for a in user["roles"]:
        await _approve(client, h, a)
    return (await client.get(f"/api/admin/users/{user['id']}", headers=h)).json()


async def test_admin_creates_user_with_roles_by_code_and_reads_it_back(client, admin_h):
    u = await _create(client, admin_h, username="as.nuova", display_name="Anna Nuova", profession="Assistente sociale",
                      roles=[{"role": "comune_social_worker", "organisation_code": "comune-offanengo",
                              "valid_from": "2025-01-01"},
                             {"role": "comune_social_worker", "organisation_code": "comune-izano"}])
    assert u["kind"] == "person" and u["active"] is True
    assert sorted(r["organisation"]["code"] for r in u["roles"]) == ["comune-izano", "comune-offanengo"]
    assert all(r["organisation"]["side"] == "comune" and r["active"] for r in u["roles"])
    assert {r["organisation"]["name"] for r in u["roles"]} == {"Offanengo", "Izano"}
    got = (await client.get(f"/api/admin/users/{u['id']}", headers=admin_h)).json()
    assert got["username"] == "as.nuova" and len(got["roles"]) == 2
    # The new user can log in at once and sees their roles by name.
    me = (await client.get("/api/me", headers=bearer(u["id"]))).json()
    assert {r["organisation"]["name"] for r in me["roles"]} == {"Offanengo", "Izano"}
    assert "person.create" in me["permissions"] and me["ambito"]["code"] == "ambito-crema"


async def test_list_users_keyset_and_filters(client, admin_h):
    for i in range(5):
        await _create(client, admin_h, username=f"zz.list{i}", display_name=f"Lista {i}",
                      roles=[{"role": "cot_operator", "organisation_code": "asst-crema-cot"}] if i % 2 else [])
    seen, cursor = [], None
    while True:
        params = {"q": "zz.list", "limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/api/admin/users", headers=admin_h, params=params)).json()
        seen += [u["username"] for u in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [f"zz.list{i}" for i in range(5)]
    cot = (await client.get("/api/admin/users", headers=admin_h,
                            params={"q": "zz.list", "role": "cot_operator"})).json()
    assert [u["username"] for u in cot["items"]] == ["zz.list1", "zz.list3"]


async def test_system_client_with_scopes(client, admin_h):
    c = await _create(client, admin_h, username="asst-gw-test", display_name="Gateway ASST", kind="system",
                      scopes=["fhir.write", "fhir.read"])
    assert c["kind"] == "system" and c["scopes"] == ["fhir.read", "fhir.write"]
    r = await client.post("/api/admin/users", headers=admin_h,
                          json={"username": "person.scoped", "display_name": "X", "scopes": ["fhir.read"]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "scopes"
    r = await client.patch(f"/api/admin/users/{c['id']}", headers=admin_h, json={"scopes": ["fhir.read"]})
    assert r.status_code == 200 and r.json()["scopes"] == ["fhir.read"]


async def test_user_input_errors(client, admin_h):
    await _create(client, admin_h, username="dup.user", display_name="Dup")
    r = await client.post("/api/admin/users", headers=admin_h, json={"username": "dup.user", "display_name": "D"})
    assert r.status_code == 409
    r = await client.post("/api/admin/users", headers=admin_h,
                          json={"username": "x.y", "display_name": "X", "password": "secret"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "password"
    r = await client.post("/api/admin/users", headers=admin_h, json={"username": "Bad Name", "display_name": "X"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "username"


async def test_role_rules(client, admin_h):
    u = await _create(client, admin_h, username="as.rules", display_name="Regole")
    url = f"/api/admin/users/{u['id']}/roles"
    # An organisation of another Ambito is not found.
    r = await client.post(url, headers=admin_h, json={"role": "comune_social_worker",
                                                      "organisation_code": "comune-cremona"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "organisation_id"
    # The role does not fit the kind of organisation.
    r = await client.post(url, headers=admin_h, json={"role": "comune_social_worker",
                                                      "organisation_code": "asst-crema-pua"})
    assert r.status_code == 422
    r = await client.post(url, headers=admin_h, json={"role": "mmg", "organisation_code": "mmg-crema-1",
                                                      "valid_from": "2026-01-01", "valid_to": "2025-01-01"})
    assert r.status_code == 422
    ok = await client.post(url, headers=admin_h, json={"role": "mmg", "organisation_code": "mmg-crema-1"})
    assert ok.status_code == 201 and ok.json()["valid_from"] == "2026-03-02"
    r = await client.post(url, headers=admin_h, json={"role": "mmg", "organisation_code": "mmg-crema-1",
                                                      "valid_from": "2026-06-01"})
    assert r.status_code == 409  # overlaps the open-ended one


async def test_end_role_takes_effect_at_once(client, admin_h):
    u = await _create(client, admin_h, username="as.end", display_name="Fine",
                      roles=[{"role": "comune_social_worker", "organisation_code": "comune-crema",
                              "valid_from": "2024-01-01"}])
    me = (await client.get("/api/me", headers=bearer(u["id"]))).json()
    assert len(me["roles"]) == 1 and "cartella.write" in me["permissions"]
    aid = u["roles"][0]["id"]
    r = await client.post(f"/api/admin/role-assignments/{aid}/end", headers=admin_h)
    # valid_to is the first day the role no longer applies (domain.kernel.validity): today
    assert r.status_code == 200 and r.json()["valid_to"] == "2026-03-02" and r.json()["active"] is False
    me = (await client.get("/api/me", headers=bearer(u["id"]))).json()
    assert me["roles"] == [] and me["permissions"] == []
    r = await client.post(f"/api/admin/role-assignments/{aid}/end", headers=admin_h)
    assert r.status_code == 409
    # Still visible in the admin's view, as history.
    got = (await client.get(f"/api/admin/users/{u['id']}", headers=admin_h)).json()
    assert [x["valid_to"] for x in got["roles"]] == ["2026-03-02"]


async def test_end_role_on_a_given_day(client, admin_h):
    u = await _create(client, admin_h, username="as.end2", display_name="Fine 2",
                      roles=[{"role": "cot_operator", "organisation_code": "asst-crema-cot",
                              "valid_from": "2024-01-01"}])
    r = await client.post(f"/api/admin/role-assignments/{u['roles'][0]['id']}/end", headers=admin_h,
                          json={"valid_to": "2026-03-31"})
    assert r.status_code == 200 and r.json()["active"] is True and r.json()["valid_to"] == "2026-03-31"


async def test_non_admin_is_forbidden(client, session):
    worker = await make_user(session, Role.comune_social_worker, "comune-crema")
    await session.commit()  # keep the user when a refused request rolls its own work back
    h = bearer(worker)
    for method, url, body in [("GET", "/api/admin/users", None), ("POST", "/api/admin/users",
                                                                    {"username": "x.x", "display_name": "X"}),
                              ("POST", "/api/admin/teams", {"code": "t-x", "name": "X", "type": "pua"})]:
        r = await client.request(method, url, headers=h, json=body)
        assert r.status_code == 403, url
        assert r.headers["content-type"].startswith("application/problem+json")


async def test_admin_of_another_ambito_sees_nothing_here(client, session, admin_h):
    u = await _create(client, admin_h, username="as.crema.only", display_name="Crema")
    other = await make_user(session, Role.system_admin, "ambito-cremona-test")
    await session.commit()
    h = bearer(other)
    assert (await client.get(f"/api/admin/users/{u['id']}", headers=h)).status_code == 404
    listed = (await client.get("/api/admin/users", headers=h, params={"q": "as.crema.only"})).json()
    assert listed["items"] == []


async def test_teams_members_and_sides(client, session, admin_h):
    ifec = await make_user(session, Role.asst_pua_operator, "asst-crema-pua", username="ifec.team")
    as_ = await make_user(session, Role.comune_social_worker, ["comune-crema", "comune-offanengo"],
                          username="as.team")
    nobody = await make_user(session, Role.analyst, "udp-crema", username="analyst.team")
    ids = {"ifec": str(ifec.id), "as": str(as_.id), "nobody": str(nobody.id)}
    t = await client.post("/api/admin/teams", headers=admin_h,
                          json={"code": "team-vmd-test", "name": "Équipe VMD di prova", "type": "vmd_equipe",
                                "organisation_code": "asst-crema-cdc-crema"})
    assert t.status_code == 201, t.text
    team = t.json()
    assert team["type_label"] == "Équipe VMD" and team["organisation"]["code"] == "asst-crema-cdc-crema"
    url = f"/api/admin/teams/{team['id']}/members"
    r = await client.post(url, headers=admin_h, json={"user_id": ids["ifec"], "role_in_team": "IFeC"})
    assert r.status_code == 201 and r.json()["organisation"]["side"] == "asst"
    # Two comuni: the side must be chosen; an organisation where the user has no role is refused.
    r = await client.post(url, headers=admin_h, json={"user_id": ids["as"]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "organisation_id"
    r = await client.post(url, headers=admin_h, json={"user_id": ids["as"], "organisation_code": "comune-izano"})
    assert r.status_code == 422
    r = await client.post(url, headers=admin_h, json={"user_id": ids["as"], "organisation_code": "comune-crema"})
    assert r.status_code == 201 and r.json()["organisation"]["name"] == "Crema"
    r = await client.post(url, headers=admin_h, json={"user_id": ids["as"], "organisation_code": "comune-crema"})
    assert r.status_code == 409
    detail = (await client.get(f"/api/admin/teams/{team['id']}", headers=admin_h)).json()
    assert detail["sides"] == ["asst", "comune"]
    assert sorted(m["username"] for m in detail["members"]) == ["as.team", "ifec.team"]
    # The member sees the team in /me.
    me = (await client.get("/api/me", headers=bearer(ids["as"]))).json()
    assert [(x["team_code"], x["organisation"]["code"]) for x in me["teams"]] == [("team-vmd-test", "comune-crema")]
    # End the ASST membership: one side left.
    mid = next(m["id"] for m in detail["members"] if m["username"] == "ifec.team")
    r = await client.post(f"/api/admin/team-members/{mid}/end", headers=admin_h)
    assert r.status_code == 200 and r.json()["active"] is False
    detail = (await client.get(f"/api/admin/teams/{team['id']}", headers=admin_h)).json()
    assert detail["sides"] == ["comune"]
    listed = (await client.get("/api/admin/teams", headers=admin_h, params={"type": "vmd_equipe"})).json()
    assert "team-vmd-test" in [x["code"] for x in listed["items"]]
    r = await client.post("/api/admin/teams", headers=admin_h,
                          json={"code": "team-vmd-test", "name": "Dup", "type": "vmd_equipe"})
    assert r.status_code == 409


async def test_principal_cache_is_cleared_when_assignments_change(client, session, admin_h, monkeypatch):
    monkeypatch.setattr(get_settings(), "principal_cache_seconds", 300.0)
    worker = await make_user(session, Role.comune_social_worker, "comune-crema", username="as.cache")
    uid, h = worker.id, bearer(worker)
    me = (await client.get("/api/me", headers=h)).json()
    assert "work.queue" in me["permissions"] and "user.admin" not in me["permissions"]
    # A change written behind the service's back (another process) is not seen until the TTL expires...
    session.add(RoleAssignment(user_id=uid, role=Role.system_admin,
                               organisation_id=(await org(session, "ambito-crema")).id, valid_from=date(2026, 1, 1)))
    await session.flush()
    me = (await client.get("/api/me", headers=h)).json()
    assert "user.admin" not in me["permissions"]  # cached principal
    # ...while a change through the service clears this process's cache at once.
    r = await client.post(f"/api/admin/users/{uid}/roles", headers=admin_h,
                          json={"role": "comune_social_worker", "organisation_code": "comune-offanengo"})
    assert r.status_code == 201
    await _approve(client, admin_h, r.json())
    me = (await client.get("/api/me", headers=h)).json()
    assert "user.admin" in me["permissions"]
    assert {x["organisation"]["code"] for x in me["roles"]} == {"comune-crema", "comune-offanengo", "ambito-crema"}
    # Deactivation through the service also applies at once.
    assert (await client.patch(f"/api/admin/users/{uid}", headers=admin_h, json={"active": False})).status_code == 200
    assert (await client.get("/api/me", headers=h)).status_code == 401
    count = (await session.execute(sa.select(sa.func.count()).select_from(RoleAssignment)
                                   .where(RoleAssignment.user_id == uid))).scalar_one()
    assert count == 3


class TestSeparationOfDuties:
    """Issue 9, found by probing: a system administrator granted itself data roles and read full records at once."""

    async def test_an_administrator_cannot_change_its_own_roles(self, client, admin, admin_h):
        r = await client.post(f"/api/admin/users/{admin.id}/roles", headers=admin_h,
                              json={"role": "comune_social_worker", "organisation_code": "comune-crema"})
        assert r.status_code == 403 and r.json()["reason"] == "own_roles"
        r = await client.post(f"/api/admin/users/{admin.id}/roles", headers=admin_h,
                              json={"role": "dpo", "organisation_code": "ambito-crema"})
        assert r.status_code == 403
        own = (await client.get(f"/api/admin/users/{admin.id}", headers=admin_h)).json()["roles"]
        assert [x["role"] for x in own] == ["system_admin"]
        r = await client.post(f"/api/admin/role-assignments/{own[0]['id']}/end", headers=admin_h)
        assert r.status_code == 403

    async def test_a_data_role_waits_for_a_second_administrator(self, client, admin_h):
        r = await client.post("/api/admin/users", headers=admin_h, json={
            "username": "as.attesa", "display_name": "In attesa",
            "roles": [{"role": "comune_social_worker", "organisation_code": "comune-crema"},
                      {"role": "analyst", "organisation_code": "ambito-crema"}]})
        assert r.status_code == 201
        user = r.json()
        by_role = {x["role"]: x for x in user["roles"]}
        assert by_role["comune_social_worker"]["pending"] and not by_role["comune_social_worker"]["active"]
        assert not by_role["analyst"]["pending"] and by_role["analyst"]["active"]  # no personal data: at once
        me = (await client.get("/api/me", headers=bearer(user["id"]))).json()
        assert [x["role"] for x in me["roles"]] == ["analyst"] and "person.create" not in me["permissions"]
        pending = by_role["comune_social_worker"]["id"]
        # The administrator who granted it cannot approve it; nor can the user who receives it.
        r = await client.post(f"/api/admin/role-assignments/{pending}/approve", headers=admin_h)
        assert r.status_code == 403 and r.json()["reason"] == "same_administrator"
        r = await client.post(f"/api/admin/role-assignments/{pending}/approve", headers=admin_h.approver)
        assert r.status_code == 200 and r.json()["active"] and r.json()["approved_by"]
        me = (await client.get("/api/me", headers=bearer(user["id"]))).json()
        assert {x["role"] for x in me["roles"]} == {"analyst", "comune_social_worker"}
        assert "person.create" in me["permissions"]
        r = await client.post(f"/api/admin/role-assignments/{pending}/approve", headers=admin_h.approver)
        assert r.status_code == 409 and r.json()["allowed_actions"] == []

    async def test_the_dpo_role_also_needs_approval(self, client, admin_h):
        u = (await client.post("/api/admin/users", headers=admin_h, json={
            "username": "dpo.attesa", "display_name": "DPO in attesa",
            "roles": [{"role": "dpo", "organisation_code": "ambito-crema"}]})).json()
        assert u["roles"][0]["pending"] is True
