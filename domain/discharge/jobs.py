"""Job handlers of the discharge context (loaded by deploy.composition.HANDLER_MODULES).

`discharge.evaluation_clock` (from the beat, through DAILY_ENQUEUERS, at most once an hour): marks the evaluations
awaiting the COT at risk (36 h) and overdue (48 h) on the business clock, with one work item each in the COT's
queue. Idempotent: the marks are set once (the job re-reads them under a row lock), the work items have a dedup key.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from domain.discharge import deadlines
from domain.kernel import jobs

EVALUATION_CLOCK = "discharge.evaluation_clock"


@jobs.handler(EVALUATION_CLOCK)
async def evaluation_clock(session: AsyncSession, payload: dict[str, Any]) -> None:
    await deadlines.mark_clocks(session)


async def enqueue_evaluation_clock(session: AsyncSession):
    """What the beat calls (every `daily_jobs_seconds`): one job per hour of the business clock (dedup key)."""
    return await jobs.enqueue_periodic(session, kind=EVALUATION_CLOCK, every="hour")
