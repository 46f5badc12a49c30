"""The world the permission matrix runs in: two cases in the Ambito di Crema (`crema`, reached with a legal basis,
and `revoked`, reached without one and with the consents revoked) and one in the test Ambito of Cremona, with
everything that hangs off a case (VMD, care plan, diary, attachment, PUA request, consents, relation...), and
two users per role: `own` (the comune owning the case, or assigned to it, or the author/holder of the row) and
`other` (same Ambito, not owning, not assigned).

Every ALLOW cell must answer 2xx, so each Crema case holds its subjects in the state each action needs: VMDs
requested / scheduled / in progress (every assessor has recorded an instrument) / in equipe review (signed, met) /
concluded (with a reassessment date); care plans in draft / proposed / agreed / active (one intervention running,
one planned) / under review / suspended; PUA requests registered / in reception / triaged (and one referred to the
COT, for reading). `param()` picks, per route, the row in the right state (`PLAN_FOR`, `VMD_FOR`, `REQUEST_FOR`).
Every cell runs in a transaction rolled back at its end, so an action that consumes its subject (agree, conclude,
refer...) meets a fresh one in every cell.

Built once per module through the API (as the users who would really do it) and, where the API has no way in
(users, teams, assignments with or without a legal basis, break-glass grants, duplicate pairs, work items), through
rows and services. `request_for()` turns (route, role, situation) into the URL, headers and a valid body.
"""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from fastapi import Request
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from domain.discharge.models import DischargeCase
from domain.imports.mapping import template_dict
from domain.imports.models import ImportJob, ImportState
from domain.kernel import clock, storage, work_items
from domain.measures.models import MeasureApplication, MeasureCall
from domain.outbox.models import MessageState, OutboxMessage
from domain.pua.models import AccessRequest, AccessState
from domain.registry import assignments
from domain.registry.models import AssignmentReason, BreakGlassGrant, Cartella, CartellaAssignment, PossibleMatch
from domain.reporting import exports
from domain.reporting.models import ExportState, ReportExport
from domain.security.models import Role, RoleAssignment, Team, TeamMember, TeamType
from domain.services.models import Accreditation, Activation
from domain.territory.models import ServiceUnit
from domain.waiting_list.models import WaitingListBed, WaitingListChoice, WaitingListEntry, WaitingListOffer
from tests.api import permission_matrix as M  # noqa: N812  (the matrix is the subject of every line here)
from tests.factories.registry import insert_person
from tests.support import bearer, make_user, org

LEGAL_BASIS = "Matrice dei permessi: presa in carico integrata (art. 9.2.h GDPR)"

# Where each role's `own` and `other` user works. `own` reaches the Crema case through its organisation (comune,
# sub-ambito) or an assignment written below; `other` works in the same Ambito but reaches nothing of it.
ORGS: dict[Role, tuple[str, str]] = {
    Role.comune_social_worker: ("comune-offanengo", "comune-crema"),
    Role.sub_ambito_coordinator: ("subambito-soncino", "subambito-crema"),  # Offanengo is in the Soncino sub-ambito
    Role.ambito_pua_social_worker: ("ambito-crema", "ambito-crema"),
    Role.asst_pua_operator: ("asst-crema-pua", "asst-crema-pua"),
    Role.asst_front_desk: ("asst-crema-pua", "asst-crema-pua"),
    Role.cdc_assessor: ("asst-crema-cdc-crema", "asst-crema-cdc-crema"),
    Role.cot_operator: ("asst-crema-cot", "asst-crema-cdc-crema"),  # the COT is an office: other = another unit
    Role.ward_staff: ("asst-crema-reparto-medicina", "asst-crema-reparto-medicina"),
    Role.mmg: ("mmg-crema-1", "mmg-crema-1"),
    Role.csc_operator: ("csc-crema", "csc-crema"),
    Role.analyst: ("udp-crema", "udp-crema"),
    Role.ets_operator: ("ets-igea", "ets-meraki"),  # the provider organisation is assigned: other = another ETS
    Role.rsa_operator: ("op-fbc", "op-caimi"),
    Role.system_admin: ("ambito-crema", "ambito-crema"),
    Role.dpo: ("ambito-crema", "ambito-crema"),
    Role.data_steward: ("ambito-crema", "ambito-crema"),
    Role.integration_operator: ("ambito-crema", "ambito-crema"),
    Role.regional_operator: ("regione-lombardia", "regione-lombardia"),  # the Region: no Ambito of its own
}
# Roles whose `own` user is a member of the VMD equipe and an assessor of the scenario's VMD.
EQUIPE = (Role.comune_social_worker, Role.ambito_pua_social_worker, Role.asst_pua_operator, Role.cdc_assessor,
          Role.csc_operator)
ASST_SIDE = {Role.asst_pua_operator, Role.cdc_assessor}
# Purposes revoked in the `revoked` case: those of the roles that need consent (care for the MMG, share_* for the
# ASST side and the providers). `share_cvi` stays in force: it is the consent the revoke cells revoke.
REVOKED_PURPOSES = ("care", "share_asst", "share_rsa", "share_ets")

# Answers valid for the instruments (the matrix keeps its own copy: the cells must reach the success path).
BARTHEL_35 = {"feeding": "needs_help", "bathing": "dependent", "grooming": "needs_help", "dressing": "needs_help",
              "bowels": "occasional_accident", "bladder": "occasional_accident", "toilet_use": "needs_help",
              "transfers": "minor_help", "mobility": "immobile", "stairs": "unable"}
SOCIAL = {"living_arrangement": "alone", "social_network": "limited", "social_isolation": True,
          "caregiver_present": False, "housing_adequacy": "partially_adequate",
          "housing_barriers": ["stairs_without_lift"], "eviction_risk": False, "economic_difficulty": "occasional"}
TRIAGE = {"request_source": "gp", "request_type": "care_need", "need_areas": ["personal_care", "social_relational"],
          "age": 82, "lives_alone": True, "caregiver": "absent", "autonomy_loss": "partial",
          "cognitive_decline": False, "multimorbidity": True, "recent_discharge": False, "caregiver_loss": False,
          "abuse_suspicion": False, "housing_emergency": False}
NOW_ISO = "2026-03-02T09:00:00+01:00"  # tests/conftest.FIXED_NOW: the scenario and the cells run at this instant

# The row each action needs, by the last segments of the route (the other routes use the case's base rows:
# the draft plan, the requested VMD, the PUA request referred to the COT).
PLAN_FOR = {"agree": "proposed", "back-to-draft": "proposed", "activate": "agreed", "reviews/start": "active",
            "complete": "active", "suspend": "active", "reviews": "under_review", "resume": "suspended",
            "start": "active", "end": "active"}
VMD_FOR = {"responses": "scheduled", "sign": "in_progress", "meetings": "in_progress", "conclude": "equipe_review",
           "reassessment": "concluded"}
# The case itself ("") is read on the one with a project, so the providers it names reach it (minimal view).
DISCHARGE_FOR = {"": "project_formulated", "project": "evaluated", "discharge": "project_formulated",
                 "monitoring": "discharged", "close": "monitoring"}
# The application each waiting-list action needs (the others use the `listed` one, with an open offer).
WL_FOR = {"decision": "pending", "urgency/decision": "urgent", "confirm": "suspended"}
# The activation order each services action needs (the reads use the running one), and the measure application.
ACTIVATION_FOR = {"accept": "requested", "decline": "requested", "start": "accepted", "resume": "suspended"}
APPLICATION_FOR = {"assessment": "submitted", "withdraw": "submitted", "eligibility": "assessment_pending",
                   "project": "eligible", "activation": "project_defined", "monitoring": "active", "end": "monitoring"}
REQUEST_FOR = {"reception": "registered", "withdraw": "registered", "cancel": "registered",
               "triage": "in_reception", "orient": "first_level_done", "refer-vmd": "first_level_done",
               "refer-cot": "first_level_done"}


@dataclass
class World:
    """The ids of one case and of the rows around it, in one Ambito."""

    person: uuid.UUID | None = None
    cartella: uuid.UUID | None = None
    consent_care: uuid.UUID | None = None
    consent_revocable: uuid.UUID | None = None
    relation: uuid.UUID | None = None
    vmd: uuid.UUID | None = None
    team: uuid.UUID | None = None
    member: uuid.UUID | None = None
    plan: uuid.UUID | None = None
    goal: uuid.UUID | None = None
    intervention: uuid.UUID | None = None
    attachment: uuid.UUID | None = None
    request: uuid.UUID | None = None
    assignment: uuid.UUID | None = None
    match: uuid.UUID | None = None
    user: uuid.UUID | None = None
    role_assignment: uuid.UUID | None = None
    pending_role: uuid.UUID | None = None  # a role assignment waiting for a second administrator's approval
    comune: uuid.UUID | None = None
    codice_fiscale: str | None = None  # the person's: the regional search looks it up across the Ambiti
    org: uuid.UUID | None = None
    unit: uuid.UUID | None = None
    # rows that belong to one user (keyed by role of the own user; the Cremona world keys them by "*")
    entries: dict[str, uuid.UUID] = field(default_factory=dict)
    grants: dict[str, uuid.UUID] = field(default_factory=dict)
    items: dict[str, uuid.UUID] = field(default_factory=dict)
    # subjects in the state an action needs (see PLAN_FOR, VMD_FOR, REQUEST_FOR)
    consents: dict[str, uuid.UUID] = field(default_factory=dict)            # purpose -> consent
    plans: dict[str, uuid.UUID] = field(default_factory=dict)               # plan state -> plan
    running: dict[str, uuid.UUID] = field(default_factory=dict)             # plan state -> its running intervention
    planned: dict[str, uuid.UUID] = field(default_factory=dict)             # plan state -> its planned intervention
    vmds: dict[str, uuid.UUID] = field(default_factory=dict)                # VMD state -> VMD
    requests: dict[str, uuid.UUID] = field(default_factory=dict)            # PUA request state -> request
    discharge: uuid.UUID | None = None  # a protected discharge signalled from the ward, awaiting the COT
    discharges: dict[str, uuid.UUID] = field(default_factory=dict)          # discharge state -> case
    import_job: uuid.UUID | None = None  # a finished dry run, not yet confirmed
    # waiting lists: an RSA of op-fbc (Crema; the Cremona test RSA), a CDI for new applications, the temporary plan
    wl_unit: uuid.UUID | None = None
    wl_cdi_unit: uuid.UUID | None = None
    wl_plan: uuid.UUID | None = None
    wl_entries: dict[str, uuid.UUID] = field(default_factory=dict)  # WL_FOR state -> application
    wl_offer: uuid.UUID | None = None  # an open offer of a bed of wl_unit to the `listed` application
    # services: activation orders by (provider kind "ets" | "rsa", state); measures: calls and applications by state
    activations: dict[tuple[str, str], uuid.UUID] = field(default_factory=dict)
    order_iv: uuid.UUID | None = None  # a planned intervention of an agreed plan, with no order yet
    m_call: uuid.UUID | None = None  # the call whose figures and waiting rank are read
    m_post_call: uuid.UUID | None = None  # an open call with no application (new applications)
    m_apps: dict[str, uuid.UUID] = field(default_factory=dict)  # application state -> application (own call each)
    outbox_message: uuid.UUID | None = None  # a dead letter to ASST about the case's person
    exports: dict[str, uuid.UUID] = field(default_factory=dict)  # role of the owner -> a ready report export


@dataclass
class Scenario:
    users: dict[tuple[str, str], uuid.UUID] = field(default_factory=dict)  # (role, own|other) -> user id
    headers: dict[uuid.UUID, dict[str, str]] = field(default_factory=dict)
    crema: World = field(default_factory=World)
    cremona: World = field(default_factory=World)
    revoked: World = field(default_factory=World)  # Crema: no legal basis, consents revoked
    ambito_org: uuid.UUID | None = None         # ambito-crema
    cot_org: uuid.UUID | None = None            # asst-crema-cot
    spare_assessor: uuid.UUID | None = None     # an equipe member who is not (yet) an assessor of any VMD
    other_comune: uuid.UUID | None = None       # comune-crema
    other_org: uuid.UUID | None = None          # ets-meraki
    other_unit: uuid.UUID | None = None
    pua_location: uuid.UUID | None = None       # asst-crema-pua
    sub_ambiti: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)  # comune id -> its sub-ambito id
    provider_org: uuid.UUID | None = None       # ets-sentiero (a new provider assignment)
    ward_org: uuid.UUID | None = None           # asst-crema-reparto-medicina (the ward that signals discharges)

    def user(self, role: str, situation: str) -> uuid.UUID:
        return self.users[(role, "other" if situation == "other" else "own")]

    def world(self, situation: str) -> World:
        return {"other_ambito": self.cremona, "revoked": self.revoked}.get(situation, self.crema)


# ================================================================================================ building
class _Api:
    def __init__(self, http: AsyncClient, sc: Scenario):
        self.http, self.sc = http, sc

    async def __call__(self, method: str, url: str, user: uuid.UUID, status: int = 200, **kw) -> dict:
        r = await self.http.request(method, "/api" + url, headers=self.sc.headers[user], **kw)
        assert r.status_code == status, f"scenario setup {method} {url}: {r.status_code} {r.text[:500]}"
        return r.json() if r.headers.get("content-type", "").startswith("application/json") else {}


async def _rows(engine: AsyncEngine, sc: Scenario) -> dict[str, Any]:
    """Users, persons, teams: rows written directly, committed."""
    out: dict[str, Any] = {}
    async with AsyncSession(engine, expire_on_commit=False) as s:
        for role, (own_org, other_org) in ORGS.items():
            for sit, code in (("own", own_org), ("other", other_org)):
                u = await make_user(s, role, code, username=f"mx.{role.value}.{sit}",
                                    profession="IFeC" if role == Role.asst_pua_operator else None)
                sc.users[(role.value, sit)] = u.id
        cw = await make_user(s, Role.comune_social_worker, "comune-cremona", username="mx.cremona.as")
        cop = await make_user(s, Role.asst_pua_operator, "asst-cremona-test", username="mx.cremona.ifec")
        out["cw"], out["cop"] = cw.id, cop.id

        p_own = await insert_person(s, comune="comune-offanengo", sex="F", birth_date=date(1943, 5, 10),
                                    lives_alone=True, birth_place="Crema")
        p_rev = await insert_person(s, comune="comune-offanengo", sex="M", birth_date=date(1939, 11, 3),
                                    lives_alone=True, birth_place="Crema")
        p_bg = await insert_person(s, comune="comune-crema")
        m1, m2 = await insert_person(s, comune="comune-crema"), await insert_person(s, comune="comune-crema")
        p_x = await insert_person(s, ambito="ambito-cremona-test", comune="comune-cremona", sex="M",
                                  birth_date=date(1940, 1, 20), birth_place="Cremona")
        x1 = await insert_person(s, ambito="ambito-cremona-test", comune="comune-cremona")
        x2 = await insert_person(s, ambito="ambito-cremona-test", comune="comune-cremona")
        sc.crema.person, sc.cremona.person, sc.revoked.person = p_own.id, p_x.id, p_rev.id
        for world, p in ((sc.crema, p_own), (sc.cremona, p_x), (sc.revoked, p_rev)):
            world.codice_fiscale = p.codice_fiscale
        out["p_bg"] = p_bg.id

        crema, cremona = await org(s, "ambito-crema"), await org(s, "ambito-cremona-test")
        team = Team(ambito_id=crema.id, code="mx-vmd-crema", name="Équipe VMD della matrice", type=TeamType.vmd_equipe,
                    organisation_id=(await org(s, "asst-crema-cdc-crema")).id)
        team_x = Team(ambito_id=cremona.id, code="mx-vmd-cremona", name="Équipe VMD di Cremona (prova)",
                      type=TeamType.vmd_equipe, organisation_id=(await org(s, "asst-cremona-test")).id)
        s.add_all([team, team_x])
        await s.flush()
        for role in EQUIPE:
            m = TeamMember(team_id=team.id, user_id=sc.users[(role.value, "own")],
                           organisation_id=(await org(s, ORGS[role][0])).id, valid_from=date(2020, 1, 1))
            s.add(m)
            await s.flush()
            sc.crema.member = m.id
        for uid, code in ((cw.id, "comune-cremona"), (cop.id, "asst-cremona-test")):
            m = TeamMember(team_id=team_x.id, user_id=uid, organisation_id=(await org(s, code)).id,
                           valid_from=date(2020, 1, 1))
            s.add(m)
            await s.flush()
            sc.cremona.member = m.id
        # A member of the equipe who assesses no VMD: the one the `assessors` cells add.
        spare = await make_user(s, Role.cdc_assessor, "asst-crema-cdc-crema", username="mx.equipe.spare")
        s.add(TeamMember(team_id=team.id, user_id=spare.id, organisation_id=(await org(s, "asst-crema-cdc-crema")).id,
                         valid_from=date(2020, 1, 1)))
        await s.flush()
        sc.spare_assessor = spare.id
        sc.crema.team, sc.cremona.team = team.id, team_x.id

        for (a, b), world, amb in (((m1, m2), sc.crema, crema), ((x1, x2), sc.cremona, cremona)):
            lo, hi = sorted((a.id, b.id))
            pm = PossibleMatch(ambito_id=amb.id, person_a_id=lo, person_b_id=hi, score=0.8, reasons={"nome": 0.8},
                               source="test")
            s.add(pm)
            await s.flush()
            world.match = pm.id

        # Administration targets: a user of each Ambito and one of their role assignments.
        sc.crema.user = sc.users[("analyst", "own")]
        sc.cremona.user = cw.id
        for world in (sc.crema, sc.cremona):
            world.role_assignment = (await s.execute(sa.select(RoleAssignment.id).where(
                RoleAssignment.user_id == world.user))).scalar_one()
        # A role reaching personal data asked for by a third administrator: the one the `approve` cells approve.
        requester = await make_user(s, Role.system_admin, "ambito-crema", username="mx.system_admin.requester")
        for world, amb, asked_by in ((sc.crema, crema, requester.id), (sc.cremona, cremona, cop.id)):
            ra = RoleAssignment(user_id=world.user, role=Role.data_steward, organisation_id=amb.id,
                                valid_from=date(2026, 3, 1), pending=True, requested_by=asked_by)
            s.add(ra)
            await s.flush()
            world.pending_role = ra.id

        # Territory targets.
        sc.crema.comune = (await org(s, "comune-offanengo")).id
        sc.other_comune = (await org(s, "comune-crema")).id
        sc.cremona.comune = (await org(s, "comune-cremona")).id
        sc.crema.org = (await org(s, "ets-igea")).id
        sc.other_org = (await org(s, "ets-meraki")).id
        sc.cremona.org = (await org(s, "asst-cremona-test")).id
        sc.provider_org = (await org(s, "ets-sentiero")).id
        sc.pua_location = (await org(s, "asst-crema-pua")).id
        sc.ambito_org, sc.cot_org = crema.id, (await org(s, "asst-crema-cot")).id
        sc.ward_org = (await org(s, "asst-crema-reparto-medicina")).id
        units = (await s.execute(sa.select(ServiceUnit.id).where(ServiceUnit.ambito_id == crema.id)
                                 .order_by(ServiceUnit.code).limit(2))).scalars().all()
        sc.crema.unit, sc.other_unit = units[0], units[1]
        sc.cremona.unit = (await s.execute(sa.select(ServiceUnit.id).where(
            ServiceUnit.ambito_id == cremona.id))).scalars().first()
        for code in ("comune-offanengo", "comune-crema", "comune-cremona"):
            c = await org(s, code)
            sc.sub_ambiti[c.id] = c.part_of_id
        await s.commit()
    for uid in [*sc.users.values(), out["cw"], out["cop"]]:
        sc.headers[uid] = bearer(uid)
    return out


async def _assign(engine: AsyncEngine, cartella_id: uuid.UUID, reason: AssignmentReason, *, legal_basis: bool = True,
                  **who) -> uuid.UUID:
    """A cartella assignment, with a legal basis (the `crema` case: consent is not what the matrix tests there) or
    without one (the `revoked` case: the read rests on consent alone)."""
    async with AsyncSession(engine, expire_on_commit=False) as s:
        a = await assignments.assign(s, cartella_id=cartella_id, reason=reason, **who)
        a.legal_basis = LEGAL_BASIS if legal_basis else None
        s.add(a)
        await s.commit()
        return a.id


async def _case(api: _Api, world: World, *, worker: uuid.UUID) -> None:
    """Cartella, consents, a relation, an attachment."""
    c = await api("POST", f"/persons/{world.person}/cartelle", worker, 201, json={"area": "anziani"})
    world.cartella = uuid.UUID(c["id"])
    for purpose in ("care", "share_asst", "share_rsa", "share_ets", "share_cvi"):
        r = await api("POST", f"/persons/{world.person}/consents", worker, 201,
                      json={"purpose": purpose, "grantor_kind": "self", "valid_from": "2026-03-01"})
        world.consents[purpose] = uuid.UUID(r["id"])
    world.consent_care = world.consents["care"]
    world.consent_revocable = world.consents["share_cvi"]
    r = await api("POST", f"/persons/{world.person}/relations", worker, 201, json={
        "kind": "caregiver", "surname": "Ferrari", "given_name": "Luca", "contacts": {"mobile": "+39 333 1234567"}})
    world.relation = uuid.UUID(r["id"])
    r = await api("POST", f"/cartelle/{world.cartella}/attachments", worker, 201,
                  files={"file": ("nota.txt", b"Relazione sociale di prova.", "text/plain")}, data={"kind": "other"})
    world.attachment = uuid.UUID(r["id"])


async def _plan(api: _Api, world: World, worker: uuid.UUID, interventions: list[dict[str, Any]]
                ) -> tuple[uuid.UUID, uuid.UUID, list[uuid.UUID]]:
    """A draft plan with one goal and the given interventions: (plan, goal, interventions)."""
    r = await api("POST", "/care-plans", worker, 201, json={
        "cartella_id": str(world.cartella), "case_manager_id": str(worker), "title": "Sostegno alla domiciliarità"})
    plan = uuid.UUID(r["id"])
    r = await api("POST", f"/care-plans/{plan}/goals", worker, 201, json={
        "description": "Permanenza al domicilio in sicurezza", "indicator": "Accessi in Pronto Soccorso",
        "target": "Nessun accesso in 6 mesi", "due_date": "2026-09-01"})
    goal = uuid.UUID(r["goals"][0]["id"])
    for body in interventions:
        r = await api("POST", f"/care-plans/{plan}/interventions", worker, 201, json={
            "intensity_value": 6, "intensity_unit": "ore/settimana", "start_date": "2026-03-02",
            "funding_source": "fna", **body})
    return plan, goal, [uuid.UUID(i["id"]) for i in r["interventions"]]


async def _plans(api: _Api, world: World, worker: uuid.UUID, interventions: list[dict[str, Any]]) -> None:
    """One plan per state an action starts from: draft, proposed, agreed, active (the first intervention running,
    the second planned), under review, suspended."""
    world.plan, world.goal, ivs = await _plan(api, world, worker, interventions)
    world.intervention = ivs[0]
    world.plans["draft"] = world.plan
    steps = {"proposed": ["propose"], "agreed": ["propose", "agree"], "active": ["propose", "agree", "activate"],
             "under_review": ["propose", "agree", "activate", "reviews/start"],
             "suspended": ["propose", "agree", "activate", "suspend"]}
    bodies = {"agree": {"consent_id": str(world.consents["care"])}, "suspend": REASON}
    for state, actions in steps.items():
        plan, _, ivs = await _plan(api, world, worker, interventions)
        for action in actions:
            body = {"intervention_ids": [str(ivs[0])]} if action == "activate" else bodies.get(action)
            r = await api("POST", f"/care-plans/{plan}/{action}", worker, 200, json=body)
        assert r["state"] == state, (state, r["state"])
        world.plans[state] = plan
        world.running[state], world.planned[state] = ivs[0], ivs[1]


async def _vmds(api: _Api, sc: Scenario, world: World, own: dict[str, uuid.UUID]) -> None:
    """Besides the VMD the MMG requested (`requested`): one VMD per later state, each with its own trigger (one
    open VMD per trigger and cartella), all with the equipe's assessors."""
    manager = own["asst_pua_operator"]
    steps = {"scheduled": ("other", 1), "in_progress": ("cdcd", 2), "equipe_review": ("asd", 3),
             "concluded": ("invalidita_civile", 4)}
    for state, (trigger, depth) in steps.items():
        v = await api("POST", "/vmd", manager, 201, json={
            "person_id": str(world.person), "cartella_id": str(world.cartella), "trigger": trigger,
            "team_id": str(sc.crema.team)})
        vid = v["id"]
        for role in EQUIPE:
            await api("POST", f"/vmd/{vid}/assessors", manager, 201, json={"user_id": str(own[role.value])})
        await api("POST", f"/vmd/{vid}/schedule", manager, 200,
                  json={"scheduled_for": "2026-03-05T10:00:00+01:00", "location": "Casa di Comunità di Crema"})
        if depth >= 2:
            for role in EQUIPE:
                await api("POST", f"/vmd/{vid}/responses", own[role.value], 201, json=_response(role.value))
        if depth >= 3:
            await api("POST", f"/vmd/{vid}/sign", own["comune_social_worker"], 200)
            await api("POST", f"/vmd/{vid}/meetings", manager, 201, json=MEETING)
        if depth >= 4:
            await api("POST", f"/vmd/{vid}/conclude", manager, 200,
                      json={"outcome": "no_need", "reassessment_due": "2026-09-02"})
        v = await api("GET", f"/vmd/{vid}", manager)
        assert v["state"] == state, (state, v["state"])
        world.vmds[state] = uuid.UUID(vid)


def _response(role: str) -> dict[str, Any]:
    """The instrument each assessor fills: Barthel on the ASST side, the social module on the other."""
    if role in {r.value for r in ASST_SIDE}:
        return {"instrument_code": "barthel", "answers": BARTHEL_35}
    return {"instrument_code": "social_risk", "answers": SOCIAL}


MEETING = {"held_at": NOW_ISO, "participants": [{"name": "Figlia della signora", "role": "familiare"}],
           "minutes": "Valutazione condivisa: non autosufficiente, vive sola.", "decision": "Proposta di progetto"}


async def _requests(api: _Api, sc: Scenario, world: World, own: dict[str, uuid.UUID]) -> None:
    """The PUA request the desk registered on the MMG's referral (later referred to the COT, `world.request`), and
    one request per open state: registered, in reception, triaged (first level done)."""
    body = {"person_id": str(world.person), "channel": "referral_mmg", "referring_user_id": str(own["mmg"]),
            "reported_need": "Anziana sola, fatica a gestire igiene e spesa dopo una caduta.",
            "need_domains": ["personal_care"], "location_org_id": str(sc.pua_location)}
    r = await api("POST", "/pua/requests", own["asst_front_desk"], 201, json=body)
    world.request = uuid.UUID(r["id"])
    pua = own["asst_pua_operator"]
    for state, actions in (("registered", []), ("in_reception", ["reception"]),
                           ("first_level_done", ["reception", "triage"])):
        r = await api("POST", "/pua/requests", own["asst_front_desk"], 201, json=body)
        rid = r["id"]
        for action in actions:
            r = await api("POST", f"/pua/requests/{rid}/{action}", pua, 200,
                          json={"answers": TRIAGE} if action == "triage" else {})
        world.requests[state] = uuid.UUID(rid)


async def _crema_case(api: _Api, engine: AsyncEngine, sc: Scenario, world: World, own: dict[str, uuid.UUID],
                      ids: dict[str, uuid.UUID], *, legal_basis: bool) -> None:
    """A case of an Offanengo resident: the comune owns it; the MMG, the providers (ETS, RSA) and the COT are
    assigned (with or without a legal basis); the equipe assesses it; plans, VMDs and PUA requests in every state an
    action starts from; one diary entry per writer role."""
    cw = own["comune_social_worker"]
    await _case(api, world, worker=cw)
    c = world.cartella
    await _assign(engine, c, AssignmentReason.referring_mmg, user_id=own["mmg"], legal_basis=legal_basis)
    await _assign(engine, c, AssignmentReason.provider, organisation_id=ids["ets-igea"], legal_basis=legal_basis)
    await _assign(engine, c, AssignmentReason.provider, organisation_id=ids["op-fbc"], legal_basis=legal_basis)
    world.assignment = await _assign(engine, c, AssignmentReason.assessor, organisation_id=ids["asst-crema-cot"],
                                     legal_basis=legal_basis)
    # The MMG asks for the VMD of their patient; the equipe operator adds the assessors of both sides.
    v = await api("POST", "/vmd", own["mmg"], 201, json={
        "person_id": str(world.person), "cartella_id": str(c), "trigger": "mmg", "team_id": str(sc.crema.team),
        "referring_user_id": str(own["mmg"])})
    world.vmd = world.vmds["requested"] = uuid.UUID(v["id"])
    for role in EQUIPE:
        await api("POST", f"/vmd/{world.vmd}/assessors", own["asst_pua_operator"], 201,
                  json={"user_id": str(own[role.value])})
    await _vmds(api, sc, world, own)
    await _plans(api, world, cw, [
        {"service_type": "sad", "provider_org_id": str(ids["ets-igea"])},
        {"service_type": "rsa_aperta", "provider_org_id": str(ids["op-fbc"])}])
    # One diary entry per writer role, written by that role's own user (the author may edit it).
    for role in M.DIARY_WRITERS:
        r = await api("POST", f"/cartelle/{c}/diary", own[role.value], 201, json={
            "type": "colloquio", "occurred_at": "2026-03-02T08:30:00+01:00",
            "text": "Colloquio con la persona e il caregiver."})
        world.entries[role.value] = uuid.UUID(r["id"])
    await _requests(api, sc, world, own)
    await _discharge(api, sc, world, own, providers=[ids["ets-igea"], ids["op-fbc"]])
    await _temporary_plan(api, world, cw)


async def _discharge(api: _Api, sc: Scenario, world: World, own: dict[str, uuid.UUID], *,
                     providers: list[uuid.UUID]) -> None:
    """The protected discharge the ward signalled for the person (the COT of Crema evaluates; Offanengo is told)."""
    r = await api("POST", "/discharges", own["ward_staff"], 201, json=_discharge_body(sc, world))
    world.discharge = uuid.UUID(r["id"])
    cot, cw = own["cot_operator"], own["comune_social_worker"]
    steps = [("evaluated", cot, "evaluation", {"vmd_id": str(world.vmds["concluded"]), "setting": "home"}),
             ("project_formulated", cw, "project", {"cartella_id": str(world.cartella), "case_manager_id": str(cw),
                                                    "title": "Rientro a domicilio con SAD e ADI"}),
             ("discharged", cot, "discharge", {"services": ["sad", "adi"]}),
             ("monitoring", cot, "monitoring", {})]
    for n, (state, _, _, _) in enumerate(steps):
        r = await api("POST", "/discharges", own["ward_staff"], 201, json=_discharge_body(sc, world))
        for _, user, action, body in steps[:n + 1]:
            r = await api("POST", f"/discharges/{r['id']}/{action}", user, 200, json=body)
            for provider in providers if action == "project" else []:  # named in the project: the minimal view
                await api("POST", f"/care-plans/{r['plan_id']}/interventions", cw, 201, json={
                    "service_type": "sad", "provider_org_id": str(provider), "intensity_value": 6,
                    "intensity_unit": "ore/settimana", "start_date": "2026-03-04", "funding_source": "fna"})
        assert r["state"] == state, (state, r["state"])
        world.discharges[state] = uuid.UUID(r["id"])


def _discharge_body(sc: Scenario, world: World) -> dict[str, Any]:
    return {"person_id": str(world.person), "ward_org_id": str(sc.ward_org), "admission_date": "2026-02-24",
            "expected_discharge_date": "2026-03-04", "criteria": ["over65_not_self_sufficient"],
            "social_risk": True, "clinician_summary": "Non autosufficiente dopo la frattura, vive sola."}


async def _temporary_plan(api: _Api, world: World, worker: uuid.UUID) -> None:
    """The temporary plan the listing decision needs, agreed (before the `revoked` case loses its consents)."""
    r = await api("POST", "/care-plans", worker, 201, json={
        "cartella_id": str(world.cartella), "case_manager_id": str(worker), "kind": "temporary",
        "title": "Sostegno al domicilio durante l'attesa della RSA"})
    plan = r["id"]
    await api("POST", f"/care-plans/{plan}/goals", worker, 201, json={
        "description": "Restare a casa in sicurezza", "indicator": "Accessi in Pronto Soccorso", "target": "Nessuno"})
    await api("POST", f"/care-plans/{plan}/interventions", worker, 201, json={"service_type": "sad"})
    await api("POST", f"/care-plans/{plan}/propose", worker, 200)
    r = await api("POST", f"/care-plans/{plan}/agree", worker, 200, json={"consent_id": str(world.consents["care"])})
    assert r["state"] == "agreed"
    world.wl_plan = uuid.UUID(plan)


async def _waiting_list_rows(s: AsyncSession, world: World, *, ambito: uuid.UUID, comune: uuid.UUID | None,
                             operator_user: uuid.UUID, vmd: uuid.UUID | None, spare_person: uuid.UUID | None = None
                             ) -> None:
    """Applications in the states the actions start from (one UDO type each: one open application per person and
    type), all choosing `world.wl_unit`: `pending` (CDI... cure intermedie, its VMD signed with Barthel), `listed`
    (RSA, with an open offer of a bed), `urgent` (RSD, urgency raised), `suspended` (CSS, two refusals); a free bed
    for the offer cells and, with `spare_person`, a listed application nobody has offered anything to yet."""
    def entry(udo_type: str, state: str, person: uuid.UUID = world.person, **kw) -> WaitingListEntry:
        return WaitingListEntry(ambito_id=ambito, person_id=person, comune_id=comune, udo_type=udo_type, state=state,
                                applicant="relative", application_date=date(2026, 2, 1), vmd_id=vmd,
                                cartella_id=world.cartella, **kw)
    listed = dict(listing_date=date(2026, 2, 15), barthel=35, caregiver="none", lives_alone=True,
                  temporary_plan_id=world.wl_plan)
    rows = {"pending": entry("cure_intermedie", "assessment_pending"), "listed": entry("rsa", "listed", **listed),
            "urgent": entry("rsd", "listed", urgency="raised", urgency_reason="loss_of_home",
                            urgency_note="Sfratto esecutivo", **listed),
            "suspended": entry("css", "suspended", refusals=2, **listed)}
    if spare_person is not None:
        rows["spare"] = entry("rsa", "listed", person=spare_person, **listed)
    s.add_all(rows.values())
    await s.flush()
    s.add_all([WaitingListChoice(entry_id=e.id, unit_id=world.wl_unit, rank=1) for e in rows.values()])
    world.wl_entries = {k: e.id for k, e in rows.items()}
    offered, free = (WaitingListBed(ambito_id=ambito, unit_id=world.wl_unit, declared_by=operator_user)
                     for _ in range(2))
    s.add_all([offered, free])
    await s.flush()
    o = WaitingListOffer(ambito_id=ambito, bed_id=offered.id, unit_id=world.wl_unit, entry_id=rows["listed"].id,
                         person_id=world.person, position=1, score=50.0)
    s.add(o)
    await s.flush()
    world.wl_offer = o.id


async def _services_rows(s: AsyncSession, world: World, *, ambito: uuid.UUID, comune: uuid.UUID | None,
                         orders: dict[tuple[str, str], tuple[uuid.UUID, uuid.UUID, uuid.UUID, str]],
                         vmd: uuid.UUID | None, plan: uuid.UUID | None, accredit: tuple[uuid.UUID, str]) -> None:
    """Activation orders in the states the actions start from (`orders`: (kind, state) -> (plan, intervention,
    provider, service type); one open order per intervention), the provider's accreditation, and the measure
    applications of the person in each state, one call each (one open application per person and call), plus the
    call read for figures and an open call with no application yet."""
    s.add(Accreditation(ambito_id=ambito, organisation_id=accredit[0], service_type=accredit[1],
                        valid_from=date(2026, 1, 1), unit_cost=Decimal("21.50")))
    for (kind, state), (plan_id, iv, provider, service_type) in orders.items():
        a = Activation(ambito_id=ambito, person_id=world.person, comune_id=comune, cartella_id=world.cartella,
                       plan_id=plan_id, intervention_id=iv, provider_org_id=provider, service_type=service_type,
                       intensity_value=Decimal(6), intensity_unit="hours_week", unit_cost=Decimal("21.50"),
                       funding_source="fna", start_date=date(2026, 3, 2), state=state,
                       started_at=clock.now() if state in ("active", "suspended") else None, version=1)
        s.add(a)
        await s.flush()
        world.activations[(kind, state)] = a.id

    def call(title: str) -> MeasureCall:
        c = MeasureCall(ambito_id=ambito, measure_code="b1", title=title, opens_on=date(2026, 1, 1),
                        closes_on=date(2026, 12, 31), budget=Decimal(100000), version=1)
        s.add(c)
        return c
    main, post = call("Misura B1 2026"), call("Misura B1 2026 - domande nuove")
    await s.flush()
    world.m_call, world.m_post_call = main.id, post.id
    for state in ("submitted", "assessment_pending", "eligible", "project_defined", "active", "monitoring"):
        c = call(f"Misura B1 2026 - {state}")
        await s.flush()
        running = state in ("active", "monitoring")
        app = MeasureApplication(
            ambito_id=ambito, call_id=c.id, measure_code="b1", person_id=world.person, comune_id=comune,
            cartella_id=world.cartella, application_date=date(2026, 3, 1), state=state,
            vmd_id=vmd if state != "submitted" else None, need_score=65 if state != "submitted" else None,
            plan_id=plan if state in ("project_defined", "active", "monitoring") else None,
            amount=Decimal(1000) if running else None, period_start=date(2026, 3, 2) if running else None,
            period_end=date(2027, 3, 2) if running else None, version=1)
        s.add(app)
        await s.flush()
        world.m_apps[state] = app.id


def _discharge_bundle(sc: Scenario, world: World) -> dict[str, Any]:
    """The same signal as _discharge_body, as the FHIR transaction Bundle ASST sends (server references only)."""
    d = _discharge_body(sc, world)
    patient, ward = {"reference": f"Patient/{d['person_id']}"}, {"reference": f"Organization/{d['ward_org_id']}"}
    base = "https://pua.ambito-crema.example/fhir"
    return {"resourceType": "Bundle", "type": "transaction",
            "identifier": {"system": "https://asst-crema.example/sid/segnalazioni", "value": "matrice-1"},
            "entry": [
                {"fullUrl": "urn:uuid:6f1c3f5e-0000-4000-8000-000000000001", "request": {"method": "POST",
                                                                                        "url": "Encounter"},
                 "resource": {"resourceType": "Encounter", "status": "in-progress", "class": {"code": "IMP"},
                              "subject": patient, "period": {"start": d["admission_date"],
                                                             "end": d["expected_discharge_date"]}}},
                {"fullUrl": "urn:uuid:6f1c3f5e-0000-4000-8000-000000000002", "request": {"method": "POST",
                                                                                        "url": "ServiceRequest"},
                 "resource": {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
                              "subject": patient, "requester": ward, "note": [{"text": d["clinician_summary"]}],
                              "reasonCode": [{"coding": [{"system": f"{base}/CodeSystem/criterio-dimissione-protetta",
                                                          "code": c}]} for c in d["criteria"]]}},
                {"request": {"method": "POST", "url": "Task"},
                 "resource": {"resourceType": "Task", "status": "requested", "intent": "order",
                              "focus": {"reference": "urn:uuid:6f1c3f5e-0000-4000-8000-000000000002"}}}]}


async def _revoke(api: _Api, engine: AsyncEngine, world: World, worker: uuid.UUID) -> None:
    """The `revoked` case: no assignment of the person's cartelle keeps a legal basis (the flows wrote some: VMD
    team and assessors, plan case manager and providers), and the consents of the cross-organisation purposes are
    revoked through the API."""
    async with AsyncSession(engine) as s:
        await s.execute(sa.update(CartellaAssignment).where(CartellaAssignment.cartella_id.in_(
            sa.select(Cartella.id).where(Cartella.person_id == world.person))).values(legal_basis=None))
        await s.commit()
    for purpose in REVOKED_PURPOSES:
        await api("POST", f"/persons/{world.person}/consents/{world.consents[purpose]}/revoke", worker, 200,
                  json={"reason": "La persona ha revocato il consenso"})


async def build(engine: AsyncEngine, http: AsyncClient) -> Scenario:
    sc = Scenario()
    extra = await _rows(engine, sc)
    api = _Api(http, sc)
    own = {r.value: sc.users[(r.value, "own")] for r in Role}
    cw, cop = extra["cw"], extra["cop"]
    async with AsyncSession(engine) as s:
        ids = {code: (await org(s, code)).id for code in ("ets-igea", "op-fbc", "asst-crema-cot", "asst-crema",
                                                          "asst-cremona-test")}

    # ---------------------------------------------------------------- Crema: the 82-year-old of Offanengo
    await _crema_case(api, engine, sc, sc.crema, own, ids, legal_basis=True)
    # ---------------------------------------------------------------- Crema: the same, consent revoked
    await _crema_case(api, engine, sc, sc.revoked, own, ids, legal_basis=False)
    await _revoke(api, engine, sc.revoked, own["comune_social_worker"])

    # ---------------------------------------------------------------- Cremona: a case of the other Ambito
    await _case(api, sc.cremona, worker=cw)
    v = await api("POST", "/vmd", cw, 201, json={
        "person_id": str(sc.cremona.person), "cartella_id": str(sc.cremona.cartella), "trigger": "pua",
        "team_id": str(sc.cremona.team)})
    sc.cremona.vmd = uuid.UUID(v["id"])
    await api("POST", f"/vmd/{sc.cremona.vmd}/assessors", cop, 201, json={"user_id": str(cw)})
    sc.cremona.plan, sc.cremona.goal, ivs = await _plan(api, sc.cremona, cw, [
        {"service_type": "adi_cdom", "provider_org_id": str(ids["asst-cremona-test"]),
         "intensity_unit": "accessi/settimana", "funding_source": "fondo_sanitario"}])
    sc.cremona.intervention = ivs[0]
    r = await api("POST", f"/cartelle/{sc.cremona.cartella}/diary", cw, 201, json={
        "type": "nota", "occurred_at": "2026-03-02T08:30:00+01:00", "text": "Nota di prova."})
    sc.cremona.entries["*"] = uuid.UUID(r["id"])

    # ---------------------------------------------------------------- rows the API has no door for
    async with AsyncSession(engine, expire_on_commit=False) as s:
        cot = ids["asst-crema-cot"]
        await s.execute(sa.update(AccessRequest).where(AccessRequest.id.in_([sc.crema.request, sc.revoked.request]))
                        .values(state=AccessState.referred_cot.value, orientation={"cot_org_id": str(cot)}))
        ar = AccessRequest(ambito_id=(await org(s, "ambito-cremona-test")).id, person_id=sc.cremona.person,
                           cartella_id=sc.cremona.cartella, channel="desk", requester_kind="self",
                           reported_need="Richiesta di informazioni.", need_domains=[],
                           location_org_id=ids["asst-cremona-test"], operator_id=cop, state=AccessState.registered,
                           orientation={}, version=1)
        s.add(ar)
        await s.flush()
        sc.cremona.request = ar.id
        dc = DischargeCase(ambito_id=ar.ambito_id, person_id=sc.cremona.person, ward_org_id=ids["asst-cremona-test"],
                           opened_by=cop, admission_date=date(2026, 2, 24), expected_discharge_date=date(2026, 3, 4),
                           criteria=["homeless"], clinician_summary="Segnalazione di prova.", version=1)
        s.add(dc)
        await s.flush()
        sc.cremona.discharge = dc.id
        units = {code: (await s.execute(sa.select(ServiceUnit.id).where(ServiceUnit.code == code))).scalar_one()
                 for code in ("rsa-fbc-crema-1", "cdi-fbc-crema", "rsa-cremona-test")}
        spare = await insert_person(s, comune="comune-offanengo", birth_date=date(1936, 2, 9))
        offanengo = (await org(s, "comune-offanengo")).id
        for world, spare_person in ((sc.crema, spare.id), (sc.revoked, None)):
            world.wl_unit, world.wl_cdi_unit = units["rsa-fbc-crema-1"], units["cdi-fbc-crema"]
            await _waiting_list_rows(s, world, ambito=(await org(s, "ambito-crema")).id, comune=offanengo,
                                     operator_user=own["rsa_operator"], vmd=world.vmds["equipe_review"],
                                     spare_person=spare_person)
        fbc = ids["op-fbc"]
        for world in (sc.crema, sc.revoked):
            world.order_iv = world.running["agreed"]
            orders = {(kind, state): (world.plans[plan_state], iv[plan_state], org_id, service_type)
                      for state, plan_state in (("requested", "proposed"), ("accepted", "active"),
                                                ("active", "under_review"), ("suspended", "suspended"))
                      for kind, iv, org_id, service_type in (("ets", world.running, ids["ets-igea"], "sad"),
                                                             ("rsa", world.planned, fbc, "rsa_aperta"))}
            await _services_rows(s, world, ambito=(await org(s, "ambito-crema")).id, comune=offanengo,
                                 orders=orders, vmd=world.vmds["concluded"], plan=world.plans["agreed"],
                                 accredit=(ids["ets-igea"], "sad"))
        sc.cremona.order_iv = sc.cremona.intervention
        await _services_rows(s, sc.cremona, ambito=ar.ambito_id, comune=sc.cremona.comune,
                             orders={("ets", "active"): (sc.cremona.plan, sc.cremona.intervention,
                                                         ids["asst-cremona-test"], "adi_cdom")},
                             vmd=sc.cremona.vmd, plan=sc.cremona.plan, accredit=(ids["asst-cremona-test"], "adi_cdom"))
        sc.cremona.wl_unit = sc.cremona.wl_cdi_unit = units["rsa-cremona-test"]
        await _waiting_list_rows(s, sc.cremona, ambito=ar.ambito_id, comune=sc.cremona.comune, operator_user=cop,
                                 vmd=sc.cremona.vmd)
        for world, ambito_code, steward in ((sc.crema, "ambito-crema", own["data_steward"]),
                                            (sc.cremona, "ambito-cremona-test", cw)):
            job = ImportJob(ambito_id=(await org(s, ambito_code)).id, created_by=steward, dry_run=True,
                            source_system="matrice", file_name="matrice.csv", file_sha256="0" * 64,
                            file_format="csv", mapping=template_dict(), state=ImportState.done, total_rows=0)
            s.add(job)
            await s.flush()
            world.import_job = job.id
        for world, ambito_code in ((sc.crema, "ambito-crema"), (sc.cremona, "ambito-cremona-test")):
            mid = uuid.uuid4()
            s.add(OutboxMessage(id=mid, ambito_id=(await org(s, ambito_code)).id, person_id=world.person,
                                event="consent.changed", source_type="consent", source_id=uuid.uuid4(),
                                source_state="granted", dedup_key=f"matrix:{mid}", idempotency_key=str(mid),
                                resource_types=["Consent"], payload={"resourceType": "Bundle", "type": "transaction"},
                                state=MessageState.dead, basis="matrice", basis_kind="legal_basis", attempts=8,
                                last_error="HTTP 500", last_status=500, dead_at=clock.now()))
            await s.flush()
            world.outbox_message = mid
        for world, ambito_code, owners in ((sc.crema, "ambito-crema", {r.value: own[r.value]
                                                                        for r in M.REPORT_READERS}),
                                           (sc.cremona, "ambito-cremona-test", {"*": cw})):
            for key, owner in owners.items():
                world.exports[key] = await _ready_export(s, ambito=(await org(s, ambito_code)).id, owner=owner)
        sc.cremona.assignment = (await s.execute(sa.select(CartellaAssignment.id).where(
            CartellaAssignment.cartella_id == sc.cremona.cartella).order_by(CartellaAssignment.id))).scalars().first()
        crema_amb, cremona_amb = (await org(s, "ambito-crema")).id, (await org(s, "ambito-cremona-test")).id
        for role in M.WORKERS:
            item = await work_items.create(s, kind="matrix.test", title="Attività di prova", source_type="matrix",
                                           source_id=uuid.uuid4(), ambito_id=crema_amb,
                                           assignee_user_id=own[role.value])
            sc.crema.items[role.value] = item.id
        item = await work_items.create(s, kind="matrix.test", title="Attività di prova", source_type="matrix",
                                       source_id=uuid.uuid4(), ambito_id=cremona_amb, assignee_user_id=cw)
        sc.cremona.items["*"] = item.id
        now = clock.now()
        for role in M.BREAK_GLASS:
            g = BreakGlassGrant(user_id=own[role.value], person_id=extra["p_bg"], reason="Urgenza di prova",
                                started_at=now, expires_at=now.replace(year=now.year + 1))
            s.add(g)
            await s.flush()
            sc.crema.grants[role.value] = g.id
        g = BreakGlassGrant(user_id=cw, person_id=sc.cremona.person, reason="Urgenza di prova", started_at=now,
                            expires_at=now.replace(year=now.year + 1))
        s.add(g)
        await s.flush()
        sc.cremona.grants["*"] = g.id
        await s.commit()
    # The `revoked` case shares the rows that are not case data with the `crema` one: the caller's work items and
    # break-glass grants, and the Ambito's territory, users, teams and duplicate pairs.
    for name in ("match", "user", "role_assignment", "pending_role", "comune", "org", "unit", "team", "member",
                 "grants", "items", "import_job", "outbox_message", "exports"):
        setattr(sc.revoked, name, getattr(sc.crema, name))
    return sc


async def _ready_export(s: AsyncSession, *, ambito: uuid.UUID, owner: uuid.UUID) -> uuid.UUID:
    """A report export of `owner`, done, its file in the store, a year before it expires."""
    data = "Codice;Indicatore\r\nP1;Richieste con primo livello\r\n".encode("utf-8-sig")
    now = clock.now()
    export = ReportExport(ambito_id=ambito, created_by=owner, kind="indicators", format="csv",
                          params={"year": now.year, "by": "ambito", "reading": None, "cutoff": None,
                                  "indicator": "P1"}, steps=[["P1", now.year]], steps_done=1,
                          state=ExportState.done, file_key=storage.blob_store(exports.STORE_AREA).put(data),
                          file_name=f"indicatori-{now.year}-ambito.csv", media_type="text/csv; charset=utf-8",
                          file_bytes=len(data), started_at=now, finished_at=now,
                          expires_at=now.replace(year=now.year + 1))
    s.add(export)
    await s.flush()
    return export.id


# ================================================================================================ requests
def rolled_back_session(engine: AsyncEngine):
    """A replacement for api.deps.get_session: the request's unit of work runs in a savepoint of a transaction
    that is rolled back when the request ends, so no request changes what the next one sees."""
    from api.deps import request_boundary

    async def _session(request: Request):
        async with engine.connect() as conn:
            outer = await conn.begin()
            s = AsyncSession(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False,
                             autoflush=False)
            try:
                async with request_boundary(s, request, savepoint=True):
                    yield s
            finally:
                # Before the rollback: how many audit rows this request left, in its own transaction (success) or
                # in the separate one (refusal, failure). The matrix asserts every cell left at least one.
                rid = getattr(request.state, "request_id", None)
                AUDITED[rid] = (await conn.execute(
                    sa.text("select count(*) from audit_event where request_id = :r"), {"r": rid})).scalar_one()
                await s.close()
                await outer.rollback()

    return _session


AUDITED: dict[str | None, int] = {}


def _own_row(rows: dict[str, uuid.UUID], role: str) -> uuid.UUID:
    """The row of this role's own user, else any row (the role is refused before the row matters)."""
    return rows.get(role) or rows.get("*") or next(iter(rows.values()))


def _action(path: str) -> str:
    """The action a route performs on its subject: the segments after the last path parameter
    ("agree", "reviews/start", "start"...), "" for the subject itself."""
    return path.rsplit("}", 1)[-1].strip("/")


def param(sc: Scenario, path: str, name: str, role: str, situation: str) -> str:
    w = sc.world(situation)
    if name == "code":
        if path.startswith("/api/reports"):
            return "P1"
        if path.startswith("/api/instruments"):
            return "barthel"
        if path.startswith("/api/catalogue/measures"):
            return "pro_vi"
        return "sad" if "service-types" in path else "fna"
    if name == "version":
        return "1"
    if name == "questionnaire_id":
        return "barthel-1"
    if name == "report_id":  # an indicator and a year: P1 of the scenario's year
        return "P1-2026"
    if name == "assignment_id":
        if path.endswith("/approve"):
            return str(w.pending_role)
        return str(w.role_assignment if path.startswith("/api/admin") else w.assignment)
    if name == "entry_id":
        return str(_own_row(w.entries, role))
    if name == "grant_id":
        return str(_own_row(w.grants, role))
    if name == "item_id":
        return str(_own_row(w.items, role))
    if name == "export_id":
        return str(_own_row(w.exports, role))
    if name == "comune_id":
        return str(sc.other_comune if situation == "other" else w.comune)
    if name == "org_id":
        return str(sc.other_org if situation == "other" else w.org)
    if path.startswith("/api/waiting-lists"):
        if name == "unit_id":  # the RSA of the case: `other` is another user (another RSA's operator, comune...)
            return str(w.wl_unit)
        if name == "offer_id":
            return str(w.wl_offer)
        if name == "application_id":
            return str(w.wl_entries[WL_FOR.get(_action(path), "listed")])
    if name == "activation_id":  # the order of the caller's kind of provider (the case side reads the ETS's)
        kind = "rsa" if role == "rsa_operator" else "ets"
        state = ACTIVATION_FOR.get(_action(path), "active")
        return str(w.activations.get((kind, state)) or next(iter(w.activations.values())))
    if name == "call_id":
        return str(w.m_call)
    if name == "application_id" and path.startswith("/api/measures"):
        return str(w.m_apps.get(APPLICATION_FOR.get(_action(path), "active")))
    if name == "plan_id" and path.startswith("/api/services/plans"):  # a plan with orders
        return str(w.plans.get("active", w.plan))
    if name == "unit_id":
        return str(sc.other_unit if situation == "other" else w.unit)
    action = _action(path)
    if name == "plan_id":
        return str(w.plans.get(PLAN_FOR.get(action, "draft"), w.plan))
    if name == "intervention_id" and action in ("start", "end"):
        state = PLAN_FOR[action]
        return str((w.planned if action == "start" else w.running).get(state, w.intervention))
    if name == "vmd_id":
        return str(w.vmds.get(VMD_FOR.get(action, "requested"), w.vmd))
    if name == "discharge_id":
        return str(w.discharges.get(DISCHARGE_FOR.get(action, ""), w.discharge))
    if name == "request_id":
        return str(w.requests[REQUEST_FOR[action]] if action in REQUEST_FOR and w.requests else w.request)
    simple = {"person_id": w.person, "cartella_id": w.cartella, "consent_id": w.consent_revocable,
              "relation_id": w.relation, "goal_id": w.goal,
              "intervention_id": w.intervention, "attachment_id": w.attachment,
              "match_id": w.match, "user_id": w.user, "team_id": w.team, "member_id": w.member,
              "discharge_id": w.discharge, "import_id": w.import_job, "message_id": w.outbox_message}
    if name not in simple:
        raise KeyError(f"the matrix scenario has no value for path parameter {{{name}}} of {path}")
    return str(simple[name])


# The reference layout's header and one person registered with a provisional identifier.
IMPORT_CSV = (";".join(template_dict()["columns"].values()) + "\n"
              + ";".join({"id_origine": "MX-1", "cognome": "Verdi", "nome": "Giulia", "comune_residenza": "Crema",
                          "tipo_identificativo": "provvisorio"}.get(h, "") for h in template_dict()["columns"].values())
              + "\n").encode()
REASON = {"reason": "Motivazione di prova della matrice"}
OVERRIDE = {"override_reason": "Scelta dell'operatore dopo il colloquio"}  # closing against the triage's suggestion


def body_for(sc: Scenario, method: str, path: str, role: str, situation: str,
             caller: uuid.UUID) -> dict[str, Any]:
    """A body valid for the schema and for the checks a service runs before its scope check."""
    w = sc.world(situation)
    own_sw = sc.users[("comune_social_worker", "own")]
    p = path.removeprefix("/api")
    bodies: dict[tuple[str, str], Any] = {
        ("POST", "/persons/duplicates-check"): {"surname": "Rossi", "given_name": "Mario"},
        ("POST", "/persons/search"): {"q": "Rossi"},
        ("POST", "/persons"): {"surname": "Verdi", "given_name": "Giulia", "sex": "F", "birth_date": "1950-04-01",
                               "other_identifier_type": "provisional", "other_identifier": "MATRICE-1"},
        ("PATCH", "/persons/{person_id}"): {"lives_alone": True},
        ("POST", "/persons/{person_id}/death"): {"date_of_death": "2026-03-01"},
        ("POST", "/persons/{person_id}/relations"): {"kind": "family_member", "surname": "Bianchi",
                                                     "given_name": "Paolo"},
        ("POST", "/person-matches/{match_id}/decision"): {"decision": "not_duplicate",
                                                          "reason": "Persone diverse"},
        ("POST", "/persons/{person_id}/consents"): {"purpose": "share_cvi", "grantor_kind": "self",
                                                    "valid_from": "2026-03-02"},
        ("POST", "/persons/{person_id}/consents/{consent_id}/revoke"): REASON,
        ("POST", "/break-glass"): {"person_id": str(w.person), "reason": "Urgenza segnalata dal pronto soccorso"},
        ("POST", "/admin/users"): {"username": "mx.nuovo.utente", "display_name": "Nuovo Utente"},
        ("PATCH", "/admin/users/{user_id}"): {"display_name": "Utente di prova"},
        ("POST", "/admin/users/{user_id}/roles"): {"role": "analyst", "organisation_id": str(sc.ambito_org)},
        ("POST", "/admin/teams"): {"code": "mx-nuova-equipe", "name": "Nuova équipe", "type": "micro_equipe"},
        ("POST", "/admin/teams/{team_id}/members"): {"user_id": str(sc.users[("comune_social_worker", "other")])},
        ("PUT", "/dev/clock"): {"advance": "0s"},  # moves nothing (and each request is rolled back anyway)
        ("PATCH", "/territory/comuni/{comune_id}"): {"sub_ambito_id": str(sc.sub_ambiti[sc.crema.comune])},
        ("POST", "/organisations"): {"code": "mx-ente-nuovo", "name": "Ente nuovo di prova", "kind": "ets"},
        ("PATCH", "/organisations/{org_id}"): {"provisional": False},
        ("PATCH", "/service-units/{unit_id}"): {"provisional": False},
        ("POST", "/catalogue/service-types"): {"code": "mx_servizio", "label": "Servizio di prova",
                                               "category": "domiciliare"},
        ("PATCH", "/catalogue/service-types/{code}"): {"leps": True},
        ("POST", "/catalogue/funding-sources"): {"code": "mx_fondo", "label": "Fondo di prova"},
        ("PATCH", "/catalogue/funding-sources/{code}"): {"active": True},
        ("POST", "/persons/{person_id}/cartelle"): {"area": "disabili"},
        ("PATCH", "/cartelle/{cartella_id}"): {"case_manager_id": str(own_sw)},
        ("POST", "/cartelle/{cartella_id}/close"): REASON,
        ("POST", "/cartelle/{cartella_id}/transfer"): {"to_comune_id": str(sc.other_comune), **REASON},
        ("POST", "/cartelle/{cartella_id}/assignments"): {"reason": "provider",
                                                          "organisation_id": str(sc.provider_org)},
        ("POST", "/cartelle/{cartella_id}/diary"): {"type": "nota", "occurred_at": "2026-03-02T08:45:00+01:00",
                                                    "text": "Nota della matrice."},
        ("PATCH", "/diary/{entry_id}"): {"text": "Colloquio con la persona (testo corretto)."},
        ("POST", "/instruments/{code}/score"): {"answers": BARTHEL_35},
        ("POST", "/pua/requests"): {
            "person_id": str(w.person), "channel": "referral_mmg",
            "referring_user_id": str(caller if role == "mmg" else sc.users[("mmg", "own")]),
            "reported_need": "Richiesta di aiuto a domicilio.", "location_org_id": str(sc.pua_location)},
        ("POST", "/pua/requests/{request_id}/reception"): {},
        ("POST", "/pua/requests/{request_id}/triage"): {"answers": TRIAGE},
        ("POST", "/pua/requests/{request_id}/orient"): {"information_given": "Informazioni sui servizi",
                                                        **OVERRIDE},
        ("POST", "/pua/requests/{request_id}/refer-vmd"): {"team_id": str(sc.crema.team), **OVERRIDE},
        ("POST", "/pua/requests/{request_id}/refer-cot"): {"cot_org_id": str(sc.cot_org), **OVERRIDE},
        ("POST", "/pua/requests/{request_id}/withdraw"): REASON,
        ("POST", "/pua/requests/{request_id}/cancel"): REASON,
        ("POST", "/vmd"): {"person_id": str(w.person), "cartella_id": str(w.cartella), "trigger": "measure_b1",
                           "team_id": str(sc.crema.team)},
        ("POST", "/vmd/{vmd_id}/schedule"): {"scheduled_for": "2026-03-05T10:00:00+01:00", "location": "CdC"},
        ("POST", "/vmd/{vmd_id}/assessors"): {"user_id": str(sc.spare_assessor)},
        ("POST", "/vmd/{vmd_id}/responses"): _response(role),
        ("POST", "/vmd/{vmd_id}/meetings"): MEETING,
        ("POST", "/vmd/{vmd_id}/conclude"): {"outcome": "no_need"},
        ("POST", "/vmd/{vmd_id}/cancel"): REASON,
        ("POST", "/vmd/{vmd_id}/reassessment"): {},
        ("POST", "/care-plans"): {"cartella_id": str(w.cartella), "case_manager_id": str(own_sw),
                                  "title": "Progetto della matrice"},
        ("PATCH", "/care-plans/{plan_id}"): {"title": "Sostegno alla domiciliarità (rivisto)"},
        ("POST", "/care-plans/{plan_id}/goals"): {"description": "Socialità", "indicator": "Uscite settimanali",
                                                  "target": "Almeno due"},
        ("PATCH", "/care-plans/{plan_id}/goals/{goal_id}"): {"target": "Nessun accesso in 9 mesi"},
        ("POST", "/care-plans/{plan_id}/interventions"): {"service_type": "pasti_domicilio"},
        ("PATCH", "/care-plans/{plan_id}/interventions/{intervention_id}"): {"notes": "Nota di prova"},
        ("POST", "/care-plans/{plan_id}/agree"): {"consent_id": str(w.consent_care)},
        ("POST", "/care-plans/{plan_id}/reviews"): {"outcome": "continue"},
        ("POST", "/care-plans/{plan_id}/complete"): REASON,
        ("POST", "/care-plans/{plan_id}/suspend"): REASON,
        ("POST", "/care-plans/{plan_id}/revoke"): REASON,
        ("POST", "/discharges"): _discharge_body(sc, w),
        ("POST", "/discharges/{discharge_id}/evaluation-request"): {"cartella_id": str(w.cartella),
                                                                     "team_id": str(sc.crema.team)},
        ("POST", "/discharges/{discharge_id}/evaluation"): {"vmd_id": str(w.vmds.get("concluded", w.vmd)),
                                                             "setting": "home"},
        ("POST", "/discharges/{discharge_id}/project"): {"cartella_id": str(w.cartella),
                                                          "case_manager_id": str(own_sw), "title": "Rientro a casa"},
        ("POST", "/discharges/{discharge_id}/discharge"): {"services": ["sad", "adi"]},
        ("POST", "/discharges/{discharge_id}/exit"): {"action": "not_eligible", "reason": "Rete familiare adeguata"},
        ("POST", "/discharges/{discharge_id}/setting"): {"setting": "home"},
        ("POST", "/discharges/{discharge_id}/cancel"): {"reason": "Segnalazione inserita due volte"},
        ("POST", "/waiting-lists/applications"): {
            "person_id": str(w.person), "udo_type": "cdi", "unit_ids": [str(w.wl_cdi_unit)], "applicant": "relative",
            "application_date": "2026-03-01", "cartella_id": str(w.cartella), "team_id": str(w.team)},
        ("POST", "/waiting-lists/applications/{application_id}/decision"): {
            "decision": "listed", "caregiver": "present", "lives_alone": False,
            "temporary_plan_id": str(w.wl_plan or w.plan), "listing_date": "2026-03-02"},
        ("POST", "/waiting-lists/applications/{application_id}/assessment"): {
            "vmd_id": str(w.vmds.get("equipe_review", w.vmd)), "caregiver": "overloaded", "lives_alone": False},
        ("POST", "/waiting-lists/applications/{application_id}/urgency"): {
            "reason": "loss_of_sole_caregiver", "note": "Il figlio che la assisteva è stato ricoverato."},
        ("POST", "/waiting-lists/applications/{application_id}/urgency/decision"): {"confirm": True},
        ("POST", "/waiting-lists/applications/{application_id}/exit"): {"action": "withdraw",
                                                                        "note": "Assistenza privata a domicilio"},
        ("POST", "/waiting-lists/units/{unit_id}/beds"): {"label": "Camera 3"},
        ("POST", "/waiting-lists/offers"): {"unit_id": str(w.wl_unit)},
        ("POST", "/waiting-lists/offers/{offer_id}/refuse"): {"reason": "Preferisce attendere"},
        ("POST", "/catalogue/accreditations"): {"organisation_id": str(sc.crema.org), "service_type": "sadh",
                                                "valid_from": "2026-03-01", "unit_cost": "22.00"},
        ("POST", "/services/activations"): {"intervention_id": str(w.order_iv)},
        ("POST", "/services/activations/{activation_id}/decline"): {"reason": "Nessun operatore disponibile"},
        ("POST", "/services/activations/{activation_id}/suspend"): {"reason": "Ricovero ospedaliero"},
        ("POST", "/services/activations/{activation_id}/end"): {"reason": "goals_reached"},
        ("POST", "/services/activations/{activation_id}/deliveries"): {"delivered_on": "2026-03-02", "hours": "2",
                                                                      "note": "Igiene personale"},
        ("PATCH", "/catalogue/measures/{code}"): {"eligibility_notes": "Over 40 o giovani senza caregiver"},
        ("POST", "/catalogue/measure-calls"): {"measure_code": "b2", "title": "Misura B2 2026",
                                               "opens_on": "2026-03-01", "closes_on": "2026-12-31",
                                               "budget": "50000"},
        ("PATCH", "/catalogue/measure-calls/{call_id}"): {"budget": "200000"},
        ("POST", "/measures/applications"): {"call_id": str(w.m_post_call), "person_id": str(w.person),
                                             "cartella_id": str(w.cartella), "application_date": "2026-03-02"},
        ("POST", "/measures/applications/{application_id}/assessment"): {
            "vmd_id": str(w.vmds.get("concluded", w.vmd))},
        ("POST", "/measures/applications/{application_id}/eligibility"): {"eligible": True},
        ("POST", "/measures/applications/{application_id}/project"): {"plan_id": str(w.plans.get("agreed", w.plan))},
        ("POST", "/measures/applications/{application_id}/activation"): {"amount": "1000"},
        ("POST", "/reports/exports"): {"what": "indicators", "format": "csv", "indicator": "P1"},
    }
    if (method, p) == ("POST", "/imports"):
        return {"files": {"file": ("export.csv", IMPORT_CSV, "text/csv")}}
    if (method, p) == ("POST", "/cartelle/{cartella_id}/attachments"):
        return {"files": {"file": ("prova.txt", b"Documento di prova.", "text/plain")}, "data": {"kind": "other"}}
    json = bodies.get((method, p))
    return {} if json is None else {"json": json}


def request_for(sc: Scenario, method: str, path: str, role: str, situation: str) -> tuple[str, dict[str, Any]]:
    """The URL and httpx keyword arguments of one cell."""
    caller = sc.user(role, situation)
    url = re.sub(r"\{(\w+)\}", lambda m: param(sc, path, m.group(1), role, situation), path)
    kw = body_for(sc, method, path, role, situation, caller)
    kw["headers"] = sc.headers[caller]
    if method == "GET" and path == "/api/persons":
        kw["params"] = {"q": "Rossi"}
    if path in ("/api/regional/persons", "/api/regional/persons/search"):  # the situation's person, any Ambito
        criteria = {"codice_fiscale": sc.world(situation).codice_fiscale, "purpose": "duplicato",
                    "reason": "Matrice dei permessi: verifica del ruolo"}
        kw["params" if method == "GET" else "json"] = criteria
    if method == "GET" and path == "/api/waiting-lists/ranking":
        kw["params"] = {"udo_type": "rsa"}
    if method == "GET" and path == "/fhir/Patient":
        kw["params"] = {"name": "Rossi"}
    if method == "GET" and path in ("/fhir/RelatedPerson", "/fhir/EpisodeOfCare", "/fhir/Consent", "/fhir/AuditEvent",
                                    "/fhir/QuestionnaireResponse", "/fhir/CarePlan"):
        kw["params"] = {"patient": f"Patient/{param(sc, path, 'person_id', role, situation)}"}
    if method == "GET" and path == "/fhir/Provenance":
        case = param(sc, "/fhir/ServiceRequest/{discharge_id}", "discharge_id", role, situation)  # the case itself
        kw["params"] = {"target": f"ServiceRequest/{case}"}
    if method == "POST" and path == "/fhir":
        kw["content"] = json.dumps(_discharge_bundle(sc, sc.world(situation)))
        kw["headers"] = {**kw["headers"], "Content-Type": "application/fhir+json"}
    return url, kw
