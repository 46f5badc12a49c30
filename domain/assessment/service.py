"""VMD (valutazione multidimensionale): request, scheduling, assessors from both sides, instruments, sign-off,
equipe meeting, outcome, cancellation and reassessment.

Every write locks the VMD row, checks the transition table (states.py), bumps `Vmd.version` and writes one
`entity_history` row (entity_type "vmd"), and notes the access in the audit trail. Services never commit.

Who may do what (coarse permission at the route, then here):
- request (vmd.request): whoever reaches the cartella (registry_policy.cartella_in_scope), or the PUA operator working
  the access request that refers the person (the PUA flow calls `request_vmd` with `access_request_id`);
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

from domain.assessment import instruments, policy
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
from domain.kernel import clock, history, work_items
from domain.kernel.errors import Conflict, Forbidden, Invalid, NotFound
from domain.pua.models import AccessRequest
from domain.registry import cartelle
from domain.registry.models import AssignmentReason, Cartella, CartellaAssignment, CartellaStatus, Person
from domain.territory.models import Organisation, ServiceType
from domain.security import audit
from domain.security.models import AppUser, Role, RoleAssignment, Team, TeamMember
from domain.security.permissions import Permission, permissions_of
from domain.security.principal import Principal
from schemas.instruments import AssessmentDomain
from domain.registry import policy as registry_policy

ENTITY = "vmd"
SOURCE = "vmd"
CONTEXT = "vmd"  # instrument_response.context_type
KIND_ASSESSMENT = "vmd.assessment"  # one per assessor: the "my assessments" queue
KIND_EQUIPE = "vmd.equipe"  # one per VMD for the equipe team: organise it and bring it to a conclusion

__all__ = [
    "request_vmd", "schedule", "add_assessor", "record_response", "sign", "hold_meeting", "conclude", "cancel",
    "request_reassessment", "cancel_open_for_person", "ENTITY", "KIND_ASSESSMENT", "KIND_EQUIPE",
]


# ================================================================================================ helpers
def _today() -> date:
    return clock.today_rome()


def _member_active(day: date):
    return sa.and_(TeamMember.valid_from <= day, sa.or_(TeamMember.valid_to.is_(None), TeamMember.valid_to >= day))


async def active_membership(session: AsyncSession, team_id: uuid.UUID,
                            user_id: uuid.UUID) -> tuple[TeamMember, Organisation] | None:
    """The user's active membership of an active team, with the organisation (and so the side) it brings."""
    row = (await session.execute(
        sa.select(TeamMember, Organisation)
        .join(Team, Team.id == TeamMember.team_id)
        .join(Organisation, Organisation.id == TeamMember.organisation_id)
        .where(TeamMember.team_id == team_id, TeamMember.user_id == user_id, Team.active.is_(True),
               _member_active(_today()))
        .order_by(TeamMember.valid_from.desc()).limit(1)
    )).first()
    return (row[0], row[1]) if row else None


async def _require_member(session: AsyncSession, vmd: Vmd, principal: Principal, *, what: str) -> None:
    if await active_membership(session, vmd.team_id, principal.user_id) is None:
        raise Forbidden(f"Solo i membri attivi dell'équipe della VMD possono {what}.", reason="not_equipe_member")


async def _user_permissions(session: AsyncSession, user_id: uuid.UUID) -> frozenset[Permission]:
    day = _today()
    roles = (await session.execute(
        sa.select(RoleAssignment.role).where(
            RoleAssignment.user_id == user_id, RoleAssignment.valid_from <= day,
            sa.or_(RoleAssignment.valid_to.is_(None), RoleAssignment.valid_to >= day)).distinct()
    )).scalars().all()
    return permissions_of({Role(r) for r in roles})


async def _record(session: AsyncSession, vmd: Vmd, action: str, *, actor_id: uuid.UUID | None,
                  detail: dict[str, Any] | None = None, bump: bool = True) -> None:
    await history.record_change(session, vmd, entity_type=ENTITY, action=action, actor_id=actor_id, detail=detail,
                                bump=bump, key="vmd")


def _audit(action: str, vmd: Vmd, *, object_type: str = "vmd", object_ids=None) -> None:
    audit.record(action=action, object_type=object_type, object_ids=object_ids or [vmd.id],
                 person_ids=[vmd.person_id])


async def _vmd_in_ambito(session: AsyncSession, principal: Principal, vmd_id: uuid.UUID) -> Vmd:
    vmd = (await session.execute(
        sa.select(Vmd).where(Vmd.id == vmd_id, Vmd.ambito_id == principal.ambito_id))).scalar_one_or_none()
    if vmd is None:
        raise NotFound("Valutazione multidimensionale non trovata.")
    return vmd


async def load_readable(session: AsyncSession, principal: Principal, vmd_id: uuid.UUID) -> Vmd:
    """The VMD if the principal reaches its cartella (404 outside scope, 403 consent_required)."""
    vmd = await _vmd_in_ambito(session, principal, vmd_id)
    await registry_policy.cartella_in_scope(session, principal, vmd.cartella_id)
    return vmd


async def _load_for_write(session: AsyncSession, principal: Principal, vmd_id: uuid.UUID) -> Vmd:
    await load_readable(session, principal, vmd_id)
    return (await session.execute(
        sa.select(Vmd).where(Vmd.id == vmd_id).with_for_update().execution_options(populate_existing=True)
    )).scalar_one()


async def _assign(session: AsyncSession, vmd: Vmd, reason: AssignmentReason, *, actor_id: uuid.UUID,
                  user_id: uuid.UUID | None = None, team_id: uuid.UUID | None = None) -> CartellaAssignment:
    """A cartella assignment sourced from this VMD, with the flow as its legal basis (see policy.LEGAL_BASIS)."""
    a = await cartelle.assign(session, cartella_id=vmd.cartella_id, reason=reason, user_id=user_id, team_id=team_id,
                              source_type=SOURCE, source_id=vmd.id, actor_id=actor_id)
    if a.legal_basis is None:
        a.legal_basis = policy.LEGAL_BASIS
        session.add(a)
        await session.flush()
    return a


async def _signed_sides(session: AsyncSession, vmd_id: uuid.UUID) -> set[str]:
    return set((await session.execute(
        sa.select(VmdAssessor.side).where(VmdAssessor.vmd_id == vmd_id, VmdAssessor.signed_at.is_not(None))
        .distinct())).scalars())


# ================================================================================================ request
def _trigger(value: Any) -> VmdTrigger:
    try:
        return VmdTrigger(value)
    except ValueError:
        raise Invalid("trigger", "motivo di attivazione della VMD non previsto") from None


async def _cartella_for_request(session: AsyncSession, principal: Principal, *, cartella_id: uuid.UUID,
                                person_id: uuid.UUID, access_request_id: uuid.UUID | None) -> Cartella:
    ar = None
    if access_request_id is not None:
        ar = await session.get(AccessRequest, access_request_id)
        if ar is None or ar.ambito_id != principal.ambito_id:
            raise Invalid("access_request_id", "richiesta di accesso PUA non trovata nell'Ambito")
        if ar.person_id != person_id:
            raise Invalid("access_request_id", "la richiesta di accesso riguarda un'altra persona")
    try:
        return await registry_policy.cartella_in_scope(session, principal, cartella_id, for_update=True)
    except (NotFound, Forbidden):
        # The PUA operator working the access request refers the person even before reaching the cartella:
        # the referral is the legal basis of the assignments written below.
        works_it = ar is not None and (ar.operator_id == principal.user_id
                                       or ar.location_org_id in principal.orgs_for())
        if not works_it or Permission.pua_triage not in principal.permissions:
            raise
    c = (await session.execute(
        sa.select(Cartella).where(Cartella.id == cartella_id, Cartella.ambito_id == principal.ambito_id)
        .with_for_update())).scalar_one_or_none()
    if c is None:
        raise NotFound("Cartella non trovata.")
    return c


async def _check_person(session: AsyncSession, cartella: Cartella, person_id: uuid.UUID) -> None:
    if cartella.person_id == person_id:
        return
    p = await session.get(Person, person_id)
    if p is None or p.merged_into_id != cartella.person_id:
        raise Invalid("person_id", "la cartella indicata non appartiene a questa persona")


async def _equipe(session: AsyncSession, team_id: uuid.UUID, ambito_id: uuid.UUID) -> Team:
    team = await session.get(Team, team_id)
    if team is None or team.ambito_id != ambito_id or not team.active:
        raise Invalid("team_id", "équipe non trovata nell'Ambito o non attiva")
    if team.type not in policy.EQUIPE_TEAM_TYPES:
        allowed = ", ".join(sorted(t.value for t in policy.EQUIPE_TEAM_TYPES))
        raise Invalid("team_id", f"l'équipe di tipo '{team.type}' non può svolgere una VMD (ammessi: {allowed})")
    return team


async def request_vmd(session: AsyncSession, *, principal: Principal, person_id: uuid.UUID,
                      cartella_id: uuid.UUID, trigger: VmdTrigger | str, requested_service_type: str | None = None,
                      team_id: uuid.UUID, access_request_id: uuid.UUID | None = None,
                      referring_user_id: uuid.UUID | None = None, notes: str | None = None,
                      previous_vmd_id: uuid.UUID | None = None) -> Vmd:
    """Open a VMD. The request time starts the clock (due = request + days of the trigger, policy.due_at).
    Writes the cartella assignments (equipe team; referring MMG) with the flow as legal basis and a work item
    for the equipe. Called by the API and by the PUA flow (with `access_request_id`)."""
    trig = _trigger(trigger)
    cartella = await _cartella_for_request(session, principal, cartella_id=cartella_id, person_id=person_id,
                                           access_request_id=access_request_id)
    await _check_person(session, cartella, person_id)
    person = await session.get(Person, cartella.person_id)
    if person is not None and person.date_of_death is not None:
        raise Conflict("La persona risulta deceduta: non si può richiedere una VMD.")
    if cartella.status != CartellaStatus.open:
        raise Conflict("La cartella è chiusa: non si può richiedere una VMD.")
    team = await _equipe(session, team_id, cartella.ambito_id)
    if requested_service_type is not None:
        st = await session.get(ServiceType, requested_service_type)
        if st is None or not st.active:
            raise Invalid("requested_service_type", "tipo di servizio non presente nel catalogo")
    referrer_is_mmg = False
    if referring_user_id is not None:
        ref = await session.get(AppUser, referring_user_id)
        if ref is None or not ref.active or ref.ambito_id != cartella.ambito_id:
            raise Invalid("referring_user_id", "operatore inviante non trovato nell'Ambito o non attivo")
        day = _today()
        referrer_is_mmg = (await session.execute(sa.select(RoleAssignment.id).where(
            RoleAssignment.user_id == ref.id, RoleAssignment.role == Role.mmg.value, RoleAssignment.valid_from <= day,
            sa.or_(RoleAssignment.valid_to.is_(None), RoleAssignment.valid_to >= day)).limit(1))).first() is not None
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
              requested_service_type=requested_service_type, access_request_id=access_request_id,
              referring_user_id=referring_user_id, team_id=team.id, requested_at=now,
              requested_by=principal.user_id, due_at=policy.due_at(trig, now), state=VmdState.requested,
              notes=notes, previous_vmd_id=previous_vmd_id, version=1)
    session.add(vmd)
    await session.flush()
    team_assignment = await _assign(session, vmd, AssignmentReason.team, actor_id=principal.user_id, team_id=team.id)
    mmg_assignment = None
    if referrer_is_mmg:
        mmg_assignment = await _assign(session, vmd, AssignmentReason.referring_mmg, actor_id=principal.user_id,
                                       user_id=referring_user_id)
    item = await work_items.create(
        session, kind=KIND_EQUIPE, title=f"VMD da svolgere — {VMD_TRIGGER_LABELS[trig.value]}",
        source_type=SOURCE, source_id=vmd.id, ambito_id=vmd.ambito_id, assignee_team_id=team.id,
        due_at=vmd.due_at, person_id=vmd.person_id, cartella_id=vmd.cartella_id,
        dedup_key=f"vmd:{vmd.id}:equipe", data={"vmd_id": str(vmd.id), "trigger": trig.value})
    await _record(session, vmd, "requested", actor_id=principal.user_id, bump=False, detail={
        "team_assignment_id": str(team_assignment.id),
        "referring_mmg_assignment_id": str(mmg_assignment.id) if mmg_assignment else None,
        "work_item_id": str(item.id), "due_days": policy.due_days(trig)})
    _audit("create", vmd)
    return vmd


# ================================================================================================ schedule
async def schedule(session: AsyncSession, *, principal: Principal, vmd_id: uuid.UUID, scheduled_for: datetime,
                   location: str | None = None) -> Vmd:
    vmd = await _load_for_write(session, principal, vmd_id)
    await _require_member(session, vmd, principal, what="programmare la valutazione")
    target = next_state(vmd.state, VmdAction.schedule)
    if scheduled_for.tzinfo is None:
        raise Invalid("scheduled_for", "indicare data e ora con il fuso orario")
    if scheduled_for < vmd.requested_at:
        raise Invalid("scheduled_for", "la data della valutazione precede la richiesta")
    location = (location or "").strip() or None
    previous = vmd.scheduled_for
    vmd.scheduled_for, vmd.location, vmd.state = scheduled_for, location, target
    await _record(session, vmd, "rescheduled" if previous else "scheduled", actor_id=principal.user_id,
                  detail={"previous_scheduled_for": previous.isoformat() if previous else None})
    _audit("update", vmd)
    return vmd


# ================================================================================================ assessors
async def add_assessor(session: AsyncSession, *, principal: Principal, vmd_id: uuid.UUID, user_id: uuid.UUID,
                       domains: list[AssessmentDomain | str] | None = None) -> VmdAssessor:
    """An active member of the equipe becomes an assessor; the side is the one of the organisation they bring
    to the team (TeamMember.organisation_id → Organisation.side). Writes the cartella assignment (assessor) and
    the assessor's work item (`vmd.assessment`, due when the VMD is due)."""
    vmd = await _load_for_write(session, principal, vmd_id)
    await _require_member(session, vmd, principal, what="aggiungere valutatori")
    next_state(vmd.state, VmdAction.add_assessor)
    membership = await active_membership(session, vmd.team_id, user_id)
    if membership is None:
        raise Invalid("user_id", "l'operatore non è un membro attivo dell'équipe della VMD")
    member, org = membership
    if Permission.vmd_assess not in await _user_permissions(session, user_id):
        raise Invalid("user_id", "l'operatore non ha un ruolo abilitato alla valutazione (vmd.assess)")
    side = str(org.side)
    if domains:
        try:
            doms = list(dict.fromkeys(AssessmentDomain(d).value for d in domains))
        except ValueError:
            raise Invalid("domains", "dominio di valutazione non previsto") from None
    else:
        default = policy.default_domains(side)
        if not default:
            raise Invalid("domains", f"indicare i domini di valutazione: nessun valore predefinito per il lato "
                                     f"'{side}'")
        doms = [d.value for d in default]
    clash = (await session.execute(sa.select(VmdAssessor.id).where(
        VmdAssessor.vmd_id == vmd.id, VmdAssessor.user_id == user_id))).scalar_one_or_none()
    if clash is not None:
        raise Conflict("L'operatore è già valutatore di questa VMD.", assessor_id=str(clash))
    a = VmdAssessor(vmd_id=vmd.id, user_id=user_id, organisation_id=org.id, side=side, domains=doms,
                    added_at=clock.now())
    session.add(a)
    await session.flush()
    assignment = await _assign(session, vmd, AssignmentReason.assessor, actor_id=principal.user_id, user_id=user_id)
    item = await work_items.create(
        session, kind=KIND_ASSESSMENT, title=f"Valutazione multidimensionale — {VMD_TRIGGER_LABELS[str(vmd.trigger)]}",
        source_type=SOURCE, source_id=vmd.id, ambito_id=vmd.ambito_id, assignee_user_id=user_id,
        due_at=vmd.due_at, person_id=vmd.person_id, cartella_id=vmd.cartella_id,
        dedup_key=f"vmd:{vmd.id}:assessor:{user_id}",
        data={"vmd_id": str(vmd.id), "assessor_id": str(a.id), "domains": doms})
    await _record(session, vmd, "assessor_added", actor_id=principal.user_id, detail={
        "assessor_id": str(a.id), "user_id": str(user_id), "organisation_id": str(org.id), "side": side,
        "domains": doms, "assignment_id": str(assignment.id), "work_item_id": str(item.id)})
    _audit("create", vmd, object_type="vmd_assessor", object_ids=[a.id, vmd.id])
    return a


async def _my_assessor(session: AsyncSession, vmd: Vmd, principal: Principal, *, what: str) -> VmdAssessor:
    a = (await session.execute(sa.select(VmdAssessor).where(
        VmdAssessor.vmd_id == vmd.id, VmdAssessor.user_id == principal.user_id))).scalar_one_or_none()
    if a is None:
        raise Forbidden(f"Solo i valutatori di questa VMD possono {what}.", reason="not_assessor")
    return a


# ================================================================================================ responses
def _json_answers(answers: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, (date, datetime)) else v) for k, v in answers.items()}


def _summary_outcome(result) -> str | None:
    for out in result.outcomes.values():
        return str(out.value)[:40]
    for sc in result.scores.values():
        if sc.band is not None:
            return sc.band.code[:40]
    return None


async def record_response(session: AsyncSession, *, principal: Principal, vmd_id: uuid.UUID, instrument_code: str,
                          instrument_version: int | None = None, answers: Any) -> InstrumentResponse:
    """An assessor's answers to an instrument version (latest active when no version is given), validated and
    scored by the engine. The instrument's domains must intersect the assessor's own (policy.may_fill).
    Every check runs before anything is written."""
    vmd = await _load_for_write(session, principal, vmd_id)
    assessor = await _my_assessor(session, vmd, principal, what="registrare strumenti di valutazione")
    if await active_membership(session, vmd.team_id, principal.user_id) is None:
        raise Forbidden("Non sei più un membro attivo dell'équipe della VMD.", reason="not_equipe_member")
    target = next_state(vmd.state, VmdAction.record_response)
    if assessor.signed_at is not None:
        raise Conflict("Hai già firmato la valutazione: non puoi aggiungere altri strumenti.")
    try:
        definition = instruments.get(instrument_code, instrument_version)
    except NotFound as e:
        field = "instrument_version" if "version" in e.extra else "instrument_code"
        raise Invalid(field, e.detail, instrument=instrument_code) from None
    inst_domains = [d.value for d in definition.domains]
    if not policy.may_fill(assessor.domains, inst_domains):
        raise Forbidden(
            f"Lo strumento '{definition.code}' riguarda i domini {inst_domains}, che non sono tra quelli del "
            f"valutatore {list(assessor.domains)}.",
            errors=[{"field": "instrument_code", "reason": "strumento fuori dai domini del valutatore"}],
            instrument=definition.code)
    try:
        result = instruments.submit(definition, answers)
    except Conflict as e:
        raise Conflict(e.detail, errors=[{"field": "instrument_version", "reason": "versione ritirata"}],
                       **e.extra) from None
    resp = InstrumentResponse(
        person_id=vmd.person_id, context_type=CONTEXT, context_id=vmd.id, instrument_code=definition.code,
        instrument_version=definition.version, answers=_json_answers(dict(answers)),
        scores=result.model_dump(mode="json"), outcome=_summary_outcome(result), author_id=principal.user_id,
        author_org_id=assessor.organisation_id, recorded_at=clock.now())
    session.add(resp)
    await session.flush()
    vmd.state = target
    await _record(session, vmd, "response_recorded", actor_id=principal.user_id, detail={
        "response_id": str(resp.id), "instrument": definition.code, "version": definition.version,
        "assessor_id": str(assessor.id)})
    _audit("create", vmd, object_type="instrument_response", object_ids=[resp.id, vmd.id])
    return resp


# ================================================================================================ sign-off
async def sign(session: AsyncSession, *, principal: Principal, vmd_id: uuid.UUID) -> VmdAssessor:
    """An assessor signs their part. Refused (403) to anyone who is not an active member of the equipe or not an
    assessor of this VMD; 409 when already signed, with nothing recorded, or in the wrong state. Signing completes
    the assessor's work item and recomputes `integrated` (policy.is_integrated)."""
    vmd = await _load_for_write(session, principal, vmd_id)
    if await active_membership(session, vmd.team_id, principal.user_id) is None:
        raise Forbidden("Firma rifiutata: non sei un membro attivo dell'équipe che svolge questa VMD.",
                        reason="not_equipe_member")
    assessor = await _my_assessor(session, vmd, principal, what="firmare la valutazione")
    if assessor.signed_at is not None:
        raise Conflict("Hai già firmato questa valutazione.")
    target = next_state(vmd.state, VmdAction.sign)
    filled = (await session.execute(sa.select(InstrumentResponse.id).where(
        InstrumentResponse.context_type == CONTEXT, InstrumentResponse.context_id == vmd.id,
        InstrumentResponse.author_id == principal.user_id).limit(1))).first()
    if filled is None:
        raise Conflict("Prima di firmare registra almeno uno strumento di valutazione dei tuoi domini.")
    assessor.signed_at = clock.now()
    session.add(assessor)
    await session.flush()
    vmd.integrated = policy.is_integrated(await _signed_sides(session, vmd.id))
    vmd.state = target
    await work_items.close_for_source(session, source_type=SOURCE, source_id=vmd.id, kinds=[KIND_ASSESSMENT],
                                      done=True, actor_id=principal.user_id, assignee_user_id=principal.user_id)
    await _record(session, vmd, "signed", actor_id=principal.user_id, detail={
        "assessor_id": str(assessor.id), "side": assessor.side, "integrated": vmd.integrated})
    _audit("update", vmd, object_type="vmd_assessor", object_ids=[assessor.id, vmd.id])
    return assessor


# ================================================================================================ meeting
async def _check_participants(session: AsyncSession, vmd: Vmd, participants: list[dict[str, Any]]) -> list[dict]:
    if not participants:
        raise Invalid("participants", "indicare almeno un partecipante")
    out: list[dict[str, Any]] = []
    user_ids = {uuid.UUID(str(p["user_id"])) for p in participants if p.get("user_id")}
    known: set[uuid.UUID] = set()
    if user_ids:
        known = set((await session.execute(sa.select(AppUser.id).where(
            AppUser.id.in_(list(user_ids)), AppUser.ambito_id == vmd.ambito_id,
            AppUser.active.is_(True)))).scalars())
    errors: list[tuple[str, str]] = []
    for i, p in enumerate(participants):
        uid = p.get("user_id")
        name = (p.get("name") or "").strip() or None
        if uid is None and name is None:
            errors.append((f"participants.{i}", "indicare l'operatore (user_id) o il nome del partecipante"))
            continue
        if uid is not None and uuid.UUID(str(uid)) not in known:
            errors.append((f"participants.{i}.user_id", "operatore non trovato nell'Ambito o non attivo"))
            continue
        out.append({k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in
                    {"user_id": uid, "name": name, "organisation": p.get("organisation"),
                     "role": p.get("role")}.items() if v is not None})
    if errors:
        raise Invalid.many(errors)
    return out


async def hold_meeting(session: AsyncSession, *, principal: Principal, vmd_id: uuid.UUID, held_at: datetime,
                       participants: list[dict[str, Any]], minutes: str, decision: str | None = None) -> EquipeMeeting:
    """The equipe meeting (participants: operators by user_id and external people by name; minutes; decision).
    Moves the VMD to equipe_review."""
    vmd = await _load_for_write(session, principal, vmd_id)
    await _require_member(session, vmd, principal, what="registrare la riunione d'équipe")
    target = next_state(vmd.state, VmdAction.hold_meeting)
    if held_at.tzinfo is None:
        raise Invalid("held_at", "indicare data e ora con il fuso orario")
    if held_at > clock.now():
        raise Invalid("held_at", "la riunione non può essere registrata prima che si tenga")
    if held_at < vmd.requested_at:
        raise Invalid("held_at", "la riunione precede la richiesta di VMD")
    minutes = (minutes or "").strip()
    if not minutes:
        raise Invalid("minutes", "il verbale è obbligatorio")
    people = await _check_participants(session, vmd, participants)
    m = EquipeMeeting(vmd_id=vmd.id, held_at=held_at, participants=people, minutes=minutes,
                      decision=(decision or "").strip() or None, recorded_by=principal.user_id,
                      recorded_at=clock.now())
    session.add(m)
    await session.flush()
    vmd.state = target
    await _record(session, vmd, "meeting_held", actor_id=principal.user_id,
                  detail={"meeting_id": str(m.id), "participants": len(people)})
    _audit("create", vmd, object_type="equipe_meeting", object_ids=[m.id, vmd.id])
    return m


# ================================================================================================ outcome
async def conclude(session: AsyncSession, *, principal: Principal, vmd_id: uuid.UUID, outcome: VmdOutcome | str,
                   notes: str | None = None, reassessment_due: date | None = None) -> Vmd:
    """Outcome of the equipe. Needs at least one signed assessor and an equipe meeting. Completes the equipe's
    work item; open assessor items (assessors who never signed) are cancelled."""
    vmd = await _load_for_write(session, principal, vmd_id)
    await _require_member(session, vmd, principal, what="concludere la valutazione")
    target = next_state(vmd.state, VmdAction.conclude)
    try:
        out = VmdOutcome(outcome)
    except ValueError:
        raise Invalid("outcome", "esito non previsto") from None
    signed = await _signed_sides(session, vmd.id)
    if not signed:
        raise Conflict("Per concludere serve la firma di almeno un valutatore.")
    met = (await session.execute(sa.select(EquipeMeeting.id).where(EquipeMeeting.vmd_id == vmd.id).limit(1))).first()
    if met is None:
        raise Conflict("Per concludere serve la riunione d'équipe.")
    if reassessment_due is not None and reassessment_due <= _today():
        raise Invalid("reassessment_due", "la data di rivalutazione deve essere futura")
    notes = (notes or "").strip() or None
    vmd.outcome, vmd.outcome_notes, vmd.reassessment_due = out, notes, reassessment_due
    vmd.concluded_at = clock.now()
    vmd.integrated = policy.is_integrated(signed)
    vmd.state = target
    await work_items.close_for_source(session, source_type=SOURCE, source_id=vmd.id, kinds=[KIND_EQUIPE],
                                      done=True, actor_id=principal.user_id)
    dropped = await work_items.close_for_source(session, source_type=SOURCE, source_id=vmd.id,
                                                kinds=[KIND_ASSESSMENT])
    await _record(session, vmd, "concluded", actor_id=principal.user_id, detail={
        "outcome": out.value, "integrated": vmd.integrated, "unsigned_items_cancelled": dropped})
    _audit("update", vmd)
    return vmd


async def cancel(session: AsyncSession, *, principal: Principal, vmd_id: uuid.UUID, reason: str) -> Vmd:
    """Withdrawn, died, admitted elsewhere...: by an equipe member or the requester. Closes the VMD's work items
    and ends the cartella assignments it wrote (their legal basis ends with it)."""
    vmd = await _load_for_write(session, principal, vmd_id)
    if vmd.requested_by != principal.user_id:
        await _require_member(session, vmd, principal, what="annullare la valutazione")
    reason = (reason or "").strip()
    next_state(vmd.state, VmdAction.cancel)
    if not reason:
        raise Invalid("reason", "indicare il motivo dell'annullamento")
    await _cancel_row(session, vmd, reason=reason, actor_id=principal.user_id)
    _audit("update", vmd)
    return vmd


async def _cancel_row(session: AsyncSession, vmd: Vmd, *, reason: str, actor_id: uuid.UUID | None,
                      action: str = "cancelled") -> None:
    vmd.state = next_state(vmd.state, VmdAction.cancel)
    vmd.cancelled_at, vmd.cancel_reason = clock.now(), reason[:500]
    closed = await work_items.close_for_source(session, source_type=SOURCE, source_id=vmd.id)
    now = clock.now()
    active = (await session.execute(sa.select(CartellaAssignment.id).where(
        CartellaAssignment.source_type == SOURCE, CartellaAssignment.source_id == vmd.id,
        sa.or_(CartellaAssignment.valid_to.is_(None), CartellaAssignment.valid_to > now))
        .order_by(CartellaAssignment.id))).scalars().all()
    for aid in active:
        await cartelle.end_assignment(session, assignment_id=aid, actor_id=actor_id)
    await _record(session, vmd, action, actor_id=actor_id, detail={
        "work_items_cancelled": closed, "assignments_ended": len(active)})


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
    prev = await _load_for_write(session, principal, vmd_id)
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
    await _record(session, prev, "reassessment_requested", actor_id=principal.user_id,
                  detail={"new_vmd_id": str(new.id)})
    # The reminder has done its job: the new VMD carries the work from here.
    await work_items.close_for_source(session, source_type=SOURCE, source_id=prev.id, kinds=["vmd.reassessment"])
    return new
