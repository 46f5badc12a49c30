"""The rows of a progetto individualizzato and its versions, shared by the use-case modules of the context: load a
plan and its children, write a version (every change bumps `CarePlan.version` and stores a COMPLETE snapshot of
plan, goals, interventions and reviews in the kernel history, entity_type "care_plan"), audit, and the labels of
the catalogue codes an intervention carries."""
from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.care_plan.models import CarePlan, Goal, Intervention, Review
from domain.kernel import events, history
from domain.kernel.errors import NotFound
from domain.security import audit
from domain.territory import queries as territory

PLAN_NOT_FOUND = "Progetto non trovato."

ENTITY = "care_plan"  # entity_type of the versions in the kernel history
OBJECT = "care_plan"  # object_type of audit rows, source_type of work items and cartella assignments
REVIEW_KIND = "care_plan.review"
INTERVENTION_SOURCE = "care_plan_intervention"


@dataclass
class PlanBundle:
    plan: CarePlan
    goals: list[Goal]
    interventions: list[Intervention]
    reviews: list[Review]
    projection: str = "full"  # full | minimal
    labels: dict[str, dict[Any, str]] = field(default_factory=dict)
    case_manager_name: str | None = None


async def plan_row(session: AsyncSession, plan_id: uuid.UUID, *, lock: bool = False) -> CarePlan:
    """The plan row, no access check (404 when missing); `lock` takes the row lock and reloads it."""
    stmt = sa.select(CarePlan).where(CarePlan.id == plan_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    plan = (await session.execute(stmt)).scalar_one_or_none()
    if plan is None:
        raise NotFound(PLAN_NOT_FOUND)
    return plan


async def children(session: AsyncSession, plan_id: uuid.UUID) -> tuple[list[Goal], list[Intervention], list[Review]]:
    return (await children_of(session, [plan_id]))[plan_id]


Children = tuple[list[Goal], list[Intervention], list[Review]]


async def children_of(session: AsyncSession, plan_ids: list[uuid.UUID]) -> dict[uuid.UUID, Children]:
    """Goals, interventions and reviews of several plans in three queries, each plan's in its display order."""
    out: dict[uuid.UUID, Children] = {pid: ([], [], []) for pid in plan_ids}
    for slot, model, order in ((0, Goal, (Goal.position, Goal.id)),
                               (1, Intervention, (Intervention.position, Intervention.id)),
                               (2, Review, (Review.due_date, Review.id))):
        rows = (await session.execute(sa.select(model).where(model.plan_id.in_(plan_ids))
                                      .order_by(model.plan_id, *order))).scalars()
        for row in rows:
            out[row.plan_id][slot].append(row)
    return out


def snapshot_of(plan: CarePlan, goals: list[Goal], interventions: list[Intervention],
                reviews: list[Review]) -> dict[str, Any]:
    return {"plan": history.snapshot(plan), "goals": [history.snapshot(g) for g in goals],
            "interventions": [history.snapshot(i) for i in interventions],
            "reviews": [history.snapshot(r) for r in reviews]}


# The plan moves others follow (the outbox to ASST): activation and every way a plan closes. A resumed plan is
# not an activation (it was active before the suspension).
ACTIVATED_OR_CLOSED = frozenset({"activated", "completed", "revoked", "temporary_closed"})
CLOSED_STATES = frozenset({"completed", "revoked"})


async def save(session: AsyncSession, plan: CarePlan, action: str, *, actor_id: uuid.UUID | None,
               detail: dict[str, Any] | None = None, bump: bool = True) -> None:
    """Bump the version and record the complete snapshot of the plan at that version."""
    if bump:
        plan.version += 1
    session.add(plan)
    await session.flush()
    goals, ivs, reviews = await children(session, plan.id)
    data = snapshot_of(plan, goals, ivs, reviews)
    if detail:
        data["detail"] = detail
    await history.record(session, entity_type=ENTITY, entity_id=plan.id, version=plan.version, action=action,
                         data=data, actor_id=actor_id)
    await session.flush()
    if action in ACTIVATED_OR_CLOSED or (action == "review_recorded" and plan.state in CLOSED_STATES):
        await events.publish(session, "care_plan.state_changed", {
            "plan_id": str(plan.id), "person_id": str(plan.person_id), "state": str(plan.state),
            "version": plan.version, "action": action}, dedup_key=f"care_plan.state_changed:{plan.id}:{plan.version}")


async def version_row(session: AsyncSession, plan_id: uuid.UUID, version: int):
    """The stored version `version` of a plan (an entity_history row), or None."""
    rows = await history.versions(session, entity_type=ENTITY, entity_id=plan_id, after_version=version - 1,
                                  limit=1)
    return rows[0] if rows and rows[0].version == version else None


def audit_plan(action: str, plan: CarePlan, **kw: Any) -> None:
    audit.record(action=action, object_type=OBJECT, object_ids=[plan.id], person_ids=[plan.person_id], **kw)


# ---------------------------------------------------------------------------------------------------- labels
async def labels(session: AsyncSession, *, services: Iterable[str | None], orgs: Iterable[uuid.UUID | None],
                 funds: Iterable[str | None]) -> dict[str, dict[Any, str]]:
    """The labels of service types, provider organisations and funding sources, by code / id."""
    return {"service": {k: v.label for k, v in (await territory.service_types(session, services)).items()},
            "org": await territory.org_names(session, orgs),
            "funding": {k: v.label for k, v in (await territory.funding_sources(session, funds)).items()}}


async def intervention_labels(session: AsyncSession, interventions: list[Intervention]) -> dict[str, dict[Any, str]]:
    return await labels(session, services=(i.service_type for i in interventions),
                        orgs=(i.provider_org_id for i in interventions),
                        funds=(i.funding_source for i in interventions))


def intensity_label(value: float | None, unit: str | None) -> str | None:
    if value is None:
        return None
    text = f"{value:g}".replace(".", ",") if value != int(value) else str(int(value))
    return f"{text} {unit}".strip() if unit else text
