"""Read side of services: one order with the view the principal gets, the orders it reaches, the delivery log, the
weekly and monthly summary (planned against delivered), the cost of a plan per intervention and funding source
with the person's co-payment, and the SAD indicator ("run entirely in the system") for reporting."""
from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from sqlalchemy.ext.asyncio import AsyncSession

from domain.assessment import queries as assessment_queries
from domain.care_plan import queries as care_plan_queries
from domain.kernel import clock, cursor
from domain.kernel.errors import Forbidden, NotFound
from domain.kernel.settings import get_settings
from domain.kernel.validity import Span
from domain.pua import queries as pua_queries
from domain.registry import persons as person_svc
from domain.security import audit
from domain.security.permissions import Permission
from domain.services import policy
from domain.services.models import Accreditation, Activation, ActivationState, Delivery, Suspension, WeekFlag
from domain.services.service import ENTITY, NOT_FOUND, accreditation_on
from domain.services.states import MACHINE
from domain.territory import queries as territory

MAX_PAGE = 200
LIST_KIND = "services.activations"
DELIVERY_KIND = "services.deliveries"
CO_PAYMENT_FILE = Path(__file__).resolve().parents[2] / "schemas" / "reference" / "services" / "co_payment.yaml"
SAD = "sad"
CENT = Decimal("0.01")


def money(x: Decimal) -> Decimal:
    return Decimal(x).quantize(CENT, rounding=ROUND_HALF_UP)


# ---------------------------------------------------------------------------------------------------- "run in system"
def run_in_system_sql(a=Activation) -> sa.ColumnElement[bool]:
    """A SAD order "run entirely in the system" (LEPS table, L10947-10948): the PUA request, a concluded VMD on the
    cartella, the signed plan, the order, at least one delivery and the closure are all recorded here."""
    ar, vmd, plan = pua_queries.access_facts().c, assessment_queries.vmd_facts().c, care_plan_queries.plan_facts().c
    return sa.and_(
        a.service_type == SAD, a.state == ActivationState.ended.value,
        sa.exists(sa.select(1).where(ar.person_id == a.person_id, ar.registered_at <= a.requested_at)),
        sa.exists(sa.select(1).where(vmd.cartella_id == a.cartella_id, vmd.concluded_at.is_not(None))),
        sa.exists(sa.select(1).where(plan.id == a.plan_id, plan.agreed_at.is_not(None))),
        sa.exists(sa.select(1).where(Delivery.activation_id == a.id)))


async def sad_indicator(session: AsyncSession, *, principal, period_from: date, period_to: date) -> dict[str, Any]:
    """Aggregates only: SAD orders of the Ambito ended in [period_from, period_to) and how many were run entirely
    in the system."""
    policy.ensure(principal, Permission.services_report)
    lo, _ = clock.rome_day_bounds(period_from)
    hi, _ = clock.rome_day_bounds(period_to)
    row = (await session.execute(sa.select(
        sa.func.count(), sa.func.count().filter(run_in_system_sql())).where(
        Activation.ambito_id == principal.ambito_id, Activation.service_type == SAD,
        Activation.state == ActivationState.ended.value, Activation.ended_at >= lo, Activation.ended_at < hi))).one()
    audit.record(action="read", object_type="services_indicator", object_ids=[], result_count=int(row[0]))
    return {"period_from": period_from, "period_to": period_to, "sad_ended": int(row[0]),
            "run_in_system": int(row[1])}


# ---------------------------------------------------------------------------------------------------- accreditations
async def list_accreditations(session: AsyncSession, *, principal, organisation_id: uuid.UUID | None = None,
                              service_type: str | None = None, on: date | None = None) -> list:
    stmt = sa.select(Accreditation).where(Accreditation.ambito_id == principal.ambito_id)
    if organisation_id is not None:
        stmt = stmt.where(Accreditation.organisation_id == organisation_id)
    if service_type is not None:
        stmt = stmt.where(Accreditation.service_type == service_type)
    if on is not None:
        stmt = stmt.where(sa.and_(Accreditation.valid_from <= on,
                                  sa.or_(Accreditation.valid_to.is_(None), Accreditation.valid_to > on)))
    rows = list((await session.execute(stmt.order_by(Accreditation.organisation_id, Accreditation.service_type,
                                                     Accreditation.valid_from).limit(1000))).scalars())
    audit.record(action="list", object_type="service_accreditation", object_ids=[r.id for r in rows],
                 result_count=len(rows))
    return rows


# ---------------------------------------------------------------------------------------------------- orders
async def _view(session: AsyncSession, principal, rows: list[Activation]) -> list[dict[str, Any]]:
    if not rows:
        return []
    ids = [a.id for a in rows]
    flags = {i: (bool(f), bool(c)) for i, f, c in (await session.execute(sa.select(
        Activation.id, policy.full_view(principal), run_in_system_sql()).where(Activation.id.in_(ids)))).all()}
    full = {i for i, (f, _) in flags.items() if f}
    complete = {i for i, (_, c) in flags.items() if c}
    names = await territory.org_names(session, [a.provider_org_id for a in rows])
    return [{"activation": a, "view": "full" if a.id in full else "minimal",
             "provider_name": names.get(a.provider_org_id), "run_in_system": a.id in complete,
             "allowed_actions": MACHINE.allowed_actions(a.state)} for a in rows]


async def activation_row(session: AsyncSession, principal, activation_id: uuid.UUID) -> Activation:
    policy.ensure(principal, Permission.services_read)
    a = (await session.execute(sa.select(Activation).where(
        Activation.id == activation_id, policy.row_filter(principal)))).scalar_one_or_none()
    if a is None:
        raise NotFound(NOT_FOUND)
    return a


async def get_activation(session: AsyncSession, *, principal, activation_id: uuid.UUID,
                         audited: bool = True) -> dict[str, Any]:
    a = await activation_row(session, principal, activation_id)
    if audited:
        audit.record(action="read", object_type=ENTITY, object_ids=[a.id], person_ids=[a.person_id])
    return (await _view(session, principal, [a]))[0]


async def list_activations(session: AsyncSession, *, principal, states: list[str] | None = None,
                           person_id: uuid.UUID | None = None, plan_id: uuid.UUID | None = None,
                           service_type: str | None = None, limit: int = 50, cursor_token: str | None = None,
                           requested: Span | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """The orders the principal reaches, newest first (keyset on the order time); `requested`: ordered within the
    window."""
    policy.ensure(principal, Permission.services_read)
    limit = max(1, min(int(limit), MAX_PAGE))
    stmt = sa.select(Activation).where(policy.row_filter(principal))
    if states:
        stmt = stmt.where(Activation.state.in_([str(s) for s in states]))
    if person_id is not None:
        stmt = stmt.where(Activation.person_id == person_id)
    if plan_id is not None:
        stmt = stmt.where(Activation.plan_id == plan_id)
    if service_type is not None:
        stmt = stmt.where(Activation.service_type == service_type)
    if requested is not None:
        stmt = stmt.where(requested.sql(Activation.requested_at))
    stmt = cursor.newest_first(stmt, Activation.requested_at, Activation.id, LIST_KIND, cursor_token, limit)
    rows = list((await session.execute(stmt)).scalars())
    nxt = cursor.next_token(LIST_KIND, rows, limit, lambda a: (a.requested_at, a.id))
    rows = rows[:limit]
    audit.record(action="list", object_type=ENTITY, object_ids=[a.id for a in rows],
                 person_ids=sorted({a.person_id for a in rows}, key=str), result_count=len(rows))
    return await _view(session, principal, rows), nxt


async def list_deliveries(session: AsyncSession, *, principal, activation_id: uuid.UUID, limit: int = 100,
                          cursor_token: str | None = None) -> tuple[list[Delivery], str | None]:
    """The delivery log of one order, by day (keyset on day and id)."""
    a = await activation_row(session, principal, activation_id)
    limit = max(1, min(int(limit), MAX_PAGE))
    stmt = sa.select(Delivery).where(Delivery.activation_id == a.id)
    if cursor_token:
        day, did = cursor.decode(DELIVERY_KIND, cursor_token)
        try:
            day, did = date.fromisoformat(day), uuid.UUID(did)
        except (TypeError, ValueError):
            raise cursor.BadCursor() from None
        stmt = stmt.where(sa.tuple_(Delivery.delivered_on, Delivery.id) > sa.tuple_(sa.literal(day), sa.literal(did)))
    rows = list((await session.execute(stmt.order_by(Delivery.delivered_on, Delivery.id).limit(limit + 1))).scalars())
    nxt = cursor.encode(DELIVERY_KIND, [rows[limit - 1].delivered_on.isoformat(), str(rows[limit - 1].id)]) \
        if len(rows) > limit else None
    rows = rows[:limit]
    audit.record(action="list", object_type="service_delivery", object_ids=[d.id for d in rows],
                 person_ids=[a.person_id], result_count=len(rows))
    return rows, nxt


# ---------------------------------------------------------------------------------------------------- summaries
def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _overlap_days(p0: date, p1: date, start: date, end: date | None) -> int:
    lo, hi = max(p0, start), min(p1, end) if end is not None else p1
    return max(0, (hi - lo).days)


Gaps = list[tuple[date, date | None]]  # suspensions [from, to)


def planned_in(a: Activation, p0: date, p1: date, gaps: Gaps = ()) -> Decimal:
    """The planned hours (or accesses) of [p0, p1): the weekly intensity over the days of service in it, the days
    of a suspension left out."""
    lo, hi = max(p0, a.start_date), min(p1, a.end_date) if a.end_date is not None else p1
    days = max(0, (hi - lo).days)
    if days:
        days -= sum(_overlap_days(lo, hi, g0, g1) for g0, g1 in gaps)
    return Decimal(a.intensity_value) * max(days, 0) / 7


def _quantity(d: Delivery) -> Decimal:
    return Decimal(d.hours) if d.hours is not None else Decimal(d.accesses or 0)


@dataclass
class Period:
    start: date
    end: date
    planned: Decimal
    delivered: Decimal
    below: bool
    flagged: bool = False

    @property
    def percent(self) -> Decimal | None:
        return money(self.delivered * 100 / self.planned) if self.planned > 0 else None


def threshold() -> Decimal:
    return Decimal(str(get_settings().services_below_threshold_percent))


def week_periods(a: Activation, per_day: dict[date, Decimal], until: date, gaps: Gaps = ()) -> list[Period]:
    """The weeks (Monday to Monday) from the start to the end (or `until`), each with planned and delivered; a week
    is below the threshold only once it is over (its Monday-after is not after `until`)."""
    out: list[Period] = []
    last = min(a.end_date, until) if a.end_date is not None else until
    w = monday(a.start_date)
    limit = threshold()
    while w < last or (w == monday(a.start_date) and w <= last):
        nxt = w + timedelta(days=7)
        planned = planned_in(a, w, nxt, gaps)
        delivered = sum((q for d, q in per_day.items() if w <= d < nxt), Decimal(0))
        over = nxt <= until or (a.end_date is not None and a.end_date <= until and nxt >= a.end_date)
        below = over and planned > 0 and delivered * 100 < planned * limit
        out.append(Period(w, nxt, planned, delivered, below))
        w = nxt
    return out


def month_periods(a: Activation, per_day: dict[date, Decimal], until: date, gaps: Gaps = ()) -> list[Period]:
    out: list[Period] = []
    last = min(a.end_date, until) if a.end_date is not None else until
    m = a.start_date.replace(day=1)
    limit = threshold()
    while m < last or m == a.start_date.replace(day=1):
        nxt = (m.replace(day=28) + timedelta(days=4)).replace(day=1)
        planned = planned_in(a, m, nxt, gaps)
        delivered = sum((q for d, q in per_day.items() if m <= d < nxt), Decimal(0))
        over = nxt <= until or (a.end_date is not None and a.end_date <= until)
        out.append(Period(m, nxt, planned, delivered, over and planned > 0 and delivered * 100 < planned * limit))
        m = nxt
        if m >= last:
            break
    return out


async def per_day(session: AsyncSession, activation_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[date, Decimal]]:
    rows = (await session.execute(sa.select(Delivery.activation_id, Delivery.delivered_on,
                                            sa.func.sum(sa.func.coalesce(Delivery.hours, Delivery.accesses)))
                                  .where(Delivery.activation_id.in_(activation_ids))
                                  .group_by(Delivery.activation_id, Delivery.delivered_on))).all()
    out: dict[uuid.UUID, dict[date, Decimal]] = defaultdict(dict)
    for aid, day, q in rows:
        out[aid][day] = Decimal(q)
    return out


async def suspensions(session: AsyncSession, activation_ids: list[uuid.UUID]) -> dict[uuid.UUID, Gaps]:
    rows = (await session.execute(sa.select(Suspension.activation_id, Suspension.from_date, Suspension.to_date)
                                  .where(Suspension.activation_id.in_(activation_ids))
                                  .order_by(Suspension.from_date))).all()
    out: dict[uuid.UUID, Gaps] = defaultdict(list)
    for aid, g0, g1 in rows:
        out[aid].append((g0, g1))
    return out


async def summary(session: AsyncSession, *, principal, activation_id: uuid.UUID) -> dict[str, Any]:
    """Weekly and monthly planned against delivered, to today (or the end), with the weeks already flagged."""
    a = await activation_row(session, principal, activation_id)
    days = (await per_day(session, [a.id]))[a.id]
    gaps = (await suspensions(session, [a.id]))[a.id]
    until = clock.today_rome()
    started = a.state not in (ActivationState.requested, ActivationState.accepted, ActivationState.declined)
    weeks = week_periods(a, days, until, gaps) if started else []
    months = month_periods(a, days, until, gaps) if started else []
    flagged = set((await session.execute(sa.select(WeekFlag.week_start).where(
        WeekFlag.activation_id == a.id))).scalars())
    for w in weeks:
        w.flagged = w.start in flagged
    audit.record(action="read", object_type=ENTITY, object_ids=[a.id], person_ids=[a.person_id])
    return {"activation_id": a.id, "unit": str(a.intensity_unit), "threshold_percent": threshold(),
            "weeks": weeks, "months": months,
            "planned_total": sum((w.planned for w in weeks), Decimal(0)),
            "delivered_total": sum(days.values(), Decimal(0))}


# ---------------------------------------------------------------------------------------------------- costs
@lru_cache
def co_payment_rules() -> list[dict[str, Any]]:
    return list((yaml.safe_load(CO_PAYMENT_FILE.read_text()) or {}).get("rules") or [])


def co_payment_rule(rules: list[dict[str, Any]], comune_code: str | None, service_type: str,
                    on: date) -> dict[str, Any] | None:
    """The rule of the comune (else "*") for the service type in force on `on`, latest valid_from first."""
    def fits(r):
        lo, hi = r.get("valid_from"), r.get("valid_to")
        return r["service_type"] == service_type and (lo is None or lo <= on) and (hi is None or on < hi)
    for who in (comune_code, "*"):
        found = sorted((r for r in rules if r.get("comune") == who and fits(r)),
                       key=lambda r: r.get("valid_from") or date.min, reverse=True)
        if found:
            return found[0]
    return None


def co_payment(rules, comune_code: str | None, a: Activation, per_day_q: dict[date, Decimal]) -> Decimal:
    """The person's share of the delivered cost, month by month (share_percent, capped at monthly_cap)."""
    if a.unit_cost is None:
        return Decimal(0)
    by_month: dict[date, Decimal] = defaultdict(Decimal)
    for day, q in per_day_q.items():
        by_month[day.replace(day=1)] += q * Decimal(a.unit_cost)
    total = Decimal(0)
    for month, cost in by_month.items():
        rule = co_payment_rule(rules, comune_code, a.service_type, month)
        if rule is None:
            continue
        share = cost * Decimal(str(rule.get("share_percent") or 0)) / 100
        if rule.get("monthly_cap") is not None:
            share = min(share, Decimal(str(rule["monthly_cap"])))
        total += share
    return money(total)


async def plan_costs(session: AsyncSession, *, principal, plan_id: uuid.UUID) -> dict[str, Any]:
    """Planned and delivered cost of a plan, per intervention (per order, when ordered) and per funding source.
    Planned = weekly intensity × weeks of the ordered period (to today when open-ended) × unit cost; delivered =
    the hours or accesses logged × unit cost; the co-payment follows the comune's rules (co_payment.yaml)."""
    if Permission.services_cost_read not in principal.permissions:
        raise Forbidden("Permesso mancante: services.cost_read", missing=["services.cost_read"])
    brief = await care_plan_queries.plan_brief(session, plan_id)
    if brief is None:
        raise NotFound("Progetto non trovato.")
    ivs = (await session.execute(care_plan_queries.interventions_of_plans([plan_id]))).all()
    acts = list((await session.execute(sa.select(Activation).where(
        Activation.plan_id == plan_id, Activation.state != ActivationState.declined.value)
        .order_by(Activation.requested_at, Activation.id))).scalars())
    # The scope: the orders of the plan the principal reads in full; a plan without orders, through its person's
    # residence comune, as an order would carry it.
    if acts:
        visible = (await session.execute(sa.select(Activation.id).where(
            Activation.id.in_([a.id for a in acts]), policy.full_view(principal)).limit(1))).first()
    else:
        person = await person_svc.get_person(session, principal=principal, person_id=brief["person_id"])
        visible = await policy.reads_comune(session, principal, person.ambito_id, person.residence_comune_id)
    if not visible:
        raise NotFound("Progetto non trovato.")
    days = await per_day(session, [a.id for a in acts])
    gaps = await suspensions(session, [a.id for a in acts])
    comuni = await territory.get_orgs(session, [a.comune_id for a in acts])
    rules = co_payment_rules()
    today = clock.today_rome()
    lines: list[dict[str, Any]] = []
    ordered = {a.intervention_id for a in acts}
    for a in acts:
        end = a.end_date or max(today, a.start_date)
        planned_q = planned_in(a, a.start_date, end, gaps.get(a.id, ()))
        delivered_q = sum(days.get(a.id, {}).values(), Decimal(0))
        cost = Decimal(a.unit_cost) if a.unit_cost is not None else Decimal(0)
        comune = comuni.get(a.comune_id)
        lines.append({"intervention_id": a.intervention_id, "activation_id": a.id, "service_type": a.service_type,
                      "funding_source": a.funding_source, "unit_cost": a.unit_cost,
                      "planned_quantity": money(planned_q), "delivered_quantity": money(delivered_q),
                      "planned_cost": money(planned_q * cost), "delivered_cost": money(delivered_q * cost),
                      "co_payment": co_payment(rules, comune.code if comune else None, a, days.get(a.id, {}))})
    for iv in ivs:
        if iv.id in ordered or str(iv.status) == "cancelled":
            continue
        # not ordered yet: the intensity over its planned dates, at the unit cost of its provider's accreditation
        # on its first day (an estimate; no cost without a provider, dates or an accreditation)
        quantity, unit_cost = Decimal(0), None
        if iv.intensity_value and iv.start_date and iv.end_date and iv.end_date > iv.start_date:
            quantity = Decimal(str(iv.intensity_value)) * (iv.end_date - iv.start_date).days / 7
        if iv.provider_org_id and iv.start_date:
            acc = await accreditation_on(session, ambito_id=brief["ambito_id"], organisation_id=iv.provider_org_id,
                                         service_type=iv.service_type, on=iv.start_date)
            unit_cost = acc.unit_cost if acc else None
        lines.append({"intervention_id": iv.id, "activation_id": None, "service_type": iv.service_type,
                      "funding_source": iv.funding_source, "unit_cost": unit_cost,
                      "planned_quantity": money(quantity), "delivered_quantity": Decimal("0.00"),
                      "planned_cost": money(quantity * (unit_cost or 0)), "delivered_cost": Decimal("0.00"),
                      "co_payment": Decimal("0.00")})
    by_source: dict[str | None, dict[str, Decimal]] = {}
    for line in lines:
        s = by_source.setdefault(line["funding_source"], {"planned_cost": Decimal(0), "delivered_cost": Decimal(0),
                                                           "co_payment": Decimal(0)})
        for k in s:
            s[k] += line[k]
    audit.record(action="read", object_type="care_plan_cost", object_ids=[plan_id],
                 person_ids=[brief["person_id"]])
    return {"plan_id": plan_id, "lines": lines,
            "by_funding_source": [{"funding_source": k, **{n: money(v) for n, v in s.items()}}
                                  for k, s in by_source.items()],
            "planned_cost": money(sum((ln["planned_cost"] for ln in lines), Decimal(0))),
            "delivered_cost": money(sum((ln["delivered_cost"] for ln in lines), Decimal(0))),
            "co_payment": money(sum((ln["co_payment"] for ln in lines), Decimal(0)))}



# ---------------------------------------------------------------------------------------------------- for reporting
def activation_facts() -> sa.Subquery:
    """What this context publishes for indicators, one row per activation order (a read-only projection the
    reporting context aggregates; it never selects the table): ambito_id, person_id, comune_id (residence at the
    order), service_type, state, requested_at, started_at, ended_at, run_in_system (the LEPS "SAD run entirely in
    the system", `run_in_system_sql`)."""
    a = Activation
    return sa.select(a.id, a.ambito_id, a.person_id, a.comune_id, a.service_type, a.state, a.requested_at,
                     a.started_at, a.ended_at, run_in_system_sql().label("run_in_system")).subquery("activation_facts")
