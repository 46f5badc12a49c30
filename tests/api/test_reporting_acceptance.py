"""Acceptance of issue 14: a year of the Ambito di Crema built through the API, in two sub-ambiti (Crema: comune
di Crema; Soncino: comune di Offanengo), with the expected value of every indicator per sub-ambito worked out by
hand below; the report (GET /api/reports/indicators?year=2025&by=sub_ambito) matches it.

Only the users, their organisations and the two teams are set up in the database; every fact goes through the
API, at the time the test clock says (Europe/Rome). The event jobs (a VMD's conclusion completing the discharge
evaluation or the waiting-list assessment, a death closing the open cases) run in-process as the worker would.

The year, as it happens (2025 unless said):

PUA requests (P1-P3), registered by the PUA desk, triaged by the PUA operator
  Crema    r1 Anna 3 Feb, complex → referred to the VMD (VMD-A)         first level 2025, referred_vmd
           r2 "Anna" again 4 Feb: a second registration of the same woman without codice fiscale, merged into
              Anna by the data steward on 25 Feb; simple → oriented          first level 2025, oriented
           x1-x5 five residents 3-7 Mar, simple → oriented                  first level 2025, oriented
           r4 Dora 1 Apr, withdrawn                                          stays in the denominators
           r5 Dora 2 Apr, cancelled as a registration error                  out of every count
           r3 Bruno 31 Dec 23:30, triaged and oriented 1 Jan 2026 09:00      denominator of 2025 only
  Soncino  r6 Carla 3 Mar, complex → referred to the VMD (VMD-C)         first level 2025, referred_vmd
           r7 Enzo 16 May, simple → oriented                                 first level 2025, oriented
VMDs (P4, V1, V2, UVMD, AU-VMD, AU-PI): signatures by side
  Crema    VMD-A (Anna, pua)  IFeC (ASST) + Crema social worker sign, concluded 12 Feb       integrated
           VMD-D (the duplicate "Anna", mmg, area disabili) only the IFeC signs, 20 Feb     not integrated
           VMD-X (Dora, cdcd) requested 20 Dec, never concluded
           VMD-W2 (Dora's CDI application) only the Crema social worker signs, 28 Dec        not integrated
  Soncino  VMD-C (Carla, pua) the Offanengo social worker signs, the IFeC takes part and records the Barthel
           without signing, concluded 12 Mar                                                  not integrated
           VMD-W (Carla's RSA application) IFeC + Offanengo social worker sign, 20 Apr        integrated
           VMD-M (Marta, 10, autism pathway, asd) the Offanengo social worker signs, 15 Jul     not integrated
Progetti individualizzati (DIS-VMD, LEPS-PI, AU-PI)
  Crema    on the duplicate's disabili cartella (Anna's after the merge), agreed 1 Mar after VMD-D
  Soncino  Marta's, on her minori_famiglia cartella, agreed 20 Jul after VMD-M
Protected discharges (D3-D7, LEPS-DP) across the DST change (26 Oct 2025, 03:00 CEST → 02:00 CET)
  Crema    d1 Bruno, social risk, COT request Sat 25 Oct 10:00 CEST (08:00 UTC), evaluation concluded Mon 27 Oct
              09:30 CET (08:30 UTC): 47 h 30 on the wall clock, 48 h 30 elapsed → late; project 28 Oct,
              discharged 30 Oct with SAD and ADI
           d2 Dora, no social risk, COT request 25 Oct 11:00 CEST (09:00 UTC), evaluated 27 Oct 10:00 CET
              (09:00 UTC): exactly 48 h 00 elapsed → on time; project 28 Oct, discharged 31 Oct with SAD only
           d5 Anna signalled at 00:40 on 1 Jan 2026 (23:40 UTC on 31 Dec): a 2026 signal, in no 2025 count
  Soncino  d4 Enzo, social risk, signalled 10 Jun; he dies on 11 Jun before the evaluation
           d3 Carla, social risk, COT request 31 Dec 23:00, evaluated 1 Jan 2026 08:00 (9 h, on time by the
              cohort reading's cut-off, 2 Jan 2026 24:00); project 2 Jan 2026
Waiting lists (R1-R3, waiting times), RSA applications and urgency
  Soncino  Carla applies for an RSA on 1 Apr; VMD-W concluded 20 Apr (19 days); temporary plan agreed 21 Apr,
           listed 22 Apr, plan activated 23 Apr; urgency raised 24 Apr and confirmed by the sub-ambito
           coordinator; a bed offered 14 May, accepted 15 May: admitted after 44 days
  Crema    Dora applies for a CDI on 20 Nov; VMD-W2 concluded 28 Dec (38 days); not listed
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from httpx import AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncSession

from domain.kernel import jobs
from domain.kernel.clock import ROME
from domain.reporting import definitions, indicators
from domain.security.models import AppUser, Role, Team, TeamType
from domain.territory import queries as territory
from tests.domain.assessment.vmd_setup import BARTHEL_35, SOCIAL, make_team
from tests.domain.pua.helpers import complex_answers, simple_answers
from tests.factories.registry import person_payload
from tests.support import bearer, make_user, org

pytestmark = pytest.mark.api

YEAR = 2025
SUBS = ("crema", "soncino")
# Every indicator: (numerator, denominator) for the Crema and Soncino sub-ambiti and the Ambito (None: no
# denominator, a count). The other four sub-ambiti count 0 everywhere.
EXPECTED: dict[str, dict[str, tuple[int, int | None]]] = {
    # P1 first levels / requests of 2025: Crema r1 r2 x1-x5 (7) of r1 r2 x1-x5 r3 r4 (9; r5 cancelled is out,
    # r3's triage is in 2026); Soncino r6 r7 of r6 r7.
    "P1": {"crema": (7, 9), "soncino": (2, 2), "ambito": (9, 11)},
    # P2 paths activated in 2025: Crema r1 (VMD) + r2 x1-x5 (oriented) = 7 (r3 oriented in 2026); Soncino r6 r7.
    "P2": {"crema": (7, 9), "soncino": (2, 2), "ambito": (9, 11)},
    # P3 referrals to the VMD: r1 in Crema, r6 in Soncino.
    "P3": {"crema": (1, 9), "soncino": (1, 2), "ambito": (2, 11)},
    # P4 integrated / concluded in 2025, discharge evaluations left out: Crema VMD-A of A, D, W2 (X is not
    # concluded); Soncino VMD-W of C, W, M.
    "P4": {"crema": (1, 3), "soncino": (1, 3), "ambito": (2, 6)},
    # V1 concluded / requested in 2025 (discharge evaluations out): Crema A D W2 of A D X W2; Soncino C W M of
    # C W M.
    "V1": {"crema": (3, 4), "soncino": (3, 3), "ambito": (6, 7)},
    "V2": {"crema": (3, 4), "soncino": (3, 3), "ambito": (6, 7)},  # V1 by trigger: the same per sub-ambito
    # UVMD persons with a VMD concluded in 2025 (discharge evaluations in): Crema Anna (VMD-A and, merged, VMD-D:
    # once), Bruno and Dora (their discharge evaluations; Dora's W2 too) = 3; Soncino Carla (C, W) = 1 (her
    # discharge evaluation is of 2026) and Marta (M) = 2.
    "UVMD": {"crema": (3, None), "soncino": (2, None), "ambito": (5, None)},
    # D3 projects / social-risk signals of 2025: Crema d1 (project 28 Oct) of d1 (d2 has no risk flag, d5 is of
    # 2026); Soncino none of d3 (project in 2026) and d4 (died).
    "D3": {"crema": (1, 1), "soncino": (0, 2), "ambito": (1, 3)},
    # D4 SAD and ADI / projects activated (discharged) in 2025: Crema d1 of d1 d2.
    "D4": {"crema": (1, 2), "soncino": (0, 0), "ambito": (1, 2)},
    # D5 SAD only: Crema d2 of d1 d2.
    "D5": {"crema": (1, 2), "soncino": (0, 0), "ambito": (1, 2)},
    # D6 within 48 h / COT requests of 2025 (cohort, cut-off 2 Jan 2026 24:00): Crema d2 (48 h 00) of d1 (48 h
    # 30, the DST hour counts) and d2; Soncino d3 (9 h, evaluated on 1 Jan) of d3 (Enzo died before: out).
    "D6": {"crema": (1, 2), "soncino": (1, 1), "ambito": (2, 3)},
    # D7 persons with a pathway / persons evaluated in 2025: Crema Bruno and Dora, both discharged with a
    # project; Soncino nobody evaluated in 2025 (Carla on 1 Jan 2026).
    "D7": {"crema": (2, 2), "soncino": (0, 0), "ambito": (2, 2)},
    # LEPS-DP persons discharged with a project / persons signalled in 2025 who needed it: Crema Bruno, Dora;
    # Soncino none of Carla and Enzo (who died: he needed it).
    "LEPS-DP": {"crema": (2, 2), "soncino": (0, 2), "ambito": (2, 4)},
    # SAD and M1: no SAD order ended and no measure asked for in this scenario.
    "SAD": {"crema": (0, 0), "soncino": (0, 0), "ambito": (0, 0)},
    "M1": {"crema": (0, 0), "soncino": (0, 0), "ambito": (0, 0)},
    # R1 listed / applications of 2025 with the VMD requested: Soncino Carla; Crema none of Dora.
    "R1": {"crema": (0, 1), "soncino": (1, 1), "ambito": (1, 2)},
    # R2 within 30 days: Carla 19 days; Dora 38 days.
    "R2": {"crema": (0, 1), "soncino": (1, 1), "ambito": (1, 2)},
    # R3 temporary plans activated / agreed in 2025: Carla's.
    "R3": {"crema": (0, 0), "soncino": (1, 1), "ambito": (1, 1)},
    # waiting times: one admission, Carla's (1 Apr → 15 May: 44 days); the value is withheld (a count of 1)
    "ATTESA-MEDIANA": {"crema": (0, None), "soncino": (1, None), "ambito": (1, None)},
    "ATTESA-P90": {"crema": (0, None), "soncino": (1, None), "ambito": (1, None)},
    # open cartelle at the end of 2025: Crema Anna (anziani, from r1; disabili, the duplicate's, merged), Bruno
    # and Dora (anziani, for their discharge evaluations); Soncino Carla (anziani, from r6) and Marta
    # (minori_famiglia).
    "CARTELLE": {"crema": (4, None), "soncino": (2, None), "ambito": (6, None)},
    # AU-VMD persons assessed / persons referred to the autism pathway (an asd VMD requested) in 2025: Marta.
    "AU-VMD": {"crema": (0, 0), "soncino": (1, 1), "ambito": (1, 1)},
    # AU-PI persons with a progetto agreed after the request / the same persons: Marta's plan of 20 Jul.
    "AU-PI": {"crema": (0, 0), "soncino": (1, 1), "ambito": (1, 1)},
    # DIS-VMD plans on disabili cartelle agreed in 2025 that a concluded VMD preceded: the one on the
    # duplicate's cartella (now Anna's), agreed 1 Mar after VMD-D (20 Feb).
    "DIS-VMD": {"crema": (1, 1), "soncino": (0, 0), "ambito": (1, 1)},
    # DIS-PIC takings in charge in 2025 (the first plan agreed on a disabili cartella): the same plan of 1 Mar.
    "DIS-PIC": {"crema": (1, None), "soncino": (0, None), "ambito": (1, None)},
    # LEPS-PI plans agreed in 2025 on minori_famiglia cartelle: Marta's.
    "LEPS-PI": {"crema": (0, None), "soncino": (1, None), "ambito": (1, None)},
}
# the waiting time of Carla's admission, in days (the statistic computed before small cells hide it)
CARLA_WAIT_DAYS = Decimal(44)
# the days from the opening of the duplicate's disabili cartella (5 Feb) to its first plan agreed (1 Mar)
DIS_PIC_DAYS = Decimal(24)

COMPLEX, SIMPLE = complex_answers(), simple_answers()


@dataclass
class Cast:
    pua: AppUser        # ASST PUA operator: registers persons and requests, triages, refers
    ifec: AppUser       # IFeC of the ASST: ASST-side assessor
    sw_crema: AppUser   # social worker of the comune di Crema: comune-side assessor, case manager
    sw_off: AppUser     # social worker of the comune di Offanengo
    ward: AppUser
    steward: AppUser
    coordinator: AppUser  # of the Soncino sub-ambito
    rsa: AppUser        # operator of the RSA (Fondazione Benefattori Cremaschi)
    analyst: AppUser
    pua_team: Team
    vmd_team: Team


class Scenario:
    def __init__(self, client: AsyncClient, session: AsyncSession, clock, cast: Cast):
        self.client, self.session, self.clock, self.c = client, session, clock, cast

    def at(self, when: str) -> None:
        """Move the business clock to a Europe/Rome local time."""
        self.clock.set(datetime.fromisoformat(when).replace(tzinfo=ROME))

    async def call(self, who: AppUser, method: str, url: str, body: Any = None, status: int = 200) -> Any:
        r: Response = await self.client.request(method, "/api" + url, headers=bearer(who), json=body)
        assert r.status_code == status, f"{method} {url}: {r.status_code} {r.text}"
        return r.json()

    async def run_jobs(self) -> None:
        await jobs.run_ready_in_session(self.session)

    # ------------------------------------------------------------------------------------------ persons
    async def person(self, surname: str, given: str, sex: str, born: date, comune_id: uuid.UUID) -> str:
        body = person_payload(surname=surname, given_name=given, sex=sex, birth_date=born,
                              residence_comune_id=str(comune_id), residence_address="Via Roma 1")
        return (await self.call(self.c.pua, "POST", "/persons", body, 201))["id"]

    # ------------------------------------------------------------------------------------------ PUA
    async def request(self, person_id: str) -> str:
        return (await self.call(self.c.pua, "POST", "/pua/requests", {
            "person_id": person_id, "channel": "desk", "requester_kind": "self",
            "reported_need": "Chiede un sostegno per la vita quotidiana.", "need_domains": ["personal_care"]},
            201))["id"]

    async def triage(self, rid: str, answers: dict) -> None:
        await self.call(self.c.pua, "POST", f"/pua/requests/{rid}/reception", {})
        await self.call(self.c.pua, "POST", f"/pua/requests/{rid}/triage", {"answers": answers})

    async def orient(self, rid: str) -> None:
        await self.triage(rid, SIMPLE)
        await self.call(self.c.pua, "POST", f"/pua/requests/{rid}/orient",
                        {"information_given": "Spiegati i servizi del comune."})

    async def refer_vmd(self, rid: str) -> dict:
        await self.triage(rid, COMPLEX)
        return await self.call(self.c.pua, "POST", f"/pua/requests/{rid}/refer-vmd",
                               {"team_id": str(self.c.vmd_team.id)})

    # ------------------------------------------------------------------------------------------ VMD
    async def assess(self, vmd_id: str, *, signers: list[AppUser], also: tuple[AppUser, ...] = (),
                     start: str, end: str) -> None:
        """Assessors added at `start`, their instruments and signatures (only `signers` sign; `also` take part
        and record without signing), the equipe meeting and the conclusion at `end`."""
        url = f"/vmd/{vmd_id}"
        self.at(start)
        await self.call(self.c.ifec, "POST", f"{url}/schedule", {
            "scheduled_for": self.clock.now().isoformat(), "location": "Domicilio"})
        for who in (*signers, *also):
            await self.call(self.c.ifec, "POST", f"{url}/assessors", {"user_id": str(who.id)}, 201)
        for who in (*signers, *also):
            code, answers = ("barthel", BARTHEL_35) if who is self.c.ifec else ("social_risk", SOCIAL)
            await self.call(who, "POST", f"{url}/responses", {"instrument_code": code, "answers": answers}, 201)
        for who in signers:
            await self.call(who, "POST", f"{url}/sign")
        self.at(end)
        await self.call(self.c.ifec, "POST", f"{url}/meetings", {
            "held_at": self.clock.now().isoformat(), "minutes": "Valutazione condivisa dall'équipe.",
            "participants": [{"user_id": str(w.id)} for w in (*signers, *also)]}, 201)
        await self.call(self.c.ifec, "POST", f"{url}/conclude", {
            "outcome": "project_proposed", "reassessment_due": f"{self.clock.now().year + 1}-12-31"})
        await self.run_jobs()

    async def agreed_plan(self, sw: AppUser, person_id: str, cartella_id: str, *, vmd_id: str | None = None,
                          start: str, grantor: dict | None = None) -> str:
        """An ordinary progetto individualizzato: drafted, proposed, the person's consent, agreed."""
        plan = (await self.call(sw, "POST", "/care-plans", {
            "cartella_id": cartella_id, "vmd_id": vmd_id, "kind": "ordinary", "case_manager_id": str(sw.id),
            "title": "Progetto individualizzato"}, 201))["id"]
        await self.call(sw, "POST", f"/care-plans/{plan}/goals", {
            "description": "Sostegno nella vita quotidiana", "indicator": "Autonomie", "target": "Mantenute",
            "due_date": f"{self.clock.now().year + 1}-06-30"}, 201)
        await self.call(sw, "POST", f"/care-plans/{plan}/interventions", {
            "service_type": "sad", "provider_org_id": str((await org(self.session, "ets-igea")).id),
            "intensity_value": 4, "intensity_unit": "ore/settimana", "start_date": start, "funding_source": "fna"},
            201)
        await self.call(sw, "POST", f"/care-plans/{plan}/propose")
        consent = (await self.call(sw, "POST", f"/persons/{person_id}/consents", {
            "purpose": "care", "valid_from": self.clock.now().date().isoformat(),
            **(grantor or {"grantor_kind": "self"})},
            201))["id"]
        await self.call(sw, "POST", f"/care-plans/{plan}/agree", {"consent_id": consent})
        return plan

    async def cartella(self, who: AppUser, person_id: str, area: str) -> str:
        return (await self.call(who, "POST", f"/persons/{person_id}/cartelle", {"area": area}, 201))["id"]

    # ------------------------------------------------------------------------------------------ discharges
    async def signal(self, person_id: str, *, social_risk: bool) -> str:
        ward = await org(self.session, "asst-crema-reparto-medicina")
        today = self.clock.now().date()
        return (await self.call(self.c.ward, "POST", "/discharges", {
            "person_id": person_id, "ward_org_id": str(ward.id), "admission_date": today.isoformat(),
            "expected_discharge_date": today.isoformat(), "criteria": ["over65_not_self_sufficient"],
            "social_risk": social_risk, "clinician_summary": "Non autosufficiente dopo il ricovero."}, 201))["id"]

    async def evaluation_request(self, sw: AppUser, did: str, cartella_id: str) -> str:
        return (await self.call(sw, "POST", f"/discharges/{did}/evaluation-request", {
            "cartella_id": cartella_id, "team_id": str(self.c.vmd_team.id)}))["vmd_id"]

    async def project_and_discharge(self, sw: AppUser, did: str, cartella_id: str, *, project: str,
                                    discharged: str, services: list[str]) -> None:
        self.at(project)
        await self.call(sw, "POST", f"/discharges/{did}/setting", {"setting": "home"})
        await self.call(sw, "POST", f"/discharges/{did}/project", {
            "cartella_id": cartella_id, "case_manager_id": str(sw.id), "title": "Rientro a domicilio"})
        self.at(discharged)
        await self.call(sw, "POST", f"/discharges/{did}/discharge", {"services": services})


# ---------------------------------------------------------------------------------------------------- the cast
async def cast(session) -> Cast:
    pua = await make_user(session, Role.asst_pua_operator, "asst-crema-pua", profession="Infermiera PUA")
    ifec = await make_user(session, Role.asst_pua_operator, "asst-crema-pua", profession="IFeC")
    sw_crema = await make_user(session, Role.comune_social_worker, "comune-crema", profession="Assistente sociale")
    sw_off = await make_user(session, Role.comune_social_worker, "comune-offanengo",
                             profession="Assistente sociale")
    return Cast(
        pua=pua, ifec=ifec, sw_crema=sw_crema, sw_off=sw_off,
        ward=await make_user(session, Role.ward_staff, "asst-crema-reparto-medicina"),
        steward=await make_user(session, Role.data_steward, "ambito-crema"),
        coordinator=await make_user(session, Role.sub_ambito_coordinator, "subambito-soncino"),
        rsa=await make_user(session, Role.rsa_operator, "op-fbc"),
        analyst=await make_user(session, Role.analyst, "ambito-crema"),
        pua_team=await make_team(session, [(pua, "asst-crema-pua")], type=TeamType.pua, seat="asst-crema-pua"),
        vmd_team=await make_team(session, [
            (ifec, "asst-crema-pua"), (sw_crema, "comune-crema"), (sw_off, "comune-offanengo")]))


# ---------------------------------------------------------------------------------------------------- the year
async def build_the_year(s: Scenario) -> None:
    c, session = s.c, s.session
    crema, offanengo = await org(session, "comune-crema"), await org(session, "comune-offanengo")
    s.at("2025-01-15T09:00")
    anna = await s.person("Ferrari", "Anna", "F", date(1938, 5, 10), crema.id)
    bruno = await s.person("Rossi", "Bruno", "M", date(1940, 2, 2), crema.id)
    dora = await s.person("Bianchi", "Dora", "F", date(1936, 9, 9), crema.id)
    carla = await s.person("Verdi", "Carla", "F", date(1942, 11, 11), offanengo.id)
    enzo = await s.person("Galli", "Enzo", "M", date(1935, 3, 3), offanengo.id)
    marta = await s.person("Galli", "Marta", "F", date(2015, 4, 4), offanengo.id)
    extras = [await s.person("Moretti", name, "M", date(1950 + i, 1, 1 + i), crema.id)
              for i, name in enumerate(("Luca", "Marco", "Paolo", "Sergio", "Walter"))]

    # r1: Anna, complex → VMD-A (opens her anziani cartella)
    s.at("2025-02-03T10:00")
    r1 = await s.request(anna)
    referred = await s.refer_vmd(r1)
    vmd_a = referred["vmd_id"]
    # r2: Anna registered a second time, without codice fiscale: a possible duplicate
    s.at("2025-02-04T10:00")
    dup = await s.call(c.pua, "POST", "/persons", {
        "surname": "Ferrari", "given_name": "Anna", "sex": "F", "birth_date": "1938-05-10",
        "other_identifier_type": "provisional", "residence_comune_id": str(crema.id)}, 201)
    match_id = next(d["match_id"] for d in dup["possible_duplicates"] if d["person"]["id"] == anna)
    await s.orient(await s.request(dup["id"]))
    # VMD-D on the duplicate's disabili cartella (MMG), only the ASST side signs
    s.at("2025-02-05T09:00")
    dup_cartella = await s.cartella(c.sw_crema, dup["id"], "disabili")
    vmd_d = (await s.call(c.sw_crema, "POST", "/vmd", {
        "person_id": dup["id"], "cartella_id": dup_cartella, "trigger": "mmg", "team_id": str(c.vmd_team.id)},
        201))["id"]
    await s.assess(vmd_a, signers=[c.ifec, c.sw_crema], start="2025-02-10T09:00", end="2025-02-12T16:00")
    await s.assess(vmd_d, signers=[c.ifec], start="2025-02-18T09:00", end="2025-02-20T16:00")
    # the data steward merges the duplicate into Anna
    s.at("2025-02-25T09:00")
    await s.call(c.steward, "POST", f"/person-matches/{match_id}/decision", {
        "decision": "merge", "keep_id": anna, "reason": "Stessa persona: verificato in anagrafe"})

    # the progetto di vita on the disabili cartella (now Anna's), after VMD-D: preceded by a VMD
    s.at("2025-03-01T09:00")
    await s.agreed_plan(c.sw_crema, anna, dup_cartella, vmd_id=vmd_d, start="2025-03-03")

    # x1-x5 and r6 (Carla, complex → VMD-C)
    for i, person in enumerate(extras):
        s.at(f"2025-03-0{3 + i}T10:00")
        await s.orient(await s.request(person))
    s.at("2025-03-03T11:00")
    referred = await s.refer_vmd(await s.request(carla))
    vmd_c, carla_cartella = referred["vmd_id"], referred["cartella_id"]
    # the IFeC takes part and records the Barthel without signing: the comune side alone is not integrated
    await s.assess(vmd_c, signers=[c.sw_off], also=(c.ifec,), start="2025-03-10T09:00", end="2025-03-12T16:00")

    # Carla's RSA application: VMD-W, temporary plan, listing, urgency, a bed, admission
    s.at("2025-04-01T09:00")
    rsa_unit = (await session.execute(sa.text("select id from service_unit where code = 'rsa-fbc-crema-1'"))
                ).scalar_one()
    entry = await s.call(c.sw_off, "POST", "/waiting-lists/applications", {
        "person_id": carla, "udo_type": "rsa", "unit_ids": [str(rsa_unit)], "applicant": "person",
        "application_date": "2025-04-01", "cartella_id": carla_cartella, "team_id": str(c.vmd_team.id)}, 201)
    # r4 (withdrawn) and r5 (cancelled: entered by mistake) of Dora
    r4 = await s.request(dora)
    await s.call(c.pua, "POST", f"/pua/requests/{r4}/withdraw", {"reason": "Ha trovato un'assistente privata."})
    s.at("2025-04-02T09:00")
    r5 = await s.request(dora)
    await s.call(c.pua, "POST", f"/pua/requests/{r5}/cancel", {"reason": "Inserita due volte per errore."})
    await s.assess(entry["vmd_id"], signers=[c.ifec, c.sw_off], start="2025-04-15T09:00",
                   end="2025-04-20T10:00")
    s.at("2025-04-21T09:00")
    plan = (await s.call(c.sw_off, "POST", "/care-plans", {
        "cartella_id": carla_cartella, "vmd_id": entry["vmd_id"], "kind": "temporary",
        "case_manager_id": str(c.sw_off.id), "title": "Progetto temporaneo in attesa dell'RSA"}, 201))["id"]
    await s.call(c.sw_off, "POST", f"/care-plans/{plan}/goals", {
        "description": "Restare al domicilio in sicurezza", "indicator": "Cadute", "target": "Nessuna caduta",
        "due_date": "2025-10-21"}, 201)
    await s.call(c.sw_off, "POST", f"/care-plans/{plan}/interventions", {
        "service_type": "sad", "provider_org_id": str((await org(session, "ets-igea")).id), "intensity_value": 6,
        "intensity_unit": "ore/settimana", "start_date": "2025-04-23", "funding_source": "fna"}, 201)
    await s.call(c.sw_off, "POST", f"/care-plans/{plan}/propose")
    consent = (await s.call(c.sw_off, "POST", f"/persons/{carla}/consents", {
        "purpose": "care", "grantor_kind": "self", "valid_from": "2025-04-21"}, 201))["id"]
    await s.call(c.sw_off, "POST", f"/care-plans/{plan}/agree", {"consent_id": consent})
    s.at("2025-04-22T09:00")
    await s.call(c.sw_off, "POST", f"/waiting-lists/applications/{entry['id']}/decision", {
        "decision": "listed", "caregiver": "none", "lives_alone": True, "temporary_plan_id": plan})
    s.at("2025-04-23T09:00")
    await s.call(c.sw_off, "POST", f"/care-plans/{plan}/activate")
    s.at("2025-04-24T09:00")
    await s.call(c.sw_off, "POST", f"/waiting-lists/applications/{entry['id']}/urgency",
                 {"reason": "loss_of_home", "note": "Sfratto esecutivo."})
    await s.call(c.coordinator, "POST", f"/waiting-lists/applications/{entry['id']}/urgency/decision",
                 {"confirm": True})
    s.at("2025-05-14T09:00")
    await s.call(c.rsa, "POST", f"/waiting-lists/units/{rsa_unit}/beds", {"label": "Camera 3"}, 201)
    offer = await s.call(c.rsa, "POST", "/waiting-lists/offers", {"unit_id": str(rsa_unit)}, 201)
    await s.call(c.sw_off, "POST", f"/waiting-lists/offers/{offer['id']}/receipt", {})
    s.at("2025-05-15T10:00")
    await s.call(c.rsa, "POST", f"/waiting-lists/offers/{offer['id']}/accept", {})

    # r7 Enzo (oriented); d4: his signal, then he dies before the evaluation
    s.at("2025-05-16T10:00")
    await s.orient(await s.request(enzo))
    s.at("2025-06-10T10:00")
    await s.signal(enzo, social_risk=True)
    s.at("2025-06-11T12:00")
    await s.call(c.sw_off, "POST", f"/persons/{enzo}/death", {"date_of_death": "2025-06-11"})
    await s.run_jobs()

    # Marta, 10, referred to the autism pathway: her VMD (only the comune side signs), then her progetto
    s.at("2025-07-01T09:00")
    marta_cartella = await s.cartella(c.sw_off, marta, "minori_famiglia")
    vmd_m = (await s.call(c.sw_off, "POST", "/vmd", {
        "person_id": marta, "cartella_id": marta_cartella, "trigger": "asd", "team_id": str(c.vmd_team.id)},
        201))["id"]
    await s.assess(vmd_m, signers=[c.sw_off], start="2025-07-10T09:00", end="2025-07-15T10:00")
    s.at("2025-07-20T09:00")
    mother = await s.call(c.sw_off, "POST", f"/persons/{marta}/relations", {
        "kind": "parent_responsibility", "surname": "Galli", "given_name": "Giulia"}, 201)
    await s.agreed_plan(c.sw_off, marta, marta_cartella, vmd_id=vmd_m, start="2025-07-21", grantor={
        "grantor_kind": "parent_responsibility", "grantor_relation_id": mother["id"]})

    # d1 Bruno and d2 Dora across the DST change (Sunday 26 October 2025, 03:00 CEST → 02:00 CET)
    s.at("2025-10-25T10:00")
    d1 = await s.signal(bruno, social_risk=True)
    bruno_cartella = await s.cartella(c.sw_crema, bruno, "anziani")
    vmd_d1 = await s.evaluation_request(c.sw_crema, d1, bruno_cartella)
    s.at("2025-10-25T11:00")
    d2 = await s.signal(dora, social_risk=False)
    dora_cartella = await s.cartella(c.sw_crema, dora, "anziani")
    vmd_d2 = await s.evaluation_request(c.sw_crema, d2, dora_cartella)
    await s.assess(vmd_d1, signers=[c.sw_crema], start="2025-10-26T10:00", end="2025-10-27T09:30")
    await s.assess(vmd_d2, signers=[c.sw_crema], start="2025-10-27T09:40", end="2025-10-27T10:00")
    await s.project_and_discharge(c.sw_crema, d1, bruno_cartella, project="2025-10-28T10:00",
                                  discharged="2025-10-30T10:00", services=["sad", "adi"])
    await s.project_and_discharge(c.sw_crema, d2, dora_cartella, project="2025-10-28T11:00",
                                  discharged="2025-10-31T10:00", services=["sad"])

    # Dora's CDI application (VMD-W2, 38 days, not listed) and VMD-X never concluded
    s.at("2025-11-20T09:00")
    cdi_unit = (await session.execute(sa.text(
        "select id from service_unit where udo_type = 'cdi' order by code limit 1"))).scalar_one()
    cdi = await s.call(c.sw_crema, "POST", "/waiting-lists/applications", {
        "person_id": dora, "udo_type": "cdi", "unit_ids": [str(cdi_unit)], "applicant": "person",
        "application_date": "2025-11-20", "cartella_id": dora_cartella, "team_id": str(c.vmd_team.id)}, 201)
    s.at("2025-12-20T09:00")
    await s.call(c.sw_crema, "POST", "/vmd", {
        "person_id": dora, "cartella_id": dora_cartella, "trigger": "cdcd", "team_id": str(c.vmd_team.id)}, 201)
    await s.assess(cdi["vmd_id"], signers=[c.sw_crema], start="2025-12-27T09:00", end="2025-12-28T10:00")
    s.at("2025-12-29T09:00")
    await s.call(c.sw_crema, "POST", f"/waiting-lists/applications/{cdi['id']}/decision", {
        "decision": "not_listed", "reason": "Bisogno coperto dal domicilio", "caregiver": "present",
        "lives_alone": False})

    # the last evening of the year and the first hours of the next
    s.at("2025-12-31T23:00")
    d3 = await s.signal(carla, social_risk=True)
    vmd_d3 = await s.evaluation_request(c.sw_off, d3, carla_cartella)
    s.at("2025-12-31T23:30")
    r3 = await s.request(bruno)
    s.at("2026-01-01T00:40")
    await s.signal(anna, social_risk=True)  # d5: 23:40 UTC on 31 December, a 2026 signal
    await s.assess(vmd_d3, signers=[c.sw_off], start="2026-01-01T07:00", end="2026-01-01T08:00")
    s.at("2026-01-01T09:00")
    await s.orient(r3)
    s.at("2026-01-02T10:00")
    await s.call(c.sw_off, "POST", f"/discharges/{d3}/setting", {"setting": "home"})
    await s.call(c.sw_off, "POST", f"/discharges/{d3}/project", {
        "cartella_id": carla_cartella, "case_manager_id": str(c.sw_off.id), "title": "Rientro a domicilio"})
    s.at("2026-01-05T09:00")


# ---------------------------------------------------------------------------------------------------- the check
def _shown(n: int | None) -> int | str | None:
    """What an aggregate reader sees of a count: 1-4 are "<5"; 0 and 5+ are shown (or withheld as n.d. to protect
    another cell, checked apart)."""
    return "<5" if n is not None and 0 < n < 5 else n


async def test_the_report_of_a_year_built_through_the_api_matches_the_hand_computed_values(client, session, clock):
    s = Scenario(client, session, clock, await cast(session))
    await build_the_year(s)
    ambito = await org(session, "ambito-crema")
    subs = {"crema": (await org(session, "subambito-crema")).id,
            "soncino": (await org(session, "subambito-soncino")).id}
    tree = await territory.ambito_tree(session, ambito.id)
    assert set(EXPECTED) == set(definitions.codes())

    # the counts behind the report, cell by cell (the numbers small cells then hide)
    for code, want in EXPECTED.items():
        d = definitions.registry()[code]
        counts = await indicators.compute(session, d, ambito_id=ambito.id, r=indicators.reading_for(d, YEAR),
                                          tree=tree)
        for name, key in (*((n, ("sub_ambito", subs[n])) for n in SUBS), ("ambito", indicators.TOTAL)):
            got = (counts.num[key], counts.den[key] if counts.den is not None else None)
            assert got == want[name], (code, name, got, want[name])
        others = [k for k in counts.num if k[0] == "sub_ambito" and k[1] not in subs.values()]
        assert len(others) == 4 and all(counts.num[k] == 0 for k in others), code
        if code.startswith("ATTESA"):
            assert counts.stat[("sub_ambito", subs["soncino"])] == CARLA_WAIT_DAYS
            assert counts.stat[("urgency", "urgent")] == CARLA_WAIT_DAYS  # the coordinator confirmed it
        elif counts.stat is not None:  # DIS-PIC: the disabili cartella opened 5 Feb, its first plan agreed 1 Mar
            assert code == "DIS-PIC" and counts.stat[("sub_ambito", subs["crema"])] == DIS_PIC_DAYS

    # the report over HTTP, as the CSC analyst reads it: the same numbers, small ones as "<5"
    r = await client.get("/api/reports/indicators", params={"year": YEAR, "by": "sub_ambito"},
                         headers=bearer(s.c.analyst))
    assert r.status_code == 200, r.text
    rows = r.json()["rows"]
    assert {x["code"] for x in rows} == set(EXPECTED)
    by_id = {str(v): n for n, v in subs.items()}
    for x in rows:
        name = "ambito" if x["grouping"] == "ambito" else by_id.get(x["key"])
        if name is None:
            assert (x["numerator"], x["denominator"] or 0) == (0, 0), x
            continue
        num, den = EXPECTED[x["code"]][name]
        shown = (x["numerator"], x["denominator"])
        assert shown[0] in (_shown(num), "n.d.") and shown[1] in (_shown(den), "n.d."), (x["code"], name, shown)
        hidden = "<5" in shown or "n.d." in shown
        if den is None:
            continue
        value = None if den == 0 or hidden else float((Decimal(num) / Decimal(den)).quantize(
            Decimal("0.0001"), rounding=ROUND_HALF_UP))
        assert (float(x["value"]) if x["value"] is not None else None) == value, (x["code"], name, x["value"])
    # Soncino's P1 cells are small ("<5"): Crema's are withheld (n.d.) too, or the Ambito total minus Crema
    # would give them away; the Ambito's 9 / 11 shows
    p1 = {(x["grouping"], x["key"]): x for x in rows if x["code"] == "P1"}
    shown = {k: (v["numerator"], v["denominator"], v["value"]) for k, v in p1.items()}
    assert shown[("sub_ambito", str(subs["soncino"]))] == ("<5", "<5", None)
    assert shown[("sub_ambito", str(subs["crema"]))] == ("n.d.", "n.d.", None)
    assert shown[("ambito", None)] == (9, 11, 0.8182)

    # the signal at 00:40 on 1 January 2026 (23:40 UTC on 31 December) is a 2026 signal: D3 of 2026 counts it in
    # Crema (Anna, social risk), and 2025 did not (above)
    d3 = definitions.registry()["D3"]
    counts = await indicators.compute(session, d3, ambito_id=ambito.id, r=indicators.reading_for(d3, 2026),
                                      tree=tree)
    assert counts.den[("sub_ambito", subs["crema"])] == 1 and counts.den[indicators.TOTAL] == 1
