"""Reads of protected discharges: one case, the list each reader sees (ward: the signals of its wards, status only;
COT: its cases; comune: its residents' cases; providers named in the project: minimal), the COT queue by deadline,
and the facts reporting computes D3-D7 from."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.discharge import policy
from domain.discharge.models import DischargeCase, DischargeState
from domain.discharge.service import ENTITY
from domain.discharge.states import allowed_actions
from domain.kernel import cursor as cursor_codec
from domain.kernel.errors import Forbidden, NotFound
from domain.kernel.validity import Span
from domain.security import audit
from domain.security.models import Role
from domain.security.permissions import Permission
from domain.security.principal import Principal

MAX_PAGE = 200
CURSOR_KIND = "discharge.cases"


@dataclass(frozen=True)
class Visible:
    case: DischargeCase
    view: policy.View

    @property
    def allowed(self) -> list[str]:
        return allowed_actions(self.case.state) if self.view == "full" else []


async def get_case(session: AsyncSession, *, principal: Principal, discharge_id: uuid.UUID) -> Visible:
    policy.ensure(principal, Permission.discharge_read)
    row = (await session.execute(
        sa.select(DischargeCase, policy.full_view(principal).label("full"),
                  policy.status_view(principal).label("status"))
        .where(DischargeCase.id == discharge_id, policy.row_filter(principal)))).one_or_none()
    if row is None:
        raise NotFound("Dimissione protetta non trovata.")
    case, full, status = row
    audit.record(action="read", object_type=ENTITY, object_ids=[case.id], person_ids=[case.person_id])
    return Visible(case, policy.view_of(bool(full), bool(status)))


async def list_cases(session: AsyncSession, *, principal: Principal, states: list[DischargeState] | None = None,
                     person_id: uuid.UUID | None = None, limit: int = 50, cursor: str | None = None,
                     requested: Span | None = None, due: Span | None = None) -> tuple[list[Visible], str | None]:
    """The cases the principal may see, newest signal first (keyset on signalled_at, id), one query. `requested`
    filters on the COT request, `due` on the due time the case shows (the signal's own, else the protocol's)."""
    policy.ensure(principal, Permission.discharge_read)
    limit = max(1, min(int(limit), MAX_PAGE))
    conds: list[Any] = [policy.row_filter(principal)]
    if states:
        conds.append(DischargeCase.state.in_([DischargeState(s).value for s in states]))
    if person_id:
        conds.append(DischargeCase.person_id == person_id)
    if requested is not None:
        conds.append(requested.sql(DischargeCase.cot_requested_at))
    if due is not None:
        conds.append(due.sql(sa.func.coalesce(DischargeCase.requested_due_at, DischargeCase.evaluation_due_at)))
    stmt = sa.select(DischargeCase, policy.full_view(principal).label("full"),
                     policy.status_view(principal).label("status")).where(*conds)
    rows = (await session.execute(cursor_codec.newest_first(
        stmt, DischargeCase.signalled_at, DischargeCase.id, CURSOR_KIND, cursor, limit))).all()
    items = [Visible(c, policy.view_of(bool(full), bool(status))) for c, full, status in rows[:limit]]
    nxt = cursor_codec.next_token(CURSOR_KIND, rows, limit, lambda r: (r[0].signalled_at, r[0].id))
    audit.record(action="search", object_type=ENTITY, object_ids=[v.case.id for v in items],
                 person_ids=[v.case.person_id for v in items], result_count=len(items))
    return items, nxt


async def cot_queue(session: AsyncSession, *, principal: Principal, limit: int = 50) -> list[DischargeCase]:
    """The evaluations awaiting the principal's COT, the nearest deadline first (the at-risk and overdue ones lead).
    A queue of the COT's operators: whoever holds no COT role has none (403), a COT with nothing pending an empty
    one."""
    policy.ensure(principal, Permission.discharge_manage)
    cots = principal.orgs_for(Role.cot_operator)
    if not cots:
        raise Forbidden("La coda delle valutazioni è degli operatori della COT.", missing=[Role.cot_operator.value])
    rows = list((await session.execute(
        sa.select(DischargeCase).where(
            policy.row_filter(principal), DischargeCase.state == DischargeState.cot_requested.value,
            DischargeCase.cot_org_id.in_(sorted(cots, key=str)))
        .order_by(DischargeCase.evaluation_due_at, DischargeCase.id).limit(max(1, min(limit, MAX_PAGE))))).scalars())
    audit.record(action="search", object_type=ENTITY, object_ids=[c.id for c in rows],
                 person_ids=[c.person_id for c in rows], result_count=len(rows))
    return rows


# ---------------------------------------------------------------- for reporting
def discharge_facts() -> sa.Subquery:
    """What this context publishes for indicators (D3-D7), one row per case: the reporting context aggregates it
    and never selects the table. Definitions and counting rules: docs/indicators.md."""
    c = DischargeCase
    return sa.select(c.id, c.ambito_id, c.person_id, c.state, c.ward_org_id, c.comune_id, c.out_of_ambito,
                     c.signalled_at, c.social_risk, c.criteria, c.cot_requested_at, c.evaluation_due_at,
                     c.evaluated_at, c.evaluation_hours, c.setting, c.setting_at, c.plan_id, c.project_at,
                     c.services, c.services_at, c.discharged_at, c.monitoring_at, c.closed_at,
                     c.exit_reason).subquery(
        "discharge_facts")
