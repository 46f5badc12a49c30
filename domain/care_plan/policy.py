"""Who may read and write a progetto individualizzato, and what each one sees of it.

Every plan hangs off a cartella: the registry decides whether the principal reaches it
(`registry.policy.cartella_in_scope`: 404 outside the scope, 403 consent_required) and which projection of the
person the principal gets (`registry.policy.person_access`). The projection decides the view of the plan:
- `full` (who has the person in charge): everything, and every write;
- `minimal` (providers and MMG): the plan's frame and the interventions `own_interventions` allows: a provider its
  own organisation's ones, the MMG all of them (the outcome of the plan of a patient they referred, not anyone's
  notes); no goals, summary, title, reviews, consent, signatories or intervention notes. A minimal viewer with
  nothing of theirs in a plan does not see it at all (404).
"""
from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.care_plan import repository, states
from domain.care_plan.models import PLAN_KIND_LABELS, PLAN_STATE_LABELS, CarePlan, Intervention, PlanState
from domain.care_plan.repository import PlanBundle
from domain.kernel import clock
from domain.kernel.errors import Conflict, Forbidden
from domain.registry import policy as registry_policy
from domain.registry.models import CartellaStatus
from domain.security.models import Role
from schemas.care_plan import GOAL_STATUS_LABELS, INTERVENTION_STATUS_LABELS, REVIEW_OUTCOME_LABELS

FULL_ONLY = "Il progetto si modifica solo da chi ha in carico la persona (visione completa)."


async def projection(session: AsyncSession, principal, plan: CarePlan) -> str:
    """The cartella must be in scope (404 / 403 consent_required otherwise); then `full` or `minimal`."""
    await registry_policy.cartella_in_scope(session, principal, plan.cartella_id, not_found=repository.PLAN_NOT_FOUND)
    access = await registry_policy.person_access(session, principal, plan.person_id, plan.ambito_id)
    return "full" if access.projection == "full" else "minimal"


async def require_full(session: AsyncSession, principal, plan: CarePlan, detail: str = FULL_ONLY) -> None:
    if await projection(session, principal, plan) != "full":
        raise Forbidden(detail)


async def cartella_for_new_plan(session: AsyncSession, principal, cartella_id: uuid.UUID):
    """The cartella a new plan opens on: in scope, with the person in the principal's charge, open."""
    cartella = await registry_policy.cartella_in_scope(session, principal, cartella_id)
    access = await registry_policy.person_access(session, principal, cartella.person_id, cartella.ambito_id)
    if access.projection != "full":
        raise Forbidden("Il progetto si apre solo da chi ha in carico la persona (visione completa).")
    if cartella.status != CartellaStatus.open:
        raise Conflict("La cartella è chiusa: non si può aprire un progetto.")
    return cartella


async def plan_for_write(session: AsyncSession, principal, plan_id: uuid.UUID,
                         expected_version: int | None = None) -> CarePlan:
    """The plan, locked, for a principal with the full view (403 otherwise); `expected_version` guards against
    a concurrent change (409 with current_version)."""
    plan = await repository.plan_row(session, plan_id)
    await require_full(session, principal, plan)
    plan = await repository.plan_row(session, plan_id, lock=True)
    if expected_version is not None and expected_version != plan.version:
        raise Conflict("Il progetto è stato modificato da un'altra operazione: ricaricare e riprovare.",
                       current_version=plan.version)
    return plan


def own_interventions(principal, interventions: list[Intervention]) -> list[Intervention]:
    """What a minimal viewer sees of the interventions: a provider its own, the MMG all of them."""
    if principal.has_role(Role.mmg):
        return list(interventions)
    orgs = principal.orgs_for()
    return [i for i in interventions if i.provider_org_id is not None and i.provider_org_id in orgs]


def visible_to_minimal(principal, bundle: PlanBundle) -> bool:
    return principal.has_role(Role.mmg) or bool(own_interventions(principal, bundle.interventions))


def minimal_filter(principal) -> sa.ColumnElement[bool]:
    """The plans of a cartella a minimal viewer gets in a list: those with an intervention of its organisations."""
    orgs = sorted(principal.orgs_for(), key=str)
    return sa.exists().where(Intervention.plan_id == CarePlan.id, Intervention.provider_org_id.in_(orgs))


# ---------------------------------------------------------------------------------------------------- views
def intervention_view(iv: Intervention, labels: dict[str, dict[Any, str]], *, with_notes: bool) -> dict[str, Any]:
    return {"id": iv.id, "service_type": iv.service_type,
            "service_label": labels.get("service", {}).get(iv.service_type), "provider_org_id": iv.provider_org_id,
            "provider_name": labels.get("org", {}).get(iv.provider_org_id) if iv.provider_org_id else None,
            "intensity_value": iv.intensity_value, "intensity_unit": iv.intensity_unit,
            "intensity_label": repository.intensity_label(iv.intensity_value, iv.intensity_unit),
            "start_date": iv.start_date, "end_date": iv.end_date, "funding_source": iv.funding_source,
            "funding_label": labels.get("funding", {}).get(iv.funding_source) if iv.funding_source else None,
            "status": iv.status, "status_label": INTERVENTION_STATUS_LABELS[str(iv.status)],
            "started_at": iv.started_at, "notes": iv.notes if with_notes else None, "position": iv.position}


def summary_view(b: PlanBundle) -> dict[str, Any]:
    p = b.plan
    return {"id": p.id, "cartella_id": p.cartella_id, "person_id": p.person_id, "kind": p.kind,
            "kind_label": PLAN_KIND_LABELS[str(p.kind)], "state": p.state,
            "state_label": PLAN_STATE_LABELS[str(p.state)], "title": p.title if b.projection == "full" else None,
            "case_manager_id": p.case_manager_id, "agreed_at": p.agreed_at, "activated_at": p.activated_at,
            "next_review_due": p.next_review_due if b.projection == "full" else None, "version": p.version,
            "view": b.projection}


def plan_view_for(principal, plan: PlanBundle) -> dict[str, Any]:
    """What the principal sees of a plan: everything (full view), or the minimal view described above."""
    b, p = plan, plan.plan
    if b.projection != "full":
        return {"view": "minimal", "id": p.id, "cartella_id": p.cartella_id, "person_id": p.person_id,
                "kind": p.kind, "kind_label": PLAN_KIND_LABELS[str(p.kind)], "state": p.state,
                "state_label": PLAN_STATE_LABELS[str(p.state)], "case_manager_id": p.case_manager_id,
                "case_manager_name": b.case_manager_name, "activated_at": p.activated_at, "version": p.version,
                "interventions": [intervention_view(i, b.labels, with_notes=False)
                                  for i in own_interventions(principal, b.interventions)]}
    today = clock.today_rome()
    return {
        **summary_view(b), "ambito_id": p.ambito_id, "vmd_id": p.vmd_id, "summary": p.summary,
        "case_manager_name": b.case_manager_name, "consent_id": p.consent_id, "agreed_version": p.agreed_version,
        "signatories": p.signatories or [], "review_interval_days": p.review_interval_days,
        "review_overdue": bool(p.state == PlanState.active and p.next_review_due and p.next_review_due < today),
        "closed_at": p.closed_at, "close_reason": p.close_reason, "created_by": p.created_by,
        "created_at": p.created_at, "allowed_actions": states.MACHINE.allowed_actions(p.state),
        "goals": [{"id": g.id, "description": g.description, "indicator": g.indicator, "target": g.target,
                   "due_date": g.due_date, "status": g.status,
                   "status_label": GOAL_STATUS_LABELS.get(g.status, g.status), "position": g.position}
                  for g in b.goals],
        "interventions": [intervention_view(i, b.labels, with_notes=True) for i in b.interventions],
        "reviews": [{"id": r.id, "due_date": r.due_date, "held_at": r.held_at, "outcome": r.outcome,
                     "outcome_label": REVIEW_OUTCOME_LABELS.get(r.outcome) if r.outcome else None,
                     "notes": r.notes, "by_user_id": r.by_user_id} for r in b.reviews],
    }
