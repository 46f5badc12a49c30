from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from domain.care_plan import jobs as plan_jobs
from domain.care_plan import queries
from domain.care_plan import reviews as plan_reviews
from domain.care_plan import service as svc
from domain.care_plan.models import CarePlan, PlanState, Review
from domain.kernel import jobs
from domain.kernel.errors import Conflict
from domain.kernel.models import WorkItem
from domain.security.models import Role
from schemas.care_plan import ActivateIn, AgreeIn, CarePlanUpdate, ReviewRecord
from tests.domain.care_plan.support import World, make_world, principal_of
from tests.domain.care_plan.test_service import proposed_plan
from tests.support import make_user

TODAY = date(2026, 3, 2)


@pytest.fixture
async def w(session) -> World:
    return await make_world(session)


async def active_plan(session, w: World, **kw) -> CarePlan:
    plan, sad, _ = await proposed_plan(session, w, **kw)
    await svc.agree(session=session, principal=w.sw_p, plan_id=plan.id, data=AgreeIn(consent_id=w.consent.id))
    await svc.activate(session=session, principal=w.sw_p, plan_id=plan.id, data=ActivateIn(intervention_ids=[sad.id]))
    return plan


async def review_items(session, plan_id, states=("open", "in_progress")) -> list[WorkItem]:
    return list((await session.execute(sa.select(WorkItem).where(
        WorkItem.source_type == "care_plan", WorkItem.source_id == plan_id, WorkItem.kind == "care_plan.review",
        WorkItem.state.in_(list(states))).order_by(WorkItem.created_at, WorkItem.id))).scalars())


class TestSchedule:
    async def test_default_and_custom_interval(self, session, w):
        plan = await active_plan(session, w)
        assert plan.next_review_due == TODAY + timedelta(days=180)
        custom = await active_plan(session, w, review_interval_days=90)
        assert custom.next_review_due == TODAY + timedelta(days=90)
        await svc.update_plan(session=session, principal=w.sw_p, plan_id=custom.id,
                              data=CarePlanUpdate(review_interval_days=30))
        assert custom.next_review_due == TODAY + timedelta(days=30)

    async def test_review_cycle(self, session, w, clock):
        plan = await active_plan(session, w)
        plan.next_review_due = TODAY + timedelta(days=3)
        await session.flush()
        await plan_reviews.create_review_reminders(session)
        [item] = await review_items(session, plan.id)
        assert item.assignee_user_id == w.sw.id

        await plan_reviews.start_review(session=session, principal=w.sw_p, plan_id=plan.id)
        assert plan.state == PlanState.under_review
        clock.advance(days=2)
        await plan_reviews.record_review(session=session, principal=w.sw_p, plan_id=plan.id,
                                data=ReviewRecord(outcome="continue", notes="Situazione stabile"))
        assert plan.state == PlanState.active
        assert plan.next_review_due == TODAY + timedelta(days=2 + 180)
        [review] = (await session.execute(sa.select(Review).where(Review.plan_id == plan.id))).scalars().all()
        assert review.outcome == "continue" and review.held_at is not None and review.due_date == TODAY + timedelta(3)
        assert await review_items(session, plan.id) == []
        [done] = await review_items(session, plan.id, states=("done",))
        assert done.completed_by == w.sw.id

    async def test_review_outcomes_suspend_resume_complete(self, session, w):
        plan = await active_plan(session, w)
        with pytest.raises(Conflict):  # not under review
            await plan_reviews.record_review(session=session, principal=w.sw_p, plan_id=plan.id,
                                    data=ReviewRecord(outcome="continue"))
        await plan_reviews.start_review(session=session, principal=w.sw_p, plan_id=plan.id)
        with pytest.raises(Conflict):
            await plan_reviews.start_review(session=session, principal=w.sw_p, plan_id=plan.id)
        await plan_reviews.record_review(session=session, principal=w.sw_p, plan_id=plan.id,
                                data=ReviewRecord(outcome="suspend", notes="Ricovero ospedaliero"))
        assert plan.state == PlanState.suspended
        await svc.resume(session=session, principal=w.sw_p, plan_id=plan.id)
        assert plan.state == PlanState.active
        await plan_reviews.start_review(session=session, principal=w.sw_p, plan_id=plan.id)
        await plan_reviews.record_review(session=session, principal=w.sw_p, plan_id=plan.id,
                                data=ReviewRecord(outcome="complete", notes="Obiettivi raggiunti"))
        assert plan.state == PlanState.completed and plan.close_reason == "Obiettivi raggiunti"
        reviews = (await session.execute(sa.select(Review).where(Review.plan_id == plan.id)
                                         .order_by(Review.held_at))).scalars().all()
        assert [r.outcome for r in reviews] == ["suspend", "complete"]


class TestReminderJob:
    async def test_due_soon_overdue_and_later(self, session, w):
        soon = await active_plan(session, w)
        soon.next_review_due = TODAY + timedelta(days=10)
        overdue = await active_plan(session, w)
        overdue.next_review_due = TODAY - timedelta(days=5)
        later = await active_plan(session, w)
        later.next_review_due = TODAY + timedelta(days=40)
        draft_plan, _, _ = await proposed_plan(session, w)
        await session.flush()

        await plan_reviews.create_review_reminders(session)
        [s] = await review_items(session, soon.id)
        [o] = await review_items(session, overdue.id)
        assert "in scadenza" in s.title and "12/03/2026" in s.title and s.data["overdue"] is False
        assert "scaduta" in o.title and o.data["overdue"] is True
        assert s.dedup_key == f"care_plan.review:{soon.id}:2026-03-12"
        assert s.assignee_user_id == w.sw.id and s.person_id == w.person.id and s.cartella_id == w.cartella.id
        assert await review_items(session, later.id) == [] and await review_items(session, draft_plan.id) == []

        # A wider horizon through the payload reaches the later plan too.
        await plan_reviews.create_review_reminders(session, within_days=60)
        assert len(await review_items(session, later.id)) == 1

    async def test_job_is_idempotent_and_retitles_when_overdue(self, session, w, clock):
        plan = await active_plan(session, w)
        plan.next_review_due = TODAY + timedelta(days=1)
        await session.flush()
        assert "care_plan.review_reminders" in jobs.registered_kinds()

        async def run_job():
            await jobs.enqueue(session, kind=plan_jobs.REVIEW_REMINDERS, payload={})
            outcomes = await jobs.run_ready_in_session(session, kinds=[plan_jobs.REVIEW_REMINDERS])
            assert [o.state for o in outcomes] == ["done"]

        await run_job()
        [first] = await review_items(session, plan.id)
        assert "in scadenza" in first.title
        await run_job()
        assert [i.id for i in await review_items(session, plan.id)] == [first.id]  # nothing new

        clock.advance(days=3)
        await run_job()
        items = await review_items(session, plan.id)
        assert [i.id for i in items] == [first.id] and "scaduta" in items[0].title

    async def test_daily_enqueue_is_deduplicated(self, session):
        a = await plan_jobs.enqueue_review_reminders(session)
        b = await plan_jobs.enqueue_review_reminders(session)
        assert a.id == b.id and a.dedup_key == "care_plan.review_reminders:2026-03-02"

    async def test_case_manager_change_moves_the_reminder(self, session, w):
        plan = await active_plan(session, w)
        plan.next_review_due = TODAY
        await session.flush()
        await plan_reviews.create_review_reminders(session)
        other = await make_user(session, Role.comune_social_worker, "comune-offanengo")
        await svc.update_plan(session=session, principal=w.sw_p, plan_id=plan.id,
                              data=CarePlanUpdate(case_manager_id=other.id))
        assert await review_items(session, plan.id) == []
        await plan_reviews.create_review_reminders(session)
        [item] = await review_items(session, plan.id)
        assert item.assignee_user_id == other.id
        items, _ = await queries.due_reviews(session=session, principal=await principal_of(session, other))
        assert [i.id for i in items] == [item.id]
        mine, _ = await queries.due_reviews(session=session, principal=w.sw_p)
        assert item.id not in [i.id for i in mine]
