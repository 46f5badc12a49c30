"""Two Ambiti loaded: no user of one sees a person or a cartella of the other (404 on reads, empty searches),
whatever the role, and a codice fiscale registered in one does not clash with the other."""
from __future__ import annotations

import pytest

from domain.security.models import Role
from tests.domain.security.access_setup import add_consent, assign, person_with_cartella
from tests.factories.registry import person_payload
from tests.support import bearer, make_user, org

SIDES = {
    "crema": {"ambito": "ambito-crema", "comune": "comune-crema", "asst": "asst-crema-pua"},
    "cremona": {"ambito": "ambito-cremona-test", "comune": "comune-cremona", "asst": "asst-cremona-test"},
}


async def _world(session, mine: str, theirs: str):
    me, other = SIDES[mine], SIDES[theirs]
    person, cartella = await person_with_cartella(session, comune=other["comune"], ambito=other["ambito"])
    users = {
        "social_worker": await make_user(session, Role.comune_social_worker, me["comune"]),
        "asst": await make_user(session, Role.asst_pua_operator, me["asst"]),
        "dpo": await make_user(session, Role.dpo, me["ambito"]),
        "steward": await make_user(session, Role.data_steward, me["ambito"]),
    }
    return person, cartella, users


@pytest.mark.parametrize("mine,theirs", [("crema", "cremona"), ("cremona", "crema")])
async def test_reads_of_the_other_ambito_are_not_found(client, session, mine, theirs):
    person, cartella, users = await _world(session, mine, theirs)
    # even an assignment or a consent recorded by mistake across Ambiti opens nothing
    await assign(session, cartella, user_id=users["asst"].id, legal_basis="errore di prova")
    await add_consent(session, person, "share_asst", recorded_by=users["asst"].id)
    person_urls = [f"/api/persons/{person.id}", f"/api/persons/{person.id}/history",
                   f"/api/persons/{person.id}/relations", f"/api/persons/{person.id}/cartelle",
                   f"/api/persons/{person.id}/consents"]
    cartella_urls = [f"/api/cartelle/{cartella.id}", f"/api/cartelle/{cartella.id}/assignments",
                     f"/api/cartelle/{cartella.id}/history"]
    for name in ("social_worker", "asst", "steward"):
        for url in person_urls + cartella_urls:
            r = await client.get(url, headers=bearer(users[name]))
            assert r.status_code in (403, 404), (name, url, r.status_code)
            assert str(person.surname) not in r.text
        for url in person_urls[:2]:
            r = await client.get(url, headers=bearer(users[name]))
            assert r.status_code == 404, (name, url)
    r = await client.get(f"/api/persons/{person.id}/access-log", headers=bearer(users["dpo"]))
    assert r.status_code == 404


@pytest.mark.parametrize("mine,theirs", [("crema", "cremona"), ("cremona", "crema")])
async def test_searches_do_not_cross_ambiti(client, session, mine, theirs):
    person, _, users = await _world(session, mine, theirs)
    comune = await org(session, SIDES[theirs]["comune"])
    queries = [{"codice_fiscale": person.codice_fiscale}, {"q": f"{person.surname} {person.given_name}"},
               {"birth_date": person.birth_date.isoformat()}, {"comune_id": str(comune.id)}]
    for name in ("social_worker", "steward"):
        for params in queries:
            r = await client.get("/api/persons", params=params, headers=bearer(users[name]))
            if name == "steward" and "comune_id" in params:  # a role that owns no case must name someone
                assert r.status_code == 422, (params, r.text)
                continue
            assert r.status_code == 200, (params, r.text)
            assert str(person.id) not in {i["id"] for i in r.json()["items"]}, (name, params)


@pytest.mark.parametrize("mine,theirs", [("crema", "cremona"), ("cremona", "crema")])
async def test_writes_and_break_glass_do_not_cross_ambiti(client, session, mine, theirs):
    person, cartella, users = await _world(session, mine, theirs)
    sw = bearer(users["social_worker"])
    assert (await client.patch(f"/api/persons/{person.id}", json={"given_name": "X"}, headers=sw)).status_code == 404
    assert (await client.post(f"/api/cartelle/{cartella.id}/close", json={"reason": "prova"},
                              headers=sw)).status_code == 404
    r = await client.post("/api/break-glass", headers=sw,
                          json={"person_id": str(person.id), "reason": "Emergenza notturna, servizi chiusi"})
    assert r.status_code == 404


async def test_same_codice_fiscale_in_two_ambiti_is_two_persons(client, session):
    crema = await make_user(session, Role.comune_social_worker, "comune-crema")
    cremona = await make_user(session, Role.comune_social_worker, "comune-cremona")
    body = person_payload()
    crema_id = str((await org(session, "comune-crema")).id)
    a = await client.post("/api/persons", json={**body, "residence_comune_id": crema_id},
                          headers=bearer(crema))
    assert a.status_code == 201, a.text
    cremona_id = str((await org(session, "comune-cremona")).id)
    b = await client.post("/api/persons", json={**body, "residence_comune_id": cremona_id},
                          headers=bearer(cremona))
    assert b.status_code == 201, b.text
    assert a.json()["id"] != b.json()["id"]
    # and in the same Ambito the second registration answers 409 with the existing id only
    again = await client.post("/api/persons", json=body, headers=bearer(crema))
    assert again.status_code == 409
    assert again.json()["existing_id"] == a.json()["id"]
    assert body["surname"] not in again.text
