"""The working data the load mix needs, prepared through the API of a running server (bench.load).

The synthetic seed has persons and open cartelle only. A working day also reads and writes VMDs in progress, active
plans, waiting lists and discharges: this module makes them the way the operators do, request by request, with the
demo users' development tokens (deploy/seed/demo.py), for persons resident in Crema (the comune of `as.crema`):

- VMDs in progress: PUA request (as.ambito.pua) → reception → triage → referral to the VMD → scheduled, with the
  IFeC (ifec.pua) and the comune's social worker (as.crema) as assessors. The load saves as.crema's answers here.
- Active plans: as above, then Barthel and the social module filled in and signed by both, the equipe meeting, the
  VMD concluded, the plan (goal, SAD intervention) proposed, agreed with the person's consent and activated.
- Listed waiting-list entries: an RSA application (as.crema), its VMD with a signed Barthel, an agreed temporary
  plan, the equipe's decision "listed" (inf.distretto), so the unit lists and the ranking read real entries.

The ASST gateway (system client `asst-gateway`) gets the roles of what it does here (ward_staff of the Medicina
ward for the discharge transactions, asst_pua_operator of the PUA for the Patient reads), as an administrator
would assign them (directly, without the second administrator's approval: this is a throwaway database).
"""
from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from bench.common import asyncpg_dsn

AMBITO = "ambito-crema"
COMUNE = "comune-crema"
GATEWAY = "asst-gateway"
GATEWAY_SCOPES = ["fhir.read", "fhir.write"]
GATEWAY_ROLES = (("ward_staff", "asst-crema-reparto-medicina"), ("asst_pua_operator", "asst-crema-pua"))
# role of the load → demo username (deploy/seed/demo.py)
USERS = {"pua": "as.ambito.pua", "ifec": "ifec.pua", "social_worker": "as.crema", "nurse": "inf.distretto",
         "coordinator": "coord.crema", "cot": "cot.crema"}
VMD_TEAM = "team-vmd-crema"

BARTHEL = {"feeding": "needs_help", "bathing": "dependent", "grooming": "needs_help", "dressing": "needs_help",
           "bowels": "occasional_accident", "bladder": "occasional_accident", "toilet_use": "needs_help",
           "transfers": "minor_help", "mobility": "immobile", "stairs": "unable"}
SOCIAL_RISK = {"living_arrangement": "alone", "social_network": "limited", "social_isolation": True,
               "caregiver_present": False, "housing_adequacy": "partially_adequate",
               "housing_barriers": ["stairs_without_lift"], "eviction_risk": False,
               "economic_difficulty": "occasional"}


class PrepareError(RuntimeError):
    pass


async def tokens_and_roles(owner_url: str, minutes: int) -> dict[str, str]:
    """Development tokens for the load's roles; gives the gateway its roles first."""
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    from domain.security.models import AppUser, RoleAssignment
    from domain.territory.models import Organisation
    from integrations.identity.dev_tokens import token_for

    engine = create_async_engine(owner_url, pool_size=1)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as s:
            gw = (await s.execute(sa.select(AppUser).where(AppUser.username == GATEWAY))).scalar_one()
            for role, code in GATEWAY_ROLES:
                org = (await s.execute(sa.select(Organisation.id).where(Organisation.code == code))).scalar_one()
                held = (await s.execute(sa.select(RoleAssignment.id).where(
                    RoleAssignment.user_id == gw.id, RoleAssignment.role == role,
                    RoleAssignment.organisation_id == org))).first()
                if held is None:
                    s.add(RoleAssignment(user_id=gw.id, role=role, organisation_id=org, valid_from=date(2020, 1, 1)))
            await s.commit()
            tokens = {key: await token_for(s, username=u, minutes=minutes) for key, u in USERS.items()}
            tokens["gateway"] = await token_for(s, username=GATEWAY, minutes=minutes, scopes=GATEWAY_SCOPES)
    finally:
        await engine.dispose()
    return tokens


async def sample_persons(app_url: str, *, cases: int, others: int, discharge: int) -> dict[str, list[dict]]:
    """Persons for the load: `cases` over-65s resident in Crema (the prepared cases), `others` of the whole Ambito
    (searches, registrations, FHIR reads), `discharge` born before 1955 (signalled by the ward)."""
    import asyncpg

    conn = await asyncpg.connect(asyncpg_dsn(app_url))
    try:
        crema = await conn.fetch(
            "select p.id::text, p.surname, p.given_name, p.birth_date from person p "
            "join organisation o on o.id = p.residence_comune_id "
            "where o.code = $1 and p.status = 'active' and p.date_of_death is null and p.merged_into_id is null "
            "and p.birth_date < current_date - interval '66 years' order by random() limit $2", COMUNE, cases)
        many = await conn.fetch(
            "select id::text, surname, given_name from person where status = 'active' and merged_into_id is null "
            "order by random() limit $1", others)
        ward = await conn.fetch(
            "select codice_fiscale, surname, given_name, sex, birth_date from person where status = 'active' "
            "and codice_fiscale is not null and birth_date < '1955-01-01' and date_of_death is null "
            "and merged_into_id is null order by random() limit $1", discharge)
    finally:
        await conn.close()
    if len(crema) < cases:
        raise PrepareError(f"only {len(crema)} over-65s resident in Crema: seed more persons")
    return {"cases": [dict(r) for r in crema], "persons": [dict(r) for r in many],
            "discharge": [{**dict(r), "birth_date": r["birth_date"].isoformat()} for r in ward]}


class Api:
    """JSON calls as one of the load's users; anything but 2xx stops the preparation with the problem+json."""

    def __init__(self, client: httpx.AsyncClient, tokens: dict[str, str]):
        self.client, self.tokens = client, tokens

    async def __call__(self, who: str, method: str, path: str, body: dict | None = None) -> Any:
        r = await self.client.request(method, "/api" + path, json=body,
                                      headers={"Authorization": f"Bearer {self.tokens[who]}"})
        if r.status_code >= 300:
            raise PrepareError(f"{who} {method} {path} → {r.status_code}: {r.text[:600]}")
        return r.json() if r.content and r.headers.get("content-type", "").endswith("json") else None


def _now() -> str:
    return datetime.now(UTC).isoformat()


async def _vmd_in_progress(api: Api, ids: dict[str, str], person: dict) -> dict[str, str]:
    """PUA request → triage → VMD scheduled with both assessors: what the load's answers are saved into."""
    req = await api("pua", "POST", "/pua/requests", {
        "person_id": person["id"], "channel": "phone", "requester_kind": "family",
        "reported_need": "Dopo una caduta fatica con igiene personale e spesa; chiede aiuto a domicilio.",
        "need_domains": ["personal_care", "social_relational"]})
    await api("pua", "POST", f"/pua/requests/{req['id']}/reception")
    age = (date.today() - person["birth_date"]).days // 365
    await api("pua", "POST", f"/pua/requests/{req['id']}/triage", {"answers": {
        "request_source": "gp", "request_type": "care_need", "need_areas": ["personal_care", "social_relational"],
        "age": age, "lives_alone": True, "caregiver": "absent", "autonomy_loss": "partial",
        "cognitive_decline": False, "multimorbidity": True, "recent_discharge": False, "caregiver_loss": False,
        "abuse_suspicion": False, "housing_emergency": False}})
    out = await api("pua", "POST", f"/pua/requests/{req['id']}/refer-vmd",
                    {"requested_service_type": "sad", "notes": "Valutare SAD"})
    vmd = out["vmd_id"]
    await api("ifec", "POST", f"/vmd/{vmd}/schedule", {
        "scheduled_for": (datetime.now(UTC) + timedelta(hours=2)).isoformat(), "location": "Domicilio"})
    await api("ifec", "POST", f"/vmd/{vmd}/assessors", {"user_id": ids["ifec"]})
    await api("ifec", "POST", f"/vmd/{vmd}/assessors", {"user_id": ids["social_worker"]})
    return {"person_id": person["id"], "vmd_id": vmd, "cartella_id": out["cartella_id"]}


async def _consent(api: Api, person_id: str) -> str:
    return (await api("social_worker", "POST", f"/persons/{person_id}/consents", {
        "purpose": "care", "grantor_kind": "self", "valid_from": date.today().isoformat()}))["id"]


async def _agreed_plan(api: Api, ids: dict[str, str], case: dict[str, str], *, kind: str,
                       vmd_id: str | None) -> str:
    plan = (await api("social_worker", "POST", "/care-plans", {
        "cartella_id": case["cartella_id"], "kind": kind, "case_manager_id": ids["social_worker"],
        "title": "Sostegno alla domiciliarità", "summary": "Sostegno a domicilio per igiene, pasti e terapie.",
        **({"vmd_id": vmd_id} if vmd_id else {})}))["id"]
    await api("social_worker", "POST", f"/care-plans/{plan}/goals", {
        "description": "Permanenza al domicilio in sicurezza", "indicator": "Indice di Barthel",
        "target": "Barthel ≥ 45 alla verifica"})
    await api("social_worker", "POST", f"/care-plans/{plan}/interventions", {
        "service_type": "sad", "provider_org_id": ids["provider"], "intensity_value": 6,
        "intensity_unit": "ore/settimana", "start_date": date.today().isoformat(), "funding_source": "fna"})
    await api("social_worker", "POST", f"/care-plans/{plan}/propose")
    await api("social_worker", "POST", f"/care-plans/{plan}/agree",
              {"consent_id": await _consent(api, case["person_id"])})
    return plan


async def _active_plan(api: Api, ids: dict[str, str], person: dict) -> dict[str, str]:
    """A VMD filled in, signed by both sides and concluded, then the plan agreed and activated."""
    case = await _vmd_in_progress(api, ids, person)
    vmd = case["vmd_id"]
    await api("ifec", "POST", f"/vmd/{vmd}/responses", {"instrument_code": "barthel", "answers": BARTHEL})
    await api("social_worker", "POST", f"/vmd/{vmd}/responses", {"instrument_code": "social_risk",
                                                                 "answers": SOCIAL_RISK})
    await api("ifec", "POST", f"/vmd/{vmd}/sign")
    await api("social_worker", "POST", f"/vmd/{vmd}/sign")
    await api("ifec", "POST", f"/vmd/{vmd}/meetings", {
        "held_at": _now(), "participants": [{"user_id": ids["ifec"]}, {"user_id": ids["social_worker"]}],
        "minutes": "Dipendenza grave nelle ADL, vive sola.", "decision": "Proposta di progetto: SAD"})
    await api("ifec", "POST", f"/vmd/{vmd}/conclude", {
        "outcome": "project_proposed", "notes": "SAD 6 ore/settimana",
        "reassessment_due": (date.today() + timedelta(days=180)).isoformat()})
    plan = await _agreed_plan(api, ids, case, kind="ordinary", vmd_id=vmd)
    await api("social_worker", "POST", f"/care-plans/{plan}/activate")
    return {**case, "plan_id": plan}


async def _listed_entry(api: Api, ids: dict[str, str], person: dict, unit_id: str) -> dict[str, str]:
    """An RSA application, its Barthel signed, an agreed temporary plan, listed by the equipe."""
    open_ = await api("social_worker", "GET", f"/persons/{person['id']}/cartelle?status=open")
    cartella = next((c["id"] for c in open_["items"] if c["area"] == "anziani"), None) or (
        await api("social_worker", "POST", f"/persons/{person['id']}/cartelle", {"area": "anziani"}))["id"]
    entry = await api("social_worker", "POST", "/waiting-lists/applications", {
        "person_id": person["id"], "udo_type": "rsa", "unit_ids": [unit_id], "applicant": "relative",
        "applicant_name": "Figlia", "application_date": (date.today() - timedelta(days=10)).isoformat(),
        "cartella_id": cartella, "team_id": ids["team"]})
    vmd = entry["vmd_id"]
    await api("ifec", "POST", f"/vmd/{vmd}/schedule", {
        "scheduled_for": (datetime.now(UTC) + timedelta(hours=2)).isoformat(), "location": "Domicilio"})
    await api("ifec", "POST", f"/vmd/{vmd}/assessors", {"user_id": ids["ifec"]})
    await api("ifec", "POST", f"/vmd/{vmd}/responses", {"instrument_code": "barthel", "answers": BARTHEL})
    await api("ifec", "POST", f"/vmd/{vmd}/sign")
    plan = await _agreed_plan(api, ids, {"person_id": person["id"], "cartella_id": cartella}, kind="temporary",
                              vmd_id=None)
    await api("nurse", "POST", f"/waiting-lists/applications/{entry['id']}/decision", {
        "decision": "listed", "caregiver": random.Random(person["id"]).choice(["none", "present", "overloaded"]),
        "lives_alone": True, "temporary_plan_id": plan})
    return {"person_id": person["id"], "entry_id": entry["id"]}


async def _ids(api: Api) -> dict[str, str]:
    ids = {key: (await api(key, "GET", "/me"))["id"] for key in ("ifec", "social_worker")}
    me = await api("social_worker", "GET", "/me")
    ids["team"] = next(t["team_id"] for t in me["teams"] if t["team_code"] == VMD_TEAM)
    orgs = await api("social_worker", "GET", "/organisations?kind=ets&limit=200")
    ids["provider"] = next(o["id"] for o in orgs["items"] if o["code"] == "ets-igea")
    return ids


async def _bounded(jobs: list[Callable[[], Awaitable[dict]]], concurrency: int) -> list[dict]:
    sem = asyncio.Semaphore(concurrency)

    async def one(job):
        async with sem:
            return await job()

    return list(await asyncio.gather(*(one(j) for j in jobs)))


async def prepare(base: str, tokens: dict[str, str], cases: list[dict], *, vmds: int, plans: int, listed: int,
                  concurrency: int = 4) -> dict[str, Any]:
    """`vmds` VMDs in progress, `plans` active plans and `listed` waiting-list entries over `cases` (persons of
    Crema, each used once). Returns the ids the load reads and writes."""
    if len(cases) < vmds + plans + listed:
        raise PrepareError("not enough persons for the cases")
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        api = Api(client, tokens)
        ids = await _ids(api)
        units = await api("social_worker", "GET", "/service-units?udo_type=rsa&limit=200")
        unit_ids = [u["id"] for u in units["items"]]
        it = iter(cases)
        in_progress = await _bounded([lambda p=next(it): _vmd_in_progress(api, ids, p) for _ in range(vmds)],
                                     concurrency)
        active = await _bounded([lambda p=next(it): _active_plan(api, ids, p) for _ in range(plans)], concurrency)
        entries = await _bounded([lambda p=next(it), u=unit_ids[i % len(unit_ids)]: _listed_entry(api, ids, p, u)
                                  for i in range(listed)], concurrency)
    return {"vmds": [c["vmd_id"] for c in in_progress], "plans": [c["plan_id"] for c in active],
            "waiting_list_entries": [e["entry_id"] for e in entries],
            "rsa_units": unit_ids[:max(1, min(len(unit_ids), listed))]}
