"""Shared setup of the waiting-list tests: an equipe (the IFeC of the ASST PUA and the Offanengo social worker),
the coordinator of the Soncino sub-ambito (Offanengo is in it), the operators of two RSA, and `applicant()`, which
walks one person through the real services: cartella, consent, application (the joint VMD), Barthel recorded and
signed, an agreed temporary plan, and (optionally) the equipe's listing decision."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from domain.assessment import equipe
from domain.assessment import service as vmd_service
from domain.care_plan import interventions
from domain.care_plan import service as care_plan
from domain.registry import cartelle
from domain.registry.models import ConsentPurpose
from domain.security.models import Role
from domain.territory.models import ServiceUnit
from domain.waiting_list import service
from schemas.care_plan import CarePlanCreate, GoalCreate, InterventionCreate
from schemas.waiting_list import ApplicationCreate, DecisionIn
from tests.domain.assessment.vmd_setup import give_consent, make_team, principal_of
from tests.factories.cartelle import create_person
from tests.support import make_user, org

# Barthel answers giving 20, 35 and 60 (schemas/instruments/barthel/1.yaml)
BARTHEL = {
    20: {"feeding": "needs_help", "bathing": "dependent", "grooming": "needs_help", "dressing": "needs_help",
         "bowels": "occasional_accident", "bladder": "occasional_accident", "toilet_use": "dependent",
         "transfers": "unable", "mobility": "immobile", "stairs": "unable"},
    35: {"feeding": "needs_help", "bathing": "dependent", "grooming": "needs_help", "dressing": "needs_help",
         "bowels": "occasional_accident", "bladder": "occasional_accident", "toilet_use": "needs_help",
         "transfers": "minor_help", "mobility": "immobile", "stairs": "unable"},
    60: {"feeding": "needs_help", "bathing": "dependent", "grooming": "needs_help", "dressing": "needs_help",
         "bowels": "continent", "bladder": "continent", "toilet_use": "needs_help",
         "transfers": "minor_help", "mobility": "walks_with_help", "stairs": "needs_help"},
}


async def unit(session, code: str) -> ServiceUnit:
    return (await session.execute(sa.select(ServiceUnit).where(ServiceUnit.code == code))).scalar_one()


@dataclass
class Applicant:
    person: Any
    cartella: Any
    entry: Any
    plan: Any


class World:
    async def build(self, session):
        self.ifec = await make_user(session, Role.asst_pua_operator, "asst-crema-pua", profession="IFeC")
        self.sw = await make_user(session, Role.comune_social_worker, "comune-offanengo")
        self.crema_sw = await make_user(session, Role.comune_social_worker, "comune-crema")
        self.nurse = await make_user(session, Role.cdc_assessor, "asst-crema-cdc-crema")
        self.coordinator = await make_user(session, Role.sub_ambito_coordinator, "subambito-soncino")
        self.fbc = await make_user(session, Role.rsa_operator, "op-fbc")
        self.caimi = await make_user(session, Role.rsa_operator, "op-caimi")
        self.team = await make_team(session, [(self.ifec, "asst-crema-pua"), (self.sw, "comune-offanengo")])
        self.x = await unit(session, "rsa-fbc-crema-1")  # RSA X
        self.y = await unit(session, "rsa-caimi-vailate")  # RSA Y
        self.x2 = await unit(session, "rsa-fbc-crema-2")
        self.offanengo = await org(session, "comune-offanengo")
        return self

    async def p(self, session, user):
        return await principal_of(session, user)


async def applicant(session, w: World, *, barthel: int, units: list, application_date: date,
                    listing_date: date | None = None, caregiver: str = "present", lives_alone: bool = False,
                    birth_date: date = date(1938, 4, 2), udo_type: str = "rsa") -> Applicant:
    sw, ifec = await w.p(session, w.sw), await w.p(session, w.ifec)
    person = await create_person(session, comune="comune-offanengo", birth_date=birth_date)
    cartella = await cartelle.open_cartella(session, principal=sw, person_id=person.id, area="anziani")
    await give_consent(session, person, w.sw, purpose=ConsentPurpose.care)
    entry = await service.apply(session, principal=sw, data=ApplicationCreate(
        person_id=person.id, udo_type=udo_type, unit_ids=[u.id for u in units], applicant="relative",
        applicant_name="Un familiare", application_date=application_date, cartella_id=cartella.id,
        team_id=w.team.id))
    await vmd_service.schedule(session, principal=ifec, vmd_id=entry.vmd_id,
                               scheduled_for=datetime.fromisoformat("2026-06-11T10:00:00+02:00"), location="CdC")
    await equipe.add_assessor(session, principal=ifec, vmd_id=entry.vmd_id, user_id=w.ifec.id)
    await equipe.record_response(session, principal=ifec, vmd_id=entry.vmd_id, instrument_code="barthel",
                                 answers=BARTHEL[barthel])
    await equipe.sign(session, principal=ifec, vmd_id=entry.vmd_id)
    plan = await temporary_plan(session, w, cartella)
    if listing_date is not None:
        entry = await service.decide(session, principal=sw, entry_id=entry.id, data=DecisionIn(
            decision="listed", caregiver=caregiver, lives_alone=lives_alone, temporary_plan_id=plan.id,
            listing_date=listing_date))
    return Applicant(person, cartella, entry, plan)


async def temporary_plan(session, w: World, cartella, *, agree: bool = True):
    sw = await w.p(session, w.sw)
    plan = await care_plan.create_plan(session, principal=sw, data=CarePlanCreate(
        cartella_id=cartella.id, kind="temporary", case_manager_id=w.sw.id,
        title="Sostegno al domicilio durante l'attesa"))
    await interventions.add_goal(session, principal=sw, plan_id=plan.id, data=GoalCreate(
        description="Restare a casa in sicurezza", indicator="Accessi in Pronto Soccorso", target="Nessuno"))
    await interventions.add_intervention(session, principal=sw, plan_id=plan.id,
                                         data=InterventionCreate(service_type="sad"))
    await care_plan.propose(session, principal=sw, plan_id=plan.id)
    if agree:
        await care_plan.agree(session, principal=sw, plan_id=plan.id)
    return plan
