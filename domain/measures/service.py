"""Measures: the catalogue's rules (an administrator sets caps, budgets, periods: fields, not code), the calls
(bandi) with their budget, and the application's steps: submitted → assessment pending (a VMD with the measure's
trigger) → eligible / not eligible → project defined → active for a period with an amount (or waiting for funds,
ranked, when the call's budget is committed) → monitoring → ended (by the daily job at the period's end).

Budget: the call's committed amount is the sum of the amounts of its active, monitoring and ended applications,
computed under the call's row lock, so two activations never commit the same euro. An application that would
exceed the budget is not refused: it waits for funds, and is funded in rank order (MEASURES_WAITING_RANK: the
application date, then the VMD's need score) when the budget grows or an amount is released. Everything is checked
before anything is written.
"""
from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.assessment import queries as assessment_queries
from domain.assessment import service as assessment
from domain.care_plan import queries as care_plan_queries
from domain.kernel import clock, history
from domain.kernel.errors import Conflict, Invalid, NotFound
from domain.kernel.settings import get_settings
from domain.measures import policy
from domain.measures.models import (
    COMMITTED_STATES,
    ApplicationState,
    Measure,
    MeasureApplication,
    MeasureCall,
    PeriodRule,
)
from domain.measures.states import MACHINE, OPEN_STATES, Action
from domain.registry import persons as person_svc
from domain.security import audit
from domain.security.permissions import Permission
from domain.security.principal import Principal

ENTITY = "measure_application"
CALL_ENTITY = "measure_call"
NOT_FOUND = "Domanda di misura non trovata."
PLAN_STATES = ("draft", "proposed", "agreed", "active", "under_review")
MAX_SPAN_DAYS = 3653  # ten years: a period beyond it is a typing error


# ---------------------------------------------------------------------------------------------------- catalogue
async def update_measure(session: AsyncSession, *, principal: Principal, code: str, data) -> Measure:
    policy.ensure(principal, Permission.measures_admin)
    m = await session.get(Measure, code, with_for_update=True)
    if m is None:
        raise NotFound("Misura non trovata.")
    values = data.model_dump(exclude_unset=True)
    errors: list[tuple[str, str]] = []
    for money_field in ("max_amount", "yearly_budget"):
        if values.get(money_field) is not None and values[money_field] < 0:
            errors.append((money_field, "non può essere negativo"))
    months = values.get("months", m.months)
    if months is None or not 1 <= months <= 60:
        errors.append(("months", "tra 1 e 60"))
    rule = values.get("period_rule") or m.period_rule
    start_month = values.get("start_month", m.start_month)
    if rule == PeriodRule.fixed_months and (start_month is None or not 1 <= start_month <= 12):
        errors.append(("start_month", "indicare il mese di inizio (1-12) per un periodo annuale fisso"))
    if errors:
        raise Invalid.many(errors)
    for k, v in values.items():
        if k in ("label", "active", "months") and v is None:
            continue
        setattr(m, k, v)
    session.add(m)
    await session.flush()
    audit.record(action="update", object_type="measure", object_ids=[])
    return m


# ---------------------------------------------------------------------------------------------------- calls
async def create_call(session: AsyncSession, *, principal: Principal, data) -> MeasureCall:
    policy.ensure(principal, Permission.measures_admin)
    errors: list[tuple[str, str]] = []
    m = await session.get(Measure, data.measure_code)
    if m is None or not m.active:
        errors.append(("measure_code", "misura non presente nel catalogo o non attiva"))
    if data.closes_on < data.opens_on:
        errors.append(("closes_on", "è prima dell'apertura"))
    if data.budget < 0:
        errors.append(("budget", "non può essere negativo"))
    if errors:
        raise Invalid.many(errors)
    call = MeasureCall(ambito_id=principal.ambito_id, measure_code=data.measure_code, title=data.title,
                       opens_on=data.opens_on, closes_on=data.closes_on, budget=data.budget,
                       created_at=clock.now(), created_by=principal.user_id, version=1)
    session.add(call)
    await session.flush()
    audit.record(action="create", object_type=CALL_ENTITY, object_ids=[call.id])
    return call


async def lock_call(session: AsyncSession, call_id: uuid.UUID, ambito_id: uuid.UUID) -> MeasureCall:
    call = (await session.execute(sa.select(MeasureCall).where(
        MeasureCall.id == call_id, MeasureCall.ambito_id == ambito_id).with_for_update()
        .execution_options(populate_existing=True))).scalar_one_or_none()
    if call is None:
        raise NotFound("Bando non trovato.")
    return call


async def update_call(session: AsyncSession, *, principal: Principal, call_id: uuid.UUID, data) -> MeasureCall:
    """Title, closing date or budget; a larger budget funds the applications waiting for funds, in rank order."""
    policy.ensure(principal, Permission.measures_admin)
    call = await lock_call(session, call_id, principal.ambito_id)
    values = data.model_dump(exclude_unset=True)
    errors: list[tuple[str, str]] = []
    if values.get("closes_on") is not None and values["closes_on"] < call.opens_on:
        errors.append(("closes_on", "è prima dell'apertura"))
    if values.get("budget") is not None:
        if values["budget"] < 0:
            errors.append(("budget", "non può essere negativo"))
        elif values["budget"] < await committed(session, call.id):
            errors.append(("budget", "è inferiore a quanto già impegnato sul bando"))
    if errors:
        raise Invalid.many(errors)
    for k, v in values.items():
        if v is not None:
            setattr(call, k, v)
    call.version += 1
    session.add(call)
    await session.flush()
    await fund_waiting(session, call, actor_id=principal.user_id)
    audit.record(action="update", object_type=CALL_ENTITY, object_ids=[call.id])
    return call


async def committed(session: AsyncSession, call_id: uuid.UUID) -> Decimal:
    return Decimal((await session.execute(sa.select(sa.func.coalesce(sa.func.sum(MeasureApplication.amount), 0))
                                          .where(MeasureApplication.call_id == call_id,
                                                 MeasureApplication.state.in_(COMMITTED_STATES)))).scalar_one())


# ---------------------------------------------------------------------------------------------------- shared
async def write_history(session: AsyncSession, a: MeasureApplication, action: str, *, actor_id: uuid.UUID | None,
                        detail: dict[str, Any] | None = None, bump: bool = True) -> None:
    await history.record_change(session, a, entity_type=ENTITY, action=action, actor_id=actor_id, detail=detail,
                                bump=bump, key="application")


def audit_application(action: str, a: MeasureApplication) -> None:
    audit.record(action=action, object_type=ENTITY, object_ids=[a.id], person_ids=[a.person_id])


async def load_for_work(session: AsyncSession, principal: Principal, application_id: uuid.UUID) -> MeasureApplication:
    policy.ensure(principal, Permission.measures_manage)
    a = (await session.execute(sa.select(MeasureApplication).where(
        MeasureApplication.id == application_id, policy.scope(principal, policy.WRITERS))
        .with_for_update().execution_options(populate_existing=True))).scalar_one_or_none()
    if a is None:
        raise NotFound(NOT_FOUND)
    return a


def rank_key(a: MeasureApplication):
    """The order of the applications waiting for funds (MEASURES_WAITING_RANK, then filing time and id)."""
    key: list[Any] = []
    for k in get_settings().measures_waiting_rank:
        if k == "application_date":
            key.append(a.application_date.toordinal())
        else:  # need_score: higher need first, unknown last
            key.append(-(a.need_score if a.need_score is not None else -1))
    return (*key, a.applied_at, str(a.id))


def add_months(day: date, months: int) -> date:
    y, m = divmod(day.month - 1 + months, 12)
    return day.replace(year=day.year + y, month=m + 1, day=1) if day.day == 1 else \
        day.replace(year=day.year + y, month=m + 1, day=min(day.day, 28))


def default_period(measure: Measure, today: date) -> tuple[date, date]:
    """Pro.Vi-like measures (fixed_months): the next window opening on the 1st of `start_month` (this year's when
    it has not opened yet, or is today); otherwise from today. The end is `months` later (half-open)."""
    if measure.period_rule == PeriodRule.fixed_months and measure.start_month:
        start = date(today.year, measure.start_month, 1)
        if start < today:
            start = date(today.year + 1, measure.start_month, 1)
        return start, add_months(start, measure.months)
    return today, add_months(today, measure.months)


# ---------------------------------------------------------------------------------------------------- the application
async def submit(session: AsyncSession, *, principal: Principal, data) -> MeasureApplication:
    """An application to an open call, for a person of the principal's cases: refused (naming the field) when the
    call is closed on the application date or the amount asked exceeds the measure's cap."""
    policy.ensure(principal, Permission.measures_manage)
    call = (await session.execute(sa.select(MeasureCall).where(
        MeasureCall.id == data.call_id, MeasureCall.ambito_id == principal.ambito_id))).scalar_one_or_none()
    if call is None:
        raise NotFound("Bando non trovato.")
    person = await person_svc.get_person(session, principal=principal, person_id=data.person_id)
    if not policy.in_write_scope(principal, principal.ambito_id, person.residence_comune_id):
        raise NotFound("Persona non trovata.")
    measure = await session.get(Measure, call.measure_code)
    today = clock.today_rome()
    day = data.application_date or today
    errors: list[tuple[str, str]] = []
    if day > today:
        errors.append(("application_date", "non può essere nel futuro"))
    if not call.opens_on <= day <= call.closes_on:
        errors.append(("call_id", f"il bando è chiuso: accetta domande dal {call.opens_on:%d/%m/%Y} al "
                                  f"{call.closes_on:%d/%m/%Y}"))
    if data.requested_amount is not None:
        if data.requested_amount <= 0:
            errors.append(("requested_amount", "deve essere maggiore di zero"))
        elif measure.max_amount is not None and data.requested_amount > measure.max_amount:
            errors.append(("requested_amount", f"supera l'importo massimo della misura ({measure.max_amount} €)"))
    if errors:
        raise Invalid.many(errors)
    if person.date_of_death is not None:
        raise Invalid("person_id", "la persona risulta deceduta")
    existing = (await session.execute(sa.select(MeasureApplication.id).where(
        MeasureApplication.person_id == person.id, MeasureApplication.call_id == call.id,
        MeasureApplication.state.in_([s.value for s in OPEN_STATES])))).first()
    if existing is not None:
        raise Conflict("La persona ha già una domanda aperta su questo bando.", existing_id=str(existing[0]))
    a = MeasureApplication(ambito_id=principal.ambito_id, call_id=call.id, measure_code=call.measure_code,
                           person_id=person.id, comune_id=person.residence_comune_id, cartella_id=data.cartella_id,
                           application_date=day, applied_at=clock.now(), applied_by=principal.user_id,
                           state=ApplicationState.submitted, requested_amount=data.requested_amount, version=1)
    session.add(a)
    await session.flush()
    await write_history(session, a, "submitted", actor_id=principal.user_id, bump=False)
    audit_application("create", a)
    return a


async def request_assessment(session: AsyncSession, *, principal: Principal, application_id: uuid.UUID,
                             data) -> MeasureApplication:
    """The VMD the eligibility rests on: an existing VMD of the person, or a new one requested with the measure's
    trigger on the cartella for the equipe."""
    a = await load_for_work(session, principal, application_id)
    target = MACHINE.next_state(a.state, Action.request_assessment)
    measure = await session.get(Measure, a.measure_code)
    if data.vmd_id is not None:
        summary = await assessment_queries.vmd_summary(session, data.vmd_id)
        if summary is None or summary.person_id != a.person_id:
            raise Invalid("vmd_id", "VMD non trovata per questa persona")
        if summary.state == "cancelled":
            raise Invalid("vmd_id", "la VMD è annullata")
        vmd_id = summary.id
    elif data.cartella_id is None or data.team_id is None:
        raise Invalid("cartella_id" if data.cartella_id is None else "team_id",
                      "per richiedere la VMD indicare la cartella e l'équipe (oppure una VMD esistente, vmd_id)")
    else:
        vmd = await assessment.request_vmd(session, principal=principal, person_id=a.person_id,
                                           cartella_id=data.cartella_id, trigger=measure.vmd_trigger or "other",
                                           team_id=data.team_id, application_date=a.application_date)
        vmd_id = vmd.id
        a.cartella_id = a.cartella_id or data.cartella_id
    a.state, a.vmd_id = target, vmd_id
    await write_history(session, a, "assessment_requested", actor_id=principal.user_id,
                        detail={"vmd_id": str(vmd_id)})
    audit_application("update", a)
    return a


async def decide(session: AsyncSession, *, principal: Principal, application_id: uuid.UUID,
                 eligible: bool, reason: str | None) -> MeasureApplication:
    """The eligibility the equipe concluded: eligible needs the VMD concluded (its Barthel, when recorded, is the
    need score of the waiting-for-funds rank); not eligible needs a reason."""
    a = await load_for_work(session, principal, application_id)
    MACHINE.next_state(a.state, Action.decide)
    now = clock.now()
    if eligible:
        summary = await assessment_queries.vmd_summary(session, a.vmd_id) if a.vmd_id else None
        if summary is None or summary.state != "concluded":
            raise Invalid("eligible", "la VMD della domanda non è ancora conclusa")
        evidence = await assessment_queries.listing_evidence(session, a.vmd_id)
        a.need_score = 100 - evidence.barthel if evidence and evidence.barthel is not None else None
        a.state = ApplicationState.eligible
    else:
        reason = (reason or "").strip()
        if not reason:
            raise Invalid("reason", "indicare il motivo della non idoneità")
        a.state, a.not_eligible_reason = ApplicationState.not_eligible, reason[:1000]
    a.decided_at, a.decided_by = now, principal.user_id
    await write_history(session, a, "eligible" if eligible else "not_eligible", actor_id=principal.user_id,
                        detail={"need_score": a.need_score, "reason": a.not_eligible_reason})
    audit_application("update", a)
    return a


async def define_project(session: AsyncSession, *, principal: Principal, application_id: uuid.UUID,
                         plan_id: uuid.UUID) -> MeasureApplication:
    a = await load_for_work(session, principal, application_id)
    target = MACHINE.next_state(a.state, Action.define_project)
    brief = await care_plan_queries.plan_brief(session, plan_id)
    if brief is None or brief["person_id"] != a.person_id:
        raise Invalid("plan_id", "progetto non trovato per questa persona")
    if brief["state"] not in PLAN_STATES:
        raise Invalid("plan_id", "il progetto è concluso, sospeso o revocato")
    a.state, a.plan_id = target, plan_id
    await write_history(session, a, "project_defined", actor_id=principal.user_id, detail={"plan_id": str(plan_id)})
    audit_application("update", a)
    return a


async def activate(session: AsyncSession, *, principal: Principal, application_id: uuid.UUID,
                   data) -> MeasureApplication:
    """Amount (within the measure's cap) and period (from the measure's rule unless given). Within the call's
    budget the application is active; beyond it, it waits for funds in rank order."""
    a = await load_for_work(session, principal, application_id)
    MACHINE.next_state(a.state, Action.activate)
    call = await lock_call(session, a.call_id, a.ambito_id)
    measure = await session.get(Measure, a.measure_code)
    errors: list[tuple[str, str]] = []
    if data.amount <= 0:
        errors.append(("amount", "deve essere maggiore di zero"))
    elif measure.max_amount is not None and data.amount > measure.max_amount:
        errors.append(("amount", f"supera l'importo massimo della misura ({measure.max_amount} €)"))
    start, end = _period(measure, data.period_start, data.period_end, errors)
    if errors:
        raise Invalid.many(errors)
    a.amount, a.period_start, a.period_end = data.amount, start, end
    now = clock.now()
    if await committed(session, call.id) + a.amount <= call.budget and not await _waiting_ahead(session, a):
        a.state, a.activated_at = MACHINE.next_state(a.state, Action.activate), now
        await write_history(session, a, "activated", actor_id=principal.user_id,
                            detail={"amount": str(a.amount), "period_start": start.isoformat(),
                                    "period_end": end.isoformat()})
    else:
        a.state, a.waiting_since = MACHINE.next_state(a.state, Action.wait_funds), now
        await write_history(session, a, "waiting_funds", actor_id=principal.user_id,
                            detail={"amount": str(a.amount), "budget": str(call.budget)})
    audit_application("update", a)
    return a


def _period(measure: Measure, start: date | None, end: date | None,
            errors: list[tuple[str, str]]) -> tuple[date | None, date | None]:
    if start is None:
        start, default_end = default_period(measure, clock.today_rome())
    elif abs((start - clock.today_rome()).days) > MAX_SPAN_DAYS:
        errors.append(("period_start", "oltre dieci anni da oggi"))
        return start, None
    else:
        default_end = add_months(start, measure.months)
        if measure.period_rule == PeriodRule.fixed_months and measure.start_month and \
                (start.day != 1 or start.month != measure.start_month):
            errors.append(("period_start", f"la misura parte il 1° del mese {measure.start_month}"))
    end = end or default_end
    if (end - start).days > MAX_SPAN_DAYS:
        errors.append(("period_end", "oltre dieci anni dall'inizio"))
    elif end <= start:
        errors.append(("period_end", "deve essere successiva all'inizio"))
    return start, end


async def _waiting_ahead(session: AsyncSession, a: MeasureApplication) -> bool:
    """Whether applications already wait for funds on the call: a newcomer does not overtake them."""
    return (await session.execute(sa.select(MeasureApplication.id).where(
        MeasureApplication.call_id == a.call_id, MeasureApplication.id != a.id,
        MeasureApplication.state == ApplicationState.waiting_funds.value).limit(1))).first() is not None


async def fund_waiting(session: AsyncSession, call: MeasureCall, *, actor_id: uuid.UUID | None) -> int:
    """Funds the waiting applications in rank order while the budget allows; stops at the first that does not fit
    (the rank is kept: a smaller amount further down does not jump the queue). The call's row is locked."""
    rows = list((await session.execute(sa.select(MeasureApplication).where(
        MeasureApplication.call_id == call.id, MeasureApplication.state == ApplicationState.waiting_funds.value)
        .with_for_update().execution_options(populate_existing=True))).scalars())
    rows.sort(key=rank_key)
    funded = 0
    used = await committed(session, call.id)
    measure = await session.get(Measure, call.measure_code)
    for a in rows:
        if used + a.amount > call.budget:
            break
        used += a.amount
        if a.period_start is None or a.period_start < clock.today_rome():
            a.period_start, a.period_end = default_period(measure, clock.today_rome())
        a.state, a.activated_at = MACHINE.next_state(a.state, Action.fund), clock.now()
        await write_history(session, a, "funded", actor_id=actor_id, detail={"amount": str(a.amount)})
        funded += 1
    return funded


async def monitor(session: AsyncSession, *, principal: Principal, application_id: uuid.UUID) -> MeasureApplication:
    a = await load_for_work(session, principal, application_id)
    a.state, a.monitoring_at = MACHINE.next_state(a.state, Action.monitor), clock.now()
    await write_history(session, a, "monitoring", actor_id=principal.user_id)
    audit_application("update", a)
    return a


async def end(session: AsyncSession, *, principal: Principal, application_id: uuid.UUID,
              note: str | None) -> MeasureApplication:
    """Ended before its period is over (the daily job ends it at the period's end): the amount stays committed."""
    a = await load_for_work(session, principal, application_id)
    a.state, a.ended_at = MACHINE.next_state(a.state, Action.end), clock.now()
    a.end_reason, a.end_note = "early_end", note
    await write_history(session, a, "ended", actor_id=principal.user_id, detail={"reason": "early_end"})
    audit_application("update", a)
    return a


async def withdraw(session: AsyncSession, *, principal: Principal, application_id: uuid.UUID,
                   note: str | None) -> MeasureApplication:
    """Withdrawn: an active application's amount is released and the next waiting ones are funded."""
    a = await load_for_work(session, principal, application_id)
    released = str(a.state) in ("active", "monitoring")
    a.state, a.ended_at = MACHINE.next_state(a.state, Action.withdraw), clock.now()
    a.end_reason, a.end_note = "withdrawn", note
    await write_history(session, a, "withdrawn", actor_id=principal.user_id)
    if released:
        call = await lock_call(session, a.call_id, a.ambito_id)
        await fund_waiting(session, call, actor_id=principal.user_id)
    audit_application("update", a)
    return a


async def end_past_period(session: AsyncSession) -> int:
    """System path (daily job): applications whose period is over end by themselves (`period_over`)."""
    today = clock.today_rome()
    rows = list((await session.execute(sa.select(MeasureApplication).where(
        MeasureApplication.state.in_([ApplicationState.active.value, ApplicationState.monitoring.value]),
        MeasureApplication.period_end <= today).with_for_update(skip_locked=True)
        .execution_options(populate_existing=True))).scalars())
    for a in rows:
        a.state, a.ended_at, a.end_reason = MACHINE.next_state(a.state, Action.end), clock.now(), "period_over"
        await write_history(session, a, "ended", actor_id=None, detail={"reason": "period_over",
                                                                          "period_end": a.period_end.isoformat()})
    return len(rows)


async def before_person_merge(session: AsyncSession, *, kept_id: uuid.UUID, merged_id: uuid.UUID) -> None:
    """One open application per person and call: where both persons had one on the same call, the merged person's
    is withdrawn (recorded in its history) before the reference moves."""
    clash = sa.select(MeasureApplication.call_id).where(
        MeasureApplication.person_id == kept_id, MeasureApplication.state.in_([s.value for s in OPEN_STATES]))
    rows = list((await session.execute(sa.select(MeasureApplication).where(
        MeasureApplication.person_id == merged_id, MeasureApplication.call_id.in_(clash),
        MeasureApplication.state.in_([s.value for s in OPEN_STATES])).with_for_update())).scalars())
    for a in rows:
        a.state, a.ended_at, a.end_reason = ApplicationState.withdrawn, clock.now(), "withdrawn"
        a.end_note = "Persona unita a un'altra scheda con una domanda aperta sullo stesso bando"
        await write_history(session, a, "withdrawn", actor_id=None, detail={"cause": "person_merge",
                                                                              "kept_id": str(kept_id)})

