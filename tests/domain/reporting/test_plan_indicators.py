"""The indicators over progetti individualizzati and the autism pathway (DIS-VMD, LEPS-PI, AU-VMD, AU-PI), on facts
built through the domain services: what "preceded by a VMD" and "a project after the request" leave out. The
positive cases are in the acceptance year (tests/api/test_reporting_acceptance.py)."""
from __future__ import annotations

import dataclasses
from datetime import date, datetime
from decimal import Decimal

import pytest

from domain.assessment import service as vmd_service
from domain.care_plan import interventions
from domain.care_plan import service as care_plan
from domain.registry import cartelle
from domain.registry.models import ConsentPurpose
from domain.reporting import indicators
from schemas.care_plan import CarePlanCreate, GoalCreate, InterventionCreate
from tests.domain.assessment.vmd_setup import build_world, give_consent, requested, signed_and_met
from tests.domain.reporting.test_indicators import counts, total
from tests.factories.cartelle import create_person
from tests.support import org

pytestmark = pytest.mark.db


async def _agreed_plan(session, w, cartella_id) -> None:
    sw = await w.p(session, "sw")
    plan = await care_plan.create_plan(session, principal=sw, data=CarePlanCreate(
        cartella_id=cartella_id, case_manager_id=w.sw.id, title="Progetto di vita"))
    await interventions.add_goal(session, principal=sw, plan_id=plan.id, data=GoalCreate(
        description="Autonomia negli spostamenti", indicator="Uscite settimanali", target="3"))
    await interventions.add_intervention(session, principal=sw, plan_id=plan.id, data=InterventionCreate(
        service_type="sad", provider_org_id=(await org(session, "ets-igea")).id, intensity_value=4,
        intensity_unit="ore/settimana", start_date=date(2026, 4, 1), funding_source="fna"))
    await care_plan.propose(session, principal=sw, plan_id=plan.id)
    await care_plan.agree(session, principal=sw, plan_id=plan.id)


def at(s: str) -> datetime:
    return datetime.fromisoformat(s)


async def test_a_progetto_di_vita_counts_as_preceded_only_by_a_vmd_concluded_before_its_agreement(session, clock):
    w = await build_world(session)
    await give_consent(session, w.person, w.sw, purpose=ConsentPurpose.care)
    disabili = await cartelle.open_cartella(session, principal=await w.p(session, "sw"), person_id=w.person.id,
                                            area="disabili")
    # 2 March: a plan on the disabili cartella, no VMD there yet
    await _agreed_plan(session, w, disabili.id)
    # half an hour later: a VMD on the same cartella, concluded after that plan; 9 March: a second plan
    clock.set(at("2026-03-02T09:30:00+01:00"))
    v, ifec, _sw = await signed_and_met(session, dataclasses.replace(w, cartella=disabili), clock)
    await vmd_service.conclude(session, principal=ifec, vmd_id=v.id, outcome="project_proposed")
    clock.set(at("2026-03-09T10:00:00+01:00"))
    await _agreed_plan(session, w, disabili.id)
    # DIS-VMD: two progetti di vita agreed in 2026, the second one preceded by a VMD; the first one is not,
    # although its cartella has a VMD by the end of the year
    assert total(await counts(session, "DIS-VMD")) == (1, 2)
    assert total(await counts(session, "DIS-VMD", 2025)) == (0, 0)
    # LEPS-PI counts the plans of the minori_famiglia area only
    assert total(await counts(session, "LEPS-PI")) == (0, None)


async def test_autism_counts_persons_and_a_project_only_after_the_request(session, clock):
    w = await build_world(session)
    await give_consent(session, w.person, w.sw, purpose=ConsentPurpose.care)
    await _agreed_plan(session, w, w.cartella.id)  # 2 March: a plan agreed before the referral
    clock.set(at("2026-03-10T09:00:00+01:00"))
    await requested(session, w, trigger="asd")  # the referral to the autism pathway, not yet assessed
    await requested(session, w, trigger="pua")  # another pathway: not a referral of a user with ASD
    assert total(await counts(session, "AU-VMD")) == (0, 1)
    assert total(await counts(session, "AU-PI")) == (0, 1)  # the plan of 2 March came before the request
    disabili = await cartelle.open_cartella(session, principal=await w.p(session, "sw"), person_id=w.person.id,
                                            area="disabili")
    await requested(session, dataclasses.replace(w, cartella=disabili), trigger="asd")  # the same person: one user
    assert total(await counts(session, "AU-VMD")) == (0, 1)


async def test_time_to_take_in_charge_is_the_mean_from_opening_to_the_first_plan(session, clock):
    """DIS-PIC: each disabili cartella's first agreed plan is its taking in charge, measured in Rome calendar days
    from the cartella's opening; a second plan on the same cartella and a plan of another area do not count."""
    w = await build_world(session)
    await give_consent(session, w.person, w.sw, purpose=ConsentPurpose.care)
    sw = await w.p(session, "sw")
    clock.set(at("2026-01-10T23:30:00+01:00"))  # late evening: the day is Rome's 10 January
    first = await cartelle.open_cartella(session, principal=sw, person_id=w.person.id, area="disabili")
    clock.set(at("2026-02-09T00:15:00+01:00"))  # 30 days after, a quarter past midnight
    await _agreed_plan(session, w, first.id)
    clock.set(at("2026-03-01T09:00:00+01:00"))
    await _agreed_plan(session, w, first.id)  # the same cartella again: not a new taking in charge
    await _agreed_plan(session, w, w.cartella.id)  # the anziani cartella of build_world: another area
    young = await create_person(session, comune="comune-offanengo", sex="M", birth_date=date(1990, 2, 3))
    await give_consent(session, young, w.sw, purpose=ConsentPurpose.care)
    other = await cartelle.open_cartella(session, principal=sw, person_id=young.id, area="disabili")
    clock.set(at("2026-03-11T09:00:00+01:00"))  # 10 days after its opening
    await _agreed_plan(session, w, other.id)
    c = await counts(session, "DIS-PIC")
    assert total(c) == (2, None)
    assert c.stat[indicators.TOTAL] == Decimal(20)  # (30 + 10) / 2
    assert total(await counts(session, "DIS-PIC", 2025)) == (0, None)
