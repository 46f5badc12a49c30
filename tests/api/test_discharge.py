"""Protected discharges over HTTP: the ward signals (a registered person, or a new one through the registry's
de-duplication), reads the status only; the COT and the comune read in full; bad input is problem+json naming the
field and writes nothing."""
from __future__ import annotations

import uuid
from datetime import date

import pytest
import sqlalchemy as sa

from domain.assessment.models import Vmd
from domain.care_plan import interventions
from domain.discharge import flows, service
from domain.discharge.models import DischargeCase
from domain.registry import cartelle
from domain.registry.models import Person
from domain.security.models import Role
from schemas.care_plan import InterventionCreate
from tests.domain.assessment.vmd_setup import make_team, principal_of
from tests.factories.cartelle import create_person
from tests.factories.registry import person_payload
from tests.support import bearer, make_user, org

PROBLEM = "application/problem+json"


async def _setup(session):
    ward = await make_user(session, Role.ward_staff, "asst-crema-reparto-medicina")
    cot = await make_user(session, Role.cot_operator, "asst-crema-cot")
    sw = await make_user(session, Role.comune_social_worker, "comune-offanengo")
    person = await create_person(session, comune="comune-offanengo", sex="F", birth_date=date(1947, 6, 12))
    return ward, cot, sw, person, (await org(session, "asst-crema-reparto-medicina")).id


def _body(person_id, ward_id, **kw):
    body = {"person_id": str(person_id) if person_id else None, "ward_org_id": str(ward_id),
            "admission_date": "2026-02-26", "expected_discharge_date": "2026-03-04",
            "criteria": ["over65_not_self_sufficient"], "social_risk": True,
            "clinician_summary": "Scompenso cardiaco, non autosufficiente, vive sola."}
    body.update(kw)
    return {k: v for k, v in body.items() if v is not None}


async def _count(session, model=DischargeCase) -> int:
    return (await session.execute(sa.select(sa.func.count()).select_from(model))).scalar_one()


async def test_the_ward_signals_and_sees_the_status_the_cot_and_the_comune_see_it_all(client, session):
    ward, cot, sw, person, ward_id = await _setup(session)
    r = await client.post("/api/discharges", json=_body(person.id, ward_id), headers=bearer(ward))
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["state"] == "cot_requested" and created["view"] == "status"
    assert created["evaluation_due_at"] is not None and created["clinician_summary"] is None
    assert created["criteria"] is None and created["allowed_actions"] == []
    did = created["id"]
    for user in (cot, sw):
        full = (await client.get(f"/api/discharges/{did}", headers=bearer(user))).json()
        assert full["view"] == "full" and full["criteria"] == ["over65_not_self_sufficient"]
        assert full["social_risk"] is True and "evaluate" in full["allowed_actions"]
    page = (await client.get("/api/discharges", headers=bearer(ward))).json()
    assert [i["id"] for i in page["items"]] == [did] and page["items"][0]["view"] == "status"
    other = await make_user(session, Role.comune_social_worker, "comune-crema")
    assert (await client.get(f"/api/discharges/{did}", headers=bearer(other))).status_code == 404
    assert (await client.get("/api/discharges", headers=bearer(other))).json()["items"] == []


async def test_a_new_person_is_registered_through_the_registry_and_found_again(client, session):
    ward, _, _, _, ward_id = await _setup(session)
    new = person_payload(birth_date=date(1944, 4, 4), residence_comune_id=str((await org(session,
                                                                                     "comune-offanengo")).id))
    persons_before = await _count(session, Person)
    first = await client.post("/api/discharges", json=_body(None, ward_id, person=new), headers=bearer(ward))
    assert first.status_code == 201, first.text
    again = await client.post("/api/discharges", json=_body(None, ward_id, person=new), headers=bearer(ward))
    assert again.status_code == 201, again.text
    assert first.json()["person_id"] == again.json()["person_id"]  # matched by codice fiscale, not guessed
    assert await _count(session, Person) == persons_before + 1


@pytest.mark.parametrize(("change", "field"), [
    ({"expected_discharge_date": "2026-02-20"}, "expected_discharge_date"),
    ({"criteria": []}, "criteria"),
    ({"cot_requested_at": "2026-03-02T10:00:00+01:00"}, "cot_requested_at"),  # the clock says 09:00
    ({"ward_org_id": "cot"}, "ward_org_id"),
    ({"ward_org_id": "comune"}, "ward_org_id"),
])
async def test_bad_input_is_problem_json_naming_the_field_and_writes_nothing(client, session, change, field):
    ward, _, _, person, ward_id = await _setup(session)
    if change.get("ward_org_id") == "cot":
        change = {"ward_org_id": str((await org(session, "asst-crema-cot")).id)}  # an ASST unit, not a ward
    if change.get("ward_org_id") == "comune":
        change = {"ward_org_id": str((await org(session, "comune-offanengo")).id)}  # not an ASST unit at all
    before = await _count(session)
    r = await client.post("/api/discharges", json=_body(person.id, ward_id, **change), headers=bearer(ward))
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM), r.text
    assert field in [e["field"] for e in r.json()["errors"]]
    assert await _count(session) == before


async def test_only_ward_staff_signal(client, session):
    _, cot, _, person, ward_id = await _setup(session)
    r = await client.post("/api/discharges", json=_body(person.id, ward_id), headers=bearer(cot))
    assert r.status_code == 403 and r.headers["content-type"].startswith(PROBLEM)


async def test_an_illegal_move_is_409_with_the_kernel_body_and_an_exit_closes_the_case(client, session):
    ward, cot, _, person, ward_id = await _setup(session)
    did = (await client.post("/api/discharges", json=_body(person.id, ward_id), headers=bearer(ward))).json()["id"]
    r = await client.post(f"/api/discharges/{did}/close", headers=bearer(cot))
    assert r.status_code == 409 and r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert (body["state"], body["action"]) == ("cot_requested", "close")
    assert set(body["allowed_actions"]) == {"choose_setting", "evaluate", "not_eligible",
                                                   "discharge_without_project", "cancel"}
    r = await client.post(f"/api/discharges/{did}/exit", headers=bearer(cot),
                          json={"action": "not_eligible", "reason": "Rete familiare adeguata"})
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["exit_reason"]) == ("not_eligible", "not_eligible")
    status = (await client.get(f"/api/discharges/{did}", headers=bearer(ward))).json()
    assert status["state"] == "not_eligible" and status["exit_reason"] is None  # the ward sees the status only
    r = await client.post(f"/api/discharges/{did}/exit", headers=bearer(ward),
                          json={"action": "not_eligible", "reason": "Prova"})
    assert r.status_code == 403


async def test_the_ward_cancels_its_own_signal_then_it_is_final(client, session):
    ward, cot, _, person, ward_id = await _setup(session)
    did = (await client.post("/api/discharges", json=_body(person.id, ward_id), headers=bearer(ward))).json()["id"]
    r = await client.post(f"/api/discharges/{did}/cancel", json={"reason": ""}, headers=bearer(ward))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "reason"
    r = await client.post(f"/api/discharges/{did}/cancel", json={"reason": "Segnalazione doppia"},
                          headers=bearer(ward))
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["view"]) == ("cancelled", "status")
    r = await client.post(f"/api/discharges/{did}/cancel", json={"reason": "Ancora"}, headers=bearer(cot))
    assert r.status_code == 409 and r.headers["content-type"].startswith(PROBLEM)
    assert (r.json()["state"], r.json()["action"], r.json()["allowed_actions"]) == ("cancelled", "cancel", [])


async def test_a_signature_from_outside_the_equipe_is_refused_naming_the_signer_nothing_written(client, session):
    """Bad input of the issue: the evaluation (the discharge VMD) signed by someone outside its equipe."""
    ward, _, sw, person, ward_id = await _setup(session)
    ifec = await make_user(session, Role.asst_pua_operator, "asst-crema-pua", profession="IFeC")
    team = await make_team(session, [(ifec, "asst-crema-pua"), (sw, "comune-offanengo")])
    did = (await client.post("/api/discharges", json=_body(person.id, ward_id), headers=bearer(ward))).json()["id"]
    cartella = await cartelle.open_cartella(session, principal=await principal_of(session, sw), person_id=person.id,
                                            area="anziani")
    r = await client.post(f"/api/discharges/{did}/evaluation-request", headers=bearer(sw),
                          json={"cartella_id": str(cartella.id), "team_id": str(team.id)})
    assert r.status_code == 200, r.text
    vmd_id = r.json()["vmd_id"]
    outsider = await make_user(session, Role.comune_social_worker, "comune-offanengo")
    before = (await session.execute(sa.select(Vmd.version).where(Vmd.id == uuid.UUID(vmd_id)))).scalar_one()
    r = await client.post(f"/api/vmd/{vmd_id}/sign", headers=bearer(outsider))
    assert r.status_code == 403 and r.headers["content-type"].startswith(PROBLEM), r.text
    assert [e["field"] for e in r.json()["errors"]] == ["user_id"]
    after = (await session.execute(sa.select(Vmd.version).where(Vmd.id == uuid.UUID(vmd_id)))).scalar_one()
    assert after == before
    assert (await client.get(f"/api/discharges/{did}", headers=bearer(sw))).json()["state"] == "cot_requested"


async def test_a_provider_named_in_the_project_reads_the_minimal_view(client, session, clock):
    ward, cot, sw, person, ward_id = await _setup(session)
    did = (await client.post("/api/discharges", json=_body(person.id, ward_id), headers=bearer(ward))).json()["id"]
    cot_p, sw_p = await principal_of(session, cot), await principal_of(session, sw)
    await service.record_evaluation(session, principal=cot_p, discharge_id=uuid.UUID(did), setting="home",
                                    evaluated_at=clock.now())
    cartella = await cartelle.open_cartella(session, principal=sw_p, person_id=person.id, area="anziani")
    case = await flows.formulate_project(session, principal=sw_p, discharge_id=uuid.UUID(did),
                                         cartella_id=cartella.id, case_manager_id=sw.id, title="Rientro a casa")
    await interventions.add_intervention(session, principal=sw_p, plan_id=case.plan_id, data=InterventionCreate(
        service_type="sad", provider_org_id=(await org(session, "ets-igea")).id, start_date=date(2026, 3, 4)))
    igea = await make_user(session, Role.ets_operator, "ets-igea")
    r = await client.get(f"/api/discharges/{did}", headers=bearer(igea))
    assert r.status_code == 200, r.text
    seen = r.json()
    assert (seen["view"], seen["state"], seen["setting"], seen["plan_id"]) == (
        "minimal", "project_formulated", "home", str(case.plan_id))
    assert all(seen[f] is None for f in ("clinician_summary", "criteria", "ward_org_id", "opened_by",
                                         "admission_date", "social_risk", "evaluation_hours"))
    other = await make_user(session, Role.ets_operator, "ets-meraki")
    assert (await client.get(f"/api/discharges/{did}", headers=bearer(other))).status_code == 404


async def test_the_cot_queue_puts_the_nearest_deadline_first_and_is_the_cots_alone(client, session, clock):
    ward, cot, sw, person, ward_id = await _setup(session)
    other = await create_person(session, comune="comune-offanengo", sex="M", birth_date=date(1940, 1, 9))
    # the later signal was requested earlier: its 48 hours end first
    first = await client.post("/api/discharges", json=_body(person.id, ward_id), headers=bearer(ward))
    second = await client.post("/api/discharges", json=_body(other.id, ward_id,
                                                             cot_requested_at="2026-03-01T18:00:00+01:00"),
                               headers=bearer(ward))
    assert first.status_code == second.status_code == 201, (first.text, second.text)
    r = await client.get("/api/discharges/cot-queue", headers=bearer(cot))
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["id"] for i in items] == [second.json()["id"], first.json()["id"]]
    assert all(i["view"] == "full" and "evaluate" in i["allowed_actions"] for i in items)
    # a case the COT has dealt with leaves the queue
    r = await client.post(f"/api/discharges/{second.json()['id']}/exit", headers=bearer(cot),
                          json={"action": "not_eligible", "reason": "Rete familiare adeguata"})
    assert r.status_code == 200, r.text
    r = await client.get("/api/discharges/cot-queue", headers=bearer(cot))
    assert [i["id"] for i in r.json()["items"]] == [first.json()["id"]]
    # the comune works the case but has no COT queue; the ward neither
    for user in (sw, ward):
        r = await client.get("/api/discharges/cot-queue", headers=bearer(user))
        assert r.status_code == 403 and r.headers["content-type"].startswith(PROBLEM)
