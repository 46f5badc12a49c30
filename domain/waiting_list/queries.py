"""Reads of the waiting lists: one entry (its score breakdown and its position on each UDO it chose), the entries a
reader sees, the list of one UDO (positions computed now; the UDO operator's view with its beds and offers), the
Ambito-wide view of a UDO type, and the facts reporting computes waiting times and R1-R3 from."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.kernel import clock, history
from domain.kernel import cursor as cursor_codec
from domain.kernel.errors import Forbidden, Invalid, NotFound
from domain.kernel.settings import get_settings
from domain.kernel.validity import Span
from domain.security import audit
from domain.security.permissions import Permission
from domain.security.principal import Principal
from domain.territory import queries as territory
from domain.waiting_list import policy, ranking
from domain.waiting_list.models import (
    EntryState,
    OfferState,
    WaitingListBed,
    WaitingListChoice,
    WaitingListEntry,
    WaitingListOffer,
)
from domain.waiting_list.offers import unit_ranking
from domain.waiting_list.service import ENTITY, choices_of
from domain.waiting_list.states import ENTRY

MAX_PAGE = 200
CURSOR_KIND = "waiting_list.entries"


@dataclass
class EntryView:
    entry: WaitingListEntry
    view: policy.View
    summary: bool  # the VMD summary (Barthel, caregiver, living alone) is shown
    choices: list[uuid.UUID] = field(default_factory=list)
    positions: dict[uuid.UUID, int | None] = field(default_factory=dict)
    score: ranking.Breakdown | None = None
    offers: list[WaitingListOffer] = field(default_factory=list)

    @property
    def allowed(self) -> list[str]:
        return ENTRY.allowed_actions(self.entry.state) if self.view == "full" else []


def _views(principal: Principal) -> list:
    return [policy.full_view(principal).label("full"), policy.vmd_summary_shown(principal).label("summary")]


async def get_entry(session: AsyncSession, *, principal: Principal, entry_id: uuid.UUID) -> EntryView:
    policy.ensure(principal, Permission.waiting_list_read)
    row = (await session.execute(sa.select(WaitingListEntry, *_views(principal)).where(
        WaitingListEntry.id == entry_id, policy.row_filter(principal)))).one_or_none()
    if row is None:
        raise NotFound("Domanda di lista d'attesa non trovata.")
    entry, full, summary = row
    view = EntryView(entry, "full" if full else "minimal", bool(summary))
    view.choices = (await choices_of(session, [entry.id]))[entry.id]
    if not full:  # a UDO operator sees the preferences for its own units only
        mine = set((await session.execute(policy.operated_units(principal))).scalars())
        view.choices = [u for u in view.choices if u in mine]
    if entry.state == EntryState.listed:
        view.score = ranking.breakdown(entry, clock.today_rome())
        for unit_id in view.choices:
            ranked = await unit_ranking(session, unit_id)
            view.positions[unit_id] = next((r.position for r in ranked if r.entry.id == entry.id), None)
    offers = sa.select(WaitingListOffer).where(WaitingListOffer.entry_id == entry.id)
    if not full:
        offers = offers.where(WaitingListOffer.unit_id.in_(policy.operated_units(principal)))
    view.offers = list((await session.execute(offers.order_by(WaitingListOffer.proposed_at))).scalars())
    audit.record(action="read", object_type=ENTITY, object_ids=[entry.id], person_ids=[entry.person_id])
    return view


async def entry_history(session: AsyncSession, *, principal: Principal, entry_id: uuid.UUID) -> list[Any]:
    """Every event of the entry, oldest first, each with the state it left and its cause (listing, urgency, offer,
    refusal, VMD update...). For those who read the entry in full: a UDO operator's minimal view has none (403)."""
    policy.ensure(principal, Permission.waiting_list_read)
    row = (await session.execute(sa.select(WaitingListEntry.person_id, policy.full_view(principal).label("full"))
                                 .where(WaitingListEntry.id == entry_id, policy.row_filter(principal)))).one_or_none()
    if row is None:
        raise NotFound("Domanda di lista d'attesa non trovata.")
    if not row.full:
        raise Forbidden("La storia della domanda è di chi segue il caso: l'ente gestore ne vede la vista minima.")
    rows = await history.versions(session, entity_type=ENTITY, entity_id=entry_id)
    audit.record(action="read", object_type=ENTITY, object_ids=[entry_id], person_ids=[row.person_id],
                 result_count=len(rows))
    return rows


async def list_entries(session: AsyncSession, *, principal: Principal, states: list[str] | None = None,
                       udo_type: str | None = None, person_id: uuid.UUID | None = None, limit: int = 50,
                       cursor: str | None = None, application_date: Span | None = None, applied: Span | None = None,
                       assessment_due: Span | None = None) -> tuple[list[EntryView], str | None]:
    """The entries the principal may see, newest application first (keyset on applied_at, id), one query.
    `application_date` filters on the day of the application, `applied` on the instant it was recorded,
    `assessment_due` on the 30-day deadline of an assessment still pending."""
    policy.ensure(principal, Permission.waiting_list_read)
    limit = max(1, min(int(limit), MAX_PAGE))
    conds: list[Any] = [policy.row_filter(principal)]
    if states:
        conds.append(WaitingListEntry.state.in_([EntryState(s).value for s in states]))
    if udo_type:
        conds.append(WaitingListEntry.udo_type == udo_type)
    if person_id:
        conds.append(WaitingListEntry.person_id == person_id)
    if application_date is not None:
        conds.append(application_date.days_sql(WaitingListEntry.application_date))
    if applied is not None:
        conds.append(applied.sql(WaitingListEntry.applied_at))
    if assessment_due is not None:
        conds += [WaitingListEntry.state == EntryState.assessment_pending.value,
                  assessment_due.sql(WaitingListEntry.assessment_due_at)]
    stmt = sa.select(WaitingListEntry, *_views(principal)).where(*conds)
    rows = (await session.execute(cursor_codec.newest_first(
        stmt, WaitingListEntry.applied_at, WaitingListEntry.id, CURSOR_KIND, cursor, limit))).all()
    today = clock.today_rome()
    items = [EntryView(e, "full" if full else "minimal", bool(summary),
                       score=ranking.breakdown(e, today) if e.state == EntryState.listed else None)
             for e, full, summary in rows[:limit]]
    nxt = cursor_codec.next_token(CURSOR_KIND, rows, limit, lambda r: (r[0].applied_at, r[0].id))
    audit.record(action="search", object_type=ENTITY, object_ids=[v.entry.id for v in items],
                 person_ids=[v.entry.person_id for v in items], result_count=len(items))
    return items, nxt


@dataclass
class ListRow:
    ranked: ranking.Ranked
    visible: bool  # the reader reaches the entry: its person is shown; otherwise only position and score
    summary: bool


@dataclass
class UnitList:
    unit: Any
    rows: list[ListRow]
    suspended: list[ListRow]
    beds: list[WaitingListBed] = field(default_factory=list)
    offers: list[WaitingListOffer] = field(default_factory=list)


async def _flags(session: AsyncSession, principal: Principal, ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple]:
    if not ids:
        return {}
    rows = (await session.execute(sa.select(
        WaitingListEntry.id, policy.row_filter(principal), policy.vmd_summary_shown(principal)).where(
        WaitingListEntry.id.in_(ids)))).all()
    return {i: (bool(v), bool(s)) for i, v, s in rows}


async def unit_list(session: AsyncSession, *, principal: Principal, unit_id: uuid.UUID) -> UnitList:
    """The list of one UDO, positions computed now. The Ambito's services and the comuni read every unit of the
    Ambito (the person shown only on the rows they reach); a UDO operator reads its own units, with their beds and
    offers."""
    policy.ensure(principal, Permission.waiting_list_read)
    unit = (await territory.units(session, [unit_id])).get(unit_id)
    if unit is None or unit.ambito_id != principal.ambito_id or (
            policy.udo_operator_only(principal) and unit.operator_id not in policy.operator_orgs(principal)):
        raise NotFound("Unità d'offerta non trovata.")
    ranked = await unit_ranking(session, unit_id)
    suspended = await unit_ranking(session, unit_id, (EntryState.suspended,))
    flags = await _flags(session, principal, [r.entry.id for r in ranked + suspended])
    out = UnitList(unit, [ListRow(r, *flags[r.entry.id]) for r in ranked],
                   [ListRow(r, *flags[r.entry.id]) for r in suspended])
    if unit.operator_id in policy.operator_orgs(principal) or not policy.udo_operator_only(principal):
        out.beds = list((await session.execute(sa.select(WaitingListBed).where(
            WaitingListBed.unit_id == unit_id, WaitingListBed.state == "free")
            .order_by(WaitingListBed.declared_at, WaitingListBed.id))).scalars())
        out.offers = list((await session.execute(sa.select(WaitingListOffer).where(
            WaitingListOffer.unit_id == unit_id, WaitingListOffer.state == OfferState.open.value)
            .order_by(WaitingListOffer.proposed_at))).scalars())
    shown = [row.ranked.entry for row in out.rows + out.suspended if row.visible]
    audit.record(action="search", object_type=ENTITY, object_ids=[e.id for e in shown],
                 person_ids=[e.person_id for e in shown], result_count=len(out.rows))
    return out


async def ambito_ranking(session: AsyncSession, *, principal: Principal, udo_type: str) -> list[ListRow]:
    """The Ambito-wide view of one UDO type: every listed entry, urgent first, positions computed now. Not for UDO
    operators (they read their own units' lists)."""
    policy.ensure(principal, Permission.waiting_list_read)
    if policy.udo_operator_only(principal):
        raise Forbidden("La graduatoria d'Ambito è riservata ai servizi dell'Ambito: l'ente gestore legge le liste "
                        "delle proprie unità.")
    if udo_type not in get_settings().waiting_list_udo_types:
        raise Invalid("udo_type", "questa tipologia di unità d'offerta non ha una lista d'attesa")
    rows = list((await session.execute(sa.select(WaitingListEntry).where(
        WaitingListEntry.ambito_id == principal.ambito_id, WaitingListEntry.udo_type == udo_type,
        WaitingListEntry.state == EntryState.listed.value))).scalars())
    ranked = ranking.rank(rows, clock.today_rome())
    flags = await _flags(session, principal, [r.entry.id for r in ranked])
    out = [ListRow(r, *flags[r.entry.id]) for r in ranked]
    shown = [row.ranked.entry for row in out if row.visible]
    audit.record(action="search", object_type=ENTITY, object_ids=[e.id for e in shown],
                 person_ids=[e.person_id for e in shown], result_count=len(out))
    return out


# ---------------------------------------------------------------- for reporting
def waiting_list_facts() -> sa.Subquery:
    """One row per entry, what reporting needs for waiting times per UDO type (median, p90, urgent vs ordinary)
    and R1-R3: application, assessment requested/due/done, decision, listing, urgency, admission, exit."""
    e = WaitingListEntry
    return sa.select(e.id, e.ambito_id, e.person_id, e.comune_id, e.udo_type, e.state, e.application_date,
                     e.applied_at, e.discharge_id, e.vmd_id, e.assessment_requested_at, e.assessment_due_at,
                     e.assessed_at, e.decided_at, e.listed_at, e.listing_date, e.temporary_plan_id, e.urgency,
                     e.urgency_reason, e.urgency_raised_at, e.urgency_decided_at, e.refusals, e.suspended_at,
                     e.admitted_at, e.admitted_unit_id, e.exit_reason, e.exited_at).subquery("waiting_list_facts")


def offer_facts() -> sa.Subquery:
    o = WaitingListOffer
    return sa.select(o.id, o.ambito_id, o.unit_id, o.entry_id, o.state, o.proposed_at, o.position, o.urgent,
                     o.received_at, o.reply_due_at, o.replied_at, o.closed_at).subquery("waiting_list_offer_facts")


def choice_facts() -> sa.Subquery:
    return sa.select(WaitingListChoice.entry_id, WaitingListChoice.unit_id, WaitingListChoice.rank).subquery(
        "waiting_list_choice_facts")
