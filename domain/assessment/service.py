"""VMD (valutazione multidimensionale): request, scheduling, outcome, cancellation and reassessment. The equipe's
own work (assessors, instruments, sign-off, meetings) is in equipe.py; both share the helpers at the top.

Every write locks the VMD row, checks the transition table (states.py), bumps `Vmd.version` and writes one
`entity_history` row (entity_type "vmd"), and notes the access in the audit trail. Services never commit.

Who may do what (coarse permission at the route, then here):
- request (vmd.request): whoever reaches the cartella (registry policy.cartella_in_scope), or the PUA operator
  working the access request that refers the person, with the grant the PUA context gives (policy.ReferralGrant);
- manage (vmd.manage: schedule, assessors, meeting, conclude, cancel): an active member of the VMD's equipe;
- assess (vmd.assess: responses, sign): an assessor of this VMD who is still an active member of the equipe.
Rules that the seed leaves open live in policy.py and docs/decisions/vmd.md.
"""
from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.assessment import policy
from domain.assessment.models import (
    VMD_TRIGGER_LABELS,
    EquipeMeeting,
    InstrumentResponse,
    Vmd,
    VmdAssessor,
    VmdOutcome,
    VmdState,
    VmdTrigger,
)
from domain.assessment.states import FINAL_STATES, VmdAction, next_state
from domain.kernel import clock, events, history, work_items
from domain.kernel.errors import Conflict, Forbidden, Invalid, NotFound
from domain.registry import assignments, cartelle, persons
from domain.registry import policy as registry_policy
from domain.registry.models import AssignmentReason, CartellaStatus
from domain.security import audit, directory
from domain.security.models import Role
from domain.security.principal import Principal
from domain.territory import queries as territory

ENTITY = "vmd"
SOURCE = "vmd"
CONTEXT = "vmd"  # instrument_response.context_type
KIND_ASSESSMENT = "vmd.assessment"  # one per assessor: the "my assessments" queue
KIND_EQUIPE = "vmd.equipe"  # one per VMD for the equipe team: organise it and bring it to a conclusion
VMD_NOT_FOUND = "Valutazione multidimensionale non trovata."

__all__ = [
    "ENTITY",
    "KIND_ASSESSMENT",
    "KIND_EQUIPE",
    "cancel",
    "cancel_open_for_person",
    "conclude",
    "request_reassessment",
    "request_vmd",
    "schedule",
    "store_response",
]


# ================================================================================================ shared helpers
async def membership_side(session: AsyncSession, team_id: uuid.UUID,
                          user_id: uuid.UUID) -> tuple[uuid.UUID, str] | None:
    """(organisation, side) the user brings to an active team they are an active member of today, else None."""
    member = await directory.active_membership(session, team_id, user_id)
    if member is None:
        return None
    sides = await territory.org_sides(session, [member.organisation_id])
    return member.organisation_id, sides.get(member.organisation_id, "")


async def require_member(session: AsyncSession, vmd: Vmd, principal: Principal, *, what: str) -> None:
    if await directory.active_membership(session, vmd.team_id, principal.user_id) is None:
        raise Forbidden(f"Solo i membri attivi dell'équipe della VMD possono {what}.", reason="not_equipe_member")


async def write_history(session: AsyncSession, vmd: Vmd, action: str, *, actor_id: uuid.UUID | None,
                        detail: dict[str, Any] | None = None, bump: bool = True) -> None:
    await history.record_change(session, vmd, entity_type=ENTITY, action=action, actor_id=actor_id, detail=detail,
                                bump=bump, key="vmd")


def audit_vmd(action: str, vmd: Vmd, *, object_type: str = "vmd", object_ids=None) -> None:
    audit.record(action=action, object_type=object_type, object_ids=object_ids or [vmd.id],
                 person_ids=[vmd.person_id])


async def _vmd_in_ambito(session: AsyncSession, principal: Principal, vmd_id: uuid.UUID) -> Vmd:
    vmd = (await session.execute(
        sa.select(Vmd).where(Vmd.id == vmd_id, Vmd.ambito_id == principal.ambito_id))).scalar_one_or_none()
    if vmd is None:
        raise NotFound(VMD_NOT_FOUND)
    return vmd


async def load_readable(session: AsyncSession, principal: Principal, vmd_id: uuid.UUID) -> Vmd:
    """The VMD if the principal reaches its cartella (404 outside scope, 403 consent_required)."""
    vmd = await _vmd_in_ambito(session, principal, vmd_id)
    await registry_policy.cartella_in_scope(session, principal, vmd.cartella_id, not_found=VMD_NOT_FOUND)
    return vmd


async def load_for_write(session: AsyncSession, principal: Principal, vmd_id: uuid.UUID) -> Vmd:
    await load_readable(session, principal, vmd_id)
    return (await session.execute(
        sa.select(Vmd).where(Vmd.id == vmd_id).with_for_update().execution_options(populate_existing=True)
    )).scalar_one()


async def assign_from_vmd(session: AsyncSession, vmd: Vmd, reason: AssignmentReason, *, actor_id: uuid.UUID,
                          user_id: uuid.UUID | None = None, team_id: uuid.UUID | None = None):
    """A cartella assignment sourced from this VMD, with the flow as its legal basis (policy.LEGAL_BASIS)."""
    return await assignments.assign(session, cartella_id=vmd.cartella_id, reason=reason, user_id=user_id,
                                 team_id=team_id, source_type=SOURCE, source_id=vmd.id, actor_id=actor_id,
                                 legal_basis=policy.LEGAL_BASIS)


async def signed_sides(session: AsyncSession, vmd_id: uuid.UUID) -> set[str]:
    return set((await session.execute(
        sa.select(VmdAssessor.side).where(VmdAssessor.vmd_id == vmd_id, VmdAssessor.signed_at.is_not(None))
        .distinct())).scalars())


def _json_answers(answers: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, (date, datetime)) else v) for k, v in answers.items()}


async def store_response(session: AsyncSession, *, person_id: uuid.UUID, context_type: str,
                         context_id: uuid.UUID, definition, answers: dict[str, Any], result,
                         outcome: str | None, author_id: uuid.UUID,
                         author_org_id: uuid.UUID) -> InstrumentResponse:
    """Store answers already validated and scored by the engine (instruments.submit) for a context: a VMD, or the
    PUA's first-level triage (context "access_request"). The caller checked who may write them."""
    resp = InstrumentResponse(
        person_id=person_id, context_type=context_type, context_id=context_id, instrument_code=definition.code,
        instrument_version=definition.version, answers=_json_answers(dict(answers)),
        scores=result.model_dump(mode="json"), outcome=outcome, author_id=author_id, author_org_id=author_org_id,
        recorded_at=clock.now())
    session.add(resp)
    await session.flush()
    return resp


# ================================================================================================ request
def _trigger(value: Any) -> VmdTrigger:
    try:
        return VmdTrigger(value)
    except ValueError:
        raise Invalid("trigger", "motivo di attivazione della VMD non previsto") from None


async def _cartella_for_request(session: AsyncSession, principal: Principal, *, cartella_id: uuid.UUID,
                                person_id: uuid.UUID, grant: policy.ReferralGrant | None):
    if grant is not None and grant.person_id != person_id:
        raise Invalid("access_request_id", "la richiesta di accesso riguarda un'altra persona")
    if grant is None or not grant.covers_cartella:
        return await registry_policy.cartella_in_scope(session, principal, cartella_id, for_update=True)
    # The PUA operator working the access request refers the person even before reaching the cartella: the
    # referral is the legal basis of the assignments written below.
    c = await cartelle.cartella_record(session, cartella_id, ambito_id=principal.ambito_id, for_update=True)
    if c is None:
        raise NotFound("Cartella non trovata.")
    return c


async def _check_person(session: AsyncSession, cartella, person_id: uuid.UUID) -> None:
    if cartella.person_id == person_id:
        return
    p = await persons.person_record(session, person_id)
    if p is None or p.merged_into_id != cartella.person_id:
        raise Invalid("person_id", "la cartella indicata non appartiene a questa persona")


async def _equipe(session: AsyncSession, team_id: uuid.UUID, ambito_id: uuid.UUID):
    team = await directory.get_team(session, team_id, ambito_id)
    if team is None:
        raise Invalid("team_id", "équipe non trovata nell'Ambito o non attiva")
    if team.type not in policy.EQUIPE_TEAM_TYPES:
        allowed = ", ".join(sorted(t.value for t in policy.EQUIPE_TEAM_TYPES))
        raise Invalid("team_id", f"l'équipe di tipo '{team.type}' non può svolgere una VMD (ammessi: {allowed})")
    return team


async def request_vmd(session: AsyncSession, *, principal: Principal, person_id: uuid.UUID,
                      cartella_id: uuid.UUID, trigger: VmdTrigger | str, requested_service_type: str | None = None,
                      team_id: uuid.UUID, grant: policy.ReferralGrant | None = None,
                      referring_user_id: uuid.UUID | None = None, notes: str | None = None,
                      previous_vmd_id: uuid.UUID | None = None, application_date: date | None = None) -> Vmd:
    """Open a VMD. The application starts the clock (due = application day + days of the trigger, policy.due_at);
    the application date defaults to the day of the request and may not follow it.
    Writes the cartella assignments (equipe team; referring MMG) with the flow as legal basis and a work item
    for the equipe. Called by the API and by the PUA flow, which hands over the referral as a `grant`."""
    trig = _trigger(trigger)
    cartella = await _cartella_for_request(session, principal, cartella_id=cartella_id, person_id=person_id,
                                           grant=grant)
    await _check_person(session, cartella, person_id)
    person = await persons.person_record(session, cartella.person_id)
    if person is not None and person.date_of_death is not None:
        raise Conflict("La persona risulta deceduta: non si può richiedere una VMD.")
    if cartella.status != CartellaStatus.open:
        raise Conflict("La cartella è chiusa: non si può richiedere una VMD.")
    team = await _equipe(session, team_id, cartella.ambito_id)
    if requested_service_type is not None:
        await territory.require_service_type(session, requested_service_type, field="requested_service_type")
    referrer_is_mmg = False
    if referring_user_id is not None:
        if not await directory.is_active_user(session, referring_user_id, cartella.ambito_id):
            raise Invalid("referring_user_id", "operatore inviante non trovato nell'Ambito o non attivo")
        referrer_is_mmg = await directory.is_active_user(session, referring_user_id, cartella.ambito_id,
                                                         roles=[Role.mmg])
    today = clock.today_rome()
    if application_date is not None and application_date > today:
        raise Invalid("application_date", "la data della domanda non può essere successiva alla richiesta di VMD")
    if notes is not None:
        notes = notes.strip() or None
        if notes and len(notes) > 4000:
            raise Invalid("notes", "testo troppo lungo (massimo 4000 caratteri)")
    existing = (await session.execute(sa.select(Vmd.id).where(
        Vmd.cartella_id == cartella.id, Vmd.trigger == trig.value,
        Vmd.state.not_in([s.value for s in FINAL_STATES])).limit(1))).scalar_one_or_none()
    if existing is not None:
        raise Conflict("Per questa cartella è già in corso una VMD con lo stesso motivo di attivazione.",
                       existing_id=str(existing))
    now = clock.now()
    vmd = Vmd(ambito_id=cartella.ambito_id, person_id=cartella.person_id, cartella_id=cartella.id, trigger=trig,
              requested_service_type=requested_service_type,
              access_request_id=grant.access_request_id if grant else None, referring_user_id=referring_user_id,
              team_id=team.id, residence_comune_id=person.residence_comune_id if person is not None else None,
              requested_at=now, requested_by=principal.user_id,
              application_date=application_date or today,
              due_at=policy.due_at(trig, now, application_date or today), state=VmdState.requested, notes=notes,
              previous_vmd_id=previous_vmd_id, version=1)
    session.add(vmd)
    await session.flush()
    team_assignment = await assign_from_vmd(session, vmd, AssignmentReason.team, actor_id=principal.user_id,
                                            team_id=team.id)
    mmg_assignment = None
    if referrer_is_mmg:
        mmg_assignment = await assign_from_vmd(session, vmd, AssignmentReason.referring_mmg,
                                               actor_id=principal.user_id, user_id=referring_user_id)
    item = await work_items.create(
        session, kind=KIND_EQUIPE, title=f"VMD da svolgere — {VMD_TRIGGER_LABELS[trig.value]}",
        source_type=SOURCE, source_id=vmd.id, ambito_id=vmd.ambito_id, assignee_team_id=team.id,
        due_at=vmd.due_at, person_id=vmd.person_id, cartella_id=vmd.cartella_id,
        dedup_key=f"vmd:{vmd.id}:equipe", data={"vmd_id": str(vmd.id), "trigger": trig.value})
    await write_history(session, vmd, "requested", actor_id=principal.user_id, bump=False, detail={
        "team_assignment_id": str(team_assignment.id),
        "referring_mmg_assignment_id": str(mmg_assignment.id) if mmg_assignment else None,
        "work_item_id": str(item.id), "due_days": policy.due_days(trig)})
    audit_vmd("create", vmd)
    return vmd


# ================================================================================================ schedule
async def schedule(session: AsyncSession, *, principal: Principal, vmd_id: uuid.UUID, scheduled_for: datetime,
                   location: str | None = None) -> Vmd:
    vmd = await load_for_write(session, principal, vmd_id)
    await require_member(session, vmd, principal, what="programmare la valutazione")
    target = next_state(vmd.state, VmdAction.schedule)
    if scheduled_for.tzinfo is None:
        raise Invalid("scheduled_for", "indicare data e ora con il fuso orario")
    if scheduled_for < vmd.requested_at:
        raise Invalid("scheduled_for", "la data della valutazione precede la richiesta")
    location = (location or "").strip() or None
    previous = vmd.scheduled_for
    vmd.scheduled_for, vmd.location, vmd.state = scheduled_for, location, target
    await write_history(session, vmd, "rescheduled" if previous else "scheduled", actor_id=principal.user_id,
                        detail={"previous_scheduled_for": previous.isoformat() if previous else None})
    audit_vmd("update", vmd)
    return vmd


# ================================================================================================ outcome
async def conclude(session: AsyncSession, *, principal: Principal, vmd_id: uuid.UUID,
                   outcome: VmdOutcome | str | None = None, outcomes: list[VmdOutcome | str] | None = None,
                   notes: str | None = None, reassessment_due: date | None = None) -> Vmd:
    """Outcome of the equipe: one `outcome` or several `outcomes` (policy.outcomes_of: e.g. eligible for a measure
    and a project proposed). Needs at least one signed assessor and an equipe meeting. Completes the equipe's
    work item; open assessor items (assessors who never signed) are cancelled."""
    vmd = await load_for_write(session, principal, vmd_id)
    await require_member(session, vmd, principal, what="concludere la valutazione")
    target = next_state(vmd.state, VmdAction.conclude)
    chosen = policy.outcomes_of(outcome, outcomes)
    signed = await signed_sides(session, vmd.id)
    if not signed:
        raise Conflict("Per concludere serve la firma di almeno un valutatore.")
    met = (await session.execute(sa.select(EquipeMeeting.id).where(EquipeMeeting.vmd_id == vmd.id).limit(1))).first()
    if met is None:
        raise Conflict("Per concludere serve la riunione d'équipe.")
    if reassessment_due is not None and reassessment_due <= clock.today_rome():
        raise Invalid("reassessment_due", "la data di rivalutazione deve essere futura")
    notes = (notes or "").strip() or None
    vmd.outcomes, vmd.outcome = [o.value for o in chosen], chosen[0]
    vmd.outcome_notes, vmd.reassessment_due = notes, reassessment_due
    vmd.concluded_at = clock.now()
    vmd.integrated = policy.is_integrated(signed)
    vmd.state = target
    await work_items.close_for_source(session, source_type=SOURCE, source_id=vmd.id, kinds=[KIND_EQUIPE],
                                      done=True, actor_id=principal.user_id)
    dropped = await work_items.close_for_source(session, source_type=SOURCE, source_id=vmd.id,
                                                kinds=[KIND_ASSESSMENT])
    await write_history(session, vmd, "concluded", actor_id=principal.user_id, detail={
        "outcome": chosen[0].value, "outcomes": [o.value for o in chosen], "integrated": vmd.integrated,
        "unsigned_items_cancelled": dropped})
    # Contexts that asked for this VMD (a protected discharge) move on by themselves, in their own job.
    await events.publish(session, "vmd.concluded", {
        "vmd_id": str(vmd.id), "person_id": str(vmd.person_id), "trigger": str(vmd.trigger),
        "outcomes": list(vmd.outcomes), "concluded_at": vmd.concluded_at.isoformat(),
        "concluded_by": str(principal.user_id)}, dedup_key=f"vmd.concluded:{vmd.id}")
    audit_vmd("update", vmd)
    return vmd


async def cancel(session: AsyncSession, *, principal: Principal, vmd_id: uuid.UUID, reason: str) -> Vmd:
    """Withdrawn, died, admitted elsewhere...: by an equipe member or the requester. Closes the VMD's work items
    and ends the cartella assignments it wrote (their legal basis ends with it)."""
    vmd = await load_for_write(session, principal, vmd_id)
    if vmd.requested_by != principal.user_id:
        await require_member(session, vmd, principal, what="annullare la valutazione")
    reason = (reason or "").strip()
    next_state(vmd.state, VmdAction.cancel)
    if not reason:
        raise Invalid("reason", "indicare il motivo dell'annullamento")
    await _cancel_row(session, vmd, reason=reason, actor_id=principal.user_id)
    audit_vmd("update", vmd)
    return vmd


async def _cancel_row(session: AsyncSession, vmd: Vmd, *, reason: str, actor_id: uuid.UUID | None,
                      action: str = "cancelled") -> None:
    vmd.state = next_state(vmd.state, VmdAction.cancel)
    vmd.cancelled_at, vmd.cancel_reason = clock.now(), reason[:500]
    closed = await work_items.close_for_source(session, source_type=SOURCE, source_id=vmd.id)
    ended = await assignments.end_assignments_of_source(session, source_type=SOURCE, source_id=vmd.id,
                                                     actor_id=actor_id)
    await write_history(session, vmd, action, actor_id=actor_id, detail={
        "work_items_cancelled": closed, "assignments_ended": ended})


DEATH_REASON = "Decesso della persona"


async def cancel_open_for_person(session: AsyncSession, *, person_id: uuid.UUID,
                                 reason: str = DEATH_REASON) -> int:
    """System path (no principal): cancel every open VMD of a person, e.g. on `person.died`. Idempotent."""
    rows = list((await session.execute(
        sa.select(Vmd).where(Vmd.person_id == person_id, Vmd.state.not_in([s.value for s in FINAL_STATES]))
        .order_by(Vmd.id).with_for_update().execution_options(populate_existing=True))).scalars())
    for vmd in rows:
        await _cancel_row(session, vmd, reason=reason, actor_id=None, action="cancelled_by_system")
    return len(rows)


# ================================================================================================ reassessment
async def request_reassessment(session: AsyncSession, *, principal: Principal, vmd_id: uuid.UUID,
                               team_id: uuid.UUID | None = None, trigger: VmdTrigger | str | None = None,
                               notes: str | None = None) -> Vmd:
    """A concluded VMD with a reassessment date spawns a NEW VMD (same person and cartella, `previous_vmd_id`
    pointing back); the concluded one stays concluded. One open reassessment at a time."""
    prev = await load_for_write(session, principal, vmd_id)
    next_state(prev.state, VmdAction.reassess)
    if prev.reassessment_due is None:
        raise Conflict("La valutazione non prevede una rivalutazione (data di rivalutazione assente).")
    open_one = (await session.execute(sa.select(Vmd.id).where(
        Vmd.previous_vmd_id == prev.id, Vmd.state.not_in([s.value for s in FINAL_STATES])).limit(1))).scalar()
    if open_one is not None:
        raise Conflict("È già in corso una rivalutazione di questa VMD.", existing_id=str(open_one))
    new = await request_vmd(session, principal=principal, person_id=prev.person_id, cartella_id=prev.cartella_id,
                            trigger=trigger or prev.trigger, requested_service_type=prev.requested_service_type,
                            team_id=team_id or prev.team_id, notes=notes, previous_vmd_id=prev.id)
    await write_history(session, prev, "reassessment_requested", actor_id=principal.user_id,
                        detail={"new_vmd_id": str(new.id)})
    # The reminder has done its job: the new VMD carries the work from here.
    await work_items.close_for_source(session, source_type=SOURCE, source_id=prev.id, kinds=["vmd.reassessment"])
    return new
