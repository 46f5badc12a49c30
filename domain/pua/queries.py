"""Reads of PUA access requests: one request, the Ambito list (keyset), the triage queue; the facts the reporting
context computes the PUA indicators from."""
from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.assessment import queries as assessment_queries
from domain.kernel import clock, history, work_items
from domain.kernel import cursor as cursor_codec
from domain.kernel.errors import Invalid, NotFound
from domain.kernel.validity import Span
from domain.pua import policy
from domain.pua.flows import COT_EVALUATION_HOURS
from domain.pua.models import AccessRequest, AccessState, Channel
from domain.pua.service import ENTITY, TRIAGE_FROM_REGISTRY, TRIAGE_KIND
from domain.security import audit
from domain.security.principal import Principal

MAX_PAGE = 200


@dataclass(frozen=True)
class Visible:
    request: AccessRequest
    view: policy.View


@dataclass(frozen=True)
class Triage:
    response: Any  # the stored InstrumentResponse (answers, scores, outcome, author)
    from_registry: list[str]  # its items answered from the registry, not by the operator


async def get_request(session: AsyncSession, *, principal: Principal, request_id: uuid.UUID,
                      states: Collection[str] | None = None) -> tuple[Visible, Triage | None]:
    """One request within the row filter (404 otherwise), its view, and the triage for the full view. With
    `states`, a request in another state is not found either (and its read is not recorded)."""
    stmt = (sa.select(AccessRequest, policy.full_view(principal).label("full"))
            .where(AccessRequest.id == request_id, policy.row_filter(principal)))
    if states is not None:
        stmt = stmt.where(AccessRequest.state.in_([str(x) for x in states]))
    row = (await session.execute(stmt)).one_or_none()
    if row is None:
        raise NotFound("Richiesta di accesso non trovata.")
    ar, full = row
    view = policy.view_of(principal, ar, full=bool(full))
    triage = None
    if view == "full" and ar.triage_response_id is not None:
        response = await assessment_queries.instrument_response(session, ar.triage_response_id)
        row = await history.last_of(session, entity_type=ENTITY, entity_id=ar.id, action="triage")
        detail = (row.data.get("detail") or {}) if row is not None else {}
        triage = Triage(response, list(detail.get(TRIAGE_FROM_REGISTRY) or []))
    audit.record(action="read", object_type=ENTITY, object_ids=[ar.id], person_ids=[ar.person_id])
    return Visible(ar, view), triage


CURSOR_KIND = "pua.requests"
COT_REFERRED = (AccessState.referred_cot, AccessState.referred_cot_vmd)


async def list_requests(session: AsyncSession, *, principal: Principal, states: list[AccessState] | None = None,
                        channels: list[Channel] | None = None, registered_from: date | None = None,
                        registered_to: date | None = None, person_id: uuid.UUID | None = None, limit: int = 50,
                        cursor: str | None = None, total: bool = False, closed: Span | None = None,
                        cot_due: Span | None = None) -> tuple[list[Visible], str | None, int | None]:
    """Requests the principal may see, newest first (keyset on registered_at, id). Dates are Europe/Rome days,
    both inclusive. `closed`: closed (oriented, referred, withdrawn) within the window; `cot_due`: referred to the
    COT with its evaluation due within the window. COUNT(*) only when `total` is asked."""
    limit = max(1, min(int(limit), MAX_PAGE))
    if registered_from and registered_to and registered_from > registered_to:
        raise Invalid("registered_to", "precede registered_from")
    conds: list[Any] = [policy.row_filter(principal)]
    if states:
        conds.append(AccessRequest.state.in_([AccessState(s).value for s in states]))
    if channels:
        conds.append(AccessRequest.channel.in_([Channel(c).value for c in channels]))
    if registered_from:
        conds.append(AccessRequest.registered_at >= clock.rome_day_bounds(registered_from)[0])
    if registered_to:
        conds.append(AccessRequest.registered_at < clock.rome_day_bounds(registered_to)[1])
    if person_id:
        conds.append(AccessRequest.person_id == person_id)
    if closed is not None:
        conds.append(closed.sql(AccessRequest.closed_at))
    if cot_due is not None:
        conds += [AccessRequest.state.in_([s.value for s in COT_REFERRED]),
                  cot_due.sql(AccessRequest.closed_at + timedelta(hours=COT_EVALUATION_HOURS))]
    stmt = sa.select(AccessRequest, policy.full_view(principal).label("full")).where(*conds)
    rows = (await session.execute(cursor_codec.newest_first(
        stmt, AccessRequest.registered_at, AccessRequest.id, CURSOR_KIND, cursor, limit))).all()
    items = [Visible(ar, policy.view_of(principal, ar, full=bool(full))) for ar, full in rows[:limit]]
    nxt = cursor_codec.next_token(CURSOR_KIND, rows, limit, lambda r: (r[0].registered_at, r[0].id))
    count = None
    if total:
        count = (await session.execute(sa.select(sa.func.count()).select_from(AccessRequest).where(*conds)))\
            .scalar_one()
    audit.record(action="search", object_type=ENTITY, object_ids=[v.request.id for v in items],
                 person_ids=[v.request.person_id for v in items], result_count=len(items))
    return items, nxt, count


async def triage_queue(session: AsyncSession, *, principal: Principal, limit: int = 50, cursor: str | None = None):
    """"Richieste da valutare": the principal's open `pua.triage` work items, by due time (one indexed query)."""
    items, nxt = await work_items.my_queue(session, principal=principal, kinds=[TRIAGE_KIND], limit=limit,
                                           cursor=cursor)
    audit.record(action="search", object_type="work_item", object_ids=[w.id for w in items],
                 person_ids=[w.person_id for w in items], result_count=len(items))
    return items, nxt


# ---------------------------------------------------------------- for reporting
def access_facts() -> sa.Subquery:
    """What this context publishes for indicators, one row per request (a read-only projection the reporting
    context aggregates; it never selects the table): ambito_id, person_id, registered_at, first_level_at, state,
    vmd_id, closed_at (when it was oriented, referred, withdrawn or cancelled), residence_comune_id (the person's
    comune of residence at registration)."""
    return sa.select(AccessRequest.id, AccessRequest.ambito_id, AccessRequest.person_id, AccessRequest.registered_at,
                     AccessRequest.first_level_at, AccessRequest.state, AccessRequest.vmd_id,
                     AccessRequest.closed_at, AccessRequest.residence_comune_id).subquery("access_facts")
