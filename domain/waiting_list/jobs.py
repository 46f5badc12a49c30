"""Job handlers of the waiting-list context (loaded by deploy.composition.HANDLER_MODULES).

`waiting_list.clocks` (from the beat, through DAILY_ENQUEUERS, at most once an hour): the assessment clock's
at-risk and overdue marks, and the offers past their reply deadline (expired: a refusal, the bed to the next
entry). Idempotent: marks are set once under row locks, offers move once (skip locked), work items dedup.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from domain.kernel import jobs
from domain.waiting_list import deadlines, offers

CLOCKS = "waiting_list.clocks"


@jobs.handler(CLOCKS)
async def clocks(session: AsyncSession, payload: dict[str, Any]) -> None:
    await deadlines.mark_clocks(session)
    await offers.expire_due(session)


async def enqueue_clocks(session: AsyncSession):
    """What the beat calls (every `daily_jobs_seconds`): one job per hour of the business clock (dedup key)."""
    return await jobs.enqueue_periodic(session, kind=CLOCKS, every="hour")
