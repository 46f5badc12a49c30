"""Progetto individualizzato (care plan): the plan's lifecycle. Create, edit the frame, propose, agree with the
person's consent, activate, complete, suspend, resume, revoke, and the system close of temporary plans. Goals and
interventions are in interventions.py, reviews and their reminders in reviews.py, the consent and the signatories
in signatories.py, who may do what in policy.py, read views in queries.py, the transition table in states.py.

Every change bumps `CarePlan.version` and writes a COMPLETE snapshot (repository.save), so any version can be read
back and printed. Services never commit; the request's unit of work does. Defaults (docs/decisions/care_plan.md):
  CARE_PLAN_REVIEW_INTERVAL_DAYS  review interval when a plan does not set its own (180)
  CARE_PLAN_REVIEW_REMINDER_DAYS  the beat job raises a work item this many days before the review is due (14)
"""
from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.assessment import queries as assessment
from domain.assessment.models import VmdOutcome, VmdState
from domain.care_plan import interventions, policy, repository, reviews, signatories, states
from domain.care_plan.models import CarePlan, InterventionStatus, PlanKind, PlanState
from domain.care_plan.repository import OBJECT, REVIEW_KIND
from domain.kernel import clock, work_items
from domain.kernel.errors import Conflict, Invalid
from domain.registry import assignments
from domain.registry.models import AssignmentReason, ConsentPurpose
from domain.security import directory
from schemas.care_plan import ActivateIn, AgreeIn, CarePlanCreate, CarePlanUpdate

LEGAL_BASIS_CASE_MANAGER = "LEPS PUA/VMD - presa in carico integrata, case manager del progetto (art. 9.2.h GDPR)"


async def _set_case_manager(session: AsyncSession, plan: CarePlan, user_id: uuid.UUID, actor_id: uuid.UUID) -> None:
    """The case manager assignment on the cartella (the previous case manager's ends there)."""
    await assignments.assign(session, cartella_id=plan.cartella_id, reason=AssignmentReason.case_manager,
                          user_id=user_id, source_type=OBJECT, source_id=plan.id, actor_id=actor_id,
                          legal_basis=LEGAL_BASIS_CASE_MANAGER)


async def _check_vmd(session: AsyncSession, vmd_id: uuid.UUID, cartella_id: uuid.UUID, kind: PlanKind) -> None:
    vmd = await assessment.vmd_summary(session, vmd_id)
    if vmd is None or vmd.cartella_id != cartella_id:
        raise Invalid("vmd_id", "la VMD non esiste o non appartiene a questa cartella")
    if vmd.state != VmdState.concluded:
        raise Invalid("vmd_id", "la VMD non è conclusa")
    outcomes = set(vmd.outcomes)
    if not outcomes & {VmdOutcome.project_proposed.value, VmdOutcome.waiting_list.value}:
        raise Invalid("vmd_id", "l'esito della VMD non prevede un progetto (serve 'proposta di progetto' o "
                                "'inserimento in lista d'attesa')")
    if VmdOutcome.waiting_list.value in outcomes and kind != PlanKind.temporary:
        raise Invalid("kind", "dopo l'inserimento in lista d'attesa il progetto è temporaneo/alternativo "
                              "(kind = temporary)")


# ---------------------------------------------------------------------------------------------------- create / edit
async def create_plan(session: AsyncSession, *, principal, data: CarePlanCreate) -> CarePlan:
    cartella = await policy.cartella_for_new_plan(session, principal, data.cartella_id)
    kind = PlanKind(data.kind)
    if data.vmd_id is not None:
        await _check_vmd(session, data.vmd_id, cartella.id, kind)
        existing = (await session.execute(
            sa.select(CarePlan.id).where(CarePlan.vmd_id == data.vmd_id,
                                         CarePlan.state.not_in([s.value for s in states.FINAL])).limit(1)
        )).scalar_one_or_none()
        if existing is not None:
            raise Conflict("Dalla VMD è già nato un progetto in corso.", existing_id=str(existing))
    await directory.require_operator(session, data.case_manager_id, cartella.ambito_id, field="case_manager_id")
    plan = CarePlan(ambito_id=cartella.ambito_id, person_id=cartella.person_id, cartella_id=cartella.id,
                    vmd_id=data.vmd_id, kind=kind, state=PlanState.draft, title=data.title, summary=data.summary,
                    case_manager_id=data.case_manager_id, signatories=[],
                    review_interval_days=data.review_interval_days or reviews.review_interval_default(),
                    created_by=principal.user_id, created_at=clock.now(), version=1)
    session.add(plan)
    await session.flush()
    await _set_case_manager(session, plan, data.case_manager_id, principal.user_id)
    await repository.save(session, plan, "created", actor_id=principal.user_id, bump=False)
    repository.audit_plan("create", plan)
    return plan


async def update_plan(session: AsyncSession, *, principal, plan_id: uuid.UUID, data: CarePlanUpdate) -> CarePlan:
    """Title and summary only while editable; case manager and review interval while not final."""
    plan = await policy.plan_for_write(session, principal, plan_id, data.version)
    fields = data.model_fields_set - {"version"}
    if not fields:
        return plan
    states.MACHINE.require(plan.state, states.OPEN, "edit")
    changes: dict[str, Any] = {}
    if fields & {"title", "summary"}:
        states.MACHINE.require(plan.state, states.EDITABLE, "edit")
        if "title" in fields:
            if data.title is None:
                raise Invalid("title", "il titolo è obbligatorio")
            changes["title"] = data.title
        if "summary" in fields:
            changes["summary"] = data.summary
    if "case_manager_id" in fields and data.case_manager_id != plan.case_manager_id:
        if data.case_manager_id is None:
            raise Invalid("case_manager_id", "il progetto ha sempre un case manager")
        await directory.require_operator(session, data.case_manager_id, plan.ambito_id, field="case_manager_id")
        changes["case_manager_id"] = data.case_manager_id
    if "review_interval_days" in fields and data.review_interval_days != plan.review_interval_days:
        if data.review_interval_days is None:
            raise Invalid("review_interval_days", "indicare l'intervallo tra le verifiche")
        changes["review_interval_days"] = data.review_interval_days
    if not changes:
        return plan
    for k, v in changes.items():
        setattr(plan, k, v)
    if "case_manager_id" in changes:
        await _set_case_manager(session, plan, plan.case_manager_id, principal.user_id)
        # The next beat run raises the reminder for the new case manager.
        await work_items.close_for_source(session, source_type=OBJECT, source_id=plan.id, kinds=[REVIEW_KIND])
    if "review_interval_days" in changes and plan.state in states.RUNNING | {PlanState.suspended}:
        _, _, held = await repository.children(session, plan.id)
        base = reviews.base_review_day(plan, held)
        if base is not None:
            plan.next_review_due = reviews.next_review_from(base, plan)
    await repository.save(session, plan, "updated", actor_id=principal.user_id, detail={"fields": sorted(changes)})
    repository.audit_plan("update", plan)
    return plan


# ---------------------------------------------------------------------------------------------------- lifecycle
async def propose(session: AsyncSession, *, principal, plan_id: uuid.UUID) -> CarePlan:
    plan = await policy.plan_for_write(session, principal, plan_id)
    target = states.MACHINE.next_state(plan.state, "propose")
    goals, ivs, _ = await repository.children(session, plan.id)
    errors = []
    if not goals:
        errors.append(("goals", "il progetto proposto ha almeno un obiettivo"))
    if not [i for i in ivs if i.status == InterventionStatus.planned]:
        errors.append(("interventions", "il progetto proposto ha almeno un intervento previsto"))
    if errors:
        raise Invalid.many(errors)
    plan.state = target
    await repository.save(session, plan, "proposed", actor_id=principal.user_id)
    repository.audit_plan("update", plan)
    return plan


async def back_to_draft(session: AsyncSession, *, principal, plan_id: uuid.UUID) -> CarePlan:
    plan = await policy.plan_for_write(session, principal, plan_id)
    plan.state = states.MACHINE.next_state(plan.state, "back_to_draft")
    await repository.save(session, plan, "back_to_draft", actor_id=principal.user_id)
    repository.audit_plan("update", plan)
    return plan


async def agree(session: AsyncSession, *, principal, plan_id: uuid.UUID, data: AgreeIn | None = None) -> CarePlan:
    """proposed → agreed ("compilato"): the consent of the person, or of a parent / tutore / AdS, is linked to the
    plan version agreed; the signatories are fixed. With no consent named, the person's one consent to care in
    force is taken (none or several: 422 on consent_id)."""
    plan = await policy.plan_for_write(session, principal, plan_id)
    target = states.MACHINE.next_state(plan.state, "agree")
    consent_id = data.consent_id if data is not None else None
    consent = (await signatories.valid_consent(session, plan, consent_id) if consent_id is not None
               else await signatories.the_care_consent(session, plan))
    signed_by = await signatories.signatories(session, plan, consent)
    plan.state = target
    plan.consent_id = consent.id
    plan.agreed_at = clock.now()
    plan.signatories = signed_by
    plan.agreed_version = plan.version + 1  # the version written below, with consent and signatories
    await repository.save(session, plan, "agreed", actor_id=principal.user_id,
                          detail={"consent_id": str(consent.id)})
    repository.audit_plan("update", plan, purpose=ConsentPurpose.care.value)
    return plan


async def activate(session: AsyncSession, *, principal, plan_id: uuid.UUID,
                   data: ActivateIn | None = None) -> CarePlan:
    """agreed → active ("attivato"): the first intervention(s) start; the review schedule begins. A plan never
    agreed, or whose consent is gone, is refused naming consent_id (409)."""
    plan = await policy.plan_for_write(session, principal, plan_id)
    if plan.state in (PlanState.draft, PlanState.proposed) or states.MACHINE.can(plan.state, "activate"):
        await signatories.consent_still_valid(session, plan, "activate")  # never agreed, or the consent is gone
    target = states.MACHINE.next_state(plan.state, "activate")
    today = clock.today_rome()
    _, ivs, _ = await repository.children(session, plan.id)
    ids = data.intervention_ids if data is not None else None
    if ids:
        by_id = {i.id: i for i in ivs}
        chosen = []
        for iid in dict.fromkeys(ids):
            iv = by_id.get(iid)
            if iv is None or iv.status != InterventionStatus.planned:
                raise Invalid("intervention_ids", f"{iid}: non è un intervento previsto di questo progetto")
            if iv.start_date is not None and iv.start_date > today:
                raise Invalid("intervention_ids", f"{iid}: l'intervento inizia il {iv.start_date:%d/%m/%Y}")
            chosen.append(iv)
    else:
        chosen = [i for i in ivs if i.status == InterventionStatus.planned
                  and (i.start_date is None or i.start_date <= today)]
        if not chosen:
            raise Invalid("intervention_ids", "nessun intervento previsto con inizio entro oggi: indicare gli "
                                              "interventi da avviare")
    for iv in chosen:
        await interventions.start(session, plan, iv, principal.user_id)
    plan.state = target
    plan.activated_at = clock.now()
    plan.next_review_due = reviews.next_review_from(today, plan)
    await repository.save(session, plan, "activated", actor_id=principal.user_id,
                          detail={"started_intervention_ids": [str(i.id) for i in chosen]})
    repository.audit_plan("update", plan, purpose=ConsentPurpose.care.value)
    return plan


async def _close(session: AsyncSession, plan: CarePlan, action: str, *, reason: str, outcome: str,
                 actor_id: uuid.UUID | None, history_action: str, reminders_done: bool = True) -> None:
    """complete / revoke / close_temporary: the open review takes the outcome, interventions and provider access
    end, the review reminders close (done by the actor, or cancelled when the system closes the plan)."""
    plan.state = states.MACHINE.next_state(plan.state, action)
    await reviews.finish_open_review(session, plan, outcome, reason, actor_id)
    await interventions.close_all(session, plan, actor_id)
    plan.closed_at = clock.now()
    plan.close_reason = reason[:500]
    await reviews.close_review_items(session, plan, actor_id if reminders_done else None)
    await repository.save(session, plan, history_action, actor_id=actor_id, detail={"reason": reason})
    repository.audit_plan("update", plan)


async def complete(session: AsyncSession, *, principal, plan_id: uuid.UUID, reason: str) -> CarePlan:
    plan = await policy.plan_for_write(session, principal, plan_id)
    await _close(session, plan, "complete", reason=reason, outcome="complete", actor_id=principal.user_id,
                 history_action="completed")
    return plan


async def revoke(session: AsyncSession, *, principal, plan_id: uuid.UUID, reason: str) -> CarePlan:
    plan = await policy.plan_for_write(session, principal, plan_id)
    await _close(session, plan, "revoke", reason=reason, outcome="revoke", actor_id=principal.user_id,
                 history_action="revoked")
    return plan


async def suspend(session: AsyncSession, *, principal, plan_id: uuid.UUID, reason: str) -> CarePlan:
    """Interventions and provider access are kept (a pause, e.g. a hospital stay); no review reminders meanwhile."""
    plan = await policy.plan_for_write(session, principal, plan_id)
    plan.state = states.MACHINE.next_state(plan.state, "suspend")
    await reviews.finish_open_review(session, plan, "suspend", reason, principal.user_id)
    await reviews.close_review_items(session, plan, principal.user_id)
    await repository.save(session, plan, "suspended", actor_id=principal.user_id, detail={"reason": reason})
    repository.audit_plan("update", plan)
    return plan


async def resume(session: AsyncSession, *, principal, plan_id: uuid.UUID, reason: str | None = None) -> CarePlan:
    plan = await policy.plan_for_write(session, principal, plan_id)
    target = states.MACHINE.next_state(plan.state, "resume")
    await signatories.consent_still_valid(session, plan, "resume")
    plan.state = target
    if plan.next_review_due is None:
        plan.next_review_due = reviews.next_review_from(clock.today_rome(), plan)
    await repository.save(session, plan, "resumed", actor_id=principal.user_id, detail={"reason": reason})
    repository.audit_plan("update", plan)
    return plan


async def close_temporary_plans_for(session: AsyncSession, *, person_id: uuid.UUID, reason: str,
                                    vmd_id: uuid.UUID | None = None, actor_id: uuid.UUID | None = None
                                    ) -> list[CarePlan]:
    """System path (no principal): the waiting-list entry of the person ended (RSA admission, withdrawal...), so
    their temporary/alternative plans close (→ completed; interventions end, provider access ends). With `vmd_id`
    only the plans born from that VMD. Returns the plans closed. Idempotent: closed plans are skipped."""
    stmt = (sa.select(CarePlan).where(CarePlan.person_id == person_id, CarePlan.kind == PlanKind.temporary.value,
                                      CarePlan.state.not_in([s.value for s in states.FINAL]))
            .order_by(CarePlan.id).with_for_update())
    if vmd_id is not None:
        stmt = stmt.where(CarePlan.vmd_id == vmd_id)
    plans = list((await session.execute(stmt)).scalars())
    for plan in plans:
        await _close(session, plan, "close_temporary", reason=reason, outcome="complete", actor_id=actor_id,
                     history_action="temporary_closed", reminders_done=False)
    return plans
