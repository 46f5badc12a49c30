"""Who works on a cartella and why: assignments to a user, a team or an organisation for a period, with the
flow that gave them (`source_type`/`source_id`) and, for cross-organisation access, their legal basis.

The other contexts call `assign`, `end_assignment` and `end_assignments_of_source` for the assignments their
flows are the legal basis of (PUA referral, VMD, plan interventions); they hold the cartella already. Through the
API (`add_assignment`, `end_assignment_of`) the access list is the owning comune's: whoever reaches the cartella
only through an assignment cannot widen or change it (403). Every change is a version of the cartella.
"""
from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.kernel import clock
from domain.kernel.errors import Conflict, Invalid, NotFound
from domain.registry import cartelle
from domain.registry.models import AssignmentReason, Cartella, CartellaAssignment
from domain.security import directory
from domain.security.principal import Principal
from domain.territory import queries as territory

MAX_PAGE = cartelle.MAX_PAGE


async def list_assignments(session: AsyncSession, *, principal: Principal, cartella_id: uuid.UUID,
                           active: bool | None = None, limit: int = 50,
                           cursor: uuid.UUID | None = None) -> tuple[list[CartellaAssignment], uuid.UUID | None]:
    c = await cartelle.get_cartella(session, principal=principal, cartella_id=cartella_id, audited=False)
    limit = max(1, min(limit, MAX_PAGE))
    stmt = sa.select(CartellaAssignment).where(CartellaAssignment.cartella_id == cartella_id)
    if active is not None:
        now_active = cartelle.active_assignment(clock.now())
        stmt = stmt.where(now_active if active else sa.not_(now_active))
    if cursor is not None:
        stmt = stmt.where(CartellaAssignment.id > cursor)
    rows = list((await session.execute(stmt.order_by(CartellaAssignment.id).limit(limit + 1))).scalars())
    nxt = rows[limit - 1].id if len(rows) > limit else None
    rows = rows[:limit]
    cartelle.audit_cartella("list", c, object_type="cartella_assignment", object_ids=[a.id for a in rows],
                            result_count=len(rows))
    return rows, nxt


async def get_assignment(session: AsyncSession, *, principal: Principal, cartella_id: uuid.UUID,
                         assignment_id: uuid.UUID, audited: bool = True) -> CartellaAssignment:
    c = await cartelle.get_cartella(session, principal=principal, cartella_id=cartella_id, audited=False)
    found = (await session.execute(
        sa.select(CartellaAssignment).where(CartellaAssignment.id == assignment_id,
                                            CartellaAssignment.cartella_id == cartella_id)
    )).scalar_one_or_none()
    if found is None:
        raise NotFound("Assegnazione non trovata.")
    if audited:
        cartelle.audit_cartella("read", c, object_type="cartella_assignment", object_ids=[found.id])
    return found


async def _check_assignee(session: AsyncSession, c: Cartella, *, reason: AssignmentReason,
                          user_id: uuid.UUID | None, team_id: uuid.UUID | None,
                          organisation_id: uuid.UUID | None) -> None:
    given = [(f, v) for f, v in (("user_id", user_id), ("team_id", team_id), ("organisation_id", organisation_id))
             if v is not None]
    if len(given) != 1:
        raise Invalid("user_id", "indicare uno solo tra operatore (user_id), équipe (team_id) e "
                                 "organizzazione (organisation_id)")
    if reason == AssignmentReason.team and team_id is None:
        raise Invalid("team_id", "un'assegnazione di tipo équipe richiede team_id")
    if user_id is not None:
        if not await directory.is_active_user(session, user_id, c.ambito_id):
            raise Invalid("user_id", "operatore non trovato nell'Ambito o non attivo")
    elif team_id is not None:
        if await directory.get_team(session, team_id, c.ambito_id) is None:
            raise Invalid("team_id", "équipe non trovata nell'Ambito o non attiva")
    elif await territory.active_org(session, organisation_id, c.ambito_id) is None:
        raise Invalid("organisation_id", "organizzazione non trovata nell'Ambito o non attiva")


async def assign(session: AsyncSession, *, cartella_id: uuid.UUID, reason: AssignmentReason | str,
                 user_id: uuid.UUID | None = None, team_id: uuid.UUID | None = None,
                 organisation_id: uuid.UUID | None = None, source_type: str | None = None,
                 source_id: uuid.UUID | None = None, actor_id: uuid.UUID | None = None,
                 valid_to: datetime | None = None, legal_basis: str | None = None) -> CartellaAssignment:
    """Add who works on an open cartella and why. Idempotent: an identical active assignment (same reason,
    assignee and source) is returned instead of a new row. `case_manager` goes through the case-manager change
    (previous one ended, `Cartella.case_manager_id` updated). `legal_basis` is the ground of a cross-organisation
    access the flow gives (the PUA/VMD LEPS, the agreed plan); an existing assignment takes it when it has none.
    No visibility check: callers are services that already hold the cartella (the API checks it first)."""
    try:
        reason = AssignmentReason(reason)
    except ValueError:
        raise Invalid("reason", "motivo di assegnazione non previsto") from None
    c = await cartelle.lock(session, cartella_id)
    cartelle.require_open(c)
    now = clock.now()
    if valid_to is not None:
        if valid_to.tzinfo is None:
            raise Invalid("valid_to", "indicare il fuso orario")
        if valid_to <= now:
            raise Invalid("valid_to", "la fine della validità deve essere futura")
    await _check_assignee(session, c, reason=reason, user_id=user_id, team_id=team_id,
                          organisation_id=organisation_id)
    if reason == AssignmentReason.case_manager:
        if user_id is None:
            raise Invalid("user_id", "il case manager è un operatore (user_id)")
        if valid_to is not None:
            raise Invalid("valid_to", "il case manager resta in carica fino alla sostituzione")
        a = await cartelle.set_case_manager_row(session, c, user_id, actor_id=actor_id, source_type=source_type,
                                    source_id=source_id)
        assert a is not None
        return _with_legal_basis(session, a, legal_basis)
    same = (await session.execute(
        sa.select(CartellaAssignment).where(
            CartellaAssignment.cartella_id == c.id, CartellaAssignment.reason == reason,
            CartellaAssignment.user_id.is_not_distinct_from(user_id),
            CartellaAssignment.team_id.is_not_distinct_from(team_id),
            CartellaAssignment.organisation_id.is_not_distinct_from(organisation_id),
            CartellaAssignment.source_type.is_not_distinct_from(source_type),
            CartellaAssignment.source_id.is_not_distinct_from(source_id),
            cartelle.active_assignment(now)).limit(1)
    )).scalar_one_or_none()
    if same is not None:
        if valid_to is not None and same.valid_to != valid_to:
            same.valid_to = valid_to
            session.add(same)
            await cartelle.record(session, c, "assignment_changed", actor_id=actor_id,
                          detail={"assignment_id": same.id, "valid_to": valid_to})
        return _with_legal_basis(session, same, legal_basis)
    a = CartellaAssignment(cartella_id=c.id, reason=reason, user_id=user_id, team_id=team_id,
                           organisation_id=organisation_id, valid_from=now, valid_to=valid_to,
                           source_type=source_type, source_id=source_id, created_by=actor_id,
                           legal_basis=legal_basis)
    session.add(a)
    await session.flush()
    await cartelle.record(session, c, "assignment_added", actor_id=actor_id,
                  detail={"assignment_id": a.id, "reason": reason.value, "user_id": user_id, "team_id": team_id,
                          "organisation_id": organisation_id, "valid_to": valid_to,
                          "source_type": source_type, "source_id": source_id})
    return a


def _with_legal_basis(session: AsyncSession, a: CartellaAssignment, legal_basis: str | None) -> CartellaAssignment:
    if legal_basis is not None and a.legal_basis is None:
        a.legal_basis = legal_basis
        session.add(a)
    return a


async def end_assignments_of_source(session: AsyncSession, *, source_type: str, source_id: uuid.UUID,
                                    actor_id: uuid.UUID | None = None) -> int:
    """End the active assignments a record of another context gave (a cancelled VMD, an ended intervention)."""
    ids = (await session.execute(
        sa.select(CartellaAssignment.id).where(CartellaAssignment.source_type == source_type,
                                               CartellaAssignment.source_id == source_id,
                                               cartelle.active_assignment(clock.now()))
        .order_by(CartellaAssignment.id))).scalars().all()
    for aid in ids:
        await end_assignment(session, assignment_id=aid, actor_id=actor_id)
    return len(ids)


async def end_assignment(session: AsyncSession, *, assignment_id: uuid.UUID,
                         actor_id: uuid.UUID | None = None) -> None:
    """End an active assignment now. Ending the current case manager's assignment leaves the cartella without
    a case manager. Ending an assignment that already ended is a conflict."""
    a = (await session.execute(
        sa.select(CartellaAssignment).where(CartellaAssignment.id == assignment_id)
    )).scalar_one_or_none()
    if a is None:
        raise NotFound("Assegnazione non trovata.")
    c = await cartelle.lock(session, a.cartella_id)
    await session.refresh(a, with_for_update=True)
    now = clock.now()
    if a.valid_to is not None and a.valid_to <= now:
        raise Conflict("L'assegnazione è già terminata.")
    a.valid_to = max(now, a.valid_from)
    session.add(a)
    if a.reason == AssignmentReason.case_manager and c.case_manager_id == a.user_id:
        c.case_manager_id = None
    await session.flush()
    await cartelle.record(session, c, "assignment_ended", actor_id=actor_id,
                  detail={"assignment_id": a.id, "reason": a.reason, "user_id": a.user_id, "team_id": a.team_id,
                          "organisation_id": a.organisation_id})


async def add_assignment(session: AsyncSession, *, principal: Principal, cartella_id: uuid.UUID,
                         reason: AssignmentReason | str, user_id: uuid.UUID | None = None,
                         team_id: uuid.UUID | None = None, organisation_id: uuid.UUID | None = None,
                         source_type: str | None = None, source_id: uuid.UUID | None = None,
                         valid_to: datetime | None = None) -> CartellaAssignment:
    """`assign` for a caller that must reach the cartella first (the API): checked, then audited. Who works on a
    case is the owning comune's decision (or its sub-ambito coordinator's): whoever reaches the cartella only
    through an assignment cannot widen the access list (403)."""
    c = await cartelle.get_cartella(session, principal=principal, cartella_id=cartella_id, audited=False)
    await cartelle.check_owner(session, principal, c, "Le assegnazioni della cartella spettano al comune titolare.")
    a = await assign(session, cartella_id=c.id, reason=reason, user_id=user_id, team_id=team_id,
                     organisation_id=organisation_id, source_type=source_type, source_id=source_id,
                     actor_id=principal.user_id, valid_to=valid_to)
    cartelle.audit_cartella("assign", c, object_ids=[c.id, a.id])
    return a


async def end_assignment_of(session: AsyncSession, *, principal: Principal, cartella_id: uuid.UUID,
                            assignment_id: uuid.UUID) -> CartellaAssignment:
    """End an assignment of a cartella the caller reaches: checked, audited; returns the ended row."""
    c = await cartelle.get_cartella(session, principal=principal, cartella_id=cartella_id, audited=False)
    a = (await session.execute(
        sa.select(CartellaAssignment).where(CartellaAssignment.id == assignment_id,
                                            CartellaAssignment.cartella_id == c.id)
    )).scalar_one_or_none()
    if a is None:
        raise NotFound("Assegnazione non trovata.")
    cartelle.audit_cartella("end_assignment", c, object_ids=[c.id, a.id])
    await cartelle.check_owner(session, principal, c, "Le assegnazioni della cartella spettano al comune titolare.")
    await end_assignment(session, assignment_id=a.id, actor_id=principal.user_id)
    return a
