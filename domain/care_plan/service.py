"""Progetto individualizzato (care plan): create, edit goals and interventions, propose, agree with the person's
consent, activate, review, close. Every change bumps `CarePlan.version` and writes a COMPLETE snapshot (plan, goals,
interventions, reviews) to `entity_history` (entity_type "care_plan"), so any version can be read back and printed.

Access: every plan hangs off a cartella; `registry_policy.cartella_in_scope` decides whether the principal reaches it, and the
person projection decides the view: `full` (case workers) or `minimal` (providers and MMG: the interventions assigned
to their organisation only, see `plan_view_for`). Writes need the full view.

Services never commit; the request's unit of work does. Defaults (see docs/decisions/care_plan.md):
  CARE_PLAN_REVIEW_INTERVAL_DAYS  review interval when a plan does not set its own (180)
  CARE_PLAN_REVIEW_REMINDER_DAYS  the beat job raises a work item this many days before the review is due (14)
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.assessment.models import Vmd, VmdAssessor, VmdOutcome, VmdState
from domain.care_plan import states
from domain.care_plan.models import (
    PLAN_KIND_LABELS,
    PLAN_STATE_LABELS,
    CarePlan,
    Goal,
    Intervention,
    InterventionStatus,
    PlanKind,
    PlanState,
    Review,
)
from domain.kernel import clock, history, work_items
from domain.kernel.errors import Conflict, Forbidden, Invalid, NotFound
from domain.kernel.models import EntityHistory, WorkItem
from domain.kernel.settings import get_settings
from domain.registry import cartelle
from domain.registry.models import RELATION_LABELS, AssignmentReason, Cartella, CartellaAssignment, CartellaStatus, Person, PersonRelation
from domain.territory.models import FundingSource, Organisation, ServiceType
from domain.security import audit
from domain.registry import consent as consent_mod
from domain.security.models import AppUser, Role, RoleAssignment, UserKind
from domain.registry.models import Consent, ConsentPurpose, GrantorKind
from schemas.care_plan import (
    ActivateIn,
    AgreeIn,
    CarePlanCreate,
    CarePlanUpdate,
    GoalCreate,
    GoalUpdate,
    InterventionCreate,
    InterventionUpdate,
    ReviewOutcome,
    ReviewRecord,
)
from domain.registry import policy as registry_policy

ENTITY = "care_plan"
OBJECT = "care_plan"
REVIEW_KIND = "care_plan.review"
INTERVENTION_SOURCE = "care_plan_intervention"
MAX_PAGE = 200


# The flow itself is the legal basis of these assignments (art. 9.2.h GDPR: social and health care under a plan
# agreed with the person), so cross-organisation access through them does not need a separate sharing consent.
LEGAL_BASIS_PROVIDER = "Progetto individualizzato sottoscritto - erogazione dell'intervento (art. 9.2.h GDPR)"
LEGAL_BASIS_CASE_MANAGER = "LEPS PUA/VMD - presa in carico integrata, case manager del progetto (art. 9.2.h GDPR)"



# ---------------------------------------------------------------------------------------------------- settings
def review_interval_default() -> int:
    """Days between reviews when the plan does not set its own (setting `care_plan_review_interval_days`)."""
    return get_settings().care_plan_review_interval_days


def review_reminder_days() -> int:
    """A review due within this many days raises a work item (setting `care_plan_review_reminder_days`)."""
    return get_settings().care_plan_review_reminder_days


# ---------------------------------------------------------------------------------------------------- loading
@dataclass
class PlanBundle:
    plan: CarePlan
    goals: list[Goal]
    interventions: list[Intervention]
    reviews: list[Review]
    projection: str = "full"  # full | minimal
    labels: dict[str, dict[Any, str]] = field(default_factory=dict)
    case_manager_name: str | None = None


async def _children(session: AsyncSession, plan_id: uuid.UUID) -> tuple[list[Goal], list[Intervention], list[Review]]:
    goals = list((await session.execute(
        sa.select(Goal).where(Goal.plan_id == plan_id).order_by(Goal.position, Goal.id))).scalars())
    ivs = list((await session.execute(
        sa.select(Intervention).where(Intervention.plan_id == plan_id)
        .order_by(Intervention.position, Intervention.id))).scalars())
    reviews = list((await session.execute(
        sa.select(Review).where(Review.plan_id == plan_id).order_by(Review.due_date, Review.id))).scalars())
    return goals, ivs, reviews


async def _projection(session: AsyncSession, principal, plan: CarePlan) -> str:
    """The cartella must be in scope (404 / 403 consent_required otherwise); then full or minimal."""
    await registry_policy.cartella_in_scope(session, principal, plan.cartella_id)
    access = await registry_policy.person_access(session, principal, plan.person_id, plan.ambito_id)
    return "full" if access.projection == "full" else "minimal"


async def _plan_row(session: AsyncSession, plan_id: uuid.UUID, *, lock: bool = False) -> CarePlan:
    stmt = sa.select(CarePlan).where(CarePlan.id == plan_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    plan = (await session.execute(stmt)).scalar_one_or_none()
    if plan is None:
        raise NotFound("Progetto non trovato.")
    return plan


async def _for_write(session: AsyncSession, principal, plan_id: uuid.UUID,
                     expected_version: int | None = None) -> CarePlan:
    plan = await _plan_row(session, plan_id)
    projection = await _projection(session, principal, plan)
    if projection != "full":
        raise Forbidden("Il progetto si modifica solo da chi ha in carico la persona (visione completa).")
    plan = await _plan_row(session, plan_id, lock=True)
    if expected_version is not None and expected_version != plan.version:
        raise Conflict("Il progetto è stato modificato da un'altra operazione: ricaricare e riprovare.",
                       current_version=plan.version)
    return plan


async def _labels(session: AsyncSession, interventions: list[Intervention]) -> dict[str, dict[Any, str]]:
    services = {i.service_type for i in interventions}
    orgs = {i.provider_org_id for i in interventions if i.provider_org_id}
    funds = {i.funding_source for i in interventions if i.funding_source}
    out: dict[str, dict[Any, str]] = {"service": {}, "org": {}, "funding": {}}
    if services:
        out["service"] = dict((await session.execute(
            sa.select(ServiceType.code, ServiceType.label).where(ServiceType.code.in_(services)))).all())
    if orgs:
        out["org"] = dict((await session.execute(
            sa.select(Organisation.id, Organisation.name).where(Organisation.id.in_(orgs)))).all())
    if funds:
        out["funding"] = dict((await session.execute(
            sa.select(FundingSource.code, FundingSource.label).where(FundingSource.code.in_(funds)))).all())
    return out


async def _bundle(session: AsyncSession, plan: CarePlan, projection: str = "full") -> PlanBundle:
    goals, ivs, reviews = await _children(session, plan.id)
    cm = (await session.execute(sa.select(AppUser.display_name).where(AppUser.id == plan.case_manager_id))
          ).scalar_one_or_none()
    return PlanBundle(plan=plan, goals=goals, interventions=ivs, reviews=reviews, projection=projection,
                      labels=await _labels(session, ivs), case_manager_name=cm)


# ---------------------------------------------------------------------------------------------------- history
def snapshot_of(plan: CarePlan, goals: list[Goal], interventions: list[Intervention],
                reviews: list[Review]) -> dict[str, Any]:
    return {"plan": history.snapshot(plan), "goals": [history.snapshot(g) for g in goals],
            "interventions": [history.snapshot(i) for i in interventions],
            "reviews": [history.snapshot(r) for r in reviews]}


async def _save(session: AsyncSession, plan: CarePlan, action: str, *, actor_id: uuid.UUID | None,
                detail: dict[str, Any] | None = None, bump: bool = True) -> None:
    """Bump the version and record the complete snapshot of the plan at that version."""
    if bump:
        plan.version += 1
    session.add(plan)
    await session.flush()
    goals, ivs, reviews = await _children(session, plan.id)
    data = snapshot_of(plan, goals, ivs, reviews)
    if detail:
        data["detail"] = detail
    await history.record(session, entity_type=ENTITY, entity_id=plan.id, version=plan.version, action=action,
                         data=data, actor_id=actor_id)
    await session.flush()


def _audit(action: str, plan: CarePlan, **kw: Any) -> None:
    audit.record(action=action, object_type=OBJECT, object_ids=[plan.id], person_ids=[plan.person_id], **kw)


# ---------------------------------------------------------------------------------------------------- checks
async def _check_case_manager(session: AsyncSession, user_id: uuid.UUID, ambito_id: uuid.UUID) -> AppUser:
    today = clock.today_rome()
    user = (await session.execute(
        sa.select(AppUser)
        .join(RoleAssignment, RoleAssignment.user_id == AppUser.id)
        .join(Organisation, Organisation.id == RoleAssignment.organisation_id)
        .where(AppUser.id == user_id, AppUser.active.is_(True), AppUser.kind == UserKind.person,
               AppUser.ambito_id == ambito_id,
               sa.or_(Organisation.ambito_id == ambito_id, Organisation.id == ambito_id),
               RoleAssignment.valid_from <= today,
               sa.or_(RoleAssignment.valid_to.is_(None), RoleAssignment.valid_to >= today))
        .limit(1)
    )).scalar_one_or_none()
    if user is None:
        raise Invalid("case_manager_id", "non è un operatore attivo con un ruolo nell'Ambito")
    return user


async def _set_case_manager(session: AsyncSession, plan: CarePlan, user_id: uuid.UUID, actor_id: uuid.UUID) -> None:
    """Writes the case_manager assignment on the cartella (the previous case manager's ends there)."""
    a = await cartelle.assign(session, cartella_id=plan.cartella_id, reason=AssignmentReason.case_manager,
                              user_id=user_id, source_type=OBJECT, source_id=plan.id, actor_id=actor_id)
    if a.legal_basis is None:
        a.legal_basis = LEGAL_BASIS_CASE_MANAGER
        session.add(a)


async def _check_vmd(session: AsyncSession, vmd_id: uuid.UUID, cartella: Cartella, kind: PlanKind) -> Vmd:
    vmd = await session.get(Vmd, vmd_id)
    if vmd is None or vmd.cartella_id != cartella.id:
        raise Invalid("vmd_id", "la VMD non esiste o non appartiene a questa cartella")
    if vmd.state != VmdState.concluded:
        raise Invalid("vmd_id", "la VMD non è conclusa")
    if vmd.outcome not in (VmdOutcome.project_proposed, VmdOutcome.waiting_list):
        raise Invalid("vmd_id", "l'esito della VMD non prevede un progetto (serve 'proposta di progetto' o "
                                "'inserimento in lista d'attesa')")
    if vmd.outcome == VmdOutcome.waiting_list and kind != PlanKind.temporary:
        raise Invalid("kind", "dopo l'inserimento in lista d'attesa il progetto è temporaneo/alternativo "
                              "(kind = temporary)")
    return vmd


async def _check_intervention(session: AsyncSession, plan: CarePlan, values: dict[str, Any]) -> None:
    errors: list[tuple[str, str]] = []
    st = await session.get(ServiceType, values["service_type"])
    if st is None or not st.active:
        errors.append(("service_type", "tipo di servizio non presente nel catalogo o non attivo"))
    if values.get("provider_org_id") is not None:
        o = await session.get(Organisation, values["provider_org_id"])
        if o is None or not o.active or (o.ambito_id != plan.ambito_id and o.id != plan.ambito_id):
            errors.append(("provider_org_id", "ente erogatore non trovato tra le organizzazioni attive dell'Ambito"))
    if values.get("funding_source") is not None:
        fs = await session.get(FundingSource, values["funding_source"])
        if fs is None or not fs.active:
            errors.append(("funding_source", "fonte di finanziamento non presente nel catalogo o non attiva"))
    if (values.get("intensity_value") is None) != (values.get("intensity_unit") is None):
        errors.append(("intensity_unit" if values.get("intensity_value") is not None else "intensity_value",
                       "indicare insieme valore e unità dell'intensità (es. 6 ore/settimana)"))
    start, end = values.get("start_date"), values.get("end_date")
    if start is not None and end is not None and end < start:
        errors.append(("end_date", "la data di fine precede la data di inizio"))
    if errors:
        raise Invalid.many(errors)


# ---------------------------------------------------------------------------------------------------- create / edit
async def create_plan(*, session: AsyncSession, principal, data: CarePlanCreate) -> CarePlan:
    cartella = await registry_policy.cartella_in_scope(session, principal, data.cartella_id)
    access = await registry_policy.person_access(session, principal, cartella.person_id, cartella.ambito_id)
    if access.projection != "full":
        raise Forbidden("Il progetto si apre solo da chi ha in carico la persona (visione completa).")
    if cartella.status != CartellaStatus.open:
        raise Conflict("La cartella è chiusa: non si può aprire un progetto.")
    kind = PlanKind(data.kind)
    if data.vmd_id is not None:
        await _check_vmd(session, data.vmd_id, cartella, kind)
        existing = (await session.execute(
            sa.select(CarePlan.id).where(CarePlan.vmd_id == data.vmd_id,
                                         CarePlan.state.not_in([s.value for s in states.FINAL])).limit(1)
        )).scalar_one_or_none()
        if existing is not None:
            raise Conflict("Dalla VMD è già nato un progetto in corso.", existing_id=str(existing))
    await _check_case_manager(session, data.case_manager_id, cartella.ambito_id)
    plan = CarePlan(ambito_id=cartella.ambito_id, person_id=cartella.person_id, cartella_id=cartella.id,
                    vmd_id=data.vmd_id, kind=kind, state=PlanState.draft, title=data.title, summary=data.summary,
                    case_manager_id=data.case_manager_id, signatories=[],
                    review_interval_days=data.review_interval_days or review_interval_default(),
                    created_by=principal.user_id, created_at=clock.now(), version=1)
    session.add(plan)
    await session.flush()
    await _set_case_manager(session, plan, data.case_manager_id, principal.user_id)
    await _save(session, plan, "created", actor_id=principal.user_id, bump=False)
    _audit("create", plan)
    return plan


def _base_review_day(plan: CarePlan, reviews: list[Review]) -> date | None:
    held = [r.held_at for r in reviews if r.held_at is not None]
    if held:
        return max(held).astimezone(clock.ROME).date()
    if plan.activated_at is not None:
        return plan.activated_at.astimezone(clock.ROME).date()
    return None


async def update_plan(*, session: AsyncSession, principal, plan_id: uuid.UUID, data: CarePlanUpdate) -> CarePlan:
    """Title and summary only while editable; case manager and review interval while not final."""
    plan = await _for_write(session, principal, plan_id, data.version)
    fields = data.model_fields_set - {"version"}
    if not fields:
        return plan
    states.ensure_not_final(plan.state)
    changes: dict[str, Any] = {}
    if fields & {"title", "summary"}:
        states.ensure_editable(plan.state)
        if "title" in fields:
            if data.title is None:
                raise Invalid("title", "il titolo è obbligatorio")
            changes["title"] = data.title
        if "summary" in fields:
            changes["summary"] = data.summary
    if "case_manager_id" in fields and data.case_manager_id != plan.case_manager_id:
        if data.case_manager_id is None:
            raise Invalid("case_manager_id", "il progetto ha sempre un case manager")
        await _check_case_manager(session, data.case_manager_id, plan.ambito_id)
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
        _, _, reviews = await _children(session, plan.id)
        base = _base_review_day(plan, reviews)
        if base is not None:
            plan.next_review_due = base + timedelta(days=plan.review_interval_days)
    await _save(session, plan, "updated", actor_id=principal.user_id,
                detail={"fields": sorted(changes)})
    _audit("update", plan)
    return plan


async def add_goal(*, session: AsyncSession, principal, plan_id: uuid.UUID, data: GoalCreate) -> Goal:
    plan = await _for_write(session, principal, plan_id)
    states.ensure_editable(plan.state)
    count = (await session.execute(sa.select(sa.func.count()).select_from(Goal).where(Goal.plan_id == plan.id))
             ).scalar_one()
    goal = Goal(plan_id=plan.id, description=data.description, indicator=data.indicator, target=data.target,
                due_date=data.due_date, position=count)
    session.add(goal)
    await session.flush()
    await _save(session, plan, "goal_added", actor_id=principal.user_id, detail={"goal_id": str(goal.id)})
    _audit("update", plan)
    return goal


async def _goal(session: AsyncSession, plan: CarePlan, goal_id: uuid.UUID) -> Goal:
    goal = await session.get(Goal, goal_id)
    if goal is None or goal.plan_id != plan.id:
        raise NotFound("Obiettivo non trovato.")
    return goal


async def update_goal(*, session: AsyncSession, principal, plan_id: uuid.UUID, goal_id: uuid.UUID,
                      data: GoalUpdate) -> Goal:
    plan = await _for_write(session, principal, plan_id)
    states.ensure_editable(plan.state)
    goal = await _goal(session, plan, goal_id)
    fields = data.model_fields_set
    for name in ("description", "indicator", "target", "status"):
        if name in fields and getattr(data, name) is None:
            raise Invalid(name, "campo obbligatorio: non può essere vuoto")
    for name in fields:
        value = getattr(data, name)
        setattr(goal, name, value.value if hasattr(value, "value") else value)
    session.add(goal)
    await session.flush()
    await _save(session, plan, "goal_updated", actor_id=principal.user_id,
                detail={"goal_id": str(goal.id), "fields": sorted(fields)})
    _audit("update", plan)
    return goal


async def add_intervention(*, session: AsyncSession, principal, plan_id: uuid.UUID,
                           data: InterventionCreate) -> Intervention:
    plan = await _for_write(session, principal, plan_id)
    states.ensure_editable(plan.state)
    values = data.model_dump()
    await _check_intervention(session, plan, values)
    count = (await session.execute(sa.select(sa.func.count()).select_from(Intervention)
                                   .where(Intervention.plan_id == plan.id))).scalar_one()
    iv = Intervention(plan_id=plan.id, status=InterventionStatus.planned, position=count, **values)
    session.add(iv)
    await session.flush()
    await _save(session, plan, "intervention_added", actor_id=principal.user_id,
                detail={"intervention_id": str(iv.id)})
    _audit("update", plan)
    return iv


async def _intervention(session: AsyncSession, plan: CarePlan, intervention_id: uuid.UUID) -> Intervention:
    iv = (await session.execute(sa.select(Intervention).where(Intervention.id == intervention_id)
                                .with_for_update())).scalar_one_or_none()
    if iv is None or iv.plan_id != plan.id:
        raise NotFound("Intervento non trovato.")
    return iv


async def update_intervention(*, session: AsyncSession, principal, plan_id: uuid.UUID, intervention_id: uuid.UUID,
                              data: InterventionUpdate) -> Intervention:
    plan = await _for_write(session, principal, plan_id)
    states.ensure_editable(plan.state)
    iv = await _intervention(session, plan, intervention_id)
    if iv.status in (InterventionStatus.ended, InterventionStatus.cancelled):
        raise Conflict("L'intervento è chiuso: aggiungerne uno nuovo.", intervention_status=str(iv.status))
    fields = data.model_fields_set
    if "service_type" in fields and data.service_type is None:
        raise Invalid("service_type", "campo obbligatorio: non può essere vuoto")
    if iv.status == InterventionStatus.active:
        for name in ("service_type", "provider_org_id", "start_date"):
            if name in fields and getattr(data, name) != getattr(iv, name):
                raise Conflict("L'intervento è in corso: servizio, ente erogatore e data di inizio non si cambiano; "
                               "concluderlo e aggiungerne uno nuovo.", field=name)
    values = {n: getattr(iv, n) for n in ("service_type", "provider_org_id", "intensity_value", "intensity_unit",
                                          "start_date", "end_date", "funding_source", "notes")}
    values.update({n: getattr(data, n) for n in fields})
    await _check_intervention(session, plan, values)
    for n in fields:
        setattr(iv, n, values[n])
    session.add(iv)
    await session.flush()
    await _save(session, plan, "intervention_updated", actor_id=principal.user_id,
                detail={"intervention_id": str(iv.id), "fields": sorted(fields)})
    _audit("update", plan)
    return iv


# ---------------------------------------------------------------------------------------------------- provider access
def _active_assignment(at: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(CartellaAssignment.valid_from <= at,
                   sa.or_(CartellaAssignment.valid_to.is_(None), CartellaAssignment.valid_to > at))


async def _start(session: AsyncSession, plan: CarePlan, iv: Intervention, actor_id: uuid.UUID) -> None:
    """Start an intervention; a provider organisation gets a cartella assignment (with the plan as legal basis),
    so its operators reach the case through the minimal projection."""
    today = clock.today_rome()
    iv.status = InterventionStatus.active
    iv.started_at = clock.now()
    if iv.start_date is None:
        iv.start_date = today
    session.add(iv)
    if iv.provider_org_id is not None:
        a = await cartelle.assign(session, cartella_id=plan.cartella_id, reason=AssignmentReason.provider,
                                  organisation_id=iv.provider_org_id, source_type=INTERVENTION_SOURCE,
                                  source_id=iv.id, actor_id=actor_id)
        if a.legal_basis != LEGAL_BASIS_PROVIDER:
            a.legal_basis = LEGAL_BASIS_PROVIDER
            session.add(a)
    await session.flush()


async def _end_provider_access(session: AsyncSession, iv: Intervention, actor_id: uuid.UUID | None) -> int:
    rows = list((await session.execute(
        sa.select(CartellaAssignment.id).where(CartellaAssignment.source_type == INTERVENTION_SOURCE,
                                               CartellaAssignment.source_id == iv.id,
                                               _active_assignment(clock.now()))
    )).scalars())
    for aid in rows:
        await cartelle.end_assignment(session, assignment_id=aid, actor_id=actor_id)
    return len(rows)


async def _close_intervention(session: AsyncSession, iv: Intervention, status: InterventionStatus,
                              actor_id: uuid.UUID | None) -> None:
    today = clock.today_rome()
    was_active = iv.status == InterventionStatus.active
    iv.status = status
    if status == InterventionStatus.ended and (iv.end_date is None or iv.end_date > today):
        iv.end_date = max(today, iv.start_date) if iv.start_date else today
    session.add(iv)
    if was_active:
        await _end_provider_access(session, iv, actor_id)
    await session.flush()


async def _close_all_interventions(session: AsyncSession, plan: CarePlan, actor_id: uuid.UUID | None) -> None:
    """Active interventions end, planned ones are cancelled (and provider access ends)."""
    _, ivs, _ = await _children(session, plan.id)
    for iv in ivs:
        if iv.status == InterventionStatus.active:
            await _close_intervention(session, iv, InterventionStatus.ended, actor_id)
        elif iv.status == InterventionStatus.planned:
            await _close_intervention(session, iv, InterventionStatus.cancelled, actor_id)


async def start_intervention(*, session: AsyncSession, principal, plan_id: uuid.UUID,
                             intervention_id: uuid.UUID) -> Intervention:
    plan = await _for_write(session, principal, plan_id)
    states.ensure_running(plan.state, "start_intervention")
    iv = await _intervention(session, plan, intervention_id)
    if iv.status != InterventionStatus.planned:
        raise Conflict("Si avvia solo un intervento previsto.", intervention_status=str(iv.status))
    if iv.start_date is not None and iv.start_date > clock.today_rome():
        raise Invalid("start_date", f"l'intervento inizia il {iv.start_date:%d/%m/%Y}")
    await _consent_still_valid(session, plan, "start_intervention")
    await _start(session, plan, iv, principal.user_id)
    await _save(session, plan, "intervention_started", actor_id=principal.user_id,
                detail={"intervention_id": str(iv.id)})
    _audit("update", plan)
    return iv


async def end_intervention(*, session: AsyncSession, principal, plan_id: uuid.UUID,
                           intervention_id: uuid.UUID) -> Intervention:
    plan = await _for_write(session, principal, plan_id)
    states.ensure_running(plan.state, "end_intervention")
    iv = await _intervention(session, plan, intervention_id)
    if iv.status != InterventionStatus.active:
        raise Conflict("Si conclude solo un intervento in corso.", intervention_status=str(iv.status))
    await _close_intervention(session, iv, InterventionStatus.ended, principal.user_id)
    await _save(session, plan, "intervention_ended", actor_id=principal.user_id,
                detail={"intervention_id": str(iv.id)})
    _audit("update", plan)
    return iv


async def cancel_intervention(*, session: AsyncSession, principal, plan_id: uuid.UUID,
                              intervention_id: uuid.UUID) -> Intervention:
    plan = await _for_write(session, principal, plan_id)
    states.ensure_not_final(plan.state, "edit")
    iv = await _intervention(session, plan, intervention_id)
    if iv.status not in (InterventionStatus.planned, InterventionStatus.active):
        raise Conflict("L'intervento è già chiuso.", intervention_status=str(iv.status))
    await _close_intervention(session, iv, InterventionStatus.cancelled, principal.user_id)
    await _save(session, plan, "intervention_cancelled", actor_id=principal.user_id,
                detail={"intervention_id": str(iv.id)})
    _audit("update", plan)
    return iv


# ---------------------------------------------------------------------------------------------------- lifecycle
async def propose(*, session: AsyncSession, principal, plan_id: uuid.UUID) -> CarePlan:
    plan = await _for_write(session, principal, plan_id)
    target = states.next_state(plan.state, "propose")
    goals, ivs, _ = await _children(session, plan.id)
    errors = []
    if not goals:
        errors.append(("goals", "il progetto proposto ha almeno un obiettivo"))
    if not [i for i in ivs if i.status == InterventionStatus.planned]:
        errors.append(("interventions", "il progetto proposto ha almeno un intervento previsto"))
    if errors:
        raise Invalid.many(errors)
    plan.state = target
    await _save(session, plan, "proposed", actor_id=principal.user_id)
    _audit("update", plan)
    return plan


async def back_to_draft(*, session: AsyncSession, principal, plan_id: uuid.UUID) -> CarePlan:
    plan = await _for_write(session, principal, plan_id)
    plan.state = states.next_state(plan.state, "back_to_draft")
    await _save(session, plan, "back_to_draft", actor_id=principal.user_id)
    _audit("update", plan)
    return plan


def _person_name(p: Person) -> str:
    return f"{p.given_name} {p.surname}".strip()


async def _grantor_signatory(session: AsyncSession, plan: CarePlan, consent: Consent) -> dict[str, Any]:
    person = await session.get(Person, plan.person_id)
    if consent.grantor_kind == GrantorKind.self:
        return {"role": "person", "role_label": "Persona interessata", "name": _person_name(person)}
    rel = await session.get(PersonRelation, consent.grantor_relation_id) if consent.grantor_relation_id else None
    if consent_mod.representative_problem(rel, person_id=plan.person_id, grantor_kind=consent.grantor_kind,
                                          on=clock.today_rome()):
        raise Invalid("consent_id", "chi ha prestato il consenso non è più il rappresentante legale in vigore")
    name = None
    if rel.related_person_id is not None:
        rp = await session.get(Person, rel.related_person_id)
        name = _person_name(rp) if rp else None
    if not name:
        name = f"{rel.given_name or ''} {rel.surname or ''}".strip() or "—"
    return {"role": "representative", "role_label": RELATION_LABELS[str(rel.kind)], "name": name,
            "grantor_kind": str(consent.grantor_kind)}


async def _signatories(session: AsyncSession, plan: CarePlan, consent: Consent) -> list[dict[str, Any]]:
    out = [await _grantor_signatory(session, plan, consent)]
    cm = await session.get(AppUser, plan.case_manager_id)
    out.append({"role": "case_manager", "role_label": "Case manager", "name": cm.display_name,
                "user_id": str(cm.id)})
    if plan.vmd_id is not None:
        rows = (await session.execute(
            sa.select(AppUser.id, AppUser.display_name, AppUser.profession, Organisation.name)
            .join(VmdAssessor, VmdAssessor.user_id == AppUser.id)
            .join(Organisation, Organisation.id == VmdAssessor.organisation_id)
            .where(VmdAssessor.vmd_id == plan.vmd_id).order_by(VmdAssessor.added_at, VmdAssessor.id)
        )).all()
        for uid, name, profession, org_name in rows:
            if uid == cm.id:
                continue
            label = "Componente dell'équipe di valutazione (VMD)"
            if profession:
                label = f"{label} - {profession}"
            out.append({"role": "equipe", "role_label": label, "name": name, "user_id": str(uid),
                        "organisation": org_name})
    return out


async def _valid_consent(session: AsyncSession, plan: CarePlan, consent_id: uuid.UUID) -> Consent:
    consent = await session.get(Consent, consent_id)
    if consent is None or consent.person_id != plan.person_id:
        raise Invalid("consent_id", "consenso non trovato per la persona del progetto")
    if str(consent.purpose) != ConsentPurpose.care.value:
        raise Invalid("consent_id", "il consenso non è per la finalità «Presa in carico e cura» (care)")
    if not consent_mod.is_active(consent):
        raise Invalid("consent_id", "il consenso è revocato o non in vigore")
    return consent


async def agree(*, session: AsyncSession, principal, plan_id: uuid.UUID, data: AgreeIn) -> CarePlan:
    """proposed → agreed ("compilato"): the consent of the person, or of a parent / tutore / AdS, is linked to the
    plan version agreed; the signatories are fixed."""
    plan = await _for_write(session, principal, plan_id)
    target = states.next_state(plan.state, "agree")
    consent = await _valid_consent(session, plan, data.consent_id)
    signatories = await _signatories(session, plan, consent)
    plan.state = target
    plan.consent_id = consent.id
    plan.agreed_at = clock.now()
    plan.signatories = signatories
    plan.agreed_version = plan.version + 1  # the version written below, with consent and signatories
    await _save(session, plan, "agreed", actor_id=principal.user_id, detail={"consent_id": str(consent.id)})
    _audit("update", plan, purpose=ConsentPurpose.care.value)
    return plan


async def _consent_still_valid(session: AsyncSession, plan: CarePlan, action: str) -> Consent:
    """A plan runs on its consent: activating (or starting an intervention) without a valid one is refused (409),
    naming consent_id."""
    if plan.consent_id is None:
        reason = "il progetto non è stato sottoscritto: manca il consenso della persona o del rappresentante legale"
        raise Conflict(f"consent_id: {reason}.", errors=[{"field": "consent_id", "reason": reason}],
                       state=str(plan.state), action=action)
    consent = await session.get(Consent, plan.consent_id)
    if consent is None or not consent_mod.is_active(consent):
        reason = "il consenso collegato al progetto è stato revocato o non è più in vigore"
        raise Conflict(f"consent_id: {reason}.", errors=[{"field": "consent_id", "reason": reason}],
                       state=str(plan.state), action=action, consent_id=str(plan.consent_id))
    return consent


async def activate(*, session: AsyncSession, principal, plan_id: uuid.UUID,
                   data: ActivateIn | None = None) -> CarePlan:
    """agreed → active ("attivato"): the first intervention(s) start; the review schedule begins."""
    plan = await _for_write(session, principal, plan_id)
    if plan.state in (PlanState.draft, PlanState.proposed):
        await _consent_still_valid(session, plan, "activate")  # names consent_id: never agreed
    target = states.next_state(plan.state, "activate")
    await _consent_still_valid(session, plan, "activate")
    today = clock.today_rome()
    _, ivs, _ = await _children(session, plan.id)
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
        await _start(session, plan, iv, principal.user_id)
    plan.state = target
    plan.activated_at = clock.now()
    plan.next_review_due = today + timedelta(days=plan.review_interval_days)
    await _save(session, plan, "activated", actor_id=principal.user_id,
                detail={"started_intervention_ids": [str(i.id) for i in chosen]})
    _audit("update", plan, purpose=ConsentPurpose.care.value)
    return plan


# ---------------------------------------------------------------------------------------------------- reviews
async def _open_review(session: AsyncSession, plan: CarePlan) -> Review | None:
    return (await session.execute(
        sa.select(Review).where(Review.plan_id == plan.id, Review.held_at.is_(None))
        .order_by(Review.due_date.desc(), Review.id.desc()).limit(1).with_for_update()
    )).scalar_one_or_none()


async def _close_review_items(session: AsyncSession, plan: CarePlan, actor_id: uuid.UUID | None) -> None:
    """The review reminders of the plan are done by the actor who held the review (else cancelled)."""
    await work_items.close_for_source(session, source_type=OBJECT, source_id=plan.id, kinds=[REVIEW_KIND],
                                      done=actor_id is not None, actor_id=actor_id)


async def start_review(*, session: AsyncSession, principal, plan_id: uuid.UUID) -> CarePlan:
    plan = await _for_write(session, principal, plan_id)
    plan.state = states.next_state(plan.state, "start_review")
    review = Review(plan_id=plan.id, due_date=plan.next_review_due or clock.today_rome(), data={})
    session.add(review)
    await session.flush()
    await _save(session, plan, "review_started", actor_id=principal.user_id, detail={"review_id": str(review.id)})
    _audit("update", plan)
    return plan


async def record_review(*, session: AsyncSession, principal, plan_id: uuid.UUID, data: ReviewRecord) -> CarePlan:
    """The review's outcome: continue / modify → active (next review = today + interval); complete → completed;
    suspend → suspended."""
    plan = await _for_write(session, principal, plan_id)
    outcome = ReviewOutcome(data.outcome)
    action = {ReviewOutcome.continue_: "end_review", ReviewOutcome.modify: "end_review",
              ReviewOutcome.complete: "complete", ReviewOutcome.suspend: "suspend"}[outcome]
    if plan.state != PlanState.under_review:
        states.next_state(plan.state, "end_review")  # raises: only a plan under review records a review
    target = states.next_state(plan.state, action)
    review = await _open_review(session, plan)
    if review is None:
        review = Review(plan_id=plan.id, due_date=plan.next_review_due or clock.today_rome(), data={})
    goals, _, _ = await _children(session, plan.id)
    review.held_at = clock.now()
    review.outcome = outcome.value
    review.notes = data.notes
    review.by_user_id = principal.user_id
    review.data = {"goals": [{"id": str(g.id), "status": g.status} for g in goals]}
    session.add(review)
    await session.flush()
    plan.state = target
    today = clock.today_rome()
    if target == PlanState.active:
        plan.next_review_due = today + timedelta(days=plan.review_interval_days)
    elif target == PlanState.completed:
        await _close_all_interventions(session, plan, principal.user_id)
        plan.closed_at = clock.now()
        plan.close_reason = (data.notes or "Concluso alla verifica")[:500]
    await _close_review_items(session, plan, principal.user_id)
    await _save(session, plan, "review_recorded", actor_id=principal.user_id,
                detail={"review_id": str(review.id), "outcome": outcome.value})
    _audit("update", plan)
    return plan


async def _finish_open_review(session: AsyncSession, plan: CarePlan, outcome: str, notes: str | None,
                              actor_id: uuid.UUID | None) -> None:
    review = await _open_review(session, plan)
    if review is not None:
        review.held_at = clock.now()
        review.outcome = outcome
        review.notes = notes
        review.by_user_id = actor_id
        session.add(review)
        await session.flush()


async def complete(*, session: AsyncSession, principal, plan_id: uuid.UUID, reason: str) -> CarePlan:
    plan = await _for_write(session, principal, plan_id)
    plan.state = states.next_state(plan.state, "complete")
    await _finish_open_review(session, plan, "complete", reason, principal.user_id)
    await _close_all_interventions(session, plan, principal.user_id)
    plan.closed_at = clock.now()
    plan.close_reason = reason[:500]
    await _close_review_items(session, plan, principal.user_id)
    await _save(session, plan, "completed", actor_id=principal.user_id, detail={"reason": reason})
    _audit("update", plan)
    return plan


async def suspend(*, session: AsyncSession, principal, plan_id: uuid.UUID, reason: str) -> CarePlan:
    """Interventions and provider access are kept (a pause, e.g. a hospital stay); no review reminders meanwhile."""
    plan = await _for_write(session, principal, plan_id)
    plan.state = states.next_state(plan.state, "suspend")
    await _finish_open_review(session, plan, "suspend", reason, principal.user_id)
    await _close_review_items(session, plan, principal.user_id)
    await _save(session, plan, "suspended", actor_id=principal.user_id, detail={"reason": reason})
    _audit("update", plan)
    return plan


async def resume(*, session: AsyncSession, principal, plan_id: uuid.UUID, reason: str | None = None) -> CarePlan:
    plan = await _for_write(session, principal, plan_id)
    plan.state = states.next_state(plan.state, "resume")
    await _consent_still_valid(session, plan, "resume")
    if plan.next_review_due is None:
        plan.next_review_due = clock.today_rome() + timedelta(days=plan.review_interval_days)
    await _save(session, plan, "resumed", actor_id=principal.user_id, detail={"reason": reason})
    _audit("update", plan)
    return plan


async def revoke(*, session: AsyncSession, principal, plan_id: uuid.UUID, reason: str) -> CarePlan:
    plan = await _for_write(session, principal, plan_id)
    plan.state = states.next_state(plan.state, "revoke")
    await _finish_open_review(session, plan, "revoke", reason, principal.user_id)
    await _close_all_interventions(session, plan, principal.user_id)
    plan.closed_at = clock.now()
    plan.close_reason = reason[:500]
    await _close_review_items(session, plan, principal.user_id)
    await _save(session, plan, "revoked", actor_id=principal.user_id, detail={"reason": reason})
    _audit("update", plan)
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
        plan.state = states.next_state(plan.state, "close_temporary")
        await _finish_open_review(session, plan, "complete", reason, actor_id)
        await _close_all_interventions(session, plan, actor_id)
        plan.closed_at = clock.now()
        plan.close_reason = reason[:500]
        await _close_review_items(session, plan, None)
        await _save(session, plan, "temporary_closed", actor_id=actor_id, detail={"reason": reason})
        _audit("update", plan)
    return plans


# ---------------------------------------------------------------------------------------------------- review reminders
def _reminder_title(due: date, today: date) -> str:
    if due < today:
        return f"Verifica del progetto individualizzato scaduta il {due:%d/%m/%Y}"
    return f"Verifica del progetto individualizzato in scadenza il {due:%d/%m/%Y}"


def review_dedup_key(plan_id: uuid.UUID, due: date) -> str:
    return f"care_plan.review:{plan_id}:{due.isoformat()}"


async def create_review_reminders(session: AsyncSession, *, within_days: int | None = None,
                                  batch: int = 500) -> dict[str, int]:
    """For every active plan whose review is due within `within_days` (default setting, 14) or overdue, make sure
    the case manager has an open work item `care_plan.review` (dedup key care_plan.review:{plan}:{due date}).
    Idempotent: a second run creates nothing; an item raised as "in scadenza" is retitled "scaduta" once overdue."""
    today = clock.today_rome()
    horizon = today + timedelta(days=review_reminder_days() if within_days is None else int(within_days))
    counts = {"created": 0, "existing": 0, "retitled": 0}
    last_id: uuid.UUID | None = None
    while True:
        stmt = (sa.select(CarePlan.id, CarePlan.ambito_id, CarePlan.person_id, CarePlan.cartella_id,
                          CarePlan.case_manager_id, CarePlan.next_review_due, CarePlan.kind)
                .where(CarePlan.state == PlanState.active.value, CarePlan.next_review_due.is_not(None),
                       CarePlan.next_review_due <= horizon)
                .order_by(CarePlan.id).limit(batch))
        if last_id is not None:
            stmt = stmt.where(CarePlan.id > last_id)
        rows = (await session.execute(stmt)).all()
        if not rows:
            break
        last_id = rows[-1].id
        keys = {review_dedup_key(r.id, r.next_review_due): r for r in rows}
        existing = {w.dedup_key: w for w in (await session.execute(
            sa.select(WorkItem).where(WorkItem.dedup_key.in_(list(keys)),
                                      WorkItem.state.in_(list(work_items.OPEN_STATES)))
        )).scalars()}
        for key, r in keys.items():
            due = r.next_review_due
            title = _reminder_title(due, today)
            overdue = due < today
            item = existing.get(key)
            if item is not None:
                counts["existing"] += 1
                if item.title != title:
                    item.title = title
                    item.data = {**(item.data or {}), "overdue": overdue}
                    session.add(item)
                    counts["retitled"] += 1
                continue
            await work_items.create(
                session, kind=REVIEW_KIND, title=title, source_type=OBJECT, source_id=r.id, ambito_id=r.ambito_id,
                assignee_user_id=r.case_manager_id, due_at=clock.rome_day_bounds(due)[0], person_id=r.person_id,
                cartella_id=r.cartella_id, dedup_key=key,
                data={"plan_id": str(r.id), "due_date": due.isoformat(), "overdue": overdue,
                      "plan_kind": str(r.kind)})
            counts["created"] += 1
        if len(rows) < batch:
            break
    await session.flush()
    return counts


# ---------------------------------------------------------------------------------------------------- reads
async def get_plan(*, session: AsyncSession, principal, plan_id: uuid.UUID, audited: bool = True) -> PlanBundle:
    """The plan with goals, interventions and reviews, and the projection the principal gets. A minimal viewer
    with no intervention of their organisation in the plan gets 404. `audited=False` when the caller already
    recorded the access (the answer of a write)."""
    plan = await _plan_row(session, plan_id)
    projection = await _projection(session, principal, plan)
    bundle = await _bundle(session, plan, projection)
    if projection != "full" and not principal.has_role(Role.mmg) and not _own_interventions(principal,
                                                                                             bundle.interventions):
        raise NotFound("Progetto non trovato.")
    if audited:
        _audit("read", plan)
    return bundle


def _own_interventions(principal, interventions: list[Intervention]) -> list[Intervention]:
    """What a minimal viewer sees: a provider its own interventions; the MMG the summary of all of them (the
    MMG reads the outcome of the plan of a patient they referred, not anyone's notes)."""
    if principal.has_role(Role.mmg):
        return list(interventions)
    orgs = principal.orgs_for()
    return [i for i in interventions if i.provider_org_id is not None and i.provider_org_id in orgs]


async def list_for_cartella(*, session: AsyncSession, principal, cartella_id: uuid.UUID,
                            state: PlanState | None = None, limit: int = 50,
                            cursor: uuid.UUID | None = None) -> tuple[list[PlanBundle], uuid.UUID | None]:
    """The plans of a cartella, oldest first (keyset on id). Providers and MMG (minimal view) get only the plans
    with an intervention assigned to their organisation, without goals and summaries."""
    cartella = await registry_policy.cartella_in_scope(session, principal, cartella_id)
    access = await registry_policy.person_access(session, principal, cartella.person_id, cartella.ambito_id)
    projection = "full" if access.projection == "full" else "minimal"
    limit = max(1, min(int(limit), MAX_PAGE))
    stmt = sa.select(CarePlan).where(CarePlan.cartella_id == cartella.id)
    if state is not None:
        stmt = stmt.where(CarePlan.state == PlanState(state).value)
    if projection != "full":
        orgs = list(principal.orgs_for())
        stmt = stmt.where(sa.exists().where(Intervention.plan_id == CarePlan.id,
                                            Intervention.provider_org_id.in_(orgs)))
    if cursor is not None:
        stmt = stmt.where(CarePlan.id > cursor)
    rows = list((await session.execute(stmt.order_by(CarePlan.id).limit(limit + 1))).scalars())
    nxt = rows[limit - 1].id if len(rows) > limit else None
    rows = rows[:limit]
    audit.record(action="read", object_type=OBJECT, object_ids=[p.id for p in rows],
                 person_ids=[cartella.person_id], result_count=len(rows))
    return [PlanBundle(plan=p, goals=[], interventions=[], reviews=[], projection=projection) for p in rows], nxt


async def list_versions(*, session: AsyncSession, principal, plan_id: uuid.UUID) -> list[EntityHistory]:
    plan = await _plan_row(session, plan_id)
    if await _projection(session, principal, plan) != "full":
        raise Forbidden("Le versioni del progetto sono riservate a chi ha in carico la persona.")
    rows = await history.versions(session, entity_type=ENTITY, entity_id=plan.id)
    _audit("read", plan, result_count=len(rows))
    return rows


async def get_version(*, session: AsyncSession, principal, plan_id: uuid.UUID, version: int) -> EntityHistory:
    plan = await _plan_row(session, plan_id)
    if await _projection(session, principal, plan) != "full":
        raise Forbidden("Le versioni del progetto sono riservate a chi ha in carico la persona.")
    row = (await session.execute(
        sa.select(EntityHistory).where(EntityHistory.entity_type == ENTITY, EntityHistory.entity_id == plan.id,
                                       EntityHistory.version == version)
    )).scalar_one_or_none()
    if row is None:
        raise NotFound(f"Versione {version} del progetto non trovata.")
    _audit("read", plan)
    return row


async def due_reviews(*, session: AsyncSession, principal, limit: int = 50,
                      cursor: str | None = None) -> tuple[list[WorkItem], str | None]:
    """My plans due for review: the open work items of kind care_plan.review in my queue, by due date."""
    items, nxt = await work_items.my_queue(session, principal=principal, kinds=[REVIEW_KIND], limit=limit,
                                           cursor=cursor)
    audit.record(action="read", object_type="work_item", object_ids=[w.id for w in items],
                 person_ids=[w.person_id for w in items], result_count=len(items))
    return items, nxt


# ---------------------------------------------------------------------------------------------------- views
def intensity_label(value: float | None, unit: str | None) -> str | None:
    if value is None:
        return None
    text = f"{value:g}".replace(".", ",") if value != int(value) else str(int(value))
    return f"{text} {unit}".strip() if unit else text


def _intervention_view(iv: Intervention, labels: dict[str, dict[Any, str]], *, with_notes: bool) -> dict[str, Any]:
    from schemas.care_plan import INTERVENTION_STATUS_LABELS

    return {"id": iv.id, "service_type": iv.service_type, "service_label": labels.get("service", {}).get(iv.service_type),
            "provider_org_id": iv.provider_org_id,
            "provider_name": labels.get("org", {}).get(iv.provider_org_id) if iv.provider_org_id else None,
            "intensity_value": iv.intensity_value, "intensity_unit": iv.intensity_unit,
            "intensity_label": intensity_label(iv.intensity_value, iv.intensity_unit),
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
    """What the principal sees of a plan. Full view: everything. Minimal view: the plan's frame (kind, state, case
    manager, activation) and the interventions `_own_interventions` allows (a provider its own, an MMG all), without
    goals, summary, title, reviews, consent, signatories or intervention notes."""
    from schemas.care_plan import GOAL_STATUS_LABELS, REVIEW_OUTCOME_LABELS

    b, p = plan, plan.plan
    if b.projection != "full":
        return {"view": "minimal", "id": p.id, "cartella_id": p.cartella_id, "person_id": p.person_id,
                "kind": p.kind, "kind_label": PLAN_KIND_LABELS[str(p.kind)], "state": p.state,
                "state_label": PLAN_STATE_LABELS[str(p.state)], "case_manager_id": p.case_manager_id,
                "case_manager_name": b.case_manager_name, "activated_at": p.activated_at, "version": p.version,
                "interventions": [_intervention_view(i, b.labels, with_notes=False)
                                  for i in _own_interventions(principal, b.interventions)]}
    today = clock.today_rome()
    return {
        **summary_view(b), "ambito_id": p.ambito_id, "vmd_id": p.vmd_id, "summary": p.summary,
        "case_manager_name": b.case_manager_name, "consent_id": p.consent_id, "agreed_version": p.agreed_version,
        "signatories": p.signatories or [], "review_interval_days": p.review_interval_days,
        "review_overdue": bool(p.state == PlanState.active and p.next_review_due and p.next_review_due < today),
        "closed_at": p.closed_at, "close_reason": p.close_reason, "created_by": p.created_by,
        "created_at": p.created_at, "allowed_actions": states.allowed_actions(p.state),
        "goals": [{"id": g.id, "description": g.description, "indicator": g.indicator, "target": g.target,
                   "due_date": g.due_date, "status": g.status, "status_label": GOAL_STATUS_LABELS.get(g.status, g.status),
                   "position": g.position} for g in b.goals],
        "interventions": [_intervention_view(i, b.labels, with_notes=True) for i in b.interventions],
        "reviews": [{"id": r.id, "due_date": r.due_date, "held_at": r.held_at, "outcome": r.outcome,
                     "outcome_label": REVIEW_OUTCOME_LABELS.get(r.outcome) if r.outcome else None,
                     "notes": r.notes, "by_user_id": r.by_user_id} for r in b.reviews],
    }
