"""Periodic work of the assessment context: a reminder to the equipe when a VMD's reassessment date approaches.
Enqueued once a day by beat (deploy/composition.py DAILY_ENQUEUERS); idempotent per VMD and date."""
from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from domain.assessment.models import Vmd, VmdState
from domain.kernel import clock, jobs, work_items
from domain.kernel.clock import ROME

REASSESSMENT_REMINDERS = "vmd.reassessment_reminders"
REASSESSMENT_KIND = "vmd.reassessment"
REMIND_DAYS_BEFORE = 30


async def create_reassessment_reminders(session: AsyncSession, *, within_days: int = REMIND_DAYS_BEFORE) -> int:
    """Every concluded VMD whose reassessment is due within `within_days` (or past) and not yet requested gets an
    open `vmd.reassessment` work item for its equipe. Returns how many items were created or found open."""
    horizon = clock.today_rome() + timedelta(days=within_days)
    newer = aliased(Vmd)
    rows = (await session.execute(sa.select(Vmd).where(
        Vmd.state == VmdState.concluded, Vmd.reassessment_due.is_not(None), Vmd.reassessment_due <= horizon,
        ~sa.exists().where(newer.previous_vmd_id == Vmd.id)))).scalars().all()
    for v in rows:
        await work_items.create(
            session, kind=REASSESSMENT_KIND, title=f"Rivalutazione VMD prevista il {v.reassessment_due:%d/%m/%Y}",
            source_type="vmd", source_id=v.id, ambito_id=v.ambito_id, assignee_team_id=v.team_id,
            due_at=datetime.combine(v.reassessment_due, time(0, 0), tzinfo=ROME), person_id=v.person_id,
            cartella_id=v.cartella_id, dedup_key=f"{REASSESSMENT_KIND}:{v.id}:{v.reassessment_due.isoformat()}")
    return len(rows)


@jobs.handler(REASSESSMENT_REMINDERS)
async def reassessment_reminders(session: AsyncSession, payload: dict[str, Any]) -> None:
    await create_reassessment_reminders(session)


async def enqueue_reassessment_reminders(session: AsyncSession):
    return await jobs.enqueue_periodic(session, kind=REASSESSMENT_REMINDERS, every="day")
