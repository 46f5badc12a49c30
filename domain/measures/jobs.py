"""Job handlers of the measures context (loaded by deploy.composition.HANDLER_MODULES).

`measures.daily` (from the beat, through DAILY_ENQUEUERS, once a day of the business clock): an active or
monitored application whose period is over (Pro.Vi: after April) ends by itself (`period_over`). Idempotent: an
ended application is not selected again.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from domain.kernel import jobs
from domain.measures import service

DAILY = "measures.daily"


@jobs.handler(DAILY)
async def daily(session: AsyncSession, payload: dict[str, Any]) -> None:
    await service.end_past_period(session)


async def enqueue_daily(session: AsyncSession):
    return await jobs.enqueue_periodic(session, kind=DAILY, every="day")
