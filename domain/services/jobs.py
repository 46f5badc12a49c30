"""Job handlers of the services context (loaded by deploy.composition.HANDLER_MODULES).

`services.daily` (from the beat, through DAILY_ENQUEUERS, once a day of the business clock):
- every week of a running order that is over and was delivered below SERVICES_BELOW_THRESHOLD_PERCENT of the
  planned hours or accesses puts one work item in the case manager's queue: once per week and order (the unique
  key of `service_week_flag`, so a completed item is never raised again);
- an order past its planned end ends by itself (`period_over`), and its intervention with it.
Idempotent: a second run of the same day finds the flags and the ended orders.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.kernel import clock, jobs, work_items
from domain.kernel.ids import new_id
from domain.services import queries, service
from domain.services.models import Activation, ActivationState, EndReason, WeekFlag

DAILY = "services.daily"
BELOW_KIND = "services.below_threshold"
RECENT_DAYS = 14  # an ended order is still checked for its last weeks this long


async def flag_weeks(session: AsyncSession) -> int:
    """Flags the weeks below the threshold not flagged yet; returns how many this run flagged."""
    today = clock.today_rome()
    recent = clock.now() - timedelta(days=RECENT_DAYS)
    rows = list((await session.execute(sa.select(Activation).where(sa.or_(
        Activation.state.in_([ActivationState.active.value, ActivationState.suspended.value]),
        sa.and_(Activation.state == ActivationState.ended.value, Activation.ended_at >= recent),
    ), Activation.started_at.is_not(None)).order_by(Activation.id))).scalars())
    if not rows:
        return 0
    days = await queries.per_day(session, [a.id for a in rows])
    gaps = await queries.suspensions(session, [a.id for a in rows])
    done = {(aid, w) for aid, w in (await session.execute(sa.select(WeekFlag.activation_id, WeekFlag.week_start)
                                                           .where(WeekFlag.activation_id.in_([a.id for a in rows]))))}
    flagged = 0
    for a in rows:
        for w in queries.week_periods(a, days.get(a.id, {}), today, gaps.get(a.id, ())):
            if not w.below or (a.id, w.start) in done:
                continue
            flag_id = (await session.execute(pg_insert(WeekFlag).values(
                id=new_id(), activation_id=a.id, week_start=w.start, planned=w.planned, delivered=w.delivered,
                flagged_at=clock.now()).on_conflict_do_nothing(constraint="ux_service_week_flag")
                .returning(WeekFlag.id))).scalar_one_or_none()
            if flag_id is None:
                continue  # another run flagged it first
            assignee = {"assignee_user_id": a.case_manager_id} if a.case_manager_id else {
                "assignee_org_id": a.comune_id or a.ambito_id}
            item = await work_items.create(
                session, kind=BELOW_KIND, title=f"Servizio erogato sotto soglia nella settimana del "
                                                f"{w.start:%d/%m/%Y}", source_type=service.ENTITY, source_id=a.id,
                ambito_id=a.ambito_id, person_id=a.person_id, cartella_id=a.cartella_id,
                dedup_key=f"{BELOW_KIND}:{a.id}:{w.start.isoformat()}",
                data={"activation_id": str(a.id), "week_start": w.start.isoformat(), "planned": str(w.planned),
                      "delivered": str(w.delivered)}, **assignee)
            await session.execute(sa.update(WeekFlag).where(WeekFlag.id == flag_id).values(work_item_id=item.id))
            flagged += 1
    return flagged


async def end_past_period(session: AsyncSession) -> int:
    """Orders whose planned end has come end by themselves (`period_over`)."""
    today = clock.today_rome()
    rows = list((await session.execute(sa.select(Activation).where(
        Activation.state.in_([ActivationState.accepted.value, ActivationState.active.value,
                              ActivationState.suspended.value]),
        Activation.end_date.is_not(None), Activation.end_date <= today)
        .with_for_update(skip_locked=True).execution_options(populate_existing=True))).scalars())
    for a in rows:
        await service.end(session, principal=None, activation_id=a.id, reason=EndReason.period_over,
                          end_date=a.end_date, row=a)
    return len(rows)


@jobs.handler(DAILY)
async def daily(session: AsyncSession, payload: dict[str, Any]) -> None:
    await flag_weeks(session)
    await end_past_period(session)


async def enqueue_daily(session: AsyncSession):
    """What the beat calls: one job per day of the business clock (dedup key)."""
    return await jobs.enqueue_periodic(session, kind=DAILY, every="day")
