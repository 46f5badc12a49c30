"""Goals and interventions of a progetto individualizzato, and the provider access an intervention gives.

Goals and interventions are edited only while the plan is editable (draft, proposed, under_review). On a running
plan (active, under_review) interventions start, end or are cancelled one at a time. Starting an intervention with
a provider organisation gives that organisation a cartella assignment whose legal basis is the agreed plan, so its
operators reach the case through the minimal projection; ending or cancelling it ends that access
(`registry.assignments.end_assignments_of_source`). Every change writes a new version of the plan.
"""
from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.care_plan import policy, repository, signatories, states
from domain.care_plan.models import CarePlan, Goal, Intervention, InterventionStatus
from domain.care_plan.repository import INTERVENTION_SOURCE
from domain.kernel import clock
from domain.kernel.errors import Conflict, Invalid, NotFound
from domain.registry import assignments
from domain.registry.models import AssignmentReason
from domain.territory import queries as territory
from schemas.care_plan import GoalCreate, GoalUpdate, InterventionCreate, InterventionUpdate

# The flow itself is the legal basis of these assignments (art. 9.2.h GDPR: social and health care under a plan
# agreed with the person), so cross-organisation access through them does not need a separate sharing consent.
LEGAL_BASIS_PROVIDER = "Progetto individualizzato sottoscritto - erogazione dell'intervento (art. 9.2.h GDPR)"
IV = InterventionStatus


def _require_editable(plan: CarePlan) -> None:
    states.MACHINE.require(plan.state, states.EDITABLE, "edit")


async def _count(session: AsyncSession, model, plan_id: uuid.UUID) -> int:
    return (await session.execute(sa.select(sa.func.count()).select_from(model).where(model.plan_id == plan_id))
            ).scalar_one()


# ---------------------------------------------------------------------------------------------------- goals
async def add_goal(session: AsyncSession, *, principal, plan_id: uuid.UUID, data: GoalCreate) -> Goal:
    plan = await policy.plan_for_write(session, principal, plan_id)
    _require_editable(plan)
    goal = Goal(plan_id=plan.id, description=data.description, indicator=data.indicator, target=data.target,
                due_date=data.due_date, position=await _count(session, Goal, plan.id))
    session.add(goal)
    await session.flush()
    await repository.save(session, plan, "goal_added", actor_id=principal.user_id, detail={"goal_id": str(goal.id)})
    repository.audit_plan("update", plan)
    return goal


async def update_goal(session: AsyncSession, *, principal, plan_id: uuid.UUID, goal_id: uuid.UUID,
                      data: GoalUpdate) -> Goal:
    plan = await policy.plan_for_write(session, principal, plan_id)
    _require_editable(plan)
    goal = await session.get(Goal, goal_id)
    if goal is None or goal.plan_id != plan.id:
        raise NotFound("Obiettivo non trovato.")
    fields = data.model_fields_set
    for name in ("description", "indicator", "target", "status"):
        if name in fields and getattr(data, name) is None:
            raise Invalid(name, "campo obbligatorio: non può essere vuoto")
    for name in fields:
        value = getattr(data, name)
        setattr(goal, name, value.value if hasattr(value, "value") else value)
    session.add(goal)
    await session.flush()
    await repository.save(session, plan, "goal_updated", actor_id=principal.user_id,
                          detail={"goal_id": str(goal.id), "fields": sorted(fields)})
    repository.audit_plan("update", plan)
    return goal


# ---------------------------------------------------------------------------------------------------- interventions
async def _check(session: AsyncSession, plan: CarePlan, values: dict[str, Any]) -> None:
    """Every problem of an intervention's values at once (422 naming each field)."""
    errors: list[tuple[str, str]] = []
    try:
        await territory.require_service_type(session, values["service_type"])
    except Invalid as e:
        errors.append((e.field, e.reason))
    if values.get("funding_source") is not None:
        try:
            await territory.require_funding_source(session, values["funding_source"])
        except Invalid as e:
            errors.append((e.field, e.reason))
    if values.get("provider_org_id") is not None and await territory.active_org(
            session, values["provider_org_id"], plan.ambito_id) is None:
        errors.append(("provider_org_id", "ente erogatore non trovato tra le organizzazioni attive dell'Ambito"))
    if (values.get("intensity_value") is None) != (values.get("intensity_unit") is None):
        errors.append(("intensity_unit" if values.get("intensity_value") is not None else "intensity_value",
                       "indicare insieme valore e unità dell'intensità (es. 6 ore/settimana)"))
    start, end = values.get("start_date"), values.get("end_date")
    if start is not None and end is not None and end < start:
        errors.append(("end_date", "la data di fine precede la data di inizio"))
    if errors:
        raise Invalid.many(errors)


async def add_intervention(session: AsyncSession, *, principal, plan_id: uuid.UUID,
                           data: InterventionCreate) -> Intervention:
    plan = await policy.plan_for_write(session, principal, plan_id)
    _require_editable(plan)
    values = data.model_dump()
    await _check(session, plan, values)
    iv = Intervention(plan_id=plan.id, status=IV.planned, position=await _count(session, Intervention, plan.id),
                      **values)
    session.add(iv)
    await session.flush()
    await repository.save(session, plan, "intervention_added", actor_id=principal.user_id,
                          detail={"intervention_id": str(iv.id)})
    repository.audit_plan("update", plan)
    return iv


async def _intervention(session: AsyncSession, plan: CarePlan, intervention_id: uuid.UUID) -> Intervention:
    iv = (await session.execute(sa.select(Intervention).where(Intervention.id == intervention_id)
                                .with_for_update())).scalar_one_or_none()
    if iv is None or iv.plan_id != plan.id:
        raise NotFound("Intervento non trovato.")
    return iv


async def update_intervention(session: AsyncSession, *, principal, plan_id: uuid.UUID, intervention_id: uuid.UUID,
                              data: InterventionUpdate) -> Intervention:
    plan = await policy.plan_for_write(session, principal, plan_id)
    _require_editable(plan)
    iv = await _intervention(session, plan, intervention_id)
    states.INTERVENTION.require(iv.status, states.INTERVENTION_OPEN, "edit")
    fields = data.model_fields_set
    if "service_type" in fields and data.service_type is None:
        raise Invalid("service_type", "campo obbligatorio: non può essere vuoto")
    if iv.status == IV.active:
        for name in ("service_type", "provider_org_id", "start_date"):
            if name in fields and getattr(data, name) != getattr(iv, name):
                raise Conflict("L'intervento è in corso: servizio, ente erogatore e data di inizio non si cambiano; "
                               "concluderlo e aggiungerne uno nuovo.", field=name)
    values = {n: getattr(iv, n) for n in ("service_type", "provider_org_id", "intensity_value", "intensity_unit",
                                          "start_date", "end_date", "funding_source", "notes")}
    values.update({n: getattr(data, n) for n in fields})
    await _check(session, plan, values)
    for n in fields:
        setattr(iv, n, values[n])
    session.add(iv)
    await session.flush()
    await repository.save(session, plan, "intervention_updated", actor_id=principal.user_id,
                          detail={"intervention_id": str(iv.id), "fields": sorted(fields)})
    repository.audit_plan("update", plan)
    return iv


# ---------------------------------------------------------------------------------------------------- provider access
async def start(session: AsyncSession, plan: CarePlan, iv: Intervention, actor_id: uuid.UUID) -> None:
    """Start a planned intervention; a provider organisation gets its cartella assignment (the plan as legal
    basis)."""
    iv.status = states.INTERVENTION.next_state(iv.status, "start")
    iv.started_at = clock.now()
    if iv.start_date is None:
        iv.start_date = clock.today_rome()
    session.add(iv)
    if iv.provider_org_id is not None:
        await assignments.assign(session, cartella_id=plan.cartella_id, reason=AssignmentReason.provider,
                              organisation_id=iv.provider_org_id, source_type=INTERVENTION_SOURCE, source_id=iv.id,
                              actor_id=actor_id, legal_basis=LEGAL_BASIS_PROVIDER)
    await session.flush()


async def _close(session: AsyncSession, iv: Intervention, action: str, actor_id: uuid.UUID | None) -> None:
    """`end` (an active intervention ends today at the latest) or `cancel`; the provider's access ends."""
    today = clock.today_rome()
    was_active = iv.status == IV.active
    iv.status = states.INTERVENTION.next_state(iv.status, action)
    if iv.status == IV.ended and (iv.end_date is None or iv.end_date > today):
        iv.end_date = max(today, iv.start_date) if iv.start_date else today
    session.add(iv)
    if was_active:
        await assignments.end_assignments_of_source(session, source_type=INTERVENTION_SOURCE, source_id=iv.id,
                                                 actor_id=actor_id)
    await session.flush()


async def close_all(session: AsyncSession, plan: CarePlan, actor_id: uuid.UUID | None) -> None:
    """The plan closes: active interventions end, planned ones are cancelled (and provider access ends)."""
    _, ivs, _ = await repository.children(session, plan.id)
    for iv in ivs:
        if iv.status == IV.active:
            await _close(session, iv, "end", actor_id)
        elif iv.status == IV.planned:
            await _close(session, iv, "cancel", actor_id)


async def start_intervention(session: AsyncSession, *, principal, plan_id: uuid.UUID,
                             intervention_id: uuid.UUID) -> Intervention:
    plan = await policy.plan_for_write(session, principal, plan_id)
    states.MACHINE.require(plan.state, states.RUNNING, "start_intervention")
    iv = await _intervention(session, plan, intervention_id)
    states.INTERVENTION.require(iv.status, {IV.planned}, "start")
    if iv.start_date is not None and iv.start_date > clock.today_rome():
        raise Invalid("start_date", f"l'intervento inizia il {iv.start_date:%d/%m/%Y}")
    await signatories.consent_still_valid(session, plan, "start_intervention")
    await start(session, plan, iv, principal.user_id)
    await repository.save(session, plan, "intervention_started", actor_id=principal.user_id,
                          detail={"intervention_id": str(iv.id)})
    repository.audit_plan("update", plan)
    return iv


async def end_intervention(session: AsyncSession, *, principal, plan_id: uuid.UUID,
                           intervention_id: uuid.UUID) -> Intervention:
    """The intervention was delivered and ends (a running plan only)."""
    return await _finish(session, principal, plan_id, intervention_id, "end", states.RUNNING, "end_intervention",
                         "intervention_ended")


async def cancel_intervention(session: AsyncSession, *, principal, plan_id: uuid.UUID,
                              intervention_id: uuid.UUID) -> Intervention:
    """The intervention will not be delivered (while the plan can still be edited)."""
    return await _finish(session, principal, plan_id, intervention_id, "cancel", states.OPEN, "edit",
                         "intervention_cancelled")


async def _finish(session: AsyncSession, principal, plan_id: uuid.UUID, intervention_id: uuid.UUID, how: str,
                  plan_states, plan_action: str, recorded_as: str) -> Intervention:
    plan = await policy.plan_for_write(session, principal, plan_id)
    states.MACHINE.require(plan.state, plan_states, plan_action)
    iv = await _intervention(session, plan, intervention_id)
    await _close(session, iv, how, principal.user_id)
    await repository.save(session, plan, recorded_as, actor_id=principal.user_id,
                          detail={"intervention_id": str(iv.id)})
    repository.audit_plan("update", plan)
    return iv


# ---------------------------------------------------------------------------------------------------- activation orders
async def start_for_activation(session: AsyncSession, *, intervention_id: uuid.UUID, actor_id: uuid.UUID) -> bool:
    """System path (services context): the provider started the service an activation order asked for, so the
    planned intervention of a running plan starts (and its provider gets the minimal view of the case). Returns
    whether it started; an intervention already running, or a plan not running, is left alone."""
    iv = await session.get(Intervention, intervention_id, with_for_update=True)
    if iv is None or iv.status != IV.planned:
        return False
    plan = await repository.plan_row(session, iv.plan_id, lock=True)
    if plan.state not in states.RUNNING:
        return False
    await start(session, plan, iv, actor_id)
    await repository.save(session, plan, "intervention_started", actor_id=actor_id,
                          detail={"intervention_id": str(iv.id), "cause": "activation_started"})
    return True


async def end_for_activation(session: AsyncSession, *, intervention_id: uuid.UUID,
                             actor_id: uuid.UUID | None) -> bool:
    """System path (services context): the activation order ended, so its running intervention ends too (and the
    provider's access through it). Returns whether it ended."""
    iv = await session.get(Intervention, intervention_id, with_for_update=True)
    if iv is None or iv.status != IV.active:
        return False
    plan = await repository.plan_row(session, iv.plan_id, lock=True)
    await _close(session, iv, "end", actor_id)
    await repository.save(session, plan, "intervention_ended", actor_id=actor_id,
                          detail={"intervention_id": str(iv.id), "cause": "activation_ended"})
    return True
