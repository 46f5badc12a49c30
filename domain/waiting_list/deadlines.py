"""The assessment clock's marks: an application whose joint VMD is not concluded is marked at risk
WAITING_LIST_AT_RISK_DAYS after the application and overdue at the end of the 30th day (R2), each once, with one
work item in the equipe's queue (the team of the VMD), like the other clocks."""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.kernel import clock, work_items
from domain.kernel.settings import get_settings
from domain.waiting_list import service
from domain.waiting_list.models import EntryState, WaitingListEntry


async def mark_clocks(session: AsyncSession) -> tuple[int, int]:
    """Returns (marked at risk, marked overdue) by this run. Idempotent: marks are set once under a row lock, the
    work items have a dedup key per entry and mark."""
    st = get_settings()
    now = clock.now()
    counts = []
    today = clock.today_rome()
    marks = (
        (WaitingListEntry.at_risk_at, service.AT_RISK_KIND,
         WaitingListEntry.application_date <= today - timedelta(days=st.waiting_list_at_risk_days),
         "Domanda di lista d'attesa: valutazione congiunta a rischio dei 30 giorni"),
        (WaitingListEntry.overdue_at, service.OVERDUE_KIND, WaitingListEntry.assessment_due_at <= now,
         "Domanda di lista d'attesa: valutazione congiunta oltre i 30 giorni"))
    for column, kind, due, title in marks:
        rows = list((await session.execute(sa.select(WaitingListEntry).where(
            WaitingListEntry.state == EntryState.assessment_pending.value, WaitingListEntry.assessed_at.is_(None),
            column.is_(None), due).order_by(WaitingListEntry.assessment_due_at, WaitingListEntry.id)
            .with_for_update(skip_locked=True).execution_options(populate_existing=True))).scalars())
        for entry in rows:
            setattr(entry, column.key, now)
            await service.write_history(session, entry, kind.split(".", 1)[1], actor_id=None,
                                        detail={"cause": "assessment_clock"})
            if entry.assessment_team_id is not None or entry.comune_id is not None:
                await work_items.create(
                    session, kind=kind, title=title, source_type=service.ENTITY, source_id=entry.id,
                    ambito_id=entry.ambito_id, assignee_team_id=entry.assessment_team_id,
                    assignee_org_id=None if entry.assessment_team_id else entry.comune_id,
                    due_at=entry.assessment_due_at, person_id=entry.person_id,
                    dedup_key=f"{kind}:{entry.id}", data={"entry_id": str(entry.id)})
        counts.append(len(rows))
    return counts[0], counts[1]
