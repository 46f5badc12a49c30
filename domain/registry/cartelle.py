"""Cartella sociale: one per person per area, owned by a comune fixed at opening (the owner rule), its case manager,
transfers when the person moves, closing, and a full change history. Who works on it and why lives in
assignments.py, which builds on the row helpers here (lock, record, check_owner).

Every query that reads cartelle goes through `readable(principal)`: the access-control row filter
(domain.registry.policy.cartella_filter: owning comune through the organisation tree, assignments to the user, a
team or an organisation, break-glass), deny by default. A single cartella is reached through
`policy.cartella_in_scope`, which also checks consent for the roles that need it (403 consent_required) and answers
404 when the row is outside the scope. Every read and write records an audit entry.

Every change bumps `Cartella.version` and writes one `entity_history` row (entity_type "cartella"), assignment
changes included, so the history of a cartella is one ordered stream.
"""
from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from domain.kernel import clock, history
from domain.kernel.errors import Conflict, Forbidden, Invalid, NotFound
from domain.kernel.validity import active_sql, row_active_on
from domain.registry import persons, policy
from domain.registry.models import (
    Area,
    AssignmentReason,
    Cartella,
    CartellaAssignment,
    CartellaStatus,
    CartellaTransfer,
    Person,
    PersonStatus,
)
from domain.registry.policy import ConsentRequired
from domain.security import audit, directory
from domain.security.principal import Principal

ENTITY = "cartella"
MERGE_CLOSE_REASON = "unita per fusione anagrafica"
MAX_PAGE = 200


# ---------------------------------------------------------------- row visibility (one place)
def readable(principal: Principal) -> sa.ColumnElement[bool]:
    """The cartelle a principal may see: the access-control row filter (deny by default)."""
    return policy.cartella_filter(principal)


def _readable_select(principal: Principal) -> sa.Select:
    return sa.select(Cartella).where(readable(principal))


def audit_cartella(action: str, c: Cartella, *, object_type: str = "cartella", object_ids=None,
           result_count: int | None = None) -> None:
    audit.record(action=action, object_type=object_type, object_ids=object_ids if object_ids is not None else [c.id],
                 person_ids=[c.person_id], result_count=result_count)


async def get_cartella(session: AsyncSession, *, principal: Principal, cartella_id: uuid.UUID,
                       for_update: bool = False, audited: bool = True) -> Cartella:
    """The cartella if the row filter reaches it (404 otherwise; 403 consent_required when only a role that needs
    the person's consent reaches it and the consent is missing). One query."""
    found = await policy.cartella_in_scope(session, principal, cartella_id, for_update=for_update)
    if audited:
        audit_cartella("read", found)
    return found


async def check_owner(session: AsyncSession, principal: Principal, c: Cartella,
                       detail: str = "Chiudere o trasferire la cartella spetta al comune titolare.") -> None:
    """Closing, transferring, choosing who works on the case are acts of the comune that owns the social function
    (or of a level above it): a joint worker who reaches the cartella through an assignment may not do them (403)."""
    owner = (await session.execute(sa.select(sa.exists().where(Cartella.id == c.id, policy.owner_filter(principal)))
                                   )).scalar()
    if not owner:
        raise Forbidden(detail, reason="not_owner")


async def lock(session: AsyncSession, cartella_id: uuid.UUID) -> Cartella:
    found = (await session.execute(
        sa.select(Cartella).where(Cartella.id == cartella_id).with_for_update()
        .execution_options(populate_existing=True)
    )).scalar_one_or_none()
    if found is None:
        raise NotFound("Cartella non trovata.")
    return found


async def _resolve_person(session: AsyncSession, *, principal: Principal, person_id: uuid.UUID) -> Person:
    """The person in the principal's Ambito; a merged id resolves to the person it was merged into."""
    for _ in range(5):
        person = (await session.execute(
            sa.select(Person).where(Person.id == person_id, Person.ambito_id == principal.ambito_id)
        )).scalar_one_or_none()
        if person is None:
            break
        if person.status != PersonStatus.merged or person.merged_into_id is None:
            return person
        person_id = person.merged_into_id
    raise NotFound("Persona non trovata.")


async def _require_case(session: AsyncSession, principal: Principal, person: Person) -> policy.PersonAccess:
    """The principal has the person's case (full projection: in scope, or nobody has the person in charge yet)."""
    access = await policy.person_access(session, principal, person.id, person.ambito_id)
    if access.consent_missing:
        raise ConsentRequired("Consenso della persona assente o revocato per questa finalità.")
    if access.projection != "full":
        raise NotFound("Persona non trovata.")
    return access


async def list_for_person(session: AsyncSession, *, principal: Principal, person_id: uuid.UUID,
                          status: CartellaStatus | None = None, limit: int = 50,
                          cursor: uuid.UUID | None = None) -> tuple[list[Cartella], uuid.UUID | None]:
    """A person's cartelle within the principal's scope, oldest first (uuid7 ids are time-ordered), keyset on id.
    A person the principal cannot see at all is 404; a role that reaches the person only with consent gets 403
    consent_required when it is missing; the cartelle are case data, so a registering role that sees only the
    person's identity gets 404 as well."""
    person = await _resolve_person(session, principal=principal, person_id=person_id)
    await _require_case(session, principal, person)
    limit = max(1, min(limit, MAX_PAGE))
    stmt = _readable_select(principal).where(Cartella.person_id == person.id)
    if status is not None:
        stmt = stmt.where(Cartella.status == status)
    if cursor is not None:
        stmt = stmt.where(Cartella.id > cursor)
    rows = list((await session.execute(stmt.order_by(Cartella.id).limit(limit + 1))).scalars())
    nxt = rows[limit - 1].id if len(rows) > limit else None
    rows = rows[:limit]
    audit.record(action="list", object_type="cartella", object_ids=[c.id for c in rows], person_ids=[person.id],
                 result_count=len(rows))
    return rows, nxt


async def transfers_of(session: AsyncSession, c: Cartella) -> list[CartellaTransfer]:
    """The transfers of a cartella the caller already holds (checked and audited)."""
    return list((await session.execute(
        sa.select(CartellaTransfer).where(CartellaTransfer.cartella_id == c.id)
        .order_by(CartellaTransfer.at, CartellaTransfer.id)
    )).scalars())


async def list_transfers(session: AsyncSession, *, principal: Principal,
                         cartella_id: uuid.UUID) -> list[CartellaTransfer]:
    c = await get_cartella(session, principal=principal, cartella_id=cartella_id, audited=False)
    rows = await transfers_of(session, c)
    audit_cartella("read", c, object_type="cartella_transfer", object_ids=[t.id for t in rows], result_count=len(rows))
    return rows


async def cartella_history(session: AsyncSession, *, principal: Principal, cartella_id: uuid.UUID) -> list:
    c = await get_cartella(session, principal=principal, cartella_id=cartella_id, audited=False)
    rows = await history.versions(session, entity_type=ENTITY, entity_id=cartella_id)
    audit_cartella("read", c, object_type="cartella_history", result_count=len(rows))
    return rows


def active_assignment(at: datetime) -> sa.ColumnElement[bool]:
    return active_sql(CartellaAssignment, at)


def is_active(a: CartellaAssignment, at: datetime | None = None) -> bool:
    return row_active_on(a, at or clock.now())


# ---------------------------------------------------------------- history
async def record(session: AsyncSession, c: Cartella, action: str, *, actor_id: uuid.UUID | None,
                  detail: dict[str, Any] | None = None, bump: bool = True) -> None:
    if bump:
        c.version += 1
    session.add(c)
    await session.flush()
    data = {"state": history.snapshot(c)}  # same shape as the person history
    if detail:
        data["detail"] = {k: (str(v) if isinstance(v, (uuid.UUID, datetime, date)) else v)
                          for k, v in detail.items()}
    await history.record(session, entity_type=ENTITY, entity_id=c.id, version=c.version, action=action,
                         data=data, actor_id=actor_id)


def _check_version(c: Cartella, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != c.version:
        raise Conflict("La cartella è stata modificata da un'altra operazione: ricaricare e riprovare.",
                       current_version=c.version)


def require_open(c: Cartella) -> None:
    if c.status != CartellaStatus.open:
        raise Conflict("La cartella è chiusa.")


# ---------------------------------------------------------------- owning comune
async def _comune_of_ambito(session: AsyncSession, comune_id: uuid.UUID | None, ambito_id: uuid.UUID) -> bool:
    return comune_id is not None and comune_id in await persons.ambito_comuni(session, ambito_id)


async def owning_comune_for(session: AsyncSession, *, principal: Principal, person: Person,
                            explicit: uuid.UUID | None = None) -> tuple[uuid.UUID, str]:
    """The owner rule: residence comune > domicile comune (both only if in the Ambito) > explicit choice >
    the registering office's comune (the principal's comune role). Returns (comune id, rule used).
    An explicit comune that contradicts residence/domicile is refused, naming the field."""
    return choose_owner(person, await persons.ambito_comuni(session, principal.ambito_id), explicit=explicit,
                        offices=principal.orgs_for())


def choose_owner(person: Person, comuni: frozenset[uuid.UUID], *, explicit: uuid.UUID | None,
                 offices) -> tuple[uuid.UUID, str]:
    """`owning_comune_for` on the Ambito's comuni already read (an import decides it for many rows at once)."""
    for rule, cid in (("residence", person.residence_comune_id), ("domicile", person.domicile_comune_id)):
        if cid is not None and cid in comuni:
            if explicit is not None and explicit != cid:
                what = "residenza" if rule == "residence" else "domicilio"
                raise Invalid("owning_comune_id",
                              f"il comune titolare è il comune di {what} della persona ({cid}); "
                              "per un cambio di comune usare il trasferimento")
            return cid, rule
    if explicit is not None:
        if explicit not in comuni:
            raise Invalid("owning_comune_id", "non è un comune dell'Ambito")
        return explicit, "explicit"
    mine = sorted((o for o in offices if o in comuni), key=str)
    if len(mine) == 1:
        return mine[0], "office"
    if mine:
        raise Invalid("owning_comune_id", "l'operatore lavora per più comuni: indicare il comune titolare")
    raise Invalid("owning_comune_id",
                  "la persona non ha residenza né domicilio in un comune dell'Ambito: indicare il comune titolare")


# ---------------------------------------------------------------- use cases
async def open_cartella(session: AsyncSession, *, principal: Principal, person_id: uuid.UUID, area: Area | str,
                        owning_comune_id: uuid.UUID | None = None, legacy_code: str | None = None,
                        case_manager_id: uuid.UUID | None = None, require_case: bool = False,
                        opened_at: datetime | None = None) -> Cartella:
    """Open a cartella for a person in an area. One open cartella per person per area (409 otherwise).
    `require_case=True` (the API): the caller must have the person's case (full projection), so a comune does not
    open a cartella for a person another comune has in charge (404). Services with a rule of their own (the PUA
    referral opening the cartella of the area it refers to) call it without. `opened_at`: when an older platform
    opened it (an import); not in the future."""
    try:
        area = Area(area)
    except ValueError:
        raise Invalid("area", "area non prevista") from None
    person = await _resolve_person(session, principal=principal, person_id=person_id)
    if require_case:
        # A person already in charge elsewhere gets new cartelle from those who have the case (404 to the others);
        # the first cartella of a person nobody has in charge is opened by the registering roles.
        await _require_case(session, principal, person)
    if person.date_of_death is not None:
        raise Conflict("La persona risulta deceduta: non si può aprire una nuova cartella.")
    existing = (await session.execute(
        sa.select(Cartella.id).where(Cartella.person_id == person.id, Cartella.area == area,
                                     Cartella.status == CartellaStatus.open)
    )).scalar_one_or_none()
    if existing is not None:
        raise Conflict("La persona ha già una cartella aperta in quest'area.", existing_id=str(existing))
    comune_id, rule = await owning_comune_for(session, principal=principal, person=person,
                                              explicit=owning_comune_id)
    if case_manager_id is not None:
        await directory.require_operator(session, case_manager_id, person.ambito_id, field="case_manager_id")
    c = build_cartella(person, area, comune_id, principal=principal, legacy_code=legacy_code, opened_at=opened_at)
    try:
        async with session.begin_nested():
            session.add(c)
            await session.flush()
    except IntegrityError:
        raise Conflict("La persona ha già una cartella aperta in quest'area.") from None
    assignment = await record_opening(session, c, actor_id=principal.user_id, rule=rule,
                                      case_manager_id=case_manager_id)
    if assignment is not None:
        session.add_all([c, assignment])
    await session.flush()
    audit_cartella("create", c)
    return c


def build_cartella(person: Person, area: Area | str, owner: uuid.UUID, *, principal: Principal,
                   legacy_code: str | None = None, opened_at: datetime | None = None) -> Cartella:
    """A new open cartella (not yet added to the session); `opened_at` not in the future."""
    return Cartella(ambito_id=person.ambito_id, person_id=person.id, area=Area(area), owning_comune_id=owner,
                    status=CartellaStatus.open, opened_at=_opening_instant(opened_at), opened_by=principal.user_id,
                    legacy_code=legacy_code, version=1)


async def record_opening(session: AsyncSession, c: Cartella, *, actor_id: uuid.UUID | None, rule: str,
                         case_manager_id: uuid.UUID | None) -> CartellaAssignment | None:
    """The history of a cartella just built: version 1 `opened` (with the owner rule used), and with a case manager
    (an operator the caller has checked) version 2 `case_manager_changed`, the cartella's fields set, and the
    assignment returned for the caller to add once the cartella is in the database. Adds no row to the session
    but the history, so an import writes many cartelle at version 2 in one INSERT."""
    detail = {"owner_rule": rule}
    await history.record(session, entity_type=ENTITY, entity_id=c.id, version=1, action="opened",
                         data={"state": history.snapshot(c), "detail": detail}, actor_id=actor_id)
    if case_manager_id is None:
        return None
    new = CartellaAssignment(cartella_id=c.id, reason=AssignmentReason.case_manager, user_id=case_manager_id,
                             valid_from=clock.now(), created_by=actor_id)
    c.case_manager_id, c.version = case_manager_id, 2
    await history.record(session, entity_type=ENTITY, entity_id=c.id, version=2, action="case_manager_changed",
                         data={"state": history.snapshot(c),
                               "detail": {"from": None, "to": str(case_manager_id), "assignment_id": str(new.id),
                                          "ended_assignment_ids": []}},
                         actor_id=actor_id)
    return new


def _opening_instant(opened_at: datetime | None) -> datetime:
    now = clock.now()
    if opened_at is None:
        return now
    if opened_at > now:
        raise Invalid("opened_at", "la data di apertura non può essere nel futuro")
    return opened_at


async def set_case_manager_row(session: AsyncSession, c: Cartella, user_id: uuid.UUID | None, *,
                            actor_id: uuid.UUID | None, source_type: str | None = None,
                            source_id: uuid.UUID | None = None) -> CartellaAssignment | None:
    """Change the case manager: ends the active case_manager assignments and writes the new one."""
    require_open(c)
    now = clock.now()
    previous = c.case_manager_id
    if user_id is not None:
        await directory.require_operator(session, user_id, c.ambito_id, field="case_manager_id")
    current = list((await session.execute(
        sa.select(CartellaAssignment).where(CartellaAssignment.cartella_id == c.id,
                                            CartellaAssignment.reason == AssignmentReason.case_manager,
                                            active_assignment(now))
    )).scalars())
    if user_id is not None and previous == user_id and any(a.user_id == user_id for a in current):
        return next(a for a in current if a.user_id == user_id)
    for a in current:
        a.valid_to = now
        session.add(a)
    new = None
    if user_id is not None:
        new = CartellaAssignment(cartella_id=c.id, reason=AssignmentReason.case_manager, user_id=user_id,
                                 valid_from=now, source_type=source_type, source_id=source_id, created_by=actor_id)
        session.add(new)
    c.case_manager_id = user_id
    await session.flush()
    await record(session, c, "case_manager_changed", actor_id=actor_id,
                  detail={"from": previous, "to": user_id,
                          "assignment_id": new.id if new else None,
                          "ended_assignment_ids": [str(a.id) for a in current]})
    return new


async def set_case_manager(session: AsyncSession, *, principal: Principal, cartella_id: uuid.UUID,
                           user_id: uuid.UUID | None, expected_version: int | None = None) -> Cartella:
    """Set, change or remove (user_id None) the case manager of an open cartella."""
    c = await get_cartella(session, principal=principal, cartella_id=cartella_id, audited=False)
    audit_cartella("update", c)
    await check_owner(session, principal, c, "Il case manager della cartella lo sceglie il comune titolare.")
    c = await lock(session, cartella_id)
    _check_version(c, expected_version)
    if c.case_manager_id == user_id:
        return c
    await set_case_manager_row(session, c, user_id, actor_id=principal.user_id)
    return c


def _closing_instant(c: Cartella, closed_on: date | None) -> datetime:
    today = clock.today_rome()
    now = clock.now()
    if closed_on is None or closed_on == today:
        return now
    if closed_on > today:
        raise Invalid("closed_on", "la data di chiusura non può essere futura")
    opened_day = c.opened_at.astimezone(clock.ROME).date()
    if closed_on < opened_day:
        raise Invalid("closed_on", "la data di chiusura precede l'apertura della cartella")
    start = clock.rome_day_bounds(closed_on)[0]
    return max(start, c.opened_at)


async def _owner_act(session: AsyncSession, principal: Principal, cartella_id: uuid.UUID, action: str,
                     expected_version: int | None) -> Cartella:
    """The open cartella, locked, for an act of its owning comune (audited as `action`, 403 to anyone else)."""
    c = await get_cartella(session, principal=principal, cartella_id=cartella_id, audited=False)
    audit_cartella(action, c)
    await check_owner(session, principal, c)
    c = await lock(session, cartella_id)
    _check_version(c, expected_version)
    require_open(c)
    return c


async def close_cartella(session: AsyncSession, *, principal: Principal, cartella_id: uuid.UUID, reason: str,
                         closed_on: date | None = None, expected_version: int | None = None) -> Cartella:
    """Close an open cartella; its active assignments end at the closing instant."""
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("reason", "indicare il motivo della chiusura")
    c = await _owner_act(session, principal, cartella_id, "close", expected_version)
    at = _closing_instant(c, closed_on)
    await _close(session, c, at=at, reason=reason, actor_id=principal.user_id, action="closed")
    return c


async def _close(session: AsyncSession, c: Cartella, *, at: datetime, reason: str, actor_id: uuid.UUID | None,
                 action: str, end_assignments: bool = True, detail: dict | None = None) -> None:
    ended = 0
    if end_assignments:
        active = list((await session.execute(
            sa.select(CartellaAssignment)
            .where(CartellaAssignment.cartella_id == c.id, active_assignment(clock.now()))
        )).scalars())
        for a in active:
            a.valid_to = max(a.valid_from, at)
            session.add(a)
        ended = len(active)
    c.status = CartellaStatus.closed
    c.closed_at = at
    c.close_reason = reason[:200]
    await record(session, c, action, actor_id=actor_id, detail={"ended_assignments": ended, **(detail or {})})


async def transfer_cartella(session: AsyncSession, *, principal: Principal, cartella_id: uuid.UUID,
                            to_comune_id: uuid.UUID | None = None, reason: str | None = None,
                            expected_version: int | None = None) -> tuple[Cartella, CartellaTransfer]:
    """The person moved: the cartella changes owner. Without `to_comune_id` the new owner is the person's current
    residence (else domicile) comune. Assignments are kept: the new comune sets its own case manager."""
    c = await _owner_act(session, principal, cartella_id, "transfer", expected_version)
    if to_comune_id is None:
        person = await session.get(Person, c.person_id)
        for cid in (person.residence_comune_id, person.domicile_comune_id):
            if await _comune_of_ambito(session, cid, c.ambito_id):
                to_comune_id = cid
                break
        if to_comune_id is None or to_comune_id == c.owning_comune_id:
            raise Invalid("to_comune_id", "indicare il comune di destinazione: la residenza della persona "
                                          "non indica un nuovo comune dell'Ambito")
    elif not await _comune_of_ambito(session, to_comune_id, c.ambito_id):
        raise Invalid("to_comune_id", "non è un comune dell'Ambito")
    if to_comune_id == c.owning_comune_id:
        raise Invalid("to_comune_id", "è già il comune titolare della cartella")
    t = CartellaTransfer(cartella_id=c.id, from_comune_id=c.owning_comune_id, to_comune_id=to_comune_id,
                         reason=(reason or None) and reason[:200], by_user_id=principal.user_id, at=clock.now())
    session.add(t)
    c.owning_comune_id = to_comune_id
    await session.flush()
    await record(session, c, "transferred", actor_id=principal.user_id,
                  detail={"transfer_id": t.id, "from_comune_id": t.from_comune_id, "to_comune_id": to_comune_id,
                          "reason": t.reason})
    return c, t


# ---------------------------------------------------------------- readers for the contexts above
async def cartella_record(session: AsyncSession, cartella_id: uuid.UUID, *, ambito_id: uuid.UUID | None = None,
                          for_update: bool = False) -> Cartella | None:
    """The row, with no access check: for services that already hold the case (or a grant to it)."""
    q = sa.select(Cartella).where(Cartella.id == cartella_id)
    if ambito_id is not None:
        q = q.where(Cartella.ambito_id == ambito_id)
    if for_update:
        q = q.with_for_update()
    return (await session.execute(q)).scalar_one_or_none()


async def open_cartella_of(session: AsyncSession, person_id: uuid.UUID, area: Area | str) -> Cartella | None:
    """The person's open cartella of an area (at most one, a partial unique index holds it)."""
    return (await session.execute(sa.select(Cartella).where(
        Cartella.person_id == person_id, Cartella.area == Area(area).value,
        Cartella.status == CartellaStatus.open.value))).scalar_one_or_none()


async def open_cartelle_of(session, person_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
    """(id, area) of the person's open cartelle, in a stable order."""
    return [(r[0], str(r[1])) for r in (await session.execute(
        sa.select(Cartella.id, Cartella.area).where(Cartella.person_id == person_id,
                                                    Cartella.status == CartellaStatus.open.value)
        .order_by(Cartella.id))).all()]


def cartella_owner_sql(cartella_id_col) -> sa.ColumnElement[uuid.UUID]:
    """The owning comune of a cartella as a correlated scalar sub-query (indicators stratified by comune)."""
    return sa.select(Cartella.owning_comune_id).where(Cartella.id == cartella_id_col).scalar_subquery()


# ---------------------------------------------------------------- person merge
async def before_person_merge(session: AsyncSession, *, kept_id: uuid.UUID, merged_id: uuid.UUID) -> None:
    """Runs before `cartella.person_id` is re-pointed from the merged person to the kept one. Where both have an
    open cartella in the same area, the merged person's one is closed ('unita per fusione anagrafica') and its
    assignments move to the kept one, so the partial unique index (one open cartella per person per area) holds."""
    kept_by_area = {c.area: c for c in (await session.execute(
        sa.select(Cartella).where(Cartella.person_id == kept_id, Cartella.status == CartellaStatus.open)
        .order_by(Cartella.id).with_for_update()
    )).scalars()}
    dupes = [c for c in (await session.execute(
        sa.select(Cartella).where(Cartella.person_id == merged_id, Cartella.status == CartellaStatus.open)
        .order_by(Cartella.id).with_for_update()
    )).scalars() if c.area in kept_by_area]
    now = clock.now()
    for dup in dupes:
        kept = kept_by_area[dup.area]
        moved = list((await session.execute(
            sa.select(CartellaAssignment).where(CartellaAssignment.cartella_id == dup.id)
            .order_by(CartellaAssignment.id)
        )).scalars())
        kept_active = list((await session.execute(
            sa.select(CartellaAssignment).where(CartellaAssignment.cartella_id == kept.id, active_assignment(now))
        )).scalars())
        key = lambda a: (a.reason, a.user_id, a.team_id, a.organisation_id)  # noqa: E731
        kept_keys = {key(a) for a in kept_active}
        kept_has_cm = any(a.reason == AssignmentReason.case_manager for a in kept_active)
        adopted_cm = None
        for a in moved:
            if is_active(a, now):
                if key(a) in kept_keys or (a.reason == AssignmentReason.case_manager and kept_has_cm):
                    a.valid_to = max(now, a.valid_from)  # the kept cartella already has it
                elif a.reason == AssignmentReason.case_manager:
                    adopted_cm = a.user_id
                    kept_has_cm = True
            a.cartella_id = kept.id
            session.add(a)
        if adopted_cm is not None and kept.case_manager_id is None:
            kept.case_manager_id = adopted_cm
        await session.flush()
        dup.case_manager_id = None
        await _close(session, dup, at=now, reason=MERGE_CLOSE_REASON, actor_id=None, action="closed_by_merge",
                     end_assignments=False, detail={"kept_cartella_id": kept.id, "merged_person_id": merged_id,
                                                    "kept_person_id": kept_id})
        await record(session, kept, "merged_from", actor_id=None,
                      detail={"from_cartella_id": dup.id, "merged_person_id": merged_id,
                              "moved_assignments": len(moved), "case_manager_adopted": adopted_cm})
