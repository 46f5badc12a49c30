"""The COT evaluation's marks: at risk and overdue, on the business clock, in elapsed or working hours
(docs/decisions/discharge.md §5). The D6 deadline itself (`evaluation_due_at`, 48 elapsed hours) is set by the
COT request in service.py and never moves with these settings."""
from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.discharge import service
from domain.discharge.models import DischargeCase, DischargeState
from domain.kernel import calendar, clock, work_items
from domain.kernel.settings import get_settings


def mark_due(requested_at: datetime, hours: float) -> datetime:
    """When a pending evaluation requested at `requested_at` reaches `hours` for the at-risk/overdue marks: elapsed
    calendar hours, or working hours when DISCHARGE_CLOCK=working_hours (docs/decisions/discharge.md §5)."""
    st = get_settings()
    if st.discharge_clock == "working_hours":
        return calendar.add_working_hours(requested_at, hours, day_start=st.discharge_workday_start,
                                          day_end=st.discharge_workday_end)
    return requested_at + timedelta(hours=hours)


async def mark_clocks(session: AsyncSession) -> tuple[int, int]:
    """Cases awaiting the COT evaluation: at risk from DISCHARGE_AT_RISK_HOURS (36) after the COT request, overdue
    from DISCHARGE_OVERDUE_HOURS (48), counted by `mark_due` (elapsed or working hours), each marked once, with one
    work item in the COT's queue (dedup key per case and mark). Idempotent: a second run, or a run after a killed
    one, finds the marks set (or sets them once) and changes nothing else. Returns (marked at risk, marked overdue)
    by this run."""
    st = get_settings()
    now = clock.now()
    counts = []
    for column, hours, kind, title in (
            (DischargeCase.at_risk_at, st.discharge_at_risk_hours, service.AT_RISK_KIND,
             "Dimissione protetta a rischio: valutazione COT non ancora conclusa"),
            (DischargeCase.overdue_at, st.discharge_overdue_hours, service.OVERDUE_KIND,
             "Dimissione protetta scaduta: valutazione COT oltre il termine")):
        # working hours never run faster than elapsed ones: the elapsed bound selects every candidate in SQL
        rows = list((await session.execute(
            sa.select(DischargeCase).where(
                DischargeCase.state == DischargeState.cot_requested.value, column.is_(None),
                DischargeCase.cot_requested_at <= now - timedelta(hours=hours))
            .order_by(DischargeCase.evaluation_due_at, DischargeCase.id)
            .with_for_update(skip_locked=True).execution_options(populate_existing=True))).scalars())
        marked = 0
        for case in rows:
            if mark_due(case.cot_requested_at, hours) > now:
                continue
            setattr(case, column.key, now)
            await service.write_history(session, case, kind.split(".", 1)[1], actor_id=None)
            await work_items.create(
                session, kind=kind, title=title, source_type=service.ENTITY, source_id=case.id,
                ambito_id=case.ambito_id, assignee_org_id=case.cot_org_id, due_at=case.evaluation_due_at,
                person_id=case.person_id,
                dedup_key=f"{kind}:{case.id}", data={"discharge_id": str(case.id)})
            marked += 1
        counts.append(marked)
    return counts[0], counts[1]
