"""The equipe's work on a VMD: assessors from both sides, instruments, sign-off, equipe meetings.

The same rules as service.py: every write locks the VMD row, checks the transition table, bumps the version and
writes one history row. Managing (assessors, meetings) needs active membership of the equipe; recording
instruments and signing needs being an assessor of this VMD who is still an active member.
"""
from __future__ import annotations

import uuid
from datetime import datetime
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
)
from domain.assessment.service import (
    CONTEXT,
    KIND_ASSESSMENT,
    SOURCE,
    assign_from_vmd,
    audit_vmd,
    load_for_write,
    membership_side,
    require_member,
    signed_sides,
    store_response,
    write_history,
)
from domain.assessment.states import VmdAction, next_state
from domain.kernel import clock, work_items
from domain.kernel.errors import Conflict, Forbidden, Invalid, NotFound
from domain.registry.models import AssignmentReason
from domain.security import directory
from domain.security.permissions import Permission
from domain.security.principal import Principal
from schemas.instruments import AssessmentDomain

__all__ = ["add_assessor", "hold_meeting", "record_response", "sign"]


# ================================================================================================ assessors
async def add_assessor(session: AsyncSession, *, principal: Principal, vmd_id: uuid.UUID, user_id: uuid.UUID,
                       domains: list[AssessmentDomain | str] | None = None) -> VmdAssessor:
    """An active member of the equipe becomes an assessor; the side is the one of the organisation they bring
    to the team (TeamMember.organisation_id → Organisation.side). Writes the cartella assignment (assessor) and
    the assessor's work item (`vmd.assessment`, due when the VMD is due)."""
    vmd = await load_for_write(session, principal, vmd_id)
    await require_member(session, vmd, principal, what="aggiungere valutatori")
    next_state(vmd.state, VmdAction.add_assessor)
    membership = await membership_side(session, vmd.team_id, user_id)
    if membership is None:
        raise Invalid("user_id", "l'operatore non è un membro attivo dell'équipe della VMD")
    org_id, side = membership
    if Permission.vmd_assess not in await directory.user_permissions(session, user_id):
        raise Invalid("user_id", "l'operatore non ha un ruolo abilitato alla valutazione (vmd.assess)")
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
    a = VmdAssessor(vmd_id=vmd.id, user_id=user_id, organisation_id=org_id, side=side, domains=doms,
                    added_at=clock.now())
    session.add(a)
    await session.flush()
    assignment = await assign_from_vmd(session, vmd, AssignmentReason.assessor, actor_id=principal.user_id,
                                       user_id=user_id)
    item = await work_items.create(
        session, kind=KIND_ASSESSMENT, title=f"Valutazione multidimensionale — {VMD_TRIGGER_LABELS[str(vmd.trigger)]}",
        source_type=SOURCE, source_id=vmd.id, ambito_id=vmd.ambito_id, assignee_user_id=user_id,
        due_at=vmd.due_at, person_id=vmd.person_id, cartella_id=vmd.cartella_id,
        dedup_key=f"vmd:{vmd.id}:assessor:{user_id}",
        data={"vmd_id": str(vmd.id), "assessor_id": str(a.id), "domains": doms})
    await write_history(session, vmd, "assessor_added", actor_id=principal.user_id, detail={
        "assessor_id": str(a.id), "user_id": str(user_id), "organisation_id": str(org_id), "side": side,
        "domains": doms, "assignment_id": str(assignment.id), "work_item_id": str(item.id)})
    audit_vmd("create", vmd, object_type="vmd_assessor", object_ids=[a.id, vmd.id])
    return a


async def _my_assessor(session: AsyncSession, vmd: Vmd, principal: Principal, *, what: str) -> VmdAssessor:
    a = (await session.execute(sa.select(VmdAssessor).where(
        VmdAssessor.vmd_id == vmd.id, VmdAssessor.user_id == principal.user_id))).scalar_one_or_none()
    if a is None:
        raise Forbidden(f"Solo i valutatori di questa VMD possono {what}.", reason="not_assessor")
    return a


# ================================================================================================ responses
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
    vmd = await load_for_write(session, principal, vmd_id)
    assessor = await _my_assessor(session, vmd, principal, what="registrare strumenti di valutazione")
    if await directory.active_membership(session, vmd.team_id, principal.user_id) is None:
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
    resp = await store_response(
        session, person_id=vmd.person_id, context_type=CONTEXT, context_id=vmd.id, definition=definition,
        answers=answers, result=result, outcome=_summary_outcome(result), author_id=principal.user_id,
        author_org_id=assessor.organisation_id)
    vmd.state = target
    await write_history(session, vmd, "response_recorded", actor_id=principal.user_id, detail={
        "response_id": str(resp.id), "instrument": definition.code, "version": definition.version,
        "assessor_id": str(assessor.id)})
    audit_vmd("create", vmd, object_type="instrument_response", object_ids=[resp.id, vmd.id])
    return resp


# ================================================================================================ sign-off
async def sign(session: AsyncSession, *, principal: Principal, vmd_id: uuid.UUID) -> VmdAssessor:
    """An assessor signs their part. Refused (403) to anyone who is not an active member of the equipe or not an
    assessor of this VMD; 409 when already signed, with nothing recorded, or in the wrong state. Signing completes
    the assessor's work item and recomputes `integrated` (policy.is_integrated)."""
    vmd = await load_for_write(session, principal, vmd_id)
    if await directory.active_membership(session, vmd.team_id, principal.user_id) is None:
        # the signer is the caller: the field named is the token's user, so a client can tell whom it refused
        raise Forbidden("Firma rifiutata: non sei un membro attivo dell'équipe che svolge questa VMD.",
                        reason="not_equipe_member", errors=[
                            {"field": "user_id", "reason": "chi firma non è un membro attivo dell'équipe della VMD"}])
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
    vmd.integrated = policy.is_integrated(await signed_sides(session, vmd.id))
    vmd.state = target
    await work_items.close_for_source(session, source_type=SOURCE, source_id=vmd.id, kinds=[KIND_ASSESSMENT],
                                      done=True, actor_id=principal.user_id, assignee_user_id=principal.user_id)
    await write_history(session, vmd, "signed", actor_id=principal.user_id, detail={
        "assessor_id": str(assessor.id), "side": assessor.side, "integrated": vmd.integrated})
    audit_vmd("update", vmd, object_type="vmd_assessor", object_ids=[assessor.id, vmd.id])
    return assessor


# ================================================================================================ meeting
async def _check_participants(session: AsyncSession, vmd: Vmd, participants: list[dict[str, Any]]) -> list[dict]:
    if not participants:
        raise Invalid("participants", "indicare almeno un partecipante")
    out: list[dict[str, Any]] = []
    user_ids = {uuid.UUID(str(p["user_id"])) for p in participants if p.get("user_id")}
    known = await directory.active_users(session, user_ids, vmd.ambito_id)
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
    vmd = await load_for_write(session, principal, vmd_id)
    await require_member(session, vmd, principal, what="registrare la riunione d'équipe")
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
    await write_history(session, vmd, "meeting_held", actor_id=principal.user_id,
                        detail={"meeting_id": str(m.id), "participants": len(people)})
    audit_vmd("create", vmd, object_type="equipe_meeting", object_ids=[m.id, vmd.id])
    return m
