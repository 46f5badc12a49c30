"""Waiting lists (issue 11): the acceptance scenario on a fixed clock, the refusal and expiry rules, the exits,
the discharge seam, the assessment clock, and bad input that writes nothing."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa

from domain.care_plan.models import CarePlan
from domain.kernel import jobs as kernel_jobs
from domain.kernel.errors import Conflict, Invalid, NotFound
from domain.kernel.models import WorkItem
from domain.registry import persons
from domain.waiting_list import deadlines, offers, queries, service
from domain.waiting_list.models import WaitingListBed, WaitingListEntry, WaitingListOffer
from schemas.waiting_list import ApplicationCreate, DecisionIn
from tests.domain.waiting_list.setup import World, applicant, temporary_plan

SCENARIO_NOW = datetime.fromisoformat("2026-06-10T10:00:00+02:00")


@pytest.fixture
async def world(session, clock):
    clock.set(SCENARIO_NOW)
    return await World().build(session)


async def _rows(session, model) -> int:
    return (await session.execute(sa.select(sa.func.count()).select_from(model))).scalar_one()


async def _abc(session, w):
    """A (Barthel 20, no caregiver, lives alone, listed 2026-01-10), B (Barthel 60, caregiver, not alone, listed
    2025-09-01, urgency for loss of home confirmed), C (Barthel 35, overloaded caregiver, not alone, listed
    2026-03-01); A and C chose RSA X, B chose RSA Y."""
    a = await applicant(session, w, barthel=20, units=[w.x], application_date=date(2025, 12, 15),
                        listing_date=date(2026, 1, 10), caregiver="none", lives_alone=True)
    b = await applicant(session, w, barthel=60, units=[w.y], application_date=date(2025, 8, 1),
                        listing_date=date(2025, 9, 1), caregiver="present", lives_alone=False)
    c = await applicant(session, w, barthel=35, units=[w.x], application_date=date(2026, 2, 1),
                        listing_date=date(2026, 3, 1), caregiver="overloaded", lives_alone=False)
    sw, coordinator = await w.p(session, w.sw), await w.p(session, w.coordinator)
    await service.raise_urgency(session, principal=sw, entry_id=b.entry.id, reason="loss_of_home",
                                note="Sfratto esecutivo, nessuna rete familiare disponibile.")
    await service.decide_urgency(session, principal=coordinator, entry_id=b.entry.id, confirm=True)
    return a, b, c


class TestAcceptanceScenario:
    async def test_scores_lists_offers_refusals_and_admission(self, session, world):
        w = world
        a, b, c = await _abc(session, w)
        sw, fbc = await w.p(session, w.sw), await w.p(session, w.fbc)

        x = await queries.unit_list(session, principal=sw, unit_id=w.x.id)
        assert [(r.ranked.entry.id, r.ranked.position, r.ranked.score.total) for r in x.rows] == [
            (a.entry.id, 1, 67), (c.entry.id, 2, 39)]
        bd = x.rows[0].ranked.score
        assert (bd.barthel, bd.caregiver, bd.lives_alone, bd.waiting, bd.periods) == (32, 20, 10, 5, 5)
        ambito = await queries.ambito_ranking(session, principal=sw, udo_type="rsa")
        assert [(r.ranked.entry.id, r.ranked.score.total, r.ranked.score.urgent) for r in ambito] == [
            (b.entry.id, 25, True), (a.entry.id, 67, False), (c.entry.id, 39, False)]

        # a free bed at X goes to A; A refuses the first time and keeps the position
        bed = await offers.declare_bed(session, principal=fbc, unit_id=w.x.id, label="Camera 12")
        first = await offers.offer(session, principal=fbc, unit_id=w.x.id)
        assert (first.entry_id, first.position, first.score) == (a.entry.id, 1, 67)
        first = await offers.record_receipt(session, principal=sw, offer_id=first.id)
        assert first.reply_due_at == datetime.fromisoformat("2026-06-12T10:00:00+02:00")  # 2 working days
        await offers.refuse(session, principal=sw, offer_id=first.id, reason="Preferisce attendere")
        await session.refresh(a.entry)
        assert (a.entry.state, a.entry.refusals) == ("listed", 1)
        x = await queries.unit_list(session, principal=sw, unit_id=w.x.id)
        assert [r.ranked.entry.id for r in x.rows] == [a.entry.id, c.entry.id]

        # the same bed again: A refused it, so C
        second = await offers.offer(session, principal=fbc, unit_id=w.x.id)
        assert (second.entry_id, second.bed_id, second.position) == (c.entry.id, bed.id, 2)
        await offers.accept(session, principal=fbc, offer_id=second.id)
        await session.refresh(c.entry)
        await session.refresh(bed)
        plan = await session.get(CarePlan, c.plan.id, populate_existing=True)
        assert (c.entry.state, c.entry.admitted_unit_id, bed.state) == ("admitted", w.x.id, "occupied")
        assert plan.state == "completed" and plan.closed_at is not None  # the temporary plan closed
        assert not (await session.execute(sa.select(WaitingListEntry.id).where(
            WaitingListEntry.person_id == c.person.id,
            WaitingListEntry.state.in_(["assessment_pending", "listed", "suspended"])))).all()
        x = await queries.unit_list(session, principal=sw, unit_id=w.x.id)
        assert [r.ranked.entry.id for r in x.rows] == [a.entry.id]

        # A's second refusal (another bed) suspends A until A confirms
        await offers.declare_bed(session, principal=fbc, unit_id=w.x.id)
        third = await offers.offer(session, principal=fbc, unit_id=w.x.id)
        assert third.entry_id == a.entry.id
        await offers.refuse(session, principal=fbc, offer_id=third.id)
        await session.refresh(a.entry)
        assert (a.entry.state, a.entry.refusals) == ("suspended", 2)
        x = await queries.unit_list(session, principal=sw, unit_id=w.x.id)
        assert x.rows == [] and [r.ranked.entry.id for r in x.suspended] == [a.entry.id]
        with pytest.raises(Invalid) as exc:  # nobody eligible while A is suspended
            await offers.offer(session, principal=fbc, unit_id=w.x.id)
        assert exc.value.field == "unit_id"
        await service.confirm(session, principal=sw, entry_id=a.entry.id)
        with pytest.raises(Invalid):  # the only free bed is the one A refused
            await offers.offer(session, principal=fbc, unit_id=w.x.id)
        await offers.declare_bed(session, principal=fbc, unit_id=w.x.id)
        assert (await offers.offer(session, principal=fbc, unit_id=w.x.id)).entry_id == a.entry.id

    async def test_the_entry_records_each_event_with_its_cause(self, session, world):
        from domain.kernel.models import EntityHistory

        _, b, _ = await _abc(session, world)
        await session.flush()
        rows = list((await session.execute(sa.select(EntityHistory.action, EntityHistory.data).where(
            EntityHistory.entity_id == b.entry.id).order_by(EntityHistory.version))).all())
        assert [r[0] for r in rows] == ["applied", "listed", "urgency_raised", "urgency_confirmed"]
        assert [r[1]["detail"]["cause"] for r in rows] == ["application", "equipe_decision", "loss_of_home",
                                                           "coordinator_decision"]

    async def test_the_udo_operator_reads_only_its_own_units_with_the_summary_only_with_consent(self, session,
                                                                                              world):
        w = world
        a, b, c = await _abc(session, w)
        fbc, caimi = await w.p(session, w.fbc), await w.p(session, w.caimi)
        v = await queries.get_entry(session, principal=fbc, entry_id=a.entry.id)
        assert v.view == "minimal" and not v.summary and v.choices == [w.x.id]
        with pytest.raises(NotFound):
            await queries.get_entry(session, principal=fbc, entry_id=b.entry.id)  # B chose Y only
        with pytest.raises(NotFound):
            await queries.unit_list(session, principal=caimi, unit_id=w.x.id)
        items, _ = await queries.list_entries(session, principal=fbc)
        assert {i.entry.id for i in items} == {a.entry.id, c.entry.id}  # B chose Y, of another operator
        assert {i.view for i in items} == {"minimal"}
        from domain.registry.models import ConsentPurpose
        from tests.domain.assessment.vmd_setup import give_consent

        await give_consent(session, a.person, w.sw, purpose=ConsentPurpose.share_rsa)
        assert (await queries.get_entry(session, principal=fbc, entry_id=a.entry.id)).summary


class TestBadInputWritesNothing:
    async def test_an_offer_for_a_unit_with_no_free_bed(self, session, world):
        await _abc(session, world)
        before = await _rows(session, WaitingListOffer)
        with pytest.raises(Invalid) as exc:
            await offers.offer(session, principal=await world.p(session, world.fbc), unit_id=world.x.id)
        assert exc.value.field == "unit_id" and await _rows(session, WaitingListOffer) == before

    async def test_acceptance_after_the_deadline(self, session, world, clock):
        w = world
        a, _, _ = await _abc(session, w)
        fbc = await w.p(session, w.fbc)
        await offers.declare_bed(session, principal=fbc, unit_id=w.x.id)
        o = await offers.offer(session, principal=fbc, unit_id=w.x.id)
        await offers.record_receipt(session, principal=fbc, offer_id=o.id)
        clock.set(SCENARIO_NOW + timedelta(days=3))
        with pytest.raises(Invalid) as exc:
            await offers.accept(session, principal=fbc, offer_id=o.id)
        assert exc.value.field == "replied_at"
        await session.refresh(o)
        await session.refresh(a.entry)
        assert (o.state, a.entry.state) == ("open", "listed")

    async def test_urgency_without_a_reason(self, session, world):
        a, _, _ = await _abc(session, world)
        with pytest.raises(Invalid) as exc:
            await service.raise_urgency(session, principal=await world.p(session, world.sw), entry_id=a.entry.id,
                                        reason=None, note="Situazione grave")
        assert exc.value.field == "reason"
        await session.refresh(a.entry)
        assert (a.entry.urgency, a.entry.version) == ("none", 2)

    async def test_listing_without_a_temporary_plan(self, session, world):
        w = world
        x = await applicant(session, w, barthel=35, units=[w.x], application_date=date(2026, 6, 1))
        with pytest.raises(Invalid) as exc:
            await service.decide(session, principal=await w.p(session, w.sw), entry_id=x.entry.id, data=DecisionIn(
                decision="listed", caregiver="present", lives_alone=False))
        assert [e["field"] for e in exc.value.errors] == ["temporary_plan_id"]
        await session.refresh(x.entry)
        assert (x.entry.state, x.entry.version) == ("assessment_pending", 1)

    async def test_listing_with_a_proposed_plan_not_yet_agreed(self, session, world):
        w = world
        x = await applicant(session, w, barthel=35, units=[w.x], application_date=date(2026, 6, 1))
        draft = await temporary_plan(session, w, x.cartella, agree=False)
        with pytest.raises(Invalid) as exc:
            await service.decide(session, principal=await w.p(session, w.sw), entry_id=x.entry.id, data=DecisionIn(
                decision="listed", caregiver="present", lives_alone=False, temporary_plan_id=draft.id))
        assert exc.value.field == "temporary_plan_id"

    async def test_listing_with_an_unsigned_vmd(self, session, world):
        w = world
        sw = await w.p(session, w.sw)
        from domain.registry import cartelle
        from tests.factories.cartelle import create_person

        person = await create_person(session, comune="comune-offanengo")
        cartella = await cartelle.open_cartella(session, principal=sw, person_id=person.id, area="anziani")
        entry = await service.apply(session, principal=sw, data=ApplicationCreate(
            person_id=person.id, udo_type="rsa", unit_ids=[w.x.id], applicant="person",
            application_date=date(2026, 6, 1), cartella_id=cartella.id, team_id=w.team.id))
        with pytest.raises(Invalid) as exc:
            await service.decide(session, principal=sw, entry_id=entry.id, data=DecisionIn(
                decision="listed", caregiver="none", lives_alone=True))
        assert exc.value.errors[0]["field"] == "vmd_id"
        await session.refresh(entry)
        assert (entry.state, entry.version) == ("assessment_pending", 1)

    async def test_an_application_for_a_unit_of_another_type_or_in_the_future(self, session, world):
        w = world
        cdi = (await session.execute(sa.text("select id from service_unit where code = 'cdi-fbc-crema'"))).scalar()
        from tests.factories.cartelle import create_person

        person = await create_person(session, comune="comune-offanengo")
        before = await _rows(session, WaitingListEntry)
        with pytest.raises(Invalid) as exc:
            await service.apply(session, principal=await w.p(session, w.sw), data=ApplicationCreate(
                person_id=person.id, udo_type="rsa", unit_ids=[w.x.id, cdi], applicant="person",
                application_date=date(2026, 6, 11), cartella_id=w.sw.id, team_id=w.team.id))
        assert [e["field"] for e in exc.value.errors] == ["unit_ids.1", "application_date"]
        assert await _rows(session, WaitingListEntry) == before


class TestExits:
    async def test_death_takes_the_person_off_every_list_and_withdraws_the_open_offer(self, session, world):
        w = world
        a, _, c = await _abc(session, w)
        fbc = await w.p(session, w.fbc)
        bed = await offers.declare_bed(session, principal=fbc, unit_id=w.x.id)
        o = await offers.offer(session, principal=fbc, unit_id=w.x.id)
        assert o.entry_id == a.entry.id
        await persons.record_death(session, principal=await w.p(session, w.sw), person_id=a.person.id,
                                   date_of_death=date(2026, 6, 9))
        await kernel_jobs.run_ready_in_session(session)
        await session.refresh(a.entry)
        await session.refresh(o)
        assert (a.entry.state, a.entry.exit_reason, o.state) == ("deceased", "deceased", "withdrawn")
        assert (await session.get(CarePlan, a.plan.id, populate_existing=True)).state == "completed"
        nxt = await offers.offer(session, principal=fbc, unit_id=w.x.id, bed_id=bed.id)
        assert nxt.entry_id == c.entry.id

    async def test_withdrawal_and_a_second_application_of_the_same_type(self, session, world):
        w = world
        a, _, _ = await _abc(session, w)
        sw = await w.p(session, w.sw)
        with pytest.raises(Conflict):
            await service.apply(session, principal=sw, data=ApplicationCreate(
                person_id=a.person.id, udo_type="rsa", unit_ids=[w.x2.id], applicant="person",
                application_date=date(2026, 6, 10), vmd_id=a.entry.vmd_id))
        await service.exit_entry(session, principal=sw, entry_id=a.entry.id, action="withdraw", note="Ci ripensa")
        await session.refresh(a.entry)
        assert (a.entry.state, a.entry.exit_reason) == ("withdrawn", "withdrawn")
        crema_sw = await w.p(session, w.crema_sw)
        with pytest.raises(NotFound):  # not a resident of Crema
            await service.exit_entry(session, principal=crema_sw, entry_id=a.entry.id, action="withdraw")


class TestExpiry:
    async def test_an_expired_offer_counts_as_a_refusal_and_the_bed_goes_to_the_next(self, session, world, clock):
        w = world
        a, _, c = await _abc(session, w)
        fbc = await w.p(session, w.fbc)
        bed = await offers.declare_bed(session, principal=fbc, unit_id=w.x.id)
        o = await offers.offer(session, principal=fbc, unit_id=w.x.id)
        await offers.record_receipt(session, principal=fbc, offer_id=o.id)
        clock.set(SCENARIO_NOW + timedelta(days=2, minutes=1))
        assert await offers.expire_due(session) == 1
        await session.refresh(o)
        await session.refresh(a.entry)
        assert (o.state, a.entry.refusals, a.entry.state) == ("expired", 1, "listed")
        nxt = (await session.execute(sa.select(WaitingListOffer).where(
            WaitingListOffer.bed_id == bed.id, WaitingListOffer.state == "open"))).scalar_one()
        assert nxt.entry_id == c.entry.id and nxt.proposed_by is None
        assert await offers.expire_due(session) == 0  # idempotent


class TestAssessmentClock:
    async def test_at_risk_and_overdue_marks_in_the_equipe_queue(self, session, world, clock):
        w = world
        x = await applicant(session, w, barthel=35, units=[w.x], application_date=date(2026, 5, 12))
        assert x.entry.assessment_due_at == datetime.fromisoformat("2026-06-12T00:00:00+02:00")
        assert await deadlines.mark_clocks(session) == (1, 0)  # 29 days: at risk
        clock.set(datetime.fromisoformat("2026-06-12T00:00:00+02:00"))
        assert await deadlines.mark_clocks(session) == (0, 1)
        assert await deadlines.mark_clocks(session) == (0, 0)
        items = list((await session.execute(sa.select(WorkItem.kind, WorkItem.assignee_team_id).where(
            WorkItem.source_id == x.entry.id).order_by(WorkItem.created_at))).all())
        assert items == [(service.AT_RISK_KIND, w.team.id), (service.OVERDUE_KIND, w.team.id)]


class TestNotListed:
    async def test_not_listed_needs_a_reason(self, session, world):
        w = world
        x = await applicant(session, w, barthel=60, units=[w.x], application_date=date(2026, 6, 1))
        nurse = await w.p(session, w.nurse)
        with pytest.raises(Invalid) as exc:
            await service.decide(session, principal=nurse, entry_id=x.entry.id,
                                 data=DecisionIn(decision="not_listed"))
        assert exc.value.field == "reason"
        entry = await service.decide(session, principal=nurse, entry_id=x.entry.id, data=DecisionIn(
            decision="not_listed", reason="Bisogno gestibile al domicilio"))
        assert entry.state == "not_listed" and entry.decided_by == w.nurse.id and entry.assessed_at is not None

    async def test_beds_are_declared_only_for_own_units(self, session, world):
        with pytest.raises(NotFound):
            await offers.declare_bed(session, principal=await world.p(session, world.caimi), unit_id=world.x.id)
        assert await _rows(session, WaitingListBed) == 0


class TestPersonMerge:
    async def test_a_merge_keeps_one_open_application_per_type_and_one_open_offer(self, session, world):
        from domain.kernel import person_refs

        w = world
        a, _, c = await _abc(session, w)
        fbc = await w.p(session, w.fbc)
        for _ in range(2):
            await offers.declare_bed(session, principal=fbc, unit_id=w.x.id)
        first = await offers.offer(session, principal=fbc, unit_id=w.x.id)
        second = await offers.offer(session, principal=fbc, unit_id=w.x.id)
        assert {first.person_id, second.person_id} == {a.person.id, c.person.id}
        await person_refs.repoint_all(session, kept_id=a.person.id, merged_id=c.person.id)
        await session.refresh(c.entry)
        assert (c.entry.state, c.entry.exit_note, c.entry.person_id) == ("withdrawn", service.MERGE_NOTE,
                                                                          a.person.id)
        offered = list((await session.execute(sa.select(WaitingListOffer.state).where(
            WaitingListOffer.person_id == a.person.id).order_by(WaitingListOffer.proposed_at))).scalars())
        assert sorted(offered) == ["open", "withdrawn"]


class TestJobsAndSeam:
    async def test_the_hourly_job_marks_the_clock_and_expires_offers(self, session, world, clock):
        from domain.waiting_list import jobs

        w = world
        x = await applicant(session, w, barthel=35, units=[w.x], application_date=date(2026, 5, 20))
        runs = []
        for at in ("2026-06-10T10:00:00+02:00", "2026-06-15T10:00:00+02:00", "2026-06-20T00:00:00+02:00"):
            clock.set(datetime.fromisoformat(at))
            await jobs.enqueue_clocks(session)
            await kernel_jobs.run_ready_in_session(session, kinds=[jobs.CLOCKS])
            await session.refresh(x.entry)
            runs.append((x.entry.at_risk_at is not None, x.entry.overdue_at is not None))
        # 21 days: nothing; 26 days: at risk; the end of the 30th day: overdue
        assert runs == [(False, False), (True, False), (True, True)]

    async def test_a_discharge_application_is_completed_and_listed_by_the_equipe(self, session, world):
        """The seam's application (no RSA chosen yet, urgency raised) is completed by the decision, which names
        the RSA; the coordinator confirms the urgency and the person heads the Ambito ranking."""
        w = world
        x = await applicant(session, w, barthel=35, units=[w.y], application_date=date(2026, 6, 1))
        await service.exit_entry(session, principal=await w.p(session, w.sw), entry_id=x.entry.id,
                                 action="withdraw")  # the ordinary application is gone: the seam opens a new one
        seam = await service.open_urgent_application(
            session, ambito_id=x.entry.ambito_id, person_id=x.person.id, comune_id=w.offanengo.id,
            vmd_id=x.entry.vmd_id, discharge_id=x.entry.id, fallback_org_id=None)
        again = await service.open_urgent_application(
            session, ambito_id=x.entry.ambito_id, person_id=x.person.id, comune_id=w.offanengo.id,
            vmd_id=x.entry.vmd_id, discharge_id=x.entry.id, fallback_org_id=None)
        assert again.id == seam.id and (seam.urgency, seam.urgency_reason) == ("raised", "protected_discharge")
        plan = await temporary_plan(session, w, x.cartella)
        sw = await w.p(session, w.sw)
        with pytest.raises(Invalid) as exc:
            await service.decide(session, principal=sw, entry_id=seam.id, data=DecisionIn(
                decision="listed", caregiver="none", lives_alone=True, temporary_plan_id=plan.id))
        assert exc.value.field == "unit_ids"
        await service.decide(session, principal=sw, entry_id=seam.id, data=DecisionIn(
            decision="listed", caregiver="none", lives_alone=True, temporary_plan_id=plan.id, unit_ids=[w.x.id]))
        await service.decide_urgency(session, principal=await w.p(session, w.coordinator), entry_id=seam.id,
                                     confirm=True)
        top = (await queries.ambito_ranking(session, principal=sw, udo_type="rsa"))[0]
        assert (top.ranked.entry.id, top.ranked.score.urgent) == (seam.id, True)


class TestReceiptByTheRepresentative:
    async def test_the_ads_receives_the_offer_a_curatore_cannot(self, session, world):
        from domain.kernel.models import WorkItem as Item
        from domain.registry.models import PersonRelation

        w = world
        a, _, _ = await _abc(session, w)
        ads = PersonRelation(person_id=a.person.id, kind="ads", surname="Verdi", given_name="Carla",
                             decree_reference="Trib. Cremona 12/2025", decree_scope=["care_health"],
                             valid_from=date(2025, 1, 1))
        curatore = PersonRelation(person_id=a.person.id, kind="curatore", surname="Neri", given_name="Ugo",
                                  valid_from=date(2025, 1, 1))
        session.add_all([ads, curatore])
        await session.flush()
        fbc, sw = await w.p(session, w.fbc), await w.p(session, w.sw)
        await offers.declare_bed(session, principal=fbc, unit_id=w.x.id)
        o = await offers.offer(session, principal=fbc, unit_id=w.x.id)
        item = (await session.execute(sa.select(Item).where(Item.source_id == o.id))).scalar_one()
        assert "rappresentante legale" in item.title and item.data["representative_relation_ids"] == [str(ads.id)]
        with pytest.raises(Invalid) as exc:
            await offers.record_receipt(session, principal=sw, offer_id=o.id, received_by_relation_id=curatore.id)
        assert exc.value.field == "received_by_relation_id"
        o = await offers.record_receipt(session, principal=sw, offer_id=o.id, received_by_relation_id=ads.id)
        assert (o.received_by, o.received_by_relation_id) == ("ads", ads.id)
