"""Beds and offers: a UDO operator declares a bed free; the system proposes it to the best-placed eligible entry
among those who chose that unit; the person's receipt starts the reply deadline (working days, kernel calendar);
acceptance is the admission, refusal follows the refusal rule, an expired offer counts as a refusal and the bed
goes to the next entry.

Concurrency (docs/decisions/waiting_list.md §6): the bed row is locked before it is offered, the candidate
person's open entries are locked before their offer is written, and two partial unique indexes (one open offer
per bed, one per person) make a lost race an error instead of a double offer. Acceptance locks the offer first.
"""
from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from domain.kernel import calendar, clock, work_items
from domain.kernel.errors import Conflict, Invalid, NotFound
from domain.kernel.settings import get_settings
from domain.registry import relations
from domain.security import audit
from domain.security.permissions import Permission
from domain.security.principal import Principal
from domain.territory import queries as territory
from domain.waiting_list import policy, ranking, service
from domain.waiting_list.models import (
    BedState,
    EntryState,
    OfferState,
    WaitingListBed,
    WaitingListChoice,
    WaitingListEntry,
    WaitingListOffer,
)
from domain.waiting_list.states import ENTRY, OFFER, OPEN_STATES, EntryAction, OfferAction

OFFER_ENTITY = service.OFFER_ENTITY
NOTIFY_KIND = "waiting_list.offer_notify"


def audit_offer(action: str, offer: WaitingListOffer) -> None:
    audit.record(action=action, object_type=OFFER_ENTITY, object_ids=[offer.id], person_ids=[offer.person_id])


async def _own_unit(session: AsyncSession, principal: Principal, unit_id: uuid.UUID):
    """A unit the principal operates (404 otherwise), of a type that keeps a list."""
    policy.ensure(principal, Permission.waiting_list_offer)
    unit = (await territory.units(session, [unit_id])).get(unit_id)
    if unit is None or unit.ambito_id != principal.ambito_id or not unit.active \
            or unit.operator_id not in policy.operator_orgs(principal):
        raise NotFound("Unità d'offerta non trovata tra quelle gestite.")
    if unit.udo_type not in get_settings().waiting_list_udo_types:
        raise Invalid("unit_id", "questa tipologia di unità d'offerta non ha una lista d'attesa")
    return unit


async def declare_bed(session: AsyncSession, *, principal: Principal, unit_id: uuid.UUID,
                      label: str | None = None) -> WaitingListBed:
    """The UDO operator declares a bed (or place) of their unit free."""
    unit = await _own_unit(session, principal, unit_id)
    bed = WaitingListBed(ambito_id=unit.ambito_id, unit_id=unit.id, label=(label or "").strip() or None,
                         state=BedState.free, declared_at=clock.now(), declared_by=principal.user_id)
    session.add(bed)
    await session.flush()
    audit.record(action="create", object_type="waiting_list_bed", object_ids=[bed.id])
    return bed


def _free_beds_stmt(unit_id: uuid.UUID):
    open_offer = sa.exists().where(WaitingListOffer.bed_id == WaitingListBed.id,
                                   WaitingListOffer.state == OfferState.open.value)
    return sa.select(WaitingListBed).where(WaitingListBed.unit_id == unit_id,
                                           WaitingListBed.state == BedState.free.value, ~open_offer)


async def _free_bed(session: AsyncSession, unit_id: uuid.UUID, bed_id: uuid.UUID) -> WaitingListBed:
    """The named bed, free and without an open offer, locked."""
    bed = (await session.execute(_free_beds_stmt(unit_id).where(WaitingListBed.id == bed_id).with_for_update()
                                 .execution_options(populate_existing=True))).scalar_one_or_none()
    if bed is None:
        raise Invalid("bed_id", "il posto non è libero in questa unità (occupato o già offerto)")
    return bed


async def _free_beds(session: AsyncSession, unit_id: uuid.UUID):
    """The unit's free beds without an open offer, first declared first, each locked only when its turn comes;
    a bed another transaction is offering right now is skipped (_propose repeats the open-offer check under the
    lock, in a statement that sees what committed meanwhile)."""
    ids = list((await session.execute(sa.select(WaitingListBed.id).where(
        WaitingListBed.id.in_(_free_beds_stmt(unit_id).with_only_columns(WaitingListBed.id)))
        .order_by(WaitingListBed.declared_at, WaitingListBed.id))).scalars())
    for bed_id in ids:
        bed = (await session.execute(_free_beds_stmt(unit_id).where(WaitingListBed.id == bed_id)
                                     .with_for_update(skip_locked=True)
                                     .execution_options(populate_existing=True))).scalar_one_or_none()
        if bed is not None:
            yield bed


async def _lock_person(session: AsyncSession, person_id: uuid.UUID) -> None:
    """Every open entry of the person, locked in id order and re-read."""
    await session.execute(sa.select(WaitingListEntry).where(
        WaitingListEntry.person_id == person_id, WaitingListEntry.state.in_([s.value for s in OPEN_STATES]))
        .order_by(WaitingListEntry.id).with_for_update().execution_options(populate_existing=True))


async def unit_ranking(session: AsyncSession, unit_id: uuid.UUID,
                       states: tuple[EntryState, ...] = (EntryState.listed,)) -> list[ranking.Ranked]:
    """The entries that chose the unit, in the given states, ranked (positions computed now)."""
    rows = list((await session.execute(sa.select(WaitingListEntry).join(
        WaitingListChoice, WaitingListChoice.entry_id == WaitingListEntry.id).where(
        WaitingListChoice.unit_id == unit_id, WaitingListEntry.state.in_([s.value for s in states])))).scalars())
    return ranking.rank(rows, clock.today_rome())


async def _propose(session: AsyncSession, bed: WaitingListBed, *, actor_id: uuid.UUID | None
                   ) -> WaitingListOffer | None:
    """The offer of a locked free bed to the best-placed eligible entry: listed, no open offer, never refused or
    let expire an offer of this bed. None when nobody is eligible."""
    if (await session.execute(sa.select(WaitingListOffer.id).where(
            WaitingListOffer.bed_id == bed.id, WaitingListOffer.state == OfferState.open.value))).first():
        return None
    refused = set((await session.execute(sa.select(WaitingListOffer.entry_id).where(
        WaitingListOffer.bed_id == bed.id,
        WaitingListOffer.state.in_([OfferState.refused.value, OfferState.expired.value])))).scalars())
    for ranked in await unit_ranking(session, bed.unit_id):
        entry = ranked.entry
        if entry.id in refused:
            continue
        # the person's open entries are the lock that serialises two offers racing for the same person; the
        # re-read under the lock sees what a transaction that held it committed
        await _lock_person(session, entry.person_id)
        holds = (await session.execute(sa.select(WaitingListOffer.id).where(
            WaitingListOffer.person_id == entry.person_id, WaitingListOffer.state == OfferState.open.value))).first()
        if str(entry.state) != EntryState.listed.value or holds is not None:
            continue
        offer = WaitingListOffer(ambito_id=bed.ambito_id, bed_id=bed.id, unit_id=bed.unit_id, entry_id=entry.id,
                                 person_id=entry.person_id, state=OfferState.open, proposed_at=clock.now(),
                                 proposed_by=actor_id, position=ranked.position, score=ranked.score.total,
                                 urgent=ranked.score.urgent)
        session.add(offer)
        try:
            async with session.begin_nested():
                await session.flush()
        except IntegrityError:
            raise Conflict("Offerta concorrente sullo stesso posto o per la stessa persona: riprovare.") from None
        await service.write_history(session, entry, "offered", actor_id=actor_id, detail={
            "cause": "bed_free", "offer_id": str(offer.id), "bed_id": str(bed.id), "position": ranked.position,
            "score": ranked.score.total})
        if entry.comune_id is not None:
            reps = await relations.legal_representatives(session, entry.person_id)
            who = "il rappresentante legale" if reps else "la persona"
            await work_items.create(
                session, kind=NOTIFY_KIND, title=f"Offerta di posto: avvisare {who} e registrare la ricezione",
                source_type=OFFER_ENTITY, source_id=offer.id, ambito_id=offer.ambito_id,
                assignee_org_id=entry.comune_id, person_id=offer.person_id, dedup_key=f"{NOTIFY_KIND}:{offer.id}",
                data={"offer_id": str(offer.id), "entry_id": str(entry.id),
                      "representative_relation_ids": [str(r.id) for r in reps]})
        return offer
    return None


async def offer(session: AsyncSession, *, principal: Principal, unit_id: uuid.UUID,
                bed_id: uuid.UUID | None = None) -> WaitingListOffer:
    """A free bed of the operator's unit (the named one, or the first declared) is proposed to the best-placed
    eligible entry. 422 `unit_id` when the unit has no free bed, `bed_id` when nobody on the list can have it."""
    unit = await _own_unit(session, principal, unit_id)
    if bed_id is not None:
        made = await _propose(session, await _free_bed(session, unit.id, bed_id), actor_id=principal.user_id)
        if made is None:
            raise Invalid("bed_id", "nessuna domanda in lista a cui offrire questo posto (chi lo ha già "
                                    "rifiutato è escluso)")
    else:
        made = None
        async for bed in _free_beds(session, unit.id):
            made = await _propose(session, bed, actor_id=principal.user_id)
            if made is not None:
                break
        if made is None:
            raise Invalid("unit_id", "nessun posto libero da offrire a una domanda in lista per questa unità "
                                     "(chi ha già rifiutato un posto non lo riceve di nuovo)")
    audit_offer("create", made)
    return made


# ---------------------------------------------------------------- replies
async def load_offer(session: AsyncSession, principal: Principal, offer_id: uuid.UUID) -> WaitingListOffer:
    """An offer of the principal's unit (UDO operator) or of one of their residents (comune), locked."""
    if not {Permission.waiting_list_offer, Permission.waiting_list_manage} & set(principal.permissions):
        policy.ensure(principal, Permission.waiting_list_offer)
    parts = []
    if Permission.waiting_list_offer in principal.permissions:
        parts.append(WaitingListOffer.unit_id.in_(policy.operated_units(principal)))
    if Permission.waiting_list_manage in principal.permissions:
        parts.append(WaitingListOffer.entry_id.in_(sa.select(WaitingListEntry.id).where(
            policy.scope(principal, policy.COMUNE))))
    found = (await session.execute(sa.select(WaitingListOffer).where(
        WaitingListOffer.id == offer_id, WaitingListOffer.ambito_id == principal.ambito_id, sa.or_(*parts))
        .with_for_update().execution_options(populate_existing=True))).scalar_one_or_none()
    if found is None:
        raise NotFound("Offerta non trovata.")
    return found


def _reply_time(value: datetime | None, field: str) -> datetime:
    now = clock.now()
    at = value or now
    if at > now:
        raise Invalid(field, "non può essere nel futuro")
    return at


async def record_receipt(session: AsyncSession, *, principal: Principal, offer_id: uuid.UUID,
                         received_at: datetime | None = None,
                         received_by_relation_id: uuid.UUID | None = None) -> WaitingListOffer:
    """The person, or their legal representative (the AdS whose decree covers care, the tutore: a relation of the
    registry), received the offer: the reply deadline runs from here (WAITING_LIST_REPLY_WORKING_DAYS working
    days)."""
    o = await load_offer(session, principal, offer_id)
    OFFER.next_state(o.state, OfferAction.receipt)
    if o.received_at is not None:
        raise Conflict("La ricezione dell'offerta è già registrata.", received_at=o.received_at.isoformat())
    at = _reply_time(received_at, "received_at")
    if at < o.proposed_at:
        raise Invalid("received_at", "la ricezione precede l'offerta")
    o.received_by = "person"
    if received_by_relation_id is not None:
        reps = {r.id: r for r in await relations.legal_representatives(session, o.person_id)}
        if received_by_relation_id not in reps:
            raise Invalid("received_by_relation_id", "non è un rappresentante legale della persona in vigore "
                                                     "(tutore, amministratore di sostegno per la cura)")
        o.received_by = str(reps[received_by_relation_id].kind)
        o.received_by_relation_id = received_by_relation_id
    o.received_at = at
    o.reply_due_at = calendar.add_working_days(at, get_settings().waiting_list_reply_working_days)
    await session.flush()  # later locked re-reads (populate_existing) in the same unit of work must see it
    await work_items.close_for_source(session, source_type=OFFER_ENTITY, source_id=o.id, kinds=[NOTIFY_KIND],
                                      done=True, actor_id=principal.user_id)
    audit_offer("update", o)
    return o


async def _entry(session: AsyncSession, entry_id: uuid.UUID) -> WaitingListEntry:
    return (await session.execute(sa.select(WaitingListEntry).where(WaitingListEntry.id == entry_id)
                                  .with_for_update().execution_options(populate_existing=True))).scalar_one()


async def accept(session: AsyncSession, *, principal: Principal, offer_id: uuid.UUID,
                 replied_at: datetime | None = None) -> WaitingListOffer:
    """Accepted within the deadline: the admission. The bed is occupied, the entry admitted, the person leaves
    every other list and their temporary plans close. After the deadline: 422 `replied_at`, nothing written."""
    o = await load_offer(session, principal, offer_id)
    OFFER.next_state(o.state, OfferAction.accept)
    at = _reply_time(replied_at, "replied_at")
    if o.reply_due_at is not None and at > o.reply_due_at:
        raise Invalid("replied_at", "la risposta è oltre il termine dell'offerta (" + o.reply_due_at.astimezone(
            calendar.ROME).strftime("%d/%m/%Y %H:%M") + "): l'offerta vale come rifiutata")
    # the person's open entries before the bed: the order _propose takes them in (bed, then person) never meets
    # this one in reverse, since a bed with an open offer is never locked by _propose
    await _lock_person(session, o.person_id)
    entry = await _entry(session, o.entry_id)
    target = ENTRY.next_state(entry.state, EntryAction.admit)
    bed = (await session.execute(sa.select(WaitingListBed).where(WaitingListBed.id == o.bed_id).with_for_update()
                                 .execution_options(populate_existing=True))).scalar_one()
    now = clock.now()
    o.state, o.replied_at, o.closed_at = OfferState.accepted, at, now
    o.received_at = o.received_at or at
    bed.state, bed.occupied_at, bed.version = BedState.occupied, now, bed.version + 1
    entry.state, entry.admitted_at, entry.admitted_unit_id = target, now, o.unit_id
    await service.write_history(session, entry, "admitted", actor_id=principal.user_id, detail={
        "cause": "offer_accepted", "offer_id": str(o.id), "unit_id": str(o.unit_id)})
    await work_items.close_for_source(session, source_type=OFFER_ENTITY, source_id=o.id)
    await work_items.close_for_source(session, source_type=service.ENTITY, source_id=entry.id)
    await service.leave_every_list(session, person_id=entry.person_id, action=EntryAction.admit_elsewhere,
                                   note="Ingresso in altra unità d'offerta", actor_id=principal.user_id,
                                   keep=entry.id)
    audit_offer("update", o)
    return o


async def _count_refusal(session: AsyncSession, o: WaitingListOffer, *, cause: str,
                         actor_id: uuid.UUID | None) -> WaitingListEntry:
    """The refusal rule: the entry keeps its position; at WAITING_LIST_REFUSALS_BEFORE_SUSPENSION refusals it is
    suspended until the person confirms staying on the list."""
    entry = await _entry(session, o.entry_id)
    entry.refusals += 1
    detail = {"cause": cause, "offer_id": str(o.id), "refusals": entry.refusals}
    if entry.refusals >= get_settings().waiting_list_refusals_before_suspension and ENTRY.can(
            entry.state, EntryAction.suspend):
        entry.state, entry.suspended_at = ENTRY.next_state(entry.state, EntryAction.suspend), clock.now()
        await service.write_history(session, entry, "suspended", actor_id=actor_id, detail=detail)
    else:
        await service.write_history(session, entry, "refused", actor_id=actor_id, detail=detail)
    await work_items.close_for_source(session, source_type=OFFER_ENTITY, source_id=o.id)
    return entry


async def refuse(session: AsyncSession, *, principal: Principal, offer_id: uuid.UUID, reason: str | None = None,
                 replied_at: datetime | None = None) -> WaitingListOffer:
    """Refused: the bed stays free (a new offer skips whoever refused it); the refusal rule applies."""
    o = await load_offer(session, principal, offer_id)
    OFFER.next_state(o.state, OfferAction.refuse)
    at = _reply_time(replied_at, "replied_at")
    o.state, o.replied_at, o.closed_at = OfferState.refused, at, clock.now()
    o.refusal_reason = (reason or "").strip()[:1000] or None
    await _count_refusal(session, o, cause="offer_refused", actor_id=principal.user_id)
    audit_offer("update", o)
    return o


async def expire_due(session: AsyncSession) -> int:
    """System path (the offers job): open offers past their reply deadline expire, count as refusals, and their bed
    goes to the next eligible entry. Idempotent; concurrent runs skip each other's rows."""
    rows = list((await session.execute(sa.select(WaitingListOffer).where(
        WaitingListOffer.state == OfferState.open.value, WaitingListOffer.reply_due_at < clock.now())
        .order_by(WaitingListOffer.reply_due_at, WaitingListOffer.id).with_for_update(skip_locked=True)
        .execution_options(populate_existing=True))).scalars())
    for o in rows:
        o.state, o.closed_at = OFFER.next_state(o.state, OfferAction.expire), clock.now()
        await _count_refusal(session, o, cause="offer_expired", actor_id=None)
        bed = (await session.execute(sa.select(WaitingListBed).where(
            WaitingListBed.id == o.bed_id, WaitingListBed.state == BedState.free.value).with_for_update()
            .execution_options(populate_existing=True))).scalar_one_or_none()
        if bed is not None:
            await _propose(session, bed, actor_id=None)
    return len(rows)
