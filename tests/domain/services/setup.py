"""Shared setup of the services and measures tests: a case of an Offanengo resident walked through the real
services (a PUA request, a VMD concluded by the equipe, a progetto individualizzato with SAD 6 h/week agreed and
activated), the cooperative's operator (ETS Igea), the system administrator who accredits it, and helpers."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from domain.assessment import service as vmd_service
from domain.care_plan import interventions
from domain.care_plan import service as care_plan
from domain.pua import service as pua
from domain.registry.models import ConsentPurpose
from domain.security.models import Role
from domain.services import service
from schemas.care_plan import ActivateIn, CarePlanCreate, GoalCreate, InterventionCreate
from schemas.pua import AccessRequestCreate
from schemas.services import AccreditationCreate
from tests.domain.assessment.vmd_setup import build_world, give_consent, principal_of, signed_and_met
from tests.support import make_user, org

MONDAY = datetime.fromisoformat("2026-03-02T09:00:00+01:00")  # tests/conftest.FIXED_NOW
UNIT_COST = Decimal("21.50")


@dataclass
class Case:
    w: Any  # tests.domain.assessment.vmd_setup.World: person, cartella, team, ifec, sw
    coop: Any  # ets_operator of ets-igea
    other_coop: Any  # ets_operator of ets-meraki (not the provider)
    admin: Any
    coordinator: Any
    analyst: Any
    igea: Any
    meraki: Any
    vmd: Any
    plan: Any
    sad: Any  # the SAD intervention, 6 h/week from Monday 2 March to Monday 30 March (excluded)
    request: Any

    async def p(self, session, user):
        return await principal_of(session, user)


async def build_case(session, clock, *, accredit: bool = True, sad_end: date = date(2026, 3, 30)) -> Case:
    w = await build_world(session)
    igea, meraki = await org(session, "ets-igea"), await org(session, "ets-meraki")
    coop = await make_user(session, Role.ets_operator, "ets-igea")
    other_coop = await make_user(session, Role.ets_operator, "ets-meraki")
    admin = await make_user(session, Role.system_admin, "ambito-crema")
    coordinator = await make_user(session, Role.sub_ambito_coordinator, "subambito-soncino")
    analyst = await make_user(session, Role.analyst, "udp-crema")
    ifec, sw = await principal_of(session, w.ifec), await principal_of(session, w.sw)
    # the request at the PUA, the VMD, the plan
    reg = await pua.register_request(session, principal=ifec, data=AccessRequestCreate(
        person_id=w.person.id, channel="phone", requester_kind="family",
        reported_need="La madre non riesce più a lavarsi e a fare la spesa da sola."))
    v, ifec, sw = await signed_and_met(session, w, clock)
    v = await vmd_service.conclude(session, principal=ifec, vmd_id=v.id, outcome="project_proposed")
    await give_consent(session, w.person, w.sw, purpose=ConsentPurpose.care)
    plan = await care_plan.create_plan(session, principal=sw, data=CarePlanCreate(
        cartella_id=w.cartella.id, case_manager_id=w.sw.id, title="Sostegno alla domiciliarità", vmd_id=v.id))
    await interventions.add_goal(session, principal=sw, plan_id=plan.id, data=GoalCreate(
        description="Igiene personale quotidiana in sicurezza", indicator="Accessi SAD erogati", target="6 ore"))
    sad = await interventions.add_intervention(session, principal=sw, plan_id=plan.id, data=InterventionCreate(
        service_type="sad", provider_org_id=igea.id, intensity_value=6, intensity_unit="ore/settimana",
        start_date=date(2026, 3, 2), end_date=sad_end, funding_source="fna"))
    await care_plan.propose(session, principal=sw, plan_id=plan.id)
    await care_plan.agree(session, principal=sw, plan_id=plan.id)
    await care_plan.activate(session, principal=sw, plan_id=plan.id, data=ActivateIn(intervention_ids=[sad.id]))
    if accredit:
        await service.accredit(session, principal=await principal_of(session, admin), data=AccreditationCreate(
            organisation_id=igea.id, service_type="sad", valid_from=date(2026, 1, 1), unit_cost=UNIT_COST))
    return Case(w=w, coop=coop, other_coop=other_coop, admin=admin, coordinator=coordinator, analyst=analyst,
                igea=igea, meraki=meraki, vmd=v, plan=plan, sad=sad, request=reg)
