"""Read side of the progetto individualizzato: one plan with the view the principal gets, the plans of a cartella,
the stored versions, my reviews due; and what other contexts' views read (wired by the composition root)."""
from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.care_plan import policy, repository, states
from domain.care_plan.models import CarePlan, Intervention, InterventionStatus, PlanState
from domain.care_plan.repository import OBJECT, REVIEW_KIND, PlanBundle
from domain.kernel import history, work_items
from domain.kernel.errors import NotFound
from domain.registry import policy as registry_policy
from domain.security import audit, directory

MAX_PAGE = 200
VERSIONS_FULL_ONLY = "Le versioni del progetto sono riservate a chi ha in carico la persona."


async def get_plan(session: AsyncSession, *, principal, plan_id: uuid.UUID, audited: bool = True) -> PlanBundle:
    """The plan with goals, interventions and reviews, and the projection the principal gets. A minimal viewer
    with nothing of theirs in the plan gets 404. `audited=False` when the caller already recorded the access (the
    answer of a write)."""
    plan = await repository.plan_row(session, plan_id)
    projection = await policy.projection(session, principal, plan)
    goals, ivs, reviews = await repository.children(session, plan.id)
    cm = (await directory.user_cards(session, [plan.case_manager_id])).get(plan.case_manager_id)
    bundle = PlanBundle(plan=plan, goals=goals, interventions=ivs, reviews=reviews, projection=projection,
                        labels=await repository.intervention_labels(session, ivs),
                        case_manager_name=cm.display_name if cm else None)
    if projection != "full" and not policy.visible_to_minimal(principal, bundle):
        raise NotFound(repository.PLAN_NOT_FOUND)
    if audited:
        repository.audit_plan("read", plan)
    return bundle


async def _page(session: AsyncSession, principal, cartella_ids: list[uuid.UUID], projection: str,
                states: list[PlanState] | None, limit: int, cursor: uuid.UUID | None
                ) -> tuple[list[CarePlan], uuid.UUID | None]:
    """One page of the plans of some cartelle, oldest first (keyset on id); a minimal viewer only those with its
    interventions."""
    limit = max(1, min(int(limit), MAX_PAGE))
    stmt = sa.select(CarePlan).where(CarePlan.cartella_id.in_(cartella_ids))
    if states:
        stmt = stmt.where(CarePlan.state.in_([PlanState(x).value for x in states]))
    if projection != "full":
        stmt = stmt.where(policy.minimal_filter(principal))
    if cursor is not None:
        stmt = stmt.where(CarePlan.id > cursor)
    rows = list((await session.execute(stmt.order_by(CarePlan.id).limit(limit + 1))).scalars())
    return rows[:limit], rows[limit - 1].id if len(rows) > limit else None


async def list_for_cartella(session: AsyncSession, *, principal, cartella_id: uuid.UUID,
                            state: PlanState | None = None, limit: int = 50,
                            cursor: uuid.UUID | None = None) -> tuple[list[PlanBundle], uuid.UUID | None]:
    """The plans of a cartella, oldest first (keyset on id). Providers and MMG (minimal view) get only the plans
    with an intervention assigned to their organisation, without goals and summaries."""
    cartella = await registry_policy.cartella_in_scope(session, principal, cartella_id)
    access = await registry_policy.person_access(session, principal, cartella.person_id, cartella.ambito_id)
    projection = "full" if access.projection == "full" else "minimal"
    rows, nxt = await _page(session, principal, [cartella.id], projection, [state] if state is not None else None,
                            limit, cursor)
    audit.record(action="read", object_type=OBJECT, object_ids=[p.id for p in rows],
                 person_ids=[cartella.person_id], result_count=len(rows))
    return [PlanBundle(plan=p, goals=[], interventions=[], reviews=[], projection=projection) for p in rows], nxt


async def list_for_person(session: AsyncSession, *, principal, person_id: uuid.UUID,
                          states: list[PlanState] | None = None, limit: int = 50,
                          cursor: uuid.UUID | None = None) -> tuple[list[PlanBundle], uuid.UUID | None]:
    """The plans of the person's cartelle the principal reaches, each cartella checked as the plans of one
    cartella are (`list_for_cartella`: 403 consent_required where consent is missing), oldest first (keyset on id),
    each plan whole as `get_plan` shows it; a minimal viewer (provider, MMG) only those with its interventions. A
    person has a handful of cartelle; the page's children, labels and case managers are read at once."""
    reachable = sorted((await session.execute(
        registry_policy.readable_cartella_ids(principal, person_id=person_id))).scalars().all())
    if not reachable:  # as the plans of a cartella out of reach: 404, and the attempt in the person's access log
        audit.record(action="denied", object_type="person", object_ids=[person_id], person_ids=[person_id])
        raise NotFound("Persona non trovata o nessuna sua cartella raggiungibile.")
    cartelle_rows = [await registry_policy.cartella_in_scope(session, principal, cid) for cid in reachable]
    access = await registry_policy.person_access(session, principal, person_id, cartelle_rows[0].ambito_id)
    projection = "full" if access.projection == "full" else "minimal"
    rows, nxt = await _page(session, principal, [c.id for c in cartelle_rows], projection, states, limit, cursor)
    kids = await repository.children_of(session, [p.id for p in rows])
    labels = await repository.intervention_labels(session, [iv for p in rows for iv in kids[p.id][1]])
    cards = await directory.user_cards(session, list({p.case_manager_id for p in rows}))
    bundles = []
    for p in rows:
        goals, ivs, reviews = kids[p.id]
        cm = cards.get(p.case_manager_id)
        bundles.append(PlanBundle(plan=p, goals=goals, interventions=ivs, reviews=reviews, projection=projection,
                                  labels=labels, case_manager_name=cm.display_name if cm else None))
    audit.record(action="read", object_type=OBJECT, object_ids=[b.plan.id for b in bundles], person_ids=[person_id],
                 result_count=len(bundles))
    return bundles, nxt


async def list_versions(session: AsyncSession, *, principal, plan_id: uuid.UUID) -> list:
    """Every stored version of the plan (entity_history rows), oldest first: full view only."""
    plan = await repository.plan_row(session, plan_id)
    await policy.require_full(session, principal, plan, VERSIONS_FULL_ONLY)
    rows = await history.versions(session, entity_type=repository.ENTITY, entity_id=plan.id)
    repository.audit_plan("read", plan, result_count=len(rows))
    return rows


async def get_version(session: AsyncSession, *, principal, plan_id: uuid.UUID, version: int):
    """One stored version (an entity_history row): full view only; 404 when there is no such version."""
    plan = await repository.plan_row(session, plan_id)
    await policy.require_full(session, principal, plan, VERSIONS_FULL_ONLY)
    row = await repository.version_row(session, plan.id, version)
    if row is None:
        raise NotFound(f"Versione {version} del progetto non trovata.")
    repository.audit_plan("read", plan)
    return row


async def due_reviews(session: AsyncSession, *, principal, limit: int = 50,
                      cursor: str | None = None) -> tuple[list, str | None]:
    """My plans due for review: the open work items of kind care_plan.review in my queue, by due date."""
    items, nxt = await work_items.my_queue(session, principal=principal, kinds=[REVIEW_KIND], limit=limit,
                                           cursor=cursor)
    audit.record(action="read", object_type="work_item", object_ids=[w.id for w in items],
                 person_ids=[w.person_id for w in items], result_count=len(items))
    return items, nxt


# ---------------------------------------------------------------------------------------------------- for others
async def interventions_for_provider(session: AsyncSession, *, principal, person_id: uuid.UUID) -> list[dict[str, Any]]:
    """The person's plan interventions (planned or active) assigned to one of the principal's organisations: what
    a provider with the minimal projection sees beside the person's identity."""
    orgs = sorted(principal.orgs_for(), key=str)
    if not orgs:
        return []
    rows = (await session.execute(
        sa.select(Intervention, CarePlan.id.label("plan_id"))
        .join(CarePlan, CarePlan.id == Intervention.plan_id)
        .where(CarePlan.person_id == person_id, Intervention.provider_org_id.in_(orgs),
               Intervention.status.in_([s.value for s in states.INTERVENTION_OPEN]))
        .order_by(Intervention.start_date, Intervention.id)
    )).all()
    labels = await repository.intervention_labels(session, [iv for iv, _ in rows])
    return [{"id": iv.id, "plan_id": plan_id, "service_type": iv.service_type,
             "service_label": labels["service"].get(iv.service_type), "provider_org_id": iv.provider_org_id,
             "provider_name": labels["org"].get(iv.provider_org_id), "intensity_value": iv.intensity_value,
             "intensity_unit": iv.intensity_unit, "start_date": iv.start_date, "end_date": iv.end_date,
             "status": str(iv.status)} for iv, plan_id in rows]


def plans_naming_providers(org_ids: list[uuid.UUID]) -> sa.Select:
    """Ids of the plans with an intervention (not cancelled) assigned to one of `org_ids`: for contexts whose rows
    hang off a plan and open a minimal view to the providers it names (the discharge project)."""
    return sa.select(Intervention.plan_id).where(Intervention.provider_org_id.in_(org_ids),
                                                 Intervention.status != InterventionStatus.cancelled.value)


async def plan_cartella_id(session: AsyncSession, plan_id: uuid.UUID) -> uuid.UUID | None:
    """The cartella a plan belongs to (None when there is no such plan): the diary's check of an attachment whose
    owner is a care plan (registered by the composition root with domain.diary.policy.register_owner)."""
    return (await session.execute(sa.select(CarePlan.cartella_id).where(CarePlan.id == plan_id))).scalar_one_or_none()


async def plan_brief(session: AsyncSession, plan_id: uuid.UUID) -> dict[str, Any] | None:
    """Kind, state and person of a plan: what the waiting list checks of the temporary plan a listing needs."""
    p = await session.get(CarePlan, plan_id)
    if p is None:
        return None
    return {"id": p.id, "person_id": p.person_id, "kind": str(p.kind), "state": str(p.state),
            "agreed_at": p.agreed_at, "activated_at": p.activated_at, "ambito_id": p.ambito_id}


async def intervention_brief(session: AsyncSession, intervention_id: uuid.UUID) -> dict[str, Any] | None:
    """One intervention with what an activation order copies of it and of its plan (services context): person,
    cartella, case manager, plan state, service, provider, intensity, dates, funding source, status."""
    row = (await session.execute(
        sa.select(Intervention, CarePlan).join(CarePlan, CarePlan.id == Intervention.plan_id)
        .where(Intervention.id == intervention_id))).first()
    if row is None:
        return None
    iv, plan = row
    return {"id": iv.id, "plan_id": plan.id, "ambito_id": plan.ambito_id, "person_id": plan.person_id,
            "cartella_id": plan.cartella_id, "case_manager_id": plan.case_manager_id, "plan_state": str(plan.state),
            "plan_kind": str(plan.kind), "service_type": iv.service_type, "provider_org_id": iv.provider_org_id,
            "intensity_value": iv.intensity_value, "intensity_unit": iv.intensity_unit,
            "start_date": iv.start_date, "end_date": iv.end_date, "funding_source": iv.funding_source,
            "status": str(iv.status)}


def interventions_of_plans(plan_ids: list[uuid.UUID]) -> sa.Select:
    """(id, plan_id, service_type, provider_org_id, funding_source, intensity_value, intensity_unit, start_date,
    end_date, status) of the interventions of the plans: the cost of a plan (services context) lists every one."""
    return sa.select(Intervention.id, Intervention.plan_id, Intervention.service_type, Intervention.provider_org_id,
                     Intervention.funding_source,
                     Intervention.intensity_value, Intervention.intensity_unit, Intervention.start_date,
                     Intervention.end_date, Intervention.status).where(Intervention.plan_id.in_(plan_ids))


def plan_facts() -> sa.Subquery:
    """What this context publishes for indicators, one row per plan: id, person_id, cartella_id, state, agreed_at,
    activated_at, closed_at (a read-only projection; the services context checks a SAD case's plan with it)."""
    return sa.select(CarePlan.id, CarePlan.person_id, CarePlan.cartella_id, CarePlan.state, CarePlan.agreed_at,
                     CarePlan.activated_at, CarePlan.closed_at).subquery("plan_facts")
