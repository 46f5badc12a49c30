"""Protected discharges on a fixed, movable clock (the `clock` fixture): the 78-year-old of Offanengo from Medicina
to home with SAD + ADI, the homeless man from A&E to a shelter, a resident of another region handed over, death
before the evaluation, the at-risk / overdue marks, illegal moves, bad input that writes nothing. Real Postgres."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa

from domain.assessment import equipe
from domain.assessment import service as vmd_service
from domain.care_plan import interventions as care_plan_interventions
from domain.discharge import deadlines, flows, jobs, queries, service
from domain.discharge.models import DischargeCase, DischargeState
from domain.kernel import history, work_items
from domain.kernel import jobs as kernel_jobs
from domain.kernel.errors import Conflict, Forbidden, Invalid, NotFound
from domain.kernel.models import WorkItem
from domain.registry import cartelle, persons
from domain.security.models import Role
from domain.waiting_list.models import WaitingListEntry
from schemas.care_plan import InterventionCreate
from schemas.discharge import DischargePublic, DischargeSignalCreate
from tests.domain.assessment.vmd_setup import BARTHEL_35, MEETING, SOCIAL, make_team, principal_of
from tests.factories.cartelle import create_person
from tests.support import make_user, org


def signal(person_id, ward_id, **kw) -> DischargeSignalCreate:
    values = dict(person_id=person_id, ward_org_id=ward_id, admission_date=date(2026, 2, 26),
                  expected_discharge_date=date(2026, 3, 4), criteria=["over65_not_self_sufficient"],
                  social_risk=True, clinician_summary="Scompenso cardiaco, non autosufficiente, vive sola: igiene "
                                                      "personale e terapia a domicilio.")
    values.update(kw)
    return DischargeSignalCreate(**values)


async def _items(session, case, kind=None) -> list[WorkItem]:
    q = sa.select(WorkItem).where(WorkItem.source_type == service.ENTITY, WorkItem.source_id == case.id)
    if kind:
        q = q.where(WorkItem.kind == kind)
    return list((await session.execute(q.order_by(WorkItem.created_at, WorkItem.id))).scalars())


async def _count(session) -> int:
    return (await session.execute(sa.select(sa.func.count()).select_from(DischargeCase))).scalar_one()


class World:
    async def build(self, session):
        self.ward_org = await org(session, "asst-crema-reparto-medicina")
        self.site = await org(session, "asst-crema-ospedale-crema")  # the hospital of Crema with its A&E
        self.cot = await org(session, "asst-crema-cot")
        self.offanengo = await org(session, "comune-offanengo")
        self.ward_user = await make_user(session, Role.ward_staff, "asst-crema-reparto-medicina")
        self.ps_user = await make_user(session, Role.ward_staff, "asst-crema-ospedale-crema")
        self.cot_user = await make_user(session, Role.cot_operator, "asst-crema-cot")
        self.ifec = await make_user(session, Role.asst_pua_operator, "asst-crema-pua", profession="IFeC")
        self.sw = await make_user(session, Role.comune_social_worker, "comune-offanengo")
        self.crema_sw = await make_user(session, Role.comune_social_worker, "comune-crema")
        self.team = await make_team(session, [(self.ifec, "asst-crema-pua"), (self.sw, "comune-offanengo")])
        return self

    async def p(self, session, user):
        return await principal_of(session, user)


@pytest.fixture
async def world(session):
    return await World().build(session)


async def _equipe_vmd(session, w: World, case, clock):
    """The comune requests the VMD (trigger protected_discharge) through the discharge flow; the equipe (IFeC and
    the Offanengo social worker) assesses, signs and is ready for its meeting. Returns (vmd id, cartella)."""
    sw, ifec = await w.p(session, w.sw), await w.p(session, w.ifec)
    cartella = await cartelle.open_cartella(session, principal=sw, person_id=case.person_id, area="anziani")
    case = await flows.request_evaluation(session, principal=sw, discharge_id=case.id, cartella_id=cartella.id,
                                          team_id=w.team.id)
    v = case.vmd_id
    await vmd_service.schedule(session, principal=ifec, vmd_id=v, scheduled_for=clock.now() + timedelta(hours=20),
                               location="Ospedale di Crema, U.O. Medicina")
    for user in (w.ifec, w.sw):
        await equipe.add_assessor(session, principal=ifec, vmd_id=v, user_id=user.id)
    await equipe.record_response(session, principal=ifec, vmd_id=v, instrument_code="barthel", answers=BARTHEL_35)
    await equipe.record_response(session, principal=sw, vmd_id=v, instrument_code="social_risk", answers=SOCIAL)
    await equipe.sign(session, principal=ifec, vmd_id=v)
    await equipe.sign(session, principal=sw, vmd_id=v)
    return v, cartella


async def _conclude(session, w: World, case, clock, vmd_id, *, hours_after_request: float,
                    outcome: str = "project_proposed") -> None:
    """The equipe meets and concludes `hours_after_request` after the COT request; the event's job runs."""
    ifec = await w.p(session, w.ifec)
    clock.set(case.cot_requested_at + timedelta(hours=hours_after_request))
    await equipe.hold_meeting(session, principal=ifec, vmd_id=vmd_id, held_at=clock.now(), **MEETING)
    await vmd_service.conclude(session, principal=ifec, vmd_id=vmd_id, outcome=outcome)
    await kernel_jobs.run_ready_in_session(session)


async def _concluded_vmd(session, w: World, case, clock, *, hours_after_request: float):
    v, cartella = await _equipe_vmd(session, w, case, clock)
    await _conclude(session, w, case, clock, v, hours_after_request=hours_after_request)
    return v, cartella


class TestOffanengoHomeWithSadAndAdi:
    async def test_the_whole_pathway_with_the_facts_for_d6(self, session, clock, world):
        w = world
        person = await create_person(session, comune="comune-offanengo", sex="F", birth_date=date(1947, 6, 12))
        ward = await w.p(session, w.ward_user)
        requested_at = clock.now()
        case = await service.open_signal(session, principal=ward, data=signal(person.id, w.ward_org.id))
        assert case.state == DischargeState.cot_requested
        assert (case.cot_org_id, case.comune_id, case.out_of_ambito) == (w.cot.id, w.offanengo.id, False)
        assert case.cot_requested_at == requested_at and case.signalled_at == requested_at
        assert case.evaluation_due_at == requested_at + timedelta(hours=48)
        assert case.opened_by == w.ward_user.id and case.ward_org_id == w.ward_org.id
        cot_item, = await _items(session, case, service.COT_KIND)
        comune_item, = await _items(session, case, service.COMUNE_KIND)
        assert cot_item.assignee_org_id == w.cot.id and cot_item.due_at == case.evaluation_due_at
        assert comune_item.assignee_org_id == w.offanengo.id

        # the equipe works the VMD; at the meeting the COT records the setting chosen (home); 30 hours after the
        # COT request the VMD is concluded, and that alone completes the evaluation (vmd.concluded)
        vmd_id, cartella = await _equipe_vmd(session, w, case, clock)
        cot = await w.p(session, w.cot_user)
        clock.set(requested_at + timedelta(hours=29))
        case = await flows.choose_setting(session, principal=cot, discharge_id=case.id, setting="home")
        assert case.state == DischargeState.cot_requested and case.setting == "home"
        await _conclude(session, w, case, clock, vmd_id, hours_after_request=30)
        await kernel_jobs.run_ready_in_session(session)  # the event's job ran once: a second pass changes nothing
        await session.refresh(case)
        assert case.state == DischargeState.evaluated and case.vmd_id == vmd_id
        assert case.evaluated_at == requested_at + timedelta(hours=30) and case.evaluation_hours == 30.0
        assert case.evaluated_at <= case.evaluation_due_at  # D6: within 48 hours
        assert case.setting == "home" and case.setting_at == requested_at + timedelta(hours=29)
        assert all(i.state == "done" for i in await _items(session, case, service.COT_KIND))

        # the comune formulates the discharge project (a progetto of kind `discharge`), then discharge, monitoring
        # and closure
        sw = await w.p(session, w.sw)
        case = await flows.formulate_project(session, principal=sw, discharge_id=case.id, cartella_id=cartella.id,
                                             case_manager_id=w.sw.id, title="Rientro a domicilio con SAD e ADI")
        assert case.state == DischargeState.project_formulated and case.plan_id is not None
        clock.advance(hours=20)
        case = await service.discharge(session, principal=sw, discharge_id=case.id, services=["sad", "adi", "sad"])
        assert case.services == ["sad", "adi"] and case.discharged_at == clock.now()
        with pytest.raises(Conflict) as exc:
            await service.close(session, principal=cot, discharge_id=case.id)
        assert exc.value.extra["allowed_actions"] == ["start_monitoring"]
        case = await service.start_monitoring(session, principal=cot, discharge_id=case.id)
        check, = await _items(session, case, service.MONITORING_KIND)
        assert check.assignee_org_id == w.offanengo.id and check.due_at == case.discharged_at + timedelta(days=30)
        clock.advance(days=30)
        case = await service.close(session, principal=cot, discharge_id=case.id)
        assert case.state == DischargeState.closed

        # the facts reporting reads, one row per case
        facts = queries.discharge_facts()
        row = (await session.execute(sa.select(facts).where(facts.c.id == case.id))).one()
        assert row.social_risk and row.setting == "home" and row.services == ["sad", "adi"]
        assert row.evaluation_hours == 30.0 and row.project_at is not None and row.exit_reason is None
        assert row.cot_requested_at == requested_at and row.evaluated_at == requested_at + timedelta(hours=30)
        actions = [v.action for v in await history.versions(session, entity_type="discharge_case",
                                                              entity_id=case.id)]
        assert actions == ["signalled", "cot_requested", "evaluation_requested", "setting_chosen", "evaluated",
                           "project_formulated", "discharged", "monitoring", "closed"]

    async def test_ward_staff_see_the_status_only_and_cannot_work_the_case(self, session, world):
        w = world
        person = await create_person(session, comune="comune-offanengo", birth_date=date(1947, 6, 12))
        ward = await w.p(session, w.ward_user)
        case = await service.open_signal(session, principal=ward, data=signal(person.id, w.ward_org.id))
        visible = await queries.get_case(session, principal=ward, discharge_id=case.id)
        assert visible.view == "status" and visible.allowed == []
        with pytest.raises(Forbidden):
            await service.close(session, principal=ward, discharge_id=case.id)
        # the COT and the comune of residence see it in full; another comune does not see it at all
        assert (await queries.get_case(session, principal=await w.p(session, w.cot_user),
                                       discharge_id=case.id)).view == "full"
        assert (await queries.get_case(session, principal=await w.p(session, w.sw), discharge_id=case.id)).view \
            == "full"
        with pytest.raises(NotFound):
            await queries.get_case(session, principal=await w.p(session, w.crema_sw), discharge_id=case.id)
        queue = await queries.cot_queue(session, principal=await w.p(session, w.cot_user))
        assert case.id in [c.id for c in queue]

    async def test_illegal_moves_are_the_kernel_409(self, session, world):
        w = world
        person = await create_person(session, comune="comune-offanengo", birth_date=date(1947, 6, 12))
        case = await service.open_signal(session, principal=await w.p(session, w.ward_user),
                                         data=signal(person.id, w.ward_org.id))
        with pytest.raises(Conflict) as exc:
            await service.discharge(session, principal=await w.p(session, w.cot_user), discharge_id=case.id,
                                    services=["sad"])
        assert exc.value.extra["state"] == "cot_requested" and exc.value.extra["action"] == "discharge"
        assert set(exc.value.extra["allowed_actions"]) == {"choose_setting", "evaluate", "not_eligible",
                                                   "discharge_without_project", "cancel"}


class TestOtherPathways:
    async def test_the_homeless_man_from_a_and_e_to_a_shelter(self, session, clock, world):
        w = world
        person = await create_person(session, comune=None, sex="M", birth_date=date(1971, 1, 9), homeless=True)
        ps = await w.p(session, w.ps_user)
        case = await service.open_signal(session, principal=ps, data=signal(
            person.id, w.site.id, criteria=["homeless"], admission_date=date(2026, 3, 1),
            expected_discharge_date=date(2026, 3, 2), clinician_summary="Senza dimora, dimissibile dal PS."))
        crema = await org(session, "comune-crema")
        assert (case.cot_org_id, case.comune_id, case.out_of_ambito) == (w.cot.id, crema.id, False)
        clock.advance(hours=6)
        cot = await w.p(session, w.cot_user)
        case = await service.record_evaluation(session, principal=cot, discharge_id=case.id, setting="shelter",
                                               evaluated_at=clock.now())
        assert case.setting == "shelter" and case.evaluation_hours == 6.0
        case = await service.exit_case(session, principal=cot, discharge_id=case.id,
                                       action="discharge_without_project",
                                       reason="Accolto nella struttura a bassa soglia senza progetto")
        assert case.state == DischargeState.discharged_without_project
        assert case.exit_reason == "discharged_without_project" and case.discharged_at == clock.now()

    async def test_a_resident_of_another_region_is_handed_over_not_lost(self, session, world):
        w = world
        person = await create_person(session, comune=None, birth_date=date(1940, 2, 2))
        case = await service.open_signal(session, principal=await w.p(session, w.ward_user),
                                         data=signal(person.id, w.ward_org.id))
        assert case.out_of_ambito and case.cot_org_id == w.cot.id and case.comune_id is None
        item, = await _items(session, case, service.COT_KIND)
        assert "fuori Ambito" in item.title and item.data["out_of_ambito"] is True
        # in the COT's queue like any other case, counted apart in the facts, no comune told
        queue = await queries.cot_queue(session, principal=await w.p(session, w.cot_user))
        assert case.id in [c.id for c in queue]
        assert await _items(session, case, service.COMUNE_KIND) == []
        facts = queries.discharge_facts()
        row = (await session.execute(sa.select(facts).where(facts.c.id == case.id))).one()
        assert row.out_of_ambito is True and row.comune_id is None

    async def test_death_before_the_evaluation_closes_the_case_as_deceased(self, session, world):
        w = world
        person = await create_person(session, comune="comune-offanengo", birth_date=date(1947, 6, 12))
        case = await service.open_signal(session, principal=await w.p(session, w.ward_user),
                                         data=signal(person.id, w.ward_org.id))
        await persons.record_death(session, principal=await w.p(session, w.sw), person_id=person.id,
                                   date_of_death=date(2026, 3, 2))
        await kernel_jobs.run_ready_in_session(session)
        await session.refresh(case)
        assert case.state == DischargeState.deceased and case.exit_reason == "deceased"
        assert {i.state for i in await _items(session, case)} == {"cancelled"}
        assert case.evaluated_at is None and case.closed_at is not None  # out of D6 (docs/indicators.md)
        await kernel_jobs.run_ready_in_session(session)  # the event again changes nothing
        await session.refresh(case)
        assert case.state == DischargeState.deceased


class TestEvaluationByTheVmd:
    async def _case(self, session, w):
        person = await create_person(session, comune="comune-offanengo", birth_date=date(1947, 6, 12))
        return await service.open_signal(session, principal=await w.p(session, w.ward_user),
                                         data=signal(person.id, w.ward_org.id))

    async def test_a_waiting_list_outcome_implies_rsa_and_opens_the_urgent_application_seam(self, session, clock,
                                                                                            world):
        case = await self._case(session, world)
        vmd_id, _ = await _equipe_vmd(session, world, case, clock)
        await _conclude(session, world, case, clock, vmd_id, hours_after_request=40, outcome="waiting_list")
        await session.refresh(case)
        assert (case.state, case.setting, case.evaluation_hours) == (DischargeState.evaluated, "rsa", 40.0)
        entry, = (await session.execute(sa.select(WaitingListEntry).where(
            WaitingListEntry.person_id == case.person_id))).scalars()
        assert (entry.udo_type, entry.state, entry.urgency, entry.urgency_reason) == (
            "rsa", "assessment_pending", "raised", "protected_discharge")
        assert entry.vmd_id == vmd_id and entry.discharge_id == case.id and entry.comune_id == world.offanengo.id
        await flows.rsa_seam(session, case)  # idempotent: the same application
        assert len((await session.execute(sa.select(WaitingListEntry.id).where(
            WaitingListEntry.person_id == case.person_id))).all()) == 1

    async def test_no_need_completes_the_evaluation_and_ends_the_case_not_eligible(self, session, clock, world):
        case = await self._case(session, world)
        vmd_id, _ = await _equipe_vmd(session, world, case, clock)
        await _conclude(session, world, case, clock, vmd_id, hours_after_request=12, outcome="no_need")
        await session.refresh(case)
        assert case.state == DischargeState.not_eligible and case.exit_reason == "not_eligible"
        assert case.evaluation_hours == 12.0 and case.exit_note == flows.NO_NEED_NOTE  # D6 counts it
        assert {i.state for i in await _items(session, case, service.COMUNE_KIND)} == {"cancelled"}

    async def test_without_a_setting_the_project_waits_for_one(self, session, clock, world):
        case = await self._case(session, world)
        vmd_id, cartella = await _concluded_vmd(session, world, case, clock, hours_after_request=20)
        await session.refresh(case)
        assert case.state == DischargeState.evaluated and case.setting is None
        sw = await world.p(session, world.sw)
        with pytest.raises(Invalid) as exc:
            await flows.formulate_project(session, principal=sw, discharge_id=case.id, cartella_id=cartella.id,
                                          case_manager_id=world.sw.id, title="Rientro a domicilio")
        assert exc.value.field == "setting"
        await flows.choose_setting(session, principal=sw, discharge_id=case.id, setting="cure_intermedie")
        case = await flows.formulate_project(session, principal=sw, discharge_id=case.id, cartella_id=cartella.id,
                                             case_manager_id=world.sw.id, title="Cure intermedie a Soresina")
        assert case.state == DischargeState.project_formulated
        with pytest.raises(Conflict) as exc:
            await flows.choose_setting(session, principal=sw, discharge_id=case.id, setting="home")
        assert exc.value.extra["action"] == "choose_setting"

    async def test_a_vmd_the_case_did_not_request_leaves_it_alone(self, session, clock, world):
        """Another VMD of the person, with the same trigger but asked elsewhere: the case still waits (a worker
        may name it through POST …/evaluation)."""
        case = await self._case(session, world)
        other = await self._case(session, world)  # a second case of another person carries the VMD
        vmd_id, _ = await _concluded_vmd(session, world, other, clock, hours_after_request=10)
        await session.refresh(case)
        await session.refresh(other)
        assert case.state == DischargeState.cot_requested and case.evaluated_at is None
        assert other.state == DischargeState.evaluated and other.vmd_id == vmd_id


    async def test_a_cancelled_vmd_is_asked_again_an_open_one_is_not(self, session, clock, world):
        case = await self._case(session, world)
        sw = await world.p(session, world.sw)
        cartella = await cartelle.open_cartella(session, principal=sw, person_id=case.person_id, area="anziani")
        case = await flows.request_evaluation(session, principal=sw, discharge_id=case.id, cartella_id=cartella.id,
                                              team_id=world.team.id)
        first = case.vmd_id
        with pytest.raises(Invalid) as exc:
            await flows.request_evaluation(session, principal=sw, discharge_id=case.id, cartella_id=cartella.id,
                                           team_id=world.team.id)
        assert exc.value.field == "vmd_id"
        await vmd_service.cancel(session, principal=sw, vmd_id=first, reason="Richiesta sull'équipe sbagliata")
        case = await flows.request_evaluation(session, principal=sw, discharge_id=case.id, cartella_id=cartella.id,
                                              team_id=world.team.id)
        assert case.vmd_id not in (None, first) and case.state == DischargeState.cot_requested


class TestProvidersNamedInTheProject:
    async def test_a_provider_of_the_project_sees_the_minimal_view_another_nothing(self, session, clock, world):
        w = world
        person = await create_person(session, comune="comune-offanengo", birth_date=date(1947, 6, 12))
        case = await service.open_signal(session, principal=await w.p(session, w.ward_user),
                                         data=signal(person.id, w.ward_org.id))
        _, cartella = await _concluded_vmd(session, w, case, clock, hours_after_request=20)
        sw = await w.p(session, w.sw)
        await flows.choose_setting(session, principal=sw, discharge_id=case.id, setting="home")
        case = await flows.formulate_project(session, principal=sw, discharge_id=case.id, cartella_id=cartella.id,
                                             case_manager_id=w.sw.id, title="Rientro a domicilio con SAD")
        igea = await make_user(session, Role.ets_operator, "ets-igea")
        meraki = await make_user(session, Role.ets_operator, "ets-meraki")
        with pytest.raises(NotFound):  # not yet named in the project
            await queries.get_case(session, principal=await w.p(session, igea), discharge_id=case.id)
        await care_plan_interventions.add_intervention(
            session, principal=sw, plan_id=case.plan_id, data=InterventionCreate(
                service_type="sad", provider_org_id=(await org(session, "ets-igea")).id, intensity_value=6,
                intensity_unit="ore/settimana", start_date=date(2026, 3, 4), funding_source="fna"))
        seen = await queries.get_case(session, principal=await w.p(session, igea), discharge_id=case.id)
        assert seen.view == "minimal" and seen.allowed == []
        public = DischargePublic.of(seen.case, seen.view, seen.allowed)
        assert public.setting == "home" and public.plan_id == case.plan_id
        assert public.clinician_summary is None and public.criteria is None and public.admission_date is None
        assert public.ward_org_id is None and public.opened_by is None
        items, _ = await queries.list_cases(session, principal=await w.p(session, igea))
        assert [v.case.id for v in items] == [case.id]
        with pytest.raises(NotFound):
            await queries.get_case(session, principal=await w.p(session, meraki), discharge_id=case.id)
        with pytest.raises(Forbidden):
            await service.close(session, principal=await w.p(session, igea), discharge_id=case.id)


class TestCancelledSignal:
    async def test_the_ward_withdraws_its_signal_with_a_reason(self, session, world):
        w = world
        person = await create_person(session, comune="comune-offanengo", birth_date=date(1947, 6, 12))
        case = await service.open_signal(session, principal=await w.p(session, w.ward_user),
                                         data=signal(person.id, w.ward_org.id))
        ward = await w.p(session, w.ward_user)
        with pytest.raises(Invalid) as exc:
            await service.cancel_signal(session, principal=ward, discharge_id=case.id, reason="  ")
        assert exc.value.field == "reason"
        with pytest.raises(NotFound):  # the A&E of the hospital did not send it
            await service.cancel_signal(session, principal=await w.p(session, w.ps_user), discharge_id=case.id,
                                        reason="Doppia")
        case = await service.cancel_signal(session, principal=ward, discharge_id=case.id,
                                           reason="Segnalazione doppia")
        assert case.state == DischargeState.cancelled and case.exit_reason == "cancelled"
        assert {i.state for i in await _items(session, case)} == {"cancelled"}
        with pytest.raises(Conflict) as exc:
            await service.cancel_signal(session, principal=ward, discharge_id=case.id, reason="Ancora")
        assert exc.value.extra["state"] == "cancelled" and exc.value.extra["allowed_actions"] == []

    async def test_after_the_evaluation_a_signal_is_not_cancelled_409(self, session, clock, world):
        w = world
        person = await create_person(session, comune="comune-offanengo", birth_date=date(1947, 6, 12))
        case = await service.open_signal(session, principal=await w.p(session, w.ward_user),
                                         data=signal(person.id, w.ward_org.id))
        cot = await w.p(session, w.cot_user)
        await service.record_evaluation(session, principal=cot, discharge_id=case.id, setting="home",
                                        evaluated_at=clock.now())
        with pytest.raises(Conflict) as exc:
            await service.cancel_signal(session, principal=cot, discharge_id=case.id, reason="Errore")
        assert (exc.value.extra["state"], exc.value.extra["action"]) == ("evaluated", "cancel")
        assert "non eleggibile" in exc.value.detail


class TestEvaluationClock:
    async def test_working_hours_move_the_marks_not_the_d6_deadline(self, session, clock, world, monkeypatch):
        """DISCHARGE_CLOCK=working_hours, 08-18 on working days: a request on Friday 6 March 2026 at 17:00 is at
        risk after 36 working hours (Thursday 13:00) and overdue after 48 (Friday 13 March 15:00); the D6
        deadline stays Sunday 17:00."""
        from domain.kernel.settings import get_settings
        monkeypatch.setattr(get_settings(), "discharge_clock", "working_hours")
        w = world
        person = await create_person(session, comune="comune-offanengo", birth_date=date(1947, 6, 12))
        friday = datetime.fromisoformat("2026-03-06T17:00:00+01:00")
        clock.set(friday)
        case = await service.open_signal(session, principal=await w.p(session, w.ward_user),
                                         data=signal(person.id, w.ward_org.id))
        assert case.evaluation_due_at == datetime.fromisoformat("2026-03-08T17:00:00+01:00")
        clock.set(datetime.fromisoformat("2026-03-10T09:00:00+01:00"))  # 88 elapsed hours, 21 working
        assert await deadlines.mark_clocks(session) == (0, 0)
        clock.set(datetime.fromisoformat("2026-03-12T12:59:00+01:00"))
        assert await deadlines.mark_clocks(session) == (0, 0)
        clock.set(datetime.fromisoformat("2026-03-12T13:00:00+01:00"))
        assert await deadlines.mark_clocks(session) == (1, 0)
        clock.set(datetime.fromisoformat("2026-03-13T14:59:00+01:00"))
        assert await deadlines.mark_clocks(session) == (0, 0)
        clock.set(datetime.fromisoformat("2026-03-13T15:00:00+01:00"))
        assert await deadlines.mark_clocks(session) == (0, 1)
        assert await deadlines.mark_clocks(session) == (0, 0)

    async def test_the_marks_hours_are_settings(self, session, clock, world, monkeypatch):
        from domain.kernel.settings import get_settings
        monkeypatch.setattr(get_settings(), "discharge_at_risk_hours", 24)
        w = world
        person = await create_person(session, comune="comune-offanengo", birth_date=date(1947, 6, 12))
        case = await service.open_signal(session, principal=await w.p(session, w.ward_user),
                                         data=signal(person.id, w.ward_org.id))
        clock.set(case.cot_requested_at + timedelta(hours=24))
        assert await deadlines.mark_clocks(session) == (1, 0)

    async def test_at_risk_at_36_hours_overdue_at_48_once_each(self, session, clock, world):
        w = world
        person = await create_person(session, comune="comune-offanengo", birth_date=date(1947, 6, 12))
        case = await service.open_signal(session, principal=await w.p(session, w.ward_user),
                                         data=signal(person.id, w.ward_org.id))
        start = case.cot_requested_at
        clock.set(start + timedelta(hours=35, minutes=59))
        assert await deadlines.mark_clocks(session) == (0, 0)
        clock.set(start + timedelta(hours=36))
        assert await deadlines.mark_clocks(session) == (1, 0)
        assert await deadlines.mark_clocks(session) == (0, 0)  # a second run changes nothing
        clock.set(start + timedelta(hours=48))
        await jobs.enqueue_evaluation_clock(session)
        await jobs.enqueue_evaluation_clock(session)  # one job per hour: the second enqueue is the same job
        await kernel_jobs.run_ready_in_session(session, kinds=[jobs.EVALUATION_CLOCK])
        assert await deadlines.mark_clocks(session) == (0, 0)
        await session.refresh(case)
        assert case.at_risk_at == start + timedelta(hours=36) and case.overdue_at == start + timedelta(hours=48)
        assert len(await _items(session, case, service.AT_RISK_KIND)) == 1
        overdue, = await _items(session, case, service.OVERDUE_KIND)
        assert overdue.assignee_org_id == w.cot.id
        queue, _ = await work_items.my_queue(session, principal=await w.p(session, w.cot_user),
                                             kinds=[service.OVERDUE_KIND])
        assert [i.id for i in queue].count(overdue.id) == 1


class TestBadInput:
    @pytest.mark.parametrize(("change", "field"), [
        ({"expected_discharge_date": date(2026, 2, 20)}, "expected_discharge_date"),
        ({"criteria": []}, "criteria"),
        ({"criteria": ["rich"]}, "criteria.0"),
        ({"cot_requested_at": datetime.fromisoformat("2026-03-02T10:00:00+01:00")}, "cot_requested_at"),
        ({"ward_org_id": "cot"}, "ward_org_id"),
    ])
    async def test_refused_naming_the_field_nothing_written(self, session, world, change, field):
        w = world
        person = await create_person(session, comune="comune-offanengo", birth_date=date(1947, 6, 12))
        if change.get("ward_org_id") == "cot":
            change = {"ward_org_id": w.cot.id}
        before = await _count(session)
        with pytest.raises(Invalid) as exc:
            await service.open_signal(session, principal=await w.p(session, w.ward_user),
                                      data=signal(person.id, w.ward_org.id, **change))
        assert field in [e["field"] for e in exc.value.errors]
        assert await _count(session) == before

    async def test_over65_criterion_for_a_younger_person_is_refused(self, session, world):
        w = world
        person = await create_person(session, comune="comune-offanengo", birth_date=date(1970, 1, 1))
        with pytest.raises(Invalid) as exc:
            await service.open_signal(session, principal=await w.p(session, w.ward_user),
                                      data=signal(person.id, w.ward_org.id))
        assert exc.value.errors[0]["field"] == "criteria.0"


class TestEvaluationSignOff:
    async def test_the_discharge_vmd_is_signed_by_its_equipe_only(self, session, clock, world):
        """The evaluation is a VMD like any other: a social worker outside the equipe cannot sign it (403), and
        nothing is recorded; the evaluation cannot be recorded on a VMD that is not concluded (422 vmd_id)."""
        w = world
        person = await create_person(session, comune="comune-offanengo", birth_date=date(1947, 6, 12))
        case = await service.open_signal(session, principal=await w.p(session, w.ward_user),
                                         data=signal(person.id, w.ward_org.id))
        sw = await w.p(session, w.sw)
        cartella = await cartelle.open_cartella(session, principal=sw, person_id=person.id, area="anziani")
        case = await flows.request_evaluation(session, principal=sw, discharge_id=case.id, cartella_id=cartella.id,
                                              team_id=w.team.id)
        outsider = await make_user(session, Role.comune_social_worker, "comune-offanengo")  # not in the equipe
        with pytest.raises(Forbidden):
            await equipe.sign(session, principal=await w.p(session, outsider), vmd_id=case.vmd_id)
        with pytest.raises(Invalid) as exc:
            await flows.complete_evaluation(session, principal=await w.p(session, w.cot_user),
                                            discharge_id=case.id, vmd_id=case.vmd_id, setting="home")
        assert exc.value.field == "vmd_id"
        await session.refresh(case)
        assert case.state == DischargeState.cot_requested and case.evaluated_at is None
