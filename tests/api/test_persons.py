"""HTTP contract of the person registry: every bad input is problem+json naming the field, with nothing written.

An error response rolls the request's session back, and in these tests that is the test's own session: the setup
is committed (its savepoint released) before a request that is expected to fail.
"""
from __future__ import annotations

import uuid
from datetime import date

import pytest
import sqlalchemy as sa

from domain.registry.models import Person, PossibleMatch
from tests.factories.registry import encode_cf, insert_person, person_payload, relation_payload
from tests.support import bearer, make_user, org

PROBLEM = "application/problem+json"


async def headers(session, role="comune_social_worker", orgs="comune-crema"):
    return bearer(await make_user(session, role, orgs))


async def count(session, model=Person) -> int:
    return (await session.execute(sa.select(sa.func.count()).select_from(model))).scalar_one()


def field_errors(r) -> dict[str, str]:
    assert r.headers["content-type"].startswith(PROBLEM), r.text
    return {e["field"]: e["reason"] for e in r.json().get("errors", [])}


BONETTI = dict(surname="Bonetti", given_name="Carla", sex="F", birth_date="1938-07-14", birth_place_code="D142")
BONETTI_CF = encode_cf("Bonetti", "Carla", "F", date(1938, 7, 14), "Crema")


class TestRegister:
    async def test_create_get_and_history(self, client, session):
        h = await headers(session)
        crema = await org(session, "comune-crema")
        body = {**BONETTI, "codice_fiscale": BONETTI_CF, "residence_comune_id": str(crema.id),
                "contacts": {"phone": "0373 123456"}}
        r = await client.post("/api/persons", json=body, headers=h)
        assert r.status_code == 201, r.text
        created = r.json()
        assert created["codice_fiscale"] == BONETTI_CF and created["birth_place_name"] == "Crema"
        assert created["possible_duplicates"] == [] and created["version"] == 1 and created["status"] == "active"
        pid = created["id"]
        r = await client.get(f"/api/persons/{pid}", headers=h)
        assert r.status_code == 200 and r.json()["residence_comune_id"] == str(crema.id)
        assert "possible_duplicates" not in r.json()
        r = await client.patch(f"/api/persons/{pid}", json={"lives_alone": True, "version": 1}, headers=h)
        assert r.status_code == 200 and r.json()["version"] == 2 and r.json()["lives_alone"] is True
        r = await client.get(f"/api/persons/{pid}/history", headers=h)
        assert r.status_code == 200
        items = r.json()["items"]
        assert [(i["version"], i["action"]) for i in items] == [(1, "create"), (2, "update")]
        assert items[1]["action_label"] == "Modifica" and items[1]["data"]["changed"]["lives_alone"]["to"] is True
        assert items[0]["request_id"] and items[0]["request_id"] != items[1]["request_id"]

    async def test_look_alike_is_created_with_its_possible_duplicates(self, client, session):
        h = await headers(session)
        r = await client.post("/api/persons", json={**BONETTI, "codice_fiscale": BONETTI_CF}, headers=h)
        first = r.json()["id"]
        r = await client.post("/api/persons", json={**BONETTI, "other_identifier_type": "provisional"}, headers=h)
        assert r.status_code == 201, r.text
        [dup] = r.json()["possible_duplicates"]
        assert dup["person"]["id"] == first and dup["score"] == 1.0 and dup["match_id"]
        assert dup["reasons"]["birth_date"] == "equal"

    async def test_duplicate_codice_fiscale_is_409_with_the_existing_id_only(self, client, session):
        h = await headers(session)
        r = await client.post("/api/persons", json={**BONETTI, "codice_fiscale": BONETTI_CF}, headers=h)
        first = r.json()["id"]
        before = await count(session)
        r = await client.post("/api/persons", json={**BONETTI, "codice_fiscale": BONETTI_CF.lower()}, headers=h)
        assert r.status_code == 409 and r.headers["content-type"].startswith(PROBLEM)
        body = r.json()
        assert body["existing_id"] == first
        assert set(body) == {"type", "title", "status", "detail", "existing_id"}
        assert "Bonetti" not in r.text and BONETTI_CF not in r.text
        assert await count(session) == before

    async def test_bad_inputs_are_422_naming_the_field_and_write_nothing(self, client, session):
        h = await headers(session)
        cremona = await org(session, "comune-cremona")
        await session.commit()
        before, matches_before = await count(session), await count(session, PossibleMatch)
        wrong_check = BONETTI_CF[:-1] + ("A" if BONETTI_CF[-1] != "A" else "B")
        cases = [
            ({**BONETTI, "codice_fiscale": wrong_check}, "codice_fiscale"),
            ({**BONETTI, "codice_fiscale": BONETTI_CF, "birth_date": "1938-07-15"}, "birth_date"),
            ({**BONETTI, "codice_fiscale": BONETTI_CF, "sex": "M"}, "sex"),
            ({**BONETTI, "codice_fiscale": BONETTI_CF, "birth_place_code": "G004"}, "birth_place_code"),
            ({**BONETTI, "codice_fiscale": BONETTI_CF, "residence_comune_id": str(cremona.id)}, "residence_comune_id"),
            ({**BONETTI, "codice_fiscale": BONETTI_CF, "residence_comune_id": str(uuid.uuid4())},
             "residence_comune_id"),
            ({**BONETTI, "other_identifier_type": "provisional", "birth_date": "2026-03-03"}, "birth_date"),
            ({**BONETTI}, "codice_fiscale"),
            ({**BONETTI, "other_identifier_type": "stp", "other_identifier": "ENI0303210000001"}, "other_identifier"),
            ({**BONETTI, "codice_fiscale": BONETTI_CF, "colour": "blu"}, "colour"),
            ({**BONETTI, "codice_fiscale": BONETTI_CF, "sex": "X"}, "sex"),
            ({**BONETTI, "codice_fiscale": BONETTI_CF, "contacts": {"email": "non-una-mail"}}, "contacts.email"),
            ({**BONETTI, "codice_fiscale": BONETTI_CF, "contacts": {"fax": "1"}}, "contacts.fax"),
            ({"given_name": "Carla", "codice_fiscale": BONETTI_CF}, "surname"),
        ]
        for body, name in cases:
            r = await client.post("/api/persons", json=body, headers=h)
            assert r.status_code == 422, (name, r.text)
            assert name in field_errors(r), (name, r.json())
        assert await count(session) == before and await count(session, PossibleMatch) == matches_before

    async def test_malformed_json_is_problem_json(self, client, session):
        h = await headers(session)
        r = await client.post("/api/persons", content=b'{"surname": "Rossi",', headers={
            **h, "content-type": "application/json"})
        assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
        assert "JSON non valido" in r.json()["detail"]

    async def test_other_ambito_is_404_and_permissions_are_checked(self, client, session):
        h = await headers(session)
        h_cremona = await headers(session, orgs="comune-cremona")
        h_desk = await headers(session, role="asst_front_desk", orgs="asst-crema-pua")
        r = await client.post("/api/persons", json={**BONETTI, "codice_fiscale": BONETTI_CF}, headers=h)
        pid = r.json()["id"]
        await session.commit()
        r = await client.get(f"/api/persons/{pid}", headers=h_cremona)
        assert r.status_code == 404 and r.headers["content-type"].startswith(PROBLEM)
        r = await client.get(f"/api/persons/{pid}", headers=h_desk)  # front desk: search and create only
        assert r.status_code == 403
        r = await client.get(f"/api/persons/{uuid.uuid4()}", headers=h)
        assert r.status_code == 404
        r = await client.get("/api/person-matches", headers=h)
        assert r.status_code == 403
        r = await client.get(f"/api/persons/{pid}")
        assert r.status_code == 401


class TestDeath:
    async def test_death_rules(self, client, session):
        h = await headers(session)
        r = await client.post("/api/persons", json={**BONETTI, "codice_fiscale": BONETTI_CF}, headers=h)
        pid = r.json()["id"]
        await session.commit()
        r = await client.post(f"/api/persons/{pid}/death", json={"date_of_death": "1938-07-13"}, headers=h)
        assert r.status_code == 422 and "date_of_death" in field_errors(r)
        r = await client.post(f"/api/persons/{pid}/death", json={"date_of_death": "2026-03-03"}, headers=h)
        assert r.status_code == 422 and "date_of_death" in field_errors(r)
        r = await client.post(f"/api/persons/{pid}/death", json={"date_of_death": "2026-02-28", "note": "x"},
                              headers=h)
        assert r.status_code == 422 and "note" in field_errors(r)
        r = await client.get(f"/api/persons/{pid}", headers=h)
        assert r.json()["date_of_death"] is None and r.json()["version"] == 1
        r = await client.post(f"/api/persons/{pid}/death", json={"date_of_death": "2026-02-28"}, headers=h)
        assert r.status_code == 200 and r.json()["date_of_death"] == "2026-02-28" and r.json()["version"] == 2
        r = await client.post(f"/api/persons/{pid}/death", json={"date_of_death": "2026-02-28"}, headers=h)
        assert r.status_code == 409


class TestRelations:
    async def test_add_list_end(self, client, session):
        h = await headers(session)
        r = await client.post("/api/persons", json=person_payload(), headers=h)
        pid = r.json()["id"]
        r = await client.post(f"/api/persons/{pid}/relations", json=relation_payload("ads"), headers=h)
        assert r.status_code == 201, r.text
        ads = r.json()
        assert ads["kind_label"] == "Amministratore di sostegno" and ads["legal_representative"] and ads["active"]
        await session.commit()
        r = await client.post(f"/api/persons/{pid}/relations", json=relation_payload("tutore"), headers=h)
        assert r.status_code == 409 and r.json()["existing_relation_id"] == ads["id"]
        r = await client.post(f"/api/persons/{pid}/relations", json={**relation_payload("ads"),
                                                                      "decree_reference": None}, headers=h)
        assert r.status_code == 422 and "decree_reference" in field_errors(r)
        r = await client.post(f"/api/persons/{pid}/relations", json={"kind": "vicino_di_casa"}, headers=h)
        assert r.status_code == 422 and "kind" in field_errors(r)
        r = await client.post(f"/api/persons/{pid}/relations/{ads['id']}/end", json={}, headers=h)
        assert r.status_code == 200 and r.json()["valid_to"] == "2026-03-02" and not r.json()["active"]
        r = await client.post(f"/api/persons/{pid}/relations", json=relation_payload("caregiver",
                                                                                  sole_caregiver=True), headers=h)
        assert r.status_code == 201
        r = await client.get(f"/api/persons/{pid}/relations", headers=h)
        assert [i["kind"] for i in r.json()["items"]] == ["ads", "caregiver"]
        r = await client.get(f"/api/persons/{pid}/relations?active=true", headers=h)
        assert [i["kind"] for i in r.json()["items"]] == ["caregiver"]


class TestSearch:
    async def test_search_modes_and_pagination(self, client, session):
        h = await headers(session)
        offanengo = await org(session, "comune-offanengo")
        ids = []
        # Carla and Carola have the same codice fiscale letters: different birthplaces keep the codes apart.
        for given, place in (("Carla", "Crema"), ("Carlo", "Lodi"), ("Carola", "Milano"), ("Marta", "Pandino")):
            body = person_payload(surname="Bonettini", given_name=given, sex="F" if given != "Carlo" else "M",
                                  birth_date="1950-05-05", birth_place=place, residence_comune_id=str(offanengo.id))
            r = await client.post("/api/persons", json=body, headers=h)
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        r = await client.get("/api/persons", params={"codice_fiscale": body["codice_fiscale"].lower()}, headers=h)
        assert [i["id"] for i in r.json()["items"]] == [ids[-1]] and r.json()["total"] is None
        r = await client.get("/api/persons", params={"q": "carla bonettini"}, headers=h)
        found = [i["id"] for i in r.json()["items"]]
        assert found[0] == ids[0] and set(ids[:3]) <= set(found)
        seen, cursor = [], None
        while True:
            params = {"comune_id": str(offanengo.id), "birth_date": "1950-05-05", "limit": 2, "total": "true"}
            if cursor:
                params["cursor"] = cursor
            r = await client.get("/api/persons", params=params, headers=h)
            assert r.status_code == 200, r.text
            page = r.json()
            assert page["total"] == 4
            seen += [i["given_name"] for i in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert seen == ["Carla", "Carlo", "Carola", "Marta"]
        r = await client.get("/api/persons", params={"q": "bonettini", "limit": 3}, headers=h)
        nxt = r.json()["next_cursor"]
        r2 = await client.get("/api/persons", params={"q": "bonettini", "limit": 3, "cursor": nxt}, headers=h)
        assert len(r.json()["items"]) == 3 and len(r2.json()["items"]) == 1
        assert {i["id"] for i in r.json()["items"] + r2.json()["items"]} == set(ids)

    async def test_results_name_the_comune_in_one_query_for_the_page(self, client, session, app_engine):
        from sqlalchemy import event

        h = await headers(session)
        for surname, comune in (("Zampieri", "comune-crema"), ("Zanardelli", "comune-offanengo"),
                                ("Zorzi", "comune-crema"), ("Zucchetti", "comune-pandino")):
            await insert_person(session, comune=comune, surname=surname, given_name="Ugo", birth_date=date(1931, 1, 2))
        homeless = await insert_person(session, comune=None, surname="Zuliani", given_name="Ugo",
                                       birth_date=date(1931, 1, 2), residence_comune_id=None)
        await session.commit()
        statements: list[str] = []

        def note(conn, cursor, statement, params, context, executemany):
            statements.append(statement)

        event.listen(app_engine.sync_engine, "before_cursor_execute", note)
        try:
            got = await client.get("/api/persons", params={"birth_date": "1931-01-02"}, headers=h)
            by_body = await client.post("/api/persons/search", json={"birth_date": "1931-01-02"}, headers=h)
        finally:
            event.remove(app_engine.sync_engine, "before_cursor_execute", note)
        for r in (got, by_body):
            assert r.status_code == 200, r.text
            assert [(i["surname"], i["residence_comune_name"]) for i in r.json()["items"]] == [
                ("Zampieri", "Crema"), ("Zanardelli", "Offanengo"), ("Zorzi", "Crema"), ("Zucchetti", "Pandino"),
                ("Zuliani", None)]
            assert r.json()["items"][-1]["id"] == str(homeless.id)
            assert r.json()["items"][0]["residence_comune_id"] == str((await org(session, "comune-crema")).id)
        # one look-up of the names per page, whatever the number of persons and comuni on it
        assert len([s for s in statements if "FROM organisation" in s and "organisation.name" in s]) == 2

    async def test_search_input_errors(self, client, session):
        h = await headers(session)
        await session.commit()
        r = await client.get("/api/persons", params={"limit": 101}, headers=h)
        assert r.status_code == 422 and "limit" in field_errors(r)
        r = await client.get("/api/persons", params={"cursor": "%%%"}, headers=h)
        assert r.status_code == 400 and "cursor" in field_errors(r)
        r = await client.get("/api/persons", params={"q": "a"}, headers=h)
        assert r.status_code == 422 and "q" in field_errors(r)
        r = await client.get("/api/persons", params={"birth_date": "ieri"}, headers=h)
        assert r.status_code == 422 and "birth_date" in field_errors(r)

    async def test_duplicates_check(self, client, session):
        h = await headers(session)
        r = await client.post("/api/persons", json={**BONETTI, "codice_fiscale": BONETTI_CF}, headers=h)
        pid = r.json()["id"]
        before = await count(session)
        r = await client.post("/api/persons/duplicates-check", json={
            "surname": "Bonetti", "given_name": "Carla", "birth_date": "1938-07-14", "codice_fiscale": BONETTI_CF},
            headers=h)
        assert r.status_code == 200 and r.json()["existing_id"] == pid
        assert [c["person"]["id"] for c in r.json()["candidates"]] == [pid]
        assert await count(session) == before


class TestStewards:
    async def test_queue_merge_and_old_id(self, client, session):
        h = await headers(session)
        hs = await headers(session, role="data_steward", orgs="ambito-crema")
        r = await client.post("/api/persons", json={**BONETTI, "codice_fiscale": BONETTI_CF}, headers=h)
        kept = r.json()["id"]
        r = await client.post("/api/persons", json={**BONETTI, "other_identifier_type": "provisional"}, headers=h)
        dup = r.json()["id"]
        r = await client.post(f"/api/persons/{dup}/relations", json=relation_payload("family_member"), headers=h)
        rel = r.json()["id"]
        r = await client.get("/api/person-matches", headers=hs)
        assert r.status_code == 200
        [match] = [m for m in r.json()["items"] if {m["person_a"]["id"], m["person_b"]["id"]} == {kept, dup}]
        assert match["status_label"] == "Da verificare"
        await session.commit()
        r = await client.post(f"/api/person-matches/{match['id']}/decision",
                              json={"decision": "merge", "keep_id": str(uuid.uuid4()), "reason": "stessa persona"},
                              headers=hs)
        assert r.status_code == 422 and "keep_id" in field_errors(r)
        r = await client.post(f"/api/person-matches/{match['id']}/decision",
                              json={"decision": "merge", "keep_id": kept, "reason": "stessa persona"}, headers=h)
        assert r.status_code == 403
        r = await client.post(f"/api/person-matches/{match['id']}/decision",
                              json={"decision": "merge", "keep_id": kept, "reason": "Stessa persona"}, headers=hs)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["kept_id"] == kept and out["merged_id"] == dup and out["match"]["status"] == "merged"
        assert out["repointed"]["person_relation.person_id"] == 1
        r = await client.get(f"/api/persons/{dup}", headers=h)
        assert r.status_code == 200 and r.json()["id"] == kept
        r = await client.get(f"/api/persons/{kept}/relations", headers=h)
        assert [i["id"] for i in r.json()["items"]] == [rel]
        r = await client.get(f"/api/persons/{dup}/history", headers=h)
        assert [i["action"] for i in r.json()["items"]] == ["create", "merged"]
        await session.commit()
        r = await client.post(f"/api/person-matches/{match['id']}/decision",
                              json={"decision": "not_duplicate", "reason": "ripensamento"}, headers=hs)
        assert r.status_code == 409 and r.headers["content-type"].startswith(PROBLEM)
        r = await client.patch(f"/api/persons/{dup}", json={"lives_alone": True}, headers=h)
        assert r.status_code == 409 and r.json()["merged_into_id"] == kept


async def test_a_centenarian_without_a_birth_date_is_not_registered_as_a_newborn(client, session):
    """Issue 9: the codice fiscale of someone born on 9 April 1925 also fits 9 April 2025."""
    h = await headers(session)
    await session.commit()
    code = encode_cf("Bonizzi", "Teresa", "F", date(1925, 4, 9), "Crema")
    body = {"surname": "Bonizzi", "given_name": "Teresa", "codice_fiscale": code}
    r = await client.post("/api/persons", json=body, headers=h)
    assert r.status_code == 422 and "birth_date" in field_errors(r)
    r = await client.post("/api/persons", json={**body, "birth_date": "1925-04-09"}, headers=h)
    assert r.status_code == 201 and r.json()["birth_date"] == "1925-04-09"


class TestTheRegistryIsNotAList:
    """Issue 9, found by probing: ward staff, front desk, COT and CSC could list the whole registry with
    `GET /api/persons?limit=100` and a cursor; searches had no brake; codici fiscali travelled in URLs."""

    @pytest.mark.parametrize(("role", "orgs"), [("ward_staff", "asst-crema"), ("asst_front_desk", "asst-crema"),
                                                ("cot_operator", "asst-crema-cot"), ("csc_operator", "csc-crema")])
    async def test_roles_that_own_no_case_must_name_someone(self, client, session, role, orgs):
        h = await headers(session, role=role, orgs=orgs)
        person = await insert_person(session)
        await session.commit()
        r = await client.get("/api/persons", params={"limit": 100}, headers=h)
        assert r.status_code == 422 and "q" in field_errors(r)
        r = await client.get("/api/persons", params={"comune_id": str(person.residence_comune_id)}, headers=h)
        assert r.status_code == 422
        r = await client.get("/api/persons", params={"codice_fiscale": person.codice_fiscale}, headers=h)
        assert r.status_code == 200 and [i["id"] for i in r.json()["items"]] == [str(person.id)]

    async def test_the_owning_comune_still_lists_its_persons(self, client, session):
        h = await headers(session)
        await session.commit()
        assert (await client.get("/api/persons", params={"limit": 5}, headers=h)).status_code == 200

    async def test_search_by_body_keeps_the_codice_fiscale_out_of_the_url(self, client, session):
        h = await headers(session, role="asst_front_desk", orgs="asst-crema")
        person = await insert_person(session)
        await session.commit()
        r = await client.post("/api/persons/search", json={"codice_fiscale": person.codice_fiscale}, headers=h)
        assert r.status_code == 200 and [i["id"] for i in r.json()["items"]] == [str(person.id)]
        assert person.codice_fiscale not in str(r.request.url)
        r = await client.post("/api/persons/search", json={"limit": 100}, headers=h)
        assert r.status_code == 422 and "q" in field_errors(r)
        r = await client.post("/api/persons/search", json={"q": "x", "colour": "blu"}, headers=h)
        assert r.status_code == 422 and set(field_errors(r)) >= {"colour"}

    async def test_searches_are_braked_per_user(self, client, session, monkeypatch):
        from domain.kernel.settings import get_settings

        monkeypatch.setattr(get_settings(), "person_search_per_minute", 3)
        h = await headers(session)
        other = await headers(session)
        await session.commit()
        for _ in range(3):
            assert (await client.get("/api/persons", params={"q": "rossi"}, headers=h)).status_code == 200
        r = await client.post("/api/persons/search", json={"q": "rossi"}, headers=h)
        assert r.status_code == 429 and r.headers["content-type"].startswith(PROBLEM)
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert (await client.get("/api/persons", params={"q": "rossi"}, headers=other)).status_code == 200
