"""Field masks on GET /api/persons/{id}: one ETS, one RSA and one MMG user, each with a real assignment (the
provider assignments come from starting the plan's interventions; the MMG is the referring doctor and the person
consented to care), get exactly the minimal projection - and, in it, only their own organisation's interventions.
The owning comune's social worker gets everything; another comune's gets identity data only."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest

from domain.care_plan import interventions
from domain.care_plan import service as plans
from domain.registry import assignments, cartelle
from domain.registry import consent as consent_mod
from domain.registry.models import Consent
from domain.security.models import AppUser, Role
from domain.security.principal import load_principal
from schemas.access import ConsentCreate
from schemas.care_plan import AgreeIn, CarePlanCreate, GoalCreate, InterventionCreate
from tests.factories.registry import insert_person
from tests.support import bearer, make_user, org

MINIMAL = {"projection", "id", "surname", "given_name", "birth_date", "residence_comune_id", "contacts",
           "interventions"}
IDENTITY = {"projection", "id", "codice_fiscale", "other_identifier_type", "other_identifier", "surname",
            "given_name", "sex", "birth_date", "birth_place_code", "birth_place_name", "residence_comune_id",
            "status", "date_of_death"}
FULL = {"projection", "id", "codice_fiscale", "other_identifier_type", "other_identifier", "surname", "given_name",
        "sex", "birth_date", "birth_place_code", "birth_place_name", "citizenship", "residence_comune_id",
        "residence_address", "domicile_comune_id", "domicile_address", "fictitious_residence", "homeless",
        "lives_alone", "contacts", "date_of_death", "status", "needs_review", "source", "version", "created_at",
        "updated_at"}
INTERVENTION = {"id", "plan_id", "service_type", "service_label", "provider_org_id", "provider_name",
                "intensity_value", "intensity_unit", "start_date", "end_date", "status"}


@dataclass
class World:
    sw: AppUser
    ets: AppUser
    rsa: AppUser
    mmg: AppUser
    person_id: object
    sad_id: object
    rsa_iv_id: object
    care_consent: Consent


async def make_world(session) -> World:
    sw = await make_user(session, Role.comune_social_worker, "comune-offanengo")
    ets = await make_user(session, Role.ets_operator, "ets-igea")
    rsa = await make_user(session, Role.rsa_operator, "op-rsa-soncino")
    mmg = await make_user(session, Role.mmg, "mmg-crema-1")
    person = await insert_person(session, comune="comune-offanengo", surname="Bianchi", given_name="Maria", sex="F",
                                 birth_date=date(1943, 5, 10), birth_place="Crema", lives_alone=True,
                                 residence_address="Via Roma 1", citizenship="italiana",
                                 contacts={"mobile": "+39 333 1234567", "notes": "chiamare dopo le 10"})
    sw_p = await load_principal(session, str(sw.id))
    cartella = await cartelle.open_cartella(session, principal=sw_p, person_id=person.id, area="anziani")
    await cartelle.open_cartella(session, principal=sw_p, person_id=person.id, area="disabili")
    care = await consent_mod.grant(session, principal=sw_p, person_id=person.id, data=ConsentCreate(
        purpose="care", grantor_kind="self", valid_from=date(2026, 3, 1)))
    plan = await plans.create_plan(session=session, principal=sw_p, data=CarePlanCreate(
        cartella_id=cartella.id, case_manager_id=sw.id, title="Sostegno alla domiciliarità",
        summary="Vive sola; Barthel 35."))
    await interventions.add_goal(session=session, principal=sw_p, plan_id=plan.id, data=GoalCreate(
        description="Permanenza al domicilio", indicator="Accessi in PS", target="0", due_date=date(2026, 9, 1)))
    sad = await interventions.add_intervention(session, principal=sw_p, plan_id=plan.id, data=InterventionCreate(
        service_type="sad", provider_org_id=(await org(session, "ets-igea")).id, intensity_value=6,
        intensity_unit="ore/settimana", start_date=date(2026, 3, 2), funding_source="fna",
        notes="le chiavi sono dalla vicina"))
    rsa_iv = await interventions.add_intervention(session, principal=sw_p, plan_id=plan.id, data=InterventionCreate(
        service_type="rsa_aperta", provider_org_id=(await org(session, "op-rsa-soncino")).id, intensity_value=2,
        intensity_unit="accessi/settimana", start_date=date(2026, 3, 2)))
    await interventions.add_intervention(session=session, principal=sw_p, plan_id=plan.id, data=InterventionCreate(
        service_type="adi_cdom", provider_org_id=(await org(session, "asst-crema")).id, start_date=date(2026, 3, 2)))
    await plans.propose(session=session, principal=sw_p, plan_id=plan.id)
    await plans.agree(session=session, principal=sw_p, plan_id=plan.id, data=AgreeIn(consent_id=care.id))
    await plans.activate(session=session, principal=sw_p, plan_id=plan.id)  # provider assignments, legal basis
    await assignments.assign(session, cartella_id=cartella.id, reason="referring_mmg", user_id=mmg.id,
                          actor_id=sw.id)
    await session.commit()
    return World(sw=sw, ets=ets, rsa=rsa, mmg=mmg, person_id=person.id, sad_id=sad.id, rsa_iv_id=rsa_iv.id,
                 care_consent=care)


@pytest.fixture
async def w(session) -> World:
    return await make_world(session)


async def get(client, w: World, user: AppUser):
    return await client.get(f"/api/persons/{w.person_id}", headers=bearer(user))


async def test_ets_operator_gets_exactly_the_minimal_projection(client, w):
    r = await get(client, w, w.ets)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == MINIMAL and body["projection"] == "minimal"
    assert (body["surname"], body["given_name"], body["birth_date"]) == ("Bianchi", "Maria", "1943-05-10")
    assert body["contacts"] == {"mobile": "+39 333 1234567", "notes": "chiamare dopo le 10"}
    [iv] = body["interventions"]
    assert set(iv) == INTERVENTION
    assert (iv["id"], iv["service_type"], iv["status"], iv["provider_name"]) == (
        str(w.sad_id), "sad", "active", "Cooperativa Sociale Igea")


async def test_rsa_operator_gets_exactly_the_minimal_projection(client, w):
    r = await get(client, w, w.rsa)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == MINIMAL and body["projection"] == "minimal"
    assert [(i["id"], i["service_type"]) for i in body["interventions"]] == [(str(w.rsa_iv_id), "rsa_aperta")]
    assert set(body["interventions"][0]) == INTERVENTION


async def test_mmg_gets_exactly_the_minimal_projection(client, w):
    r = await get(client, w, w.mmg)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == MINIMAL and body["projection"] == "minimal"
    assert body["interventions"] == []  # none of the plan's interventions is the practice's


async def test_owning_social_worker_gets_everything_another_comune_identity(client, session, w):
    r = await get(client, w, w.sw)
    assert r.status_code == 200 and set(r.json()) == FULL and r.json()["projection"] == "full"
    assert r.json()["residence_address"] == "Via Roma 1"
    other = await make_user(session, Role.comune_social_worker, "comune-crema")
    r = await get(client, w, other)
    assert r.status_code == 200 and set(r.json()) == IDENTITY and r.json()["projection"] == "identity"


async def test_minimal_users_see_no_case_records(client, w):
    for user in (w.ets, w.rsa, w.mmg):
        for url in (f"/api/persons/{w.person_id}/history", f"/api/persons/{w.person_id}/relations"):
            r = await client.get(url, headers=bearer(user))  # they know the person: 403, not 404
            assert r.status_code == 403, (user.username, url, r.status_code)
        r = await client.get(f"/api/persons/{w.person_id}/cartelle", headers=bearer(user))
        assert r.status_code == 403  # no cartella.read: no other areas' records


async def test_unassigned_provider_and_revoked_consent(client, session, w):
    meraki = await make_user(session, Role.ets_operator, "ets-meraki")
    await session.commit()
    assert (await get(client, w, meraki)).status_code == 404
    # the MMG reads on the person's consent to care: revoked, the very next read is refused
    sw_p = await load_principal(session, str(w.sw.id))
    await consent_mod.revoke(session, principal=sw_p, person_id=w.person_id, consent_id=w.care_consent.id,
                             reason="revocato dalla persona")
    await session.commit()
    r = await get(client, w, w.mmg)
    assert r.status_code == 403 and r.json()["type"].endswith("/consent_required")
    # the providers read on the legal basis of their started intervention, not on that consent
    assert (await get(client, w, w.ets)).status_code == 200
