"""Job handlers of the care-plan context (loaded by deploy.composition.HANDLER_MODULES).

`care_plan.review_reminders` (daily, from the beat): every active plan whose review is due within N days
(payload `within_days`, default setting `care_plan_review_reminder_days` = 14) or overdue gets an open work item
`care_plan.review` for its case manager, dedup key `care_plan.review:{plan_id}:{due_date}`. Idempotent.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from domain.care_plan import reviews
from domain.kernel import jobs

REVIEW_REMINDERS = "care_plan.review_reminders"


@jobs.handler(REVIEW_REMINDERS)
async def review_reminders(session: AsyncSession, payload: dict[str, Any]) -> None:
    within = payload.get("within_days")
    await reviews.create_review_reminders(session, within_days=int(within) if within is not None else None)


async def enqueue_review_reminders(session: AsyncSession, *, within_days: int | None = None):
    """What the daily beat entry calls: one job per day (dedup key care_plan.review_reminders:{YYYY-MM-DD})."""
    payload: dict[str, Any] = {} if within_days is None else {"within_days": int(within_days)}
    return await jobs.enqueue_periodic(session, kind=REVIEW_REMINDERS, every="day", payload=payload)
