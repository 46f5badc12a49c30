"""Acceptance test of the PUA journey (issue 5), driven only through the HTTP API, as the PUA equipe of the
Casa di Comunità would live it:

    an 82-year-old woman living alone in Offanengo is referred by her MMG → the PUA takes the request in reception
    and triages it (complex need) → VMD by an IFeC of the ASST and the comune's social worker (Barthel 35,
    Lawton IADL 2, social module) → both sign → equipe meeting → project proposed (integrated assessment) →
    progetto individualizzato with SAD 6 h/week and ADI/C-DOM → consent → agreed → active → printed on A4.

Along the way it checks the work queues (the PUA team's triage item, each assessor's assessment item) and, at the
end, that the key requests left audit rows naming the person. Only the users, their organisations and the two teams
are set up directly in the database; everything else goes through the API.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from httpx import AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncSession

from domain.kernel.clock import ROME
from domain.kernel.models import WorkItem
from domain.security.models import AppUser, AuditEvent, Role, Team, TeamMember, TeamType
from domain.territory.models import Organisation
from tests.factories.registry import person_payload
from tests.support import bearer, make_user, org

# ------------------------------------------------------------------------------------------------ answers
# First-level triage (pua_triage, active version): 82, lives alone, no caregiver, partial loss of autonomy after a
# fall → the red flag "alone and over 75" makes the need complex and suggests a VMD.
TRIAGE_ANSWERS = {
    "request_source": "gp", "request_type": "care_need", "need_areas": ["personal_care", "social_relational"],
    "age": 82, "lives_alone": True, "caregiver": "absent", "autonomy_loss": "partial", "cognitive_decline": False,
    "multimorbidity": True, "recent_discharge": False, "caregiver_loss": False, "abuse_suspicion": False,
    "housing_emergency": False,
}
# Barthel ADL: total 35 (severe dependency).
BARTHEL_35 = {
    "feeding": "needs_help", "bathing": "dependent", "grooming": "needs_help", "dressing": "needs_help",
    "bowels": "occasional_accident", "bladder": "occasional_accident", "toilet_use": "needs_help",
    "transfers": "minor_help", "mobility": "immobile", "stairs": "unable",
}
# Lawton IADL: total 2 (uses the telephone and public transport when accompanied).
IADL_2 = {
    "telephone": "independent", "shopping": "unable", "food_preparation": "dependent", "housekeeping": "none",
    "laundry": "dependent", "transportation": "accompanied_public", "medications": "unable", "finances": "unable",
}
# The social module (social_risk) filled in by the comune's social worker.
SOCIAL_MODULE = {
    "living_arrangement": "alone", "social_network": "limited", "social_isolation": True,
    "caregiver_present": False, "housing_adequacy": "partially_adequate",
    "housing_barriers": ["stairs_without_lift"], "eviction_risk": False, "economic_difficulty": "occasional",
}


# ------------------------------------------------------------------------------------------------ the cast
@dataclass
class Cast:
    """The people of the journey and their organisations (set up in the database: users, roles, teams)."""

    offanengo: Organisation
    pua_team: Team
    vmd_team: Team
    mmg: AppUser             # the woman's family doctor (mmg-crema-1)
    pua_operator: AppUser    # ASST PUA operator, member of the PUA team: reception, triage, referral
    ifec: AppUser            # IFeC of the ASST, member of the VMD equipe (ASST side): health domains, manages the VMD
    social_worker: AppUser   # Offanengo social worker, member of the VMD equipe (comune side); case manager

    def h(self, who: str) -> dict[str, str]:
        return bearer(getattr(self, who))


async def _user(session: AsyncSession, role: Role, org_code: str, name: str, profession: str) -> AppUser:
    user = await make_user(session, role, org_code, profession=profession)
    user.display_name = name
    session.add(user)
    await session.flush()
    return user


async def _team(session: AsyncSession, type_: TeamType, name: str, seat: str,
                members: list[tuple[AppUser, str]]) -> Team:
    ambito = await org(session, "ambito-crema")
    team = Team(ambito_id=ambito.id, code=f"journey-{type_.value}-{uuid.uuid4().hex[:6]}", name=name, type=type_,
                organisation_id=(await org(session, seat)).id)
    session.add(team)
    await session.flush()
    for user, brings in members:
        session.add(TeamMember(team_id=team.id, user_id=user.id, organisation_id=(await org(session, brings)).id,
                               valid_from=date(2025, 1, 1)))
    await session.flush()
    return team


async def cast_of_the_journey(session: AsyncSession) -> Cast:
    mmg = await _user(session, Role.mmg, "mmg-crema-1", "Andrea Rossi", "Medico di medicina generale")
    pua_operator = await _user(session, Role.asst_pua_operator, "asst-crema-pua", "Sara Ginelli", "Infermiera PUA")
    ifec = await _user(session, Role.asst_pua_operator, "asst-crema-pua", "Paolo Dossena", "IFeC")
    social_worker = await _user(session, Role.comune_social_worker, "comune-offanengo", "Chiara Locatelli",
                                "Assistente sociale")
    pua_team = await _team(session, TeamType.pua, "Équipe PUA Crema", "asst-crema-pua",
                           [(pua_operator, "asst-crema-pua")])
    vmd_team = await _team(session, TeamType.vmd_equipe, "Équipe VMD Casa di Comunità di Crema",
                           "asst-crema-cdc-crema", [(ifec, "asst-crema-pua"), (social_worker, "comune-offanengo")])
    return Cast(offanengo=await org(session, "comune-offanengo"), pua_team=pua_team, vmd_team=vmd_team, mmg=mmg,
                pua_operator=pua_operator, ifec=ifec, social_worker=social_worker)


# ------------------------------------------------------------------------------------------------ small helpers
def time_passes(clock, when: str) -> None:
    """The journey takes a week: move the test clock (Europe/Rome local time) to the next moment of work."""
    clock.set(datetime.fromisoformat(when).replace(tzinfo=ROME))


def ok(r: Response, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text}"
    return r.json()


async def work_item_state(session: AsyncSession, *, kind: str, source_id: str,
                          assignee_user_id: uuid.UUID | None = None) -> list[str]:
    q = sa.select(WorkItem.state).where(WorkItem.kind == kind, WorkItem.source_id == uuid.UUID(source_id))
    if assignee_user_id is not None:
        q = q.where(WorkItem.assignee_user_id == assignee_user_id)
    return [str(s) for s in (await session.execute(q)).scalars()]


@dataclass
class Journey:
    """What the journey produced, and the X-Request-ID of the requests whose audit rows are checked at the end."""

    person_id: str = ""
    person_name: str = ""
    request_id: str = ""
    cartella_id: str = ""
    vmd_id: str = ""
    plan_id: str = ""
    sad_id: str = ""
    adi_id: str = ""
    audited: dict[str, str] = field(default_factory=dict)

    def keep(self, label: str, r: Response) -> None:
        self.audited[label] = r.headers["x-request-id"]


# ------------------------------------------------------------------------------------------------ the steps
async def step1_mmg_refers_the_woman(client: AsyncClient, c: Cast, j: Journey) -> None:
    """The family doctor refers his 82-year-old patient, who lives alone in Offanengo, to the PUA.

    An MMG refers persons already in the Ambito's registry: the role holds neither person.create nor person.search
    (docs/decisions/pua.md §1), so the woman is registered through the persons API by the PUA desk first, with a
    codice fiscale consistent with her name, sex, birth date and birthplace."""
    woman = person_payload(surname="Bonizzi", given_name="Teresa", sex="F", birth_date=date(1943, 7, 14),
                           birth_place="Offanengo", residence_comune_id=str(c.offanengo.id),
                           residence_address="Via Dante 12", lives_alone=True)
    person = ok(await client.post("/api/persons", headers=c.h("pua_operator"), json=woman), 201)
    assert person["codice_fiscale"] == woman["codice_fiscale"] and person["birth_date"] == "1943-07-14"
    assert person["birth_place_name"].lower() == "offanengo" and person["residence_comune_id"] == str(c.offanengo.id)
    j.person_id, j.person_name = person["id"], "Teresa Bonizzi"

    # The MMG sends the referral, in his own name.
    r = await client.post("/api/pua/requests", headers=c.h("mmg"), json={
        "person_id": j.person_id, "channel": "referral_mmg",
        "reported_need": "Vive sola, dopo una caduta fatica con igiene personale e spesa; chiede aiuto a domicilio.",
        "need_domains": ["personal_care", "social_relational"]})
    created = ok(r, 201)
    j.keep("referral", r)
    assert created["state"] == "registered" and created["person_id"] == j.person_id
    assert created["channel"] == "referral_mmg" and created["referring_user_id"] == str(c.mmg.id)
    assert created["triage_work_item_id"] is not None
    j.request_id = created["id"]


async def step2_pua_triages(client: AsyncClient, session: AsyncSession, clock, c: Cast, j: Journey) -> None:
    """The request lands in the PUA team's queue "Requests to triage"; later that morning a PUA operator takes it
    in reception and records the first-level assessment with the active pua_triage instrument: the need is
    complex."""
    time_passes(clock, "2026-03-02T11:30")
    # The triage item is due within two working days (Wednesday), in the PUA team's queue.
    queue = ok(await client.get("/api/pua/queue", headers=c.h("pua_operator"), params={"limit": 200}))
    mine = [w for w in queue["items"] if w["source_id"] == j.request_id]
    assert len(mine) == 1 and mine[0]["kind"] == "pua.triage"
    assert mine[0]["assignee_team_id"] == str(c.pua_team.id) and mine[0]["assigned_via"] == ["team"]
    assert mine[0]["person_id"] == j.person_id and mine[0]["due_at"].startswith("2026-03-04")

    got = ok(await client.post(f"/api/pua/requests/{j.request_id}/reception", headers=c.h("pua_operator"),
                               json={"version": 1}))
    assert got["state"] == "in_reception"

    # The answers go to the active version of pua_triage (the one the catalogue names).
    catalogue = ok(await client.get("/api/instruments", headers=c.h("pua_operator")))["items"]
    active_triage = next(i["latest_active_version"] for i in catalogue if i["code"] == "pua_triage")
    r = await client.post(f"/api/pua/requests/{j.request_id}/triage", headers=c.h("pua_operator"),
                          json={"answers": TRIAGE_ANSWERS})
    triaged = ok(r)
    j.keep("triage", r)
    assert triaged["state"] == "first_level_done" and triaged["first_level_at"]
    assert triaged["complexity"] == "complex" and triaged["complexity_label"] == "Bisogno complesso"
    assert triaged["suggested_path"] == "vmd"
    assert (triaged["triage"]["instrument_code"], triaged["triage"]["instrument_version"]) == ("pua_triage",
                                                                                          active_triage)
    reasons = {x["code"] for x in triaged["triage"]["scores"]["outcomes"]["need_level"]["reasons"]}
    assert "red_flag_alone_over_75" in reasons


async def step3_pua_refers_to_vmd(client: AsyncClient, session: AsyncSession, c: Cast, j: Journey) -> None:
    """Complex need: the PUA refers the request to the VMD equipe (trigger pua). The referral opens the anziani
    cartella, owned by the comune of residence (Offanengo), and requests the VMD; the triage item is closed."""
    r = await client.post(f"/api/pua/requests/{j.request_id}/refer-vmd", headers=c.h("pua_operator"), json={
        "team_id": str(c.vmd_team.id), "requested_service_type": "sad",
        "notes": "Valutare SAD e cure domiciliari"})
    referred = ok(r)
    j.keep("refer_vmd", r)
    assert referred["state"] == "referred_vmd" and referred["closed_at"]
    assert referred["vmd_id"] and referred["cartella_id"]
    j.vmd_id, j.cartella_id = referred["vmd_id"], referred["cartella_id"]

    # The triage item left the PUA team's queue, as done.
    queue = ok(await client.get("/api/pua/queue", headers=c.h("pua_operator"), params={"limit": 200}))
    assert j.request_id not in {w["source_id"] for w in queue["items"]}
    assert await work_item_state(session, kind="pua.triage", source_id=j.request_id) == ["done"]

    # The VMD exists, requested by the PUA for this equipe, the clock running.
    vmd = ok(await client.get(f"/api/vmd/{j.vmd_id}", headers=c.h("ifec")))
    assert vmd["trigger"] == "pua" and vmd["team_id"] == str(c.vmd_team.id) and vmd["state"] == "requested"
    assert vmd["access_request_id"] == j.request_id and vmd["person_id"] == j.person_id
    assert vmd["cartella_id"] == j.cartella_id and vmd["requested_service_type"] == "sad"
    assert vmd["referring_user_id"] == str(c.mmg.id) and vmd["due_at"]

    # The cartella exists: area anziani, owned by Offanengo, visible to the comune's social worker.
    cartella = ok(await client.get(f"/api/cartelle/{j.cartella_id}", headers=c.h("social_worker")))
    assert cartella["area"] == "anziani" and cartella["owning_comune_id"] == str(c.offanengo.id)
    assert cartella["person_id"] == j.person_id and cartella["status"] == "open"

    # The referring MMG follows the outcome of his referral: what he registered, the state and the complexity,
    # not the triage answers nor the referral details.
    seen = ok(await client.get(f"/api/pua/requests/{j.request_id}", headers=c.h("mmg")))
    assert seen["view"] == "registration" and seen["state"] == "referred_vmd" and seen["complexity"] == "complex"
    assert seen["triage"] is None and seen["orientation"] is None


async def step4_integrated_vmd(client: AsyncClient, session: AsyncSession, clock, c: Cast, j: Journey) -> None:
    """The equipe assesses the woman jointly: the IFeC (ASST side) and the Offanengo social worker (comune side)
    become assessors, visit her at home on Thursday, each fills in their own domains and signs; in the afternoon
    the equipe meets and proposes a project."""
    url = f"/api/vmd/{j.vmd_id}"
    # That afternoon the IFeC, who runs the VMD for the equipe, schedules the home visit for Thursday.
    time_passes(clock, "2026-03-02T14:00")
    ok(await client.post(f"{url}/schedule", headers=c.h("ifec"), json={
        "scheduled_for": "2026-03-05T10:00:00+01:00", "location": "Domicilio, Via Dante 12, Offanengo"}))
    ifec_as = ok(await client.post(f"{url}/assessors", headers=c.h("ifec"), json={"user_id": str(c.ifec.id)}), 201)
    sw_as = ok(await client.post(f"{url}/assessors", headers=c.h("ifec"),
                                 json={"user_id": str(c.social_worker.id)}), 201)
    assert ifec_as["side"] == "asst" and sw_as["side"] == "comune"

    # Each assessor finds the assessment in "my assessments".
    for who in ("ifec", "social_worker"):
        items = ok(await client.get("/api/vmd/mine", headers=c.h(who)))["items"]
        assert [(w["kind"], w["source_id"]) for w in items] == [("vmd.assessment", j.vmd_id)], who

    # Thursday, after the home visit: the IFeC records the functional scales, the social worker the social module.
    time_passes(clock, "2026-03-05T12:00")
    barthel = ok(await client.post(f"{url}/responses", headers=c.h("ifec"),
                                   json={"instrument_code": "barthel", "answers": BARTHEL_35}), 201)
    assert barthel["scores"]["total"]["value"] == 35
    iadl = ok(await client.post(f"{url}/responses", headers=c.h("ifec"),
                                json={"instrument_code": "lawton_iadl", "answers": IADL_2}), 201)
    assert iadl["scores"]["total"]["value"] == 2
    ok(await client.post(f"{url}/responses", headers=c.h("social_worker"),
                         json={"instrument_code": "social_risk", "answers": SOCIAL_MODULE}), 201)

    # Both sign; each one's assessment item is closed.
    r = await client.post(f"{url}/sign", headers=c.h("ifec"))
    assert ok(r)["signed"] is True
    j.keep("vmd_sign", r)
    assert ok(await client.post(f"{url}/sign", headers=c.h("social_worker")))["signed"] is True
    for who in ("ifec", "social_worker"):
        assert ok(await client.get("/api/vmd/mine", headers=c.h(who)))["items"] == [], who
        assert await work_item_state(session, kind="vmd.assessment", source_id=j.vmd_id,
                                     assignee_user_id=getattr(c, who).id) == ["done"], who

    # The equipe meeting that afternoon, then the outcome: a project is proposed, reassessment in six months.
    time_passes(clock, "2026-03-05T16:30")
    ok(await client.post(f"{url}/meetings", headers=c.h("ifec"), json={
        "held_at": "2026-03-05T15:00:00+01:00",
        "participants": [{"user_id": str(c.ifec.id)}, {"user_id": str(c.social_worker.id)},
                         {"name": "Nipote della signora", "role": "familiare"}],
        "minutes": "Dipendenza grave nelle ADL, vive sola senza caregiver. Condiviso il sostegno a domicilio.",
        "decision": "Proposta di progetto individualizzato: SAD e ADI"}), 201)
    concluded = ok(await client.post(f"{url}/conclude", headers=c.h("ifec"), json={
        "outcome": "project_proposed", "notes": "SAD 6 ore/settimana e ADI", "reassessment_due": "2026-09-01"}))
    assert concluded["state"] == "concluded" and concluded["outcome"] == "project_proposed"

    # The VMD counts as integrated (ASST + comune signed) and shows the scores.
    vmd = ok(await client.get(url, headers=c.h("ifec")))
    assert vmd["integrated"] is True and vmd["signed_sides"] == ["asst", "comune"]
    scores = {x["instrument_code"]: x["scores"] for x in vmd["responses"]}
    assert scores["barthel"]["total"]["value"] == 35
    assert scores["barthel"]["total"]["band"]["code"] == "severe_dependency"
    assert "grave" in scores["barthel"]["total"]["band"]["label"].lower()
    assert scores["lawton_iadl"]["total"]["value"] == 2
    assert "social_risk" in scores


async def step5_care_plan(client: AsyncClient, session: AsyncSession, clock, c: Cast, j: Journey) -> None:
    """The following Monday the social worker, as case manager, draws up the progetto individualizzato from the
    VMD: a measurable goal, SAD 6 hours a week by an ETS (FNA) and ADI/C-DOM by the ASST's Casa di Comunità;
    proposes it, records the woman's consent, has it agreed and activates it (the SAD starts today, the ADI next
    week)."""
    time_passes(clock, "2026-03-09T10:00")
    h = c.h("social_worker")
    plan = ok(await client.post("/api/care-plans", headers=h, json={
        "cartella_id": j.cartella_id, "vmd_id": j.vmd_id, "kind": "ordinary",
        "case_manager_id": str(c.social_worker.id), "title": "Sostegno alla domiciliarità",
        "summary": "Vive sola, Barthel 35, IADL 2: sostegno a domicilio per igiene, pasti e terapie."}), 201)
    assert plan["state"] == "draft" and plan["vmd_id"] == j.vmd_id and plan["kind"] == "ordinary"
    j.plan_id = plan["id"]
    url = f"/api/care-plans/{j.plan_id}"

    ok(await client.post(f"{url}/goals", headers=h, json={
        "description": "Permanenza al domicilio in sicurezza", "indicator": "Indice di Barthel",
        "target": "Barthel ≥ 45 alla verifica", "due_date": "2026-09-01"}), 201)
    ets_igea = await org(session, "ets-igea")
    asst_cdc = await org(session, "asst-crema-cdc-crema")
    body = ok(await client.post(f"{url}/interventions", headers=h, json={
        "service_type": "sad", "provider_org_id": str(ets_igea.id), "intensity_value": 6,
        "intensity_unit": "ore/settimana", "start_date": "2026-03-09", "end_date": "2026-09-08",
        "funding_source": "fna"}), 201)
    body = ok(await client.post(f"{url}/interventions", headers=h, json={
        "service_type": "adi_cdom", "provider_org_id": str(asst_cdc.id), "intensity_value": 2,
        "intensity_unit": "accessi/settimana", "start_date": "2026-03-16", "funding_source": "fondo_sanitario"}), 201)
    sad, adi = body["interventions"]
    assert (sad["service_type"], sad["intensity_label"]) == ("sad", "6 ore/settimana")
    assert (adi["service_type"], adi["provider_org_id"]) == ("adi_cdom", str(asst_cdc.id))
    assert body["goals"][0]["target"] == "Barthel ≥ 45 alla verifica"
    j.sad_id, j.adi_id = sad["id"], adi["id"]

    assert ok(await client.post(f"{url}/propose", headers=h))["state"] == "proposed"

    # The woman consents herself to the care plan.
    consent = ok(await client.post(f"/api/persons/{j.person_id}/consents", headers=h, json={
        "purpose": "care", "grantor_kind": "self", "valid_from": "2026-03-09",
        "document_ref": "Modulo di consenso firmato al domicilio"}), 201)
    assert consent["purpose"] == "care" and consent["person_id"] == j.person_id

    agreed = ok(await client.post(f"{url}/agree", headers=h, json={"consent_id": consent["id"]}))
    assert agreed["state"] == "agreed" and agreed["agreed_at"] and agreed["consent_id"] == consent["id"]

    r = await client.post(f"{url}/activate", headers=h)
    active = ok(r)
    j.keep("plan_activation", r)
    assert active["state"] == "active" and active["agreed_at"] and active["activated_at"]
    statuses = {i["id"]: i["status"] for i in active["interventions"]}
    assert statuses == {j.sad_id: "active", j.adi_id: "planned"}  # the first intervention started
    assert active["agreed_at"].startswith("2026-03-09") and active["activated_at"].startswith("2026-03-09")
    assert active["next_review_due"]


async def step6_plan_prints(client: AsyncClient, c: Cast, j: Journey) -> None:
    """The plan is printed to be signed: an A4 HTML page with the person, each intervention and its intensity,
    and the signatories (the woman, the case manager, the IFeC of the equipe)."""
    r = await client.get(f"/api/care-plans/{j.plan_id}/print", headers=c.h("social_worker"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), r.text
    html = r.text
    assert re.search(r"@page\s*\{[^}]*size:\s*A4", html)
    assert j.person_name in html
    assert "Servizio di Assistenza Domiciliare (SAD)" in html and "6 ore/settimana" in html
    assert "Assistenza Domiciliare Integrata / Cure domiciliari (ADI - C-DOM)" in html
    assert "2 accessi/settimana" in html
    for signatory in ("Persona interessata", j.person_name, "Case manager", c.social_worker.display_name,
                      c.ifec.display_name):
        assert signatory in html, signatory


async def step8_audit_trail(session: AsyncSession, j: Journey) -> None:
    """Every key request left its audit rows (written with the change), found by its X-Request-ID, naming the
    person."""
    assert set(j.audited) == {"referral", "triage", "refer_vmd", "vmd_sign", "plan_activation"}
    person = uuid.UUID(j.person_id)
    for label, request_id in j.audited.items():
        rows = (await session.execute(sa.select(AuditEvent).where(AuditEvent.request_id == request_id))).scalars().all()
        assert rows, f"{label}: no audit rows"
        assert all(row.outcome == "ok" and row.status in (200, 201) for row in rows), label
        assert any(person in (row.person_ids or []) for row in rows), f"{label}: person not in person_ids"


# ------------------------------------------------------------------------------------------------ the journey
async def test_pua_journey_from_mmg_referral_to_active_printed_plan(client, session, clock):
    cast = await cast_of_the_journey(session)
    journey = Journey()
    # Step 7 (the work queues: the PUA team's triage item, each assessor's assessment item) is checked along the
    # way, in steps 2-4.
    await step1_mmg_refers_the_woman(client, cast, journey)
    await step2_pua_triages(client, session, clock, cast, journey)
    await step3_pua_refers_to_vmd(client, session, cast, journey)
    await step4_integrated_vmd(client, session, clock, cast, journey)
    await step5_care_plan(client, session, clock, cast, journey)
    await step6_plan_prints(client, cast, journey)
    await step8_audit_trail(session, journey)
