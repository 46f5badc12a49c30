"""Indicators computed from the facts the contexts record, on scenarios built through the domain services, with
the expected numbers worked out by hand in the comments (Ambito di Crema, year 2026 unless stated)."""
from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from domain.assessment import service as vmd_service
from domain.care_plan import service as care_plan
from domain.discharge import flows as discharge_flows
from domain.discharge import service as discharge_service
from domain.measures import service as measures
from domain.pua import flows as pua_flows
from domain.pua import service as pua_service
from domain.registry import cartelle, dedup
from domain.reporting import definitions, indicators
from domain.security.models import Role
from domain.services import service as services
from domain.territory import queries as territory
from domain.waiting_list import offers
from schemas.care_plan import CarePlanCreate
from schemas.measures import ActivationIn, ApplicationCreate, AssessmentIn, CallCreate
from schemas.pua import OrientIn, ReferCotIn
from schemas.services import ActivationCreate, DeliveryCreate
from tests.domain.assessment.vmd_setup import build_world, requested, signed_and_met
from tests.domain.discharge.test_service import World as DischargeWorld
from tests.domain.discharge.test_service import _concluded_vmd, signal
from tests.domain.pua.helpers import (
    complex_answers,
    create,
    elderly_woman,
    mmg_referral,
    setup_pua,
    simple_answers,
    triaged,
)
from tests.domain.services.setup import MONDAY, build_case
from tests.domain.waiting_list.setup import World as ListWorld
from tests.domain.waiting_list.setup import applicant
from tests.factories.cartelle import create_person
from tests.support import make_user, org

pytestmark = pytest.mark.db


def at(s: str) -> datetime:
    return datetime.fromisoformat(s)


async def counts(session, code: str, year: int = 2026, reading: str | None = None, cutoff: date | None = None,
                 ambito: str = "ambito-crema") -> indicators.Counts:
    a = await org(session, ambito)
    d = definitions.registry()[code]
    tree = await territory.ambito_tree(session, a.id)
    return await indicators.compute(session, d, ambito_id=a.id, r=indicators.reading_for(d, year, reading, cutoff),
                                     tree=tree)


def total(c: indicators.Counts) -> tuple[int, int | None]:
    return c.num[indicators.TOTAL], (c.den[indicators.TOTAL] if c.den is not None else None)


async def test_every_indicator_computes_on_an_empty_ambito(session):
    for code in definitions.codes():
        c = await counts(session, code)
        assert total(c)[0] == 0, code


async def _principal(session, role, org_code):
    from domain.security.principal import load_principal

    user = await make_user(session, role, org_code)
    return await load_principal(session, str(user.id))


# ---------------------------------------------------------------------------------------------------- PUA P1-P3
async def test_pua_requests_by_year_reading_and_comune(session, clock):
    pua = await setup_pua(session)
    person = await elderly_woman(session)
    mmg = await pua.principal(session, pua.mmg)
    op = await pua.principal(session, pua.operator)
    # 2025-12-31 23:50 registered, triaged on 2 January 2026: year 2025, its first level in 2026
    clock.set(at("2025-12-31T23:50:00+01:00"))
    late = (await pua_service.register_request(session, principal=mmg, data=create(mmg_referral(person.id)))).request
    clock.set(at("2026-01-01T00:30:00+01:00"))  # still 31 December in UTC: it belongs to 2026
    await pua_service.register_request(session, principal=mmg, data=create(mmg_referral(person.id)))
    clock.set(at("2026-01-02T09:00:00+01:00"))
    await pua_service.take_in_reception(session, principal=op, request_id=late.id)
    await pua_service.record_triage(session, principal=op, request_id=late.id, answers=simple_answers(age=82))
    clock.set(at("2026-03-02T09:00:00+01:00"))
    await triaged(session, pua, person, simple_answers(age=82))                       # first level, still open
    ar2, _, _ = await triaged(session, pua, person, complex_answers(recent_discharge=True))
    await pua_flows.refer_cot(session, principal=op, request_id=ar2.id, data=ReferCotIn())   # a path: the COT
    ar3, _, _ = await triaged(session, pua, person, simple_answers(age=82))
    await pua_service.orient(session, principal=op, request_id=ar3.id, data=OrientIn(information_given="Info"))
    r4 = (await pua_service.register_request(session, principal=mmg, data=create(mmg_referral(person.id)))).request
    await pua_service.cancel(session, principal=op, request_id=r4.id, reason="Registrata due volte")  # never was
    r5 = (await pua_service.register_request(session, principal=mmg, data=create(mmg_referral(person.id)))).request
    await pua_service.withdraw(session, principal=op, request_id=r5.id, reason="Rinuncia")  # stays in the den
    ar6, _, _ = await triaged(session, pua, person, complex_answers(recent_discharge=True))
    await pua_flows.refer_cot(session, principal=op, request_id=ar6.id, data=ReferCotIn(with_vmd=True))

    # 2026: 00:30 of 1 January, open, COT, oriented, withdrawn, COT + VMD = 6 registered (the cancelled one out);
    # first level: open, COT, oriented, COT + VMD = 4; paths: COT, oriented, COT + VMD = 3; to VMD: 1
    assert total(await counts(session, "P1")) == (4, 6)
    assert total(await counts(session, "P2")) == (3, 6)
    assert total(await counts(session, "P3")) == (1, 6)
    # the late request of 2025: same period, its first level falls in 2026 -> 0 / 1; cohort to 31 January -> 1 / 1
    assert total(await counts(session, "P1", 2025)) == (0, 1)
    assert total(await counts(session, "P1", 2025, "cohort", date(2026, 1, 31))) == (1, 1)
    # event_date: each count by its own date: 5 first levels in 2026 (the late one too) over 6 registered
    assert total(await counts(session, "P1", 2026, "event_date")) == (5, 6)
    # stratified by the comune of residence (Offanengo) and its sub-ambito
    offanengo = await org(session, "comune-offanengo")
    c = await counts(session, "P1")
    assert (c.num[("comune", offanengo.id)], c.den[("comune", offanengo.id)]) == (4, 6)
    assert (c.num[c.parent[("comune", offanengo.id)]], c.den[c.parent[("comune", offanengo.id)]]) == (4, 6)
    assert sum(v for k, v in c.den.items() if k[0] == "comune") == 6
    # a person who died keeps every count earned before
    from domain.registry import persons

    steward = await _principal(session, Role.comune_social_worker, "comune-offanengo")
    await persons.record_death(session, principal=steward, person_id=person.id, date_of_death=date(2026, 3, 1))
    assert total(await counts(session, "P1")) == (4, 6)
    # the second Ambito sees none of it
    assert total(await counts(session, "P1", ambito="ambito-cremona-test")) == (0, 0)


async def test_requests_and_vmds_count_in_the_comune_of_residence_at_their_start(session, clock):
    """The person moves from Offanengo to Crema: what was requested before the move stays Offanengo's, what comes
    after is Crema's (the residence is recorded at the start event, not looked up today)."""
    pua = await setup_pua(session)
    w = await build_world(session)  # a person resident in Offanengo, with a cartella and an equipe
    mmg = await pua.principal(session, pua.mmg)
    offanengo, crema = await org(session, "comune-offanengo"), await org(session, "comune-crema")
    clock.set(at("2026-03-02T09:00:00+01:00"))
    await pua_service.register_request(session, principal=mmg, data=create(mmg_referral(w.person.id)))
    await requested(session, w, trigger="pua")
    w.person.residence_comune_id = crema.id  # the registry records the move (the fact, as the anagrafe sends it)
    await session.flush()
    clock.set(at("2026-04-02T09:00:00+01:00"))
    await pua_service.register_request(session, principal=mmg, data=create(mmg_referral(w.person.id)))
    await requested(session, w, trigger="measure_b2")
    p1, v2 = await counts(session, "P1"), await counts(session, "V2")
    for c in (p1, v2):
        assert (c.den[("comune", offanengo.id)], c.den[("comune", crema.id)]) == (1, 1)
        # and each comune's sub-ambito has its own
        assert c.den[c.parent[("comune", offanengo.id)]] == 1 and c.den[c.parent[("comune", crema.id)]] == 1


# ------------------------------------------------------------------------------------- VMD P4, V1; cartelle
async def test_integrated_vmds_and_assessments_done_and_open_cartelle_by_area(session, clock):
    w = await build_world(session)
    v, ifec, sw = await signed_and_met(session, w, clock)
    await vmd_service.conclude(session, principal=ifec, vmd_id=v.id, outcome="measure_eligible")  # integrated
    cancelled = await requested(session, w, trigger="mmg")
    await vmd_service.cancel(session, principal=ifec, vmd_id=cancelled.id, reason="rinuncia")  # stays in V1's den
    await requested(session, w, trigger="protected_discharge")  # D6/D7's, not P4's nor V1's
    # P4: integrated 1 / concluded 1 (target 75 % in 2026: met); V1: concluded 1 / requested 2 (cancelled one in)
    assert total(await counts(session, "P4")) == (1, 1)
    assert total(await counts(session, "V1")) == (1, 2)
    assert total(await counts(session, "UVMD")) == (1, None)  # one person taken in charge by the UVMD
    v2 = await counts(session, "V2")  # V1 by the type of service requested
    assert (v2.num[("trigger", "pua")], v2.den[("trigger", "pua")]) == (1, 1)
    assert (v2.num[("trigger", "mmg")], v2.den[("trigger", "mmg")]) == (0, 1)
    assert v2.den[("trigger", "protected_discharge")] == 0
    # configurable: a definition that excludes no trigger counts the protected-discharge VMD too
    v1 = dataclasses.replace(definitions.registry()["V1"], params={"excluded_triggers": []})
    crema = await org(session, "ambito-crema")
    every = await indicators.compute(session, v1, ambito_id=crema.id, r=indicators.reading_for(v1, 2026),
                                     tree=await territory.ambito_tree(session, crema.id))
    assert total(every) == (1, 3)
    p4 = await counts(session, "P4")
    assert (p4.num[("area", "anziani")], p4.den[("area", "anziani")]) == (1, 1)
    assert p4.den[("area", "disabili")] == 0
    # one open cartella (anziani, Offanengo) at the end of 2026, none at the end of 2025
    cart = await counts(session, "CARTELLE")
    assert total(cart) == (1, None) and cart.num[("area", "anziani")] == 1
    assert total(await counts(session, "CARTELLE", 2025)) == (0, None)
    await cartelle.close_cartella(session, principal=sw, cartella_id=w.cartella.id, reason="Trasferita")
    assert total(await counts(session, "CARTELLE")) == (0, None)


# ---------------------------------------------------------------------------------------------------- D6, D7
async def _case(session, w, clock, requested_at: datetime, hours: float | None):
    """A person of Offanengo signalled (and requested to the COT) at `requested_at`, evaluated `hours` later."""
    person = await create_person(session, comune="comune-offanengo", sex="F", birth_date=date(1945, 1, 1))
    clock.set(requested_at)
    day = requested_at.date()
    case = await discharge_service.open_signal(session, principal=await w.p(session, w.ward_user), data=signal(
        person.id, w.ward_org.id, admission_date=day - timedelta(days=3),
        expected_discharge_date=day + timedelta(days=3)))
    if hours is not None:
        await _concluded_vmd(session, w, case, clock, hours_after_request=hours)
    return person, case


async def test_d6_across_the_october_dst_change_new_year_and_merged_persons(session, clock):
    w = await DischargeWorld().build(session)
    # A: 24 Oct 10:30 CEST -> 26 Oct 09:30 CET = 48 h 00 min elapsed (the clocks went back): on time
    a, _ = await _case(session, w, clock, at("2026-10-24T10:30:00+02:00"), 48)
    # B: 24 Oct 10:00 CEST -> 26 Oct 09:30 CET = 48 h 30 min elapsed (47 h 30 min on the wall clock): late
    b, _ = await _case(session, w, clock, at("2026-10-24T10:00:00+02:00"), 48.5)
    # C: 31 Dec 23:00 -> 1 Jan 08:00: on time, judged on its own 48 hours (cohort by default)
    await _case(session, w, clock, at("2026-12-31T23:00:00+01:00"), 9)
    # D: 00:40 on 1 January 2027 (23:40 of 31 December in UTC): a request of 2027
    await _case(session, w, clock, at("2027-01-01T00:40:00+01:00"), 2)
    assert total(await counts(session, "D6")) == (2, 3)  # A and C of A, B, C: 0.6667, not above 75 %
    assert total(await counts(session, "D6", reading="same_period")) == (1, 3)  # C's evaluation is in 2027
    assert total(await counts(session, "D6", reading="event_date")) == (1, 3)
    assert total(await counts(session, "D6", 2027)) == (1, 1)
    # D7 counts persons: A and B were evaluated in 2026 (C on 1 January 2027)
    assert total(await counts(session, "D7")) == (0, 2)
    steward = await _principal(session, Role.data_steward, "ambito-crema")
    await dedup.merge_persons(session, principal=steward, kept_id=a.id, merged_id=b.id,
                              reason="La stessa persona registrata due volte")
    assert total(await counts(session, "D7")) == (0, 1)  # merged persons count once
    assert total(await counts(session, "D6")) == (2, 3)  # cases still count one by one
    offanengo = await org(session, "comune-offanengo")
    c = await counts(session, "D6")
    assert (c.num[("comune", offanengo.id)], c.den[("comune", offanengo.id)]) == (2, 3)


# ---------------------------------------------------------------------------------------------------- R1-R3
async def test_waiting_list_assessments(session, clock):
    w = await ListWorld().build(session)
    await applicant(session, w, barthel=35, units=[w.x], application_date=date(2026, 2, 20),
                    listing_date=date(2026, 3, 2))  # listed: R1 num; temporary plan agreed (R3 den)
    await applicant(session, w, barthel=60, units=[w.y], application_date=date(2026, 2, 25))  # not decided yet
    assert total(await counts(session, "R1")) == (1, 2)
    # R3 follows the temporary plan named by the listing (the first one): compiled, not yet activated
    assert total(await counts(session, "R3")) == (0, 1)
    assert total(await counts(session, "R2")) == (1, 2)  # the listed one was assessed 10 days after applying


async def test_d3_to_d7_and_the_leps_ratio_by_hand(session, clock):
    """Five signals of Offanengo residents in March 2026 (all flagged at social risk but G), the COT evaluating
    six hours after each request where it evaluates:
      E  project, discharged with SAD and ADI        F  project, discharged with SAD only
      G  no social risk, discharged without project  H  cancelled (entered twice): out of everything
      J  not eligible (the COT found no need), never evaluated."""
    w = await DischargeWorld().build(session)
    cot, sw = await w.p(session, w.cot_user), await w.p(session, w.sw)

    async def signalled(social_risk=True):
        person = await create_person(session, comune="comune-offanengo", sex="M", birth_date=date(1940, 5, 5))
        clock.set(at("2026-03-02T09:00:00+01:00"))
        case = await discharge_service.open_signal(session, principal=await w.p(session, w.ward_user),
                                                   data=signal(person.id, w.ward_org.id, social_risk=social_risk))
        return person, case

    async def evaluated(case):
        clock.set(case.cot_requested_at + timedelta(hours=6))
        return await discharge_service.record_evaluation(session, principal=cot, discharge_id=case.id,
                                                         setting="home", evaluated_at=clock.now())

    async def with_project(person, case, services):
        case = await evaluated(case)
        cartella = await cartelle.open_cartella(session, principal=sw, person_id=person.id, area="anziani")
        case = await discharge_flows.formulate_project(session, principal=sw, discharge_id=case.id,
                                                       cartella_id=cartella.id, case_manager_id=w.sw.id,
                                                       title="Rientro a domicilio")
        clock.advance(hours=20)
        return await discharge_service.discharge(session, principal=sw, discharge_id=case.id, services=services)

    await with_project(*(await signalled()), ["sad", "adi"])                                       # E
    await with_project(*(await signalled()), ["sad", "aids"])                                      # F
    _, g = await signalled(social_risk=False)                                                       # G
    g = await evaluated(g)
    await discharge_service.exit_case(session, principal=cot, discharge_id=g.id,
                                      action="discharge_without_project", reason="Rientra con la famiglia")
    _, h = await signalled()                                                                        # H
    await discharge_service.cancel_signal(session, principal=cot, discharge_id=h.id, reason="Segnalato due volte")
    _, j = await signalled()                                                                        # J
    await discharge_service.exit_case(session, principal=cot, discharge_id=j.id, action="not_eligible",
                                      reason="Nessun bisogno sociale")

    assert total(await counts(session, "D3")) == (2, 3)       # E, F of E, F, J
    assert total(await counts(session, "D4")) == (1, 2)       # E of the projects activated E, F
    assert total(await counts(session, "D5")) == (1, 2)       # F (aids beside SAD do not change it)
    assert total(await counts(session, "D6")) == (3, 4)       # E, F, G within 48 h; J never evaluated
    assert total(await counts(session, "D7")) == (2, 3)       # persons E, F with a pathway of E, F, G assessed
    assert total(await counts(session, "LEPS-DP")) == (2, 3)  # E, F of those who needed it (J did not, H never was)


async def test_waiting_time_from_application_to_admission_by_udo_type_and_urgency(session, clock):
    w = await ListWorld().build(session)
    a = await applicant(session, w, barthel=35, units=[w.x], application_date=date(2026, 2, 20),
                        listing_date=date(2026, 3, 2))
    b = await applicant(session, w, barthel=60, units=[w.y], application_date=date(2026, 3, 2),
                        listing_date=date(2026, 3, 2))
    clock.set(at("2026-06-10T10:00:00+02:00"))
    for operator, unit in ((w.fbc, w.x), (w.caimi, w.y)):
        p = await w.p(session, operator)
        await offers.declare_bed(session, principal=p, unit_id=unit.id)
        o = await offers.offer(session, principal=p, unit_id=unit.id)
        await offers.accept(session, principal=p, offer_id=o.id)
    for entry in (a.entry, b.entry):
        await session.refresh(entry)
        assert entry.state == "admitted"
    # A waited 20 Feb -> 10 Jun = 110 days, B 2 Mar -> 10 Jun = 100 days: median 105, p90 100 + 0.9 x 10 = 109
    med, p90 = await counts(session, "ATTESA-MEDIANA"), await counts(session, "ATTESA-P90")
    assert total(med) == (2, None) and med.stat[indicators.TOTAL] == 105
    assert p90.stat[indicators.TOTAL] == 109
    assert (med.num[("udo_type", "rsa")], med.stat[("udo_type", "rsa")]) == (2, 105)
    assert (med.num[("urgency", "ordinary")], med.num[("urgency", "urgent")]) == (2, 0)
    assert med.stat[("urgency", "urgent")] is None and med.stat[("udo_type", "cdi")] is None
    assert total(await counts(session, "ATTESA-MEDIANA", 2025)) == (0, None)


# ---------------------------------------------------------------------------------------------------- SAD (LEPS)
async def test_sad_run_entirely_in_the_system(session, clock):
    """The services' case: PUA request, VMD, agreed plan, SAD ordered, accepted, started, one delivery, ended on
    20 March: one SAD ended in 2026, run entirely in the system (1 / 1)."""
    clock.set(MONDAY)
    c = await build_case(session, clock)
    sw, coop = await c.p(session, c.w.sw), await c.p(session, c.coop)
    a = await services.order(session, principal=sw, data=ActivationCreate(intervention_id=c.sad.id))
    await services.accept(session, principal=coop, activation_id=a.id)
    await services.start(session, principal=coop, activation_id=a.id, start_date=date(2026, 3, 2))
    await services.record_delivery(session, principal=coop, activation_id=a.id,
                                   data=DeliveryCreate(delivered_on=date(2026, 3, 2), hours="3"))
    clock.set(at("2026-03-20T09:00:00+01:00"))
    await services.end(session, principal=sw, activation_id=a.id, reason="goals_reached")
    assert total(await counts(session, "SAD")) == (1, 1)
    assert total(await counts(session, "SAD", 2025)) == (0, 0)
    offanengo = await org(session, "comune-offanengo")
    s = await counts(session, "SAD")
    assert (s.num[("comune", offanengo.id)], s.den[("comune", offanengo.id)]) == (1, 1)


# ---------------------------------------------------------------------------------------------------- M1
async def test_m1_counts_minors_asking_for_the_measures_and_those_activated(session, clock):
    """A B1 call; a girl of 11 (Offanengo) assessed, eligible, with her project, activated; the services' adult
    case asks for B1 too (not a minor: out); a boy who turns 18 on the day of his application (out)."""
    clock.set(MONDAY)
    c = await build_case(session, clock)
    admin, sw = await c.p(session, c.admin), await c.p(session, c.w.sw)
    call = await measures.create_call(session, principal=admin, data=CallCreate(
        measure_code="b1", title="B1 2026", opens_on=date(2026, 1, 1), closes_on=date(2026, 12, 31),
        budget=Decimal("50000")))
    girl = await create_person(session, comune="comune-offanengo", sex="F", birth_date=date(2014, 9, 1))
    cartella = await cartelle.open_cartella(session, principal=sw, person_id=girl.id, area="disabili")
    w = dataclasses.replace(c.w, person=girl, cartella=cartella)
    v, ifec, _ = await signed_and_met(session, w, clock)
    await vmd_service.conclude(session, principal=ifec, vmd_id=v.id, outcome="project_proposed")
    a = await measures.submit(session, principal=sw, data=ApplicationCreate(
        call_id=call.id, person_id=girl.id, cartella_id=cartella.id, application_date=date(2026, 3, 2)))
    await measures.request_assessment(session, principal=sw, application_id=a.id, data=AssessmentIn(vmd_id=v.id))
    await measures.decide(session, principal=sw, application_id=a.id, eligible=True, reason=None)
    plan = await care_plan.create_plan(session, principal=sw, data=CarePlanCreate(
        cartella_id=cartella.id, case_manager_id=c.w.sw.id, title="Progetto B1", vmd_id=v.id))
    await measures.define_project(session, principal=sw, application_id=a.id, plan_id=plan.id)
    await measures.activate(session, principal=sw, application_id=a.id, data=ActivationIn(amount=Decimal("1000")))
    await measures.submit(session, principal=sw, data=ApplicationCreate(  # an adult: not M1's
        call_id=call.id, person_id=c.w.person.id, cartella_id=c.w.cartella.id, application_date=date(2026, 3, 2)))
    boy = await create_person(session, comune="comune-offanengo", sex="M", birth_date=date(2008, 3, 2))
    await measures.submit(session, principal=sw, data=ApplicationCreate(  # 18 today: not a minor
        call_id=call.id, person_id=boy.id, application_date=date(2026, 3, 2)))
    assert total(await counts(session, "M1")) == (1, 1)
