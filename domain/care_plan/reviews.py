"""Reviews of a progetto individualizzato and their reminders.

A running plan is reviewed every `review_interval_days` (setting `care_plan_review_interval_days`, 180, when the
plan sets none): `start_review` (active → under_review) opens a review row; `record_review` records its outcome
(continue / modify → active, next review = today + interval; complete → completed; suspend → suspended). The daily
job (jobs.py) raises a work item `care_plan.review` for the case manager of every active plan whose review is due
within `care_plan_review_reminder_days` (14) or overdue; holding the review (or closing the plan) closes it.
"""
from __future__ import annotations

import uuid
from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.care_plan import interventions, policy, repository, states
from domain.care_plan.models import CarePlan, PlanState, Review
from domain.care_plan.repository import OBJECT, REVIEW_KIND
from domain.kernel import clock, work_items
from domain.kernel.settings import get_settings
from schemas.care_plan import ReviewOutcome, ReviewRecord

OUTCOME_ACTIONS = {ReviewOutcome.continue_: "end_review", ReviewOutcome.modify: "end_review",
                   ReviewOutcome.complete: "complete", ReviewOutcome.suspend: "suspend"}


def review_interval_default() -> int:
    """Days between reviews when the plan does not set its own (setting `care_plan_review_interval_days`)."""
    return get_settings().care_plan_review_interval_days


def review_reminder_days() -> int:
    """A review due within this many days raises a work item (setting `care_plan_review_reminder_days`)."""
    return get_settings().care_plan_review_reminder_days


def next_review_from(day: date, plan: CarePlan) -> date:
    return day + timedelta(days=plan.review_interval_days)


def base_review_day(plan: CarePlan, reviews: list[Review]) -> date | None:
    """The day the review interval counts from: the last review held, else the activation."""
    held = [r.held_at for r in reviews if r.held_at is not None]
    if held:
        return max(held).astimezone(clock.ROME).date()
    if plan.activated_at is not None:
        return plan.activated_at.astimezone(clock.ROME).date()
    return None


async def _open_review(session: AsyncSession, plan: CarePlan) -> Review | None:
    return (await session.execute(
        sa.select(Review).where(Review.plan_id == plan.id, Review.held_at.is_(None))
        .order_by(Review.due_date.desc(), Review.id.desc()).limit(1).with_for_update()
    )).scalar_one_or_none()


async def close_review_items(session: AsyncSession, plan: CarePlan, actor_id: uuid.UUID | None) -> None:
    """The review reminders of the plan are done by the actor who held the review (else cancelled)."""
    await work_items.close_for_source(session, source_type=OBJECT, source_id=plan.id, kinds=[REVIEW_KIND],
                                      done=actor_id is not None, actor_id=actor_id)


async def finish_open_review(session: AsyncSession, plan: CarePlan, outcome: str, notes: str | None,
                             actor_id: uuid.UUID | None) -> None:
    """A plan closed or suspended outside a review outcome: the open review (if any) records that outcome."""
    review = await _open_review(session, plan)
    if review is not None:
        review.held_at = clock.now()
        review.outcome = outcome
        review.notes = notes
        review.by_user_id = actor_id
        session.add(review)
        await session.flush()


async def start_review(session: AsyncSession, *, principal, plan_id: uuid.UUID) -> CarePlan:
    plan = await policy.plan_for_write(session, principal, plan_id)
    plan.state = states.MACHINE.next_state(plan.state, "start_review")
    review = Review(plan_id=plan.id, due_date=plan.next_review_due or clock.today_rome(), data={})
    session.add(review)
    await session.flush()
    await repository.save(session, plan, "review_started", actor_id=principal.user_id,
                          detail={"review_id": str(review.id)})
    repository.audit_plan("update", plan)
    return plan


async def record_review(session: AsyncSession, *, principal, plan_id: uuid.UUID, data: ReviewRecord) -> CarePlan:
    """The review's outcome: continue / modify → active (next review = today + interval); complete → completed;
    suspend → suspended."""
    plan = await policy.plan_for_write(session, principal, plan_id)
    outcome = ReviewOutcome(data.outcome)
    states.MACHINE.require(plan.state, {PlanState.under_review}, "record_review")
    target = states.MACHINE.next_state(plan.state, OUTCOME_ACTIONS[outcome])
    review = await _open_review(session, plan)
    if review is None:
        review = Review(plan_id=plan.id, due_date=plan.next_review_due or clock.today_rome(), data={})
    goals, _, _ = await repository.children(session, plan.id)
    review.held_at = clock.now()
    review.outcome = outcome.value
    review.notes = data.notes
    review.by_user_id = principal.user_id
    review.data = {"goals": [{"id": str(g.id), "status": g.status} for g in goals]}
    session.add(review)
    await session.flush()
    plan.state = target
    if target == PlanState.active:
        plan.next_review_due = next_review_from(clock.today_rome(), plan)
    elif target == PlanState.completed:
        await interventions.close_all(session, plan, principal.user_id)
        plan.closed_at = clock.now()
        plan.close_reason = (data.notes or "Concluso alla verifica")[:500]
    await close_review_items(session, plan, principal.user_id)
    await repository.save(session, plan, "review_recorded", actor_id=principal.user_id,
                          detail={"review_id": str(review.id), "outcome": outcome.value})
    repository.audit_plan("update", plan)
    return plan


# ---------------------------------------------------------------------------------------------------- reminders
def _reminder_title(due: date, today: date) -> str:
    if due < today:
        return f"Verifica del progetto individualizzato scaduta il {due:%d/%m/%Y}"
    return f"Verifica del progetto individualizzato in scadenza il {due:%d/%m/%Y}"


def review_dedup_key(plan_id: uuid.UUID, due: date) -> str:
    return f"care_plan.review:{plan_id}:{due.isoformat()}"


async def create_review_reminders(session: AsyncSession, *, within_days: int | None = None,
                                  batch: int = 500) -> dict[str, int]:
    """For every active plan whose review is due within `within_days` (default setting, 14) or overdue, make sure
    the case manager has an open work item `care_plan.review` (dedup key care_plan.review:{plan}:{due date}).
    Idempotent: a second run creates nothing (work_items.create returns the open item of the key); an item raised
    as "in scadenza" is retitled "scaduta" once overdue. Returns how many plans have a reminder and how many were
    retitled."""
    today = clock.today_rome()
    horizon = today + timedelta(days=review_reminder_days() if within_days is None else int(within_days))
    counts = {"reminded": 0, "retitled": 0}
    last_id: uuid.UUID | None = None
    while True:
        stmt = (sa.select(CarePlan.id, CarePlan.ambito_id, CarePlan.person_id, CarePlan.cartella_id,
                          CarePlan.case_manager_id, CarePlan.next_review_due, CarePlan.kind)
                .where(CarePlan.state == PlanState.active.value, CarePlan.next_review_due.is_not(None),
                       CarePlan.next_review_due <= horizon)
                .order_by(CarePlan.id).limit(batch))
        if last_id is not None:
            stmt = stmt.where(CarePlan.id > last_id)
        rows = (await session.execute(stmt)).all()
        if not rows:
            break
        last_id = rows[-1].id
        for r in rows:
            due = r.next_review_due
            title, overdue = _reminder_title(due, today), due < today
            item = await work_items.create(
                session, kind=REVIEW_KIND, title=title, source_type=OBJECT, source_id=r.id, ambito_id=r.ambito_id,
                assignee_user_id=r.case_manager_id, due_at=clock.rome_day_bounds(due)[0], person_id=r.person_id,
                cartella_id=r.cartella_id, dedup_key=review_dedup_key(r.id, due),
                data={"plan_id": str(r.id), "due_date": due.isoformat(), "overdue": overdue,
                      "plan_kind": str(r.kind)})
            counts["reminded"] += 1
            if item.title != title:  # raised earlier as "in scadenza", overdue now
                item.title = title
                item.data = {**(item.data or {}), "overdue": overdue}
                session.add(item)
                counts["retitled"] += 1
        if len(rows) < batch:
            break
    await session.flush()
    return counts
