"""Read side of measures: the catalogue, the calls with their budget (committed, available, waiting) and counts per
state, one application, the applications the principal reaches, and the waiting-for-funds rank of a call."""
from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.kernel import clock, cursor
from domain.kernel.errors import NotFound
from domain.kernel.settings import get_settings
from domain.measures import policy
from domain.measures.models import COMMITTED_STATES, ApplicationState, Measure, MeasureApplication, MeasureCall
from domain.measures.service import ENTITY, NOT_FOUND, rank_key
from domain.security import audit
from domain.security.permissions import Permission

MAX_PAGE = 200
LIST_KIND = "measures.applications"


async def list_measures(session: AsyncSession, *, principal) -> list[tuple[Measure, dict[str, Any]]]:
    """The catalogue, each measure with its figures in the principal's Ambito over every call (counts per state,
    committed and waiting amounts: numbers only)."""
    rows = list((await session.execute(sa.select(Measure).order_by(Measure.code))).scalars())
    figures = await _figures(session, MeasureApplication.measure_code, [m.code for m in rows],
                             MeasureApplication.ambito_id == principal.ambito_id)
    audit.record(action="list", object_type="measure", object_ids=[], result_count=len(rows))
    return [(m, figures[m.code]) for m in rows]


async def _figures(session: AsyncSession, key: Any, keys: list[Any], *where: Any) -> dict[Any, dict[str, Any]]:
    """Per value of `key` (a call, a measure): counts per state, committed and waiting amounts (one grouped
    query)."""
    rows = (await session.execute(sa.select(
        key, MeasureApplication.state, sa.func.count(),
        sa.func.coalesce(sa.func.sum(MeasureApplication.amount), 0))
        .where(key.in_(keys), *where)
        .group_by(key, MeasureApplication.state))).all()
    out: dict[Any, dict[str, Any]] = {i: {"status_counts": {}, "committed": Decimal(0),
                                          "waiting_amount": Decimal(0)} for i in keys}
    for value, state, n, amount in rows:
        f = out[value]
        f["status_counts"][state] = n
        if state in COMMITTED_STATES:
            f["committed"] += Decimal(amount)
        elif state == ApplicationState.waiting_funds.value:
            f["waiting_amount"] += Decimal(amount)
    return out


def call_view(call: MeasureCall, f: dict[str, Any]) -> dict[str, Any]:
    today = clock.today_rome()
    return {"id": call.id, "measure_code": call.measure_code, "title": call.title, "opens_on": call.opens_on,
            "closes_on": call.closes_on, "open_today": call.opens_on <= today <= call.closes_on,
            "budget": call.budget, "committed": f["committed"], "available": call.budget - f["committed"],
            "waiting_amount": f["waiting_amount"], "status_counts": f["status_counts"], "version": call.version}


async def list_calls(session: AsyncSession, *, principal, measure_code: str | None = None) -> list[dict[str, Any]]:
    stmt = sa.select(MeasureCall).where(MeasureCall.ambito_id == principal.ambito_id)
    if measure_code:
        stmt = stmt.where(MeasureCall.measure_code == measure_code)
    calls = list((await session.execute(stmt.order_by(MeasureCall.opens_on.desc(), MeasureCall.id)
                                        .limit(500))).scalars())
    figures = await _figures(session, MeasureApplication.call_id, [c.id for c in calls])
    audit.record(action="list", object_type="measure_call", object_ids=[c.id for c in calls],
                 result_count=len(calls))
    return [call_view(c, figures[c.id]) for c in calls]


async def get_call(session: AsyncSession, *, principal, call_id: uuid.UUID, checked: bool = True) -> dict[str, Any]:
    """Budget and counts of one call: aggregates, for the readers of applications and the analyst (`checked=False`:
    the answer of an administrator's change, already authorised)."""
    if checked:
        policy.ensure(principal, Permission.measures_report)
    call = (await session.execute(sa.select(MeasureCall).where(
        MeasureCall.id == call_id, MeasureCall.ambito_id == principal.ambito_id))).scalar_one_or_none()
    if call is None:
        raise NotFound("Bando non trovato.")
    audit.record(action="read", object_type="measure_call", object_ids=[call.id])
    return call_view(call, (await _figures(session, MeasureApplication.call_id, [call.id]))[call.id])


async def waiting(session: AsyncSession, *, principal, call_id: uuid.UUID) -> dict[str, Any]:
    """The applications waiting for funds in rank order; the reader sees who holds a rank only on the rows its scope
    reaches (a comune its residents), the rank and the criteria on every row."""
    policy.ensure(principal, Permission.measures_read)
    call = (await session.execute(sa.select(MeasureCall).where(
        MeasureCall.id == call_id, MeasureCall.ambito_id == principal.ambito_id))).scalar_one_or_none()
    if call is None:
        raise NotFound("Bando non trovato.")
    rows = list((await session.execute(sa.select(MeasureApplication).where(
        MeasureApplication.call_id == call.id,
        MeasureApplication.state == ApplicationState.waiting_funds.value))).scalars())
    rows.sort(key=rank_key)
    seen = set((await session.execute(sa.select(MeasureApplication.id).where(
        MeasureApplication.id.in_([a.id for a in rows]), policy.row_filter(principal)))).scalars())
    items = [{"rank": i, "application_id": a.id if a.id in seen else None,
              "person_id": a.person_id if a.id in seen else None, "application_date": a.application_date,
              "need_score": a.need_score, "amount": a.amount} for i, a in enumerate(rows, 1)]
    audit.record(action="list", object_type=ENTITY, object_ids=[a.id for a in rows if a.id in seen],
                 person_ids=[a.person_id for a in rows if a.id in seen], result_count=len(rows))
    return {"call_id": call.id, "rank_by": list(get_settings().measures_waiting_rank), "items": items}


async def waiting_rank(session: AsyncSession, a: MeasureApplication) -> int | None:
    if str(a.state) != ApplicationState.waiting_funds.value:
        return None
    rows = list((await session.execute(sa.select(MeasureApplication).where(
        MeasureApplication.call_id == a.call_id,
        MeasureApplication.state == ApplicationState.waiting_funds.value))).scalars())
    rows.sort(key=rank_key)
    return next(i for i, r in enumerate(rows, 1) if r.id == a.id)


async def get_application(session: AsyncSession, *, principal, application_id: uuid.UUID,
                          audited: bool = True) -> tuple[MeasureApplication, int | None]:
    policy.ensure(principal, Permission.measures_read)
    a = (await session.execute(sa.select(MeasureApplication).where(
        MeasureApplication.id == application_id, policy.row_filter(principal)))).scalar_one_or_none()
    if a is None:
        raise NotFound(NOT_FOUND)
    if audited:
        audit.record(action="read", object_type=ENTITY, object_ids=[a.id], person_ids=[a.person_id])
    return a, await waiting_rank(session, a)


async def list_applications(session: AsyncSession, *, principal, call_id: uuid.UUID | None = None,
                            states: list[str] | None = None, person_id: uuid.UUID | None = None, limit: int = 50,
                            cursor_token: str | None = None) -> tuple[list[MeasureApplication], str | None]:
    policy.ensure(principal, Permission.measures_read)
    limit = max(1, min(int(limit), MAX_PAGE))
    stmt = sa.select(MeasureApplication).where(policy.row_filter(principal))
    if call_id is not None:
        stmt = stmt.where(MeasureApplication.call_id == call_id)
    if states:
        stmt = stmt.where(MeasureApplication.state.in_([str(s) for s in states]))
    if person_id is not None:
        stmt = stmt.where(MeasureApplication.person_id == person_id)
    stmt = cursor.newest_first(stmt, MeasureApplication.applied_at, MeasureApplication.id, LIST_KIND, cursor_token,
                               limit)
    rows = list((await session.execute(stmt)).scalars())
    nxt = cursor.next_token(LIST_KIND, rows, limit, lambda a: (a.applied_at, a.id))
    rows = rows[:limit]
    audit.record(action="list", object_type=ENTITY, object_ids=[a.id for a in rows],
                 person_ids=sorted({a.person_id for a in rows}, key=str), result_count=len(rows))
    return rows, nxt


# ---------------------------------------------------------------------------------------------------- for reporting
def application_facts() -> sa.Subquery:
    """What this context publishes for indicators, one row per measure application (a read-only projection the
    reporting context aggregates; it never selects the table): ambito_id, person_id, comune_id (residence at the
    application), measure_code, application_date, applied_at, state, activated_at."""
    a = MeasureApplication
    return sa.select(a.id, a.ambito_id, a.person_id, a.comune_id, a.measure_code, a.application_date, a.applied_at,
                     a.state, a.activated_at).subquery("measure_application_facts")
