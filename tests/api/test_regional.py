"""The regional helpdesk (issue 18): GET /api/regional/persons finds in which Ambito a person is known, across every
Ambito, with a minimal identity projection, a purpose and a reason, one audit row per search; the role reaches
nothing else; it is held on the Region, granted by the Region's administrators and approved by a second one."""
from __future__ import annotations

import sqlalchemy as sa

from domain.registry.queries import REGIONAL_PURPOSE_LABELS
from domain.security.models import AuditEvent, Role
from tests.factories.cartelle import create_person
from tests.support import bearer, make_user, org

URL = "/api/regional/persons"
PROBLEM = "application/problem+json"
REGIONE = "regione-lombardia"
WHY = {"purpose": "cambio_ambito", "reason": "Segnalazione ATS prot. 2026/118: residenza cambiata"}
NAME = {"surname": "Bonizzi", "given_name": "Teresa"}


async def _namesakes(session):
    return [await create_person(session, comune="comune-crema", **NAME),
            await create_person(session, ambito="ambito-cremona-test", comune="comune-cremona", **NAME)]


async def _operator(session):
    return await make_user(session, Role.regional_operator, REGIONE)


class TestSearch:
    async def test_finds_the_person_in_every_ambito_with_the_minimal_projection(self, client, session):
        crema, cremona = await _namesakes(session)
        r = await client.get(URL, params={"q": "bonizzi teresa", **WHY}, headers=bearer(await _operator(session)))
        assert r.status_code == 200, r.text
        items = [i for i in r.json()["items"] if (i["surname"], i["given_name"]) == ("Bonizzi", "Teresa")]
        ambiti = {a.id: a.name for a in [await org(session, "ambito-crema"), await org(session, "ambito-cremona-test")]}
        assert {(i["ambito"]["id"], i["ambito"]["name"], i["residence_comune_name"]) for i in items} >= {
            (str(crema.ambito_id), ambiti[crema.ambito_id], "Crema"),
            (str(cremona.ambito_id), ambiti[cremona.ambito_id], "Cremona")}, items
        for item in r.json()["items"]:
            assert set(item) == {"surname", "given_name", "sex", "birth_date", "ambito", "residence_comune_name",
                                 "codice_fiscale"}
            assert item["codice_fiscale"] is None  # searched by name: no codice fiscale in clear
        assert str(crema.id) not in r.text and str(cremona.id) not in r.text

    async def test_the_codice_fiscale_is_an_exact_match_across_ambiti_and_comes_back_to_who_typed_it(
            self, client, session):
        _, cremona = await _namesakes(session)
        r = await client.get(URL, params={"codice_fiscale": cremona.codice_fiscale.lower(), **WHY},
                             headers=bearer(await _operator(session)))
        assert r.status_code == 200, r.text
        [item] = r.json()["items"]
        assert item["codice_fiscale"] == cremona.codice_fiscale
        assert item["ambito"]["id"] == str(cremona.ambito_id) and r.json()["next_cursor"] is None

    async def test_the_exact_name_comes_first_and_similar_names_on_request(self, client, session):
        exact = {p.id for p in await _namesakes(session)}
        await create_person(session, comune="comune-crema", surname="Bonizzi", given_name="Teresina")
        h = bearer(await _operator(session))
        r = await client.get(URL, params={"q": "Bonizzi  Teresa", **WHY}, headers=h)
        assert r.status_code == 200, r.text
        first = r.json()
        assert {(i["surname"], i["given_name"]) for i in first["items"]} == {("Bonizzi", "Teresa")}
        assert len(first["items"]) == len(exact) and first["next_cursor"]
        r = await client.get(URL, params={"q": "Bonizzi  Teresa", "cursor": first["next_cursor"], **WHY}, headers=h)
        assert r.status_code == 200, r.text
        names = [(i["surname"], i["given_name"]) for i in r.json()["items"]]
        assert ("Bonizzi", "Teresina") in names and ("Bonizzi", "Teresa") not in names

    async def test_keyset_pages_cover_every_match_once(self, client, session):
        people = [await create_person(session, ambito=a, comune=c, surname="Zuccotti", given_name=f"Anna {n}")
                  for n, (a, c) in enumerate([("ambito-crema", "comune-crema")] * 3
                                             + [("ambito-cremona-test", "comune-cremona")] * 3)]
        h, seen, cursor = bearer(await _operator(session)), [], None
        for _ in range(10):
            r = await client.get(URL, params={"q": "zuccotti anna", "limit": 2, **WHY, **({"cursor": cursor}
                                                                                    if cursor else {})}, headers=h)
            assert r.status_code == 200, r.text
            seen += [i["given_name"] for i in r.json()["items"] if i["surname"] == "Zuccotti"]
            if not (cursor := r.json()["next_cursor"]):
                break
        assert sorted(seen) == sorted(p.given_name for p in people)

    async def test_a_surname_alone_needs_the_birth_date(self, client, session):
        crema, cremona = await _namesakes(session)
        h = bearer(await _operator(session))
        r = await client.get(URL, params={"q": "bonizzi", "birth_date": cremona.birth_date.isoformat(), **WHY},
                             headers=h)
        assert r.status_code == 200, r.text
        found = {(i["ambito"]["id"], i["birth_date"]) for i in r.json()["items"]}
        assert (str(cremona.ambito_id), cremona.birth_date.isoformat()) in found
        assert all(i["birth_date"] == cremona.birth_date.isoformat() for i in r.json()["items"])

    async def test_every_search_leaves_one_audit_row_with_purpose_reason_and_count(self, client, session):
        crema, cremona = await _namesakes(session)
        user = await _operator(session)
        r = await client.get(URL, params={"q": "bonizzi teresa", **WHY}, headers=bearer(user))
        assert r.status_code == 200
        [row] = (await session.execute(sa.select(AuditEvent).where(AuditEvent.actor_id == user.id))).scalars().all()
        assert (row.action, row.object_type, row.route) == ("search", "person", "GET /api/regional/persons")
        assert row.purpose == REGIONAL_PURPOSE_LABELS["cambio_ambito"] and row.legal_basis == WHY["reason"]
        assert row.result_count == len(r.json()["items"]) >= 2
        assert {crema.id, cremona.id} <= set(row.person_ids)  # each person's access log shows the search
        assert "bonizzi" not in repr(row.__dict__).lower()  # the text searched is not kept

    async def test_purpose_and_reason_are_required(self, client, session):
        h = bearer(await _operator(session))
        q = "bonizzi teresa"
        for missing, params in (("purpose", {"q": q, "reason": WHY["reason"]}),
                                ("reason", {"q": q, "purpose": "duplicato"}),
                                ("purpose", {"q": q, "reason": WHY["reason"], "purpose": "curiosita"}),
                                ("reason", {"q": q, "purpose": "duplicato", "reason": "perché"})):
            r = await client.get(URL, params=params, headers=h)
            assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM), r.text
            assert [e["field"] for e in r.json()["errors"]] == [missing], r.json()

    async def test_a_name_or_a_codice_fiscale_and_not_both(self, client, session):
        h = bearer(await _operator(session))
        for params, field in (({}, "q"), ({"q": "bonizzi teresa", "codice_fiscale": "BNZTRS43L54G004X"}, "q"),
                              ({"q": "b"}, "q"), ({"q": "bonizzi teresa", "limit": 101}, "limit"),
                              ({"q": "bonizzi"}, "q")):  # a surname alone: only with the birth date
            r = await client.get(URL, params={**params, **WHY}, headers=h)
            assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM), r.text
            assert field in [e["field"] for e in r.json()["errors"]], r.json()


    async def test_the_same_search_with_the_criteria_in_the_body(self, client, session):
        _, cremona = await _namesakes(session)
        h = bearer(await _operator(session))
        criteria = {"codice_fiscale": cremona.codice_fiscale, **WHY}
        by_body = await client.post(URL + "/search", json=criteria, headers=h)
        assert by_body.status_code == 200, by_body.text
        assert cremona.codice_fiscale not in str(by_body.request.url)  # nothing searched travels in the URL
        by_query = await client.get(URL, params=criteria, headers=h)
        assert by_body.json() == by_query.json() and len(by_body.json()["items"]) == 1
        for body, field in (({"codice_fiscale": cremona.codice_fiscale, "reason": WHY["reason"]}, "purpose"),
                            ({**criteria, "reason": "          ok          "}, "reason"),  # blank once trimmed
                            ({**criteria, "ambito_id": str(cremona.ambito_id)}, "ambito_id"),  # unknown field
                            ({"q": "bonizzi", **WHY}, "q")):  # the service's rules, as on GET
            r = await client.post(URL + "/search", json=body, headers=h)
            assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM), r.text
            assert field in [e["field"] for e in r.json()["errors"]], r.json()
        r = await client.post(URL + "/search", json=criteria,
                              headers=bearer(await make_user(session, Role.comune_social_worker, "comune-crema")))
        assert r.status_code == 403

class TestReach:
    async def test_other_roles_are_refused(self, client, session):
        await _namesakes(session)
        for role, code in ((Role.comune_social_worker, "comune-crema"), (Role.data_steward, "ambito-crema"),
                           (Role.system_admin, "ambito-crema"), (Role.system_admin, REGIONE),
                           (Role.dpo, "ambito-crema")):
            r = await client.get(URL, params={"q": "bonizzi teresa", **WHY},
                                 headers=bearer(await make_user(session, role, code)))
            assert r.status_code == 403 and r.headers["content-type"].startswith(PROBLEM), (role, code, r.text)

    async def test_the_role_reaches_nothing_else_even_with_an_id(self, client, session):
        crema, _ = await _namesakes(session)
        h = bearer(await _operator(session))
        for path in (f"/api/persons/{crema.id}", f"/api/persons/{crema.id}/cartelle", "/api/persons?q=bonizzi",
                     f"/api/persons/{crema.id}/access-log", "/api/territory/comuni", "/api/work-items/mine"):
            r = await client.get(path, headers=h)
            assert r.status_code == 403, (path, r.status_code, r.text)
        me = await client.get("/api/me", headers=h)
        assert me.status_code == 200 and me.json()["ambito"]["code"] == REGIONE
        assert me.json()["permissions"] == ["person.regional_search"]


class TestGrant:
    async def _create(self, client, admin, username="regione.helpdesk", org_code=REGIONE):
        return await client.post("/api/admin/users", headers=bearer(admin), json={
            "username": username, "display_name": "Operatore regionale",
            "roles": [{"role": "regional_operator", "organisation_code": org_code}]})

    async def test_only_the_regions_administrators_grant_it_and_a_second_one_approves(self, client, session):
        first = await make_user(session, Role.system_admin, REGIONE)
        second = await make_user(session, Role.system_admin, REGIONE)
        crema_admin = await make_user(session, Role.system_admin, "ambito-crema")
        r = await self._create(client, first)
        assert r.status_code == 201, r.text
        user, [grant] = r.json(), r.json()["roles"]
        assert grant["pending"] and not grant["active"]  # identity data of every Ambito
        search = {"q": "bonizzi teresa", **WHY}
        assert (await client.get(URL, params=search, headers=bearer(user["id"]))).status_code == 403
        approve = f"/api/admin/role-assignments/{grant['id']}/approve"
        assert (await client.post(approve, headers=bearer(first))).status_code == 403  # the one who asked
        assert (await client.post(approve, headers=bearer(crema_admin))).status_code == 404  # another "Ambito"
        r = await client.post(approve, headers=bearer(second))
        assert r.status_code == 200 and r.json()["active"], r.text
        assert (await client.get(URL, params=search, headers=bearer(user["id"]))).status_code == 200

    async def test_an_ambitos_administrator_cannot_grant_it(self, client, session):
        admin = await make_user(session, Role.system_admin, "ambito-crema")
        for org_code in (REGIONE, "ambito-crema"):  # the Region is not found; an Ambito does not fit the role
            r = await self._create(client, admin, username=f"helpdesk.{org_code}", org_code=org_code)
            assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM), r.text
            assert [e["field"] for e in r.json()["errors"]] == ["roles.0.organisation_id"], r.json()
        target = await make_user(session, Role.comune_social_worker, "comune-crema")
        r = await client.post(f"/api/admin/users/{target.id}/roles", headers=bearer(admin),
                              json={"role": "regional_operator", "organisation_code": "ambito-crema"})
        assert r.status_code == 422, r.text

    async def test_the_region_holds_no_ambito_role_and_the_operator_grants_nothing(self, client, session):
        admin = await make_user(session, Role.system_admin, REGIONE)
        r = await client.post("/api/admin/users", headers=bearer(admin), json={
            "username": "steward.regione", "display_name": "Steward",
            "roles": [{"role": "data_steward", "organisation_code": REGIONE}]})
        assert r.status_code == 422, r.text
        operator = await _operator(session)
        r = await self._create(client, operator, username="regione.altro")
        assert r.status_code == 403, r.text


class TestSearchLog:
    """Who watches the helpdesk: its searches, for the Region's DPO and, where they found its persons, an Ambito's."""

    async def test_the_dpos_read_who_searched_why_and_how_many_not_whom(self, client, session):
        crema, cremona = await _namesakes(session)
        operator = await _operator(session)
        h = bearer(operator)
        only_cremona = {"codice_fiscale": cremona.codice_fiscale, "purpose": "duplicato",
                        "reason": "Segnalazione dell'Ambito di Cremona n. 7"}
        assert (await client.post(URL + "/search", json=only_cremona, headers=h)).status_code == 200
        assert (await client.get(URL, params={"q": "bonizzi teresa", **WHY}, headers=h)).status_code == 200

        region_dpo = await make_user(session, Role.dpo, REGIONE)
        r = await client.get("/api/regional/searches", headers=bearer(region_dpo))
        assert r.status_code == 200, r.text
        mine = [i for i in r.json()["items"] if i["actor_username"] == operator.username]
        assert [(i["route"], i["legal_basis"], i["result_count"]) for i in mine] == [
            ("GET /api/regional/persons", WHY["reason"], 2),  # newest first
            ("POST /api/regional/persons/search", only_cremona["reason"], 1)]
        assert mine[0]["purpose"] == REGIONAL_PURPOSE_LABELS["cambio_ambito"]
        assert str(crema.id) not in r.text and str(cremona.id) not in r.text and "Bonizzi" not in r.text

        crema_dpo = await make_user(session, Role.dpo, "ambito-crema")  # only what found one of Crema's persons
        r = await client.get("/api/regional/searches", params={"limit": 1}, headers=bearer(crema_dpo))
        assert r.status_code == 200, r.text
        assert [(i["actor_username"], i["result_count"]) for i in r.json()["items"]] == [(operator.username, 2)]
        if r.json()["next_cursor"]:
            r = await client.get("/api/regional/searches", params={"cursor": r.json()["next_cursor"]},
                                 headers=bearer(crema_dpo))
            assert operator.username not in [i["actor_username"] for i in r.json()["items"]]
        read = (await session.execute(sa.select(AuditEvent).where(
            AuditEvent.actor_id == crema_dpo.id, AuditEvent.object_type == "regional_searches"))).scalars().all()
        assert [x.action for x in read] == ["read"] * len(read) and read

    async def test_only_a_dpo_reads_them(self, client, session):
        for role, code in ((Role.regional_operator, REGIONE), (Role.comune_social_worker, "comune-crema"),
                           (Role.system_admin, REGIONE)):
            r = await client.get("/api/regional/searches", headers=bearer(await make_user(session, role, code)))
            assert r.status_code == 403 and r.headers["content-type"].startswith(PROBLEM), (role, r.text)
