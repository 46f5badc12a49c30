"""Indicators of the Piano di Zona, computed from the facts each context publishes (`pua.queries.access_facts`,
`assessment.queries.vmd_facts`): this context defines what counts and over which period; the owners keep their
tables. Every indicator is one query.

- P1 = first-level assessments / requests registered; P3 = referrals to VMD (alone or with the COT) / requests
  registered (docs/decisions/pua.md §5: the cohort of the requests registered in the period);
- the share of integrated VMDs (target 50 % 2025, 75 % 2026, 100 % 2027) among the VMDs concluded in the period,
  optionally by owning comune of the cartella (docs/decisions/vmd.md §7).

Periods: dates are Europe/Rome calendar days, both included; aware datetimes are the half-open `[start, end)`.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.assessment import queries as assessment_queries
from domain.assessment.models import VmdState
from domain.kernel import clock
from domain.kernel.errors import Invalid
from domain.pua import queries as pua_queries
from domain.pua.models import AccessState
from domain.pua.states import COT_STATES, VMD_STATES
from domain.registry import cartelle


def period_bounds(start: date | datetime, end: date | datetime) -> tuple[datetime, datetime]:
    """[lo, hi) of a period given as two dates (Rome days, both included) or two aware datetimes."""
    if isinstance(start, datetime) != isinstance(end, datetime):
        raise Invalid("start", "indicare inizio e fine dello stesso tipo (date o istanti)")
    if isinstance(start, datetime):
        if start.tzinfo is None or end.tzinfo is None:  # type: ignore[union-attr]
            raise Invalid("start", "indicare il fuso orario")
        lo, hi = start, end
    else:
        lo, hi = clock.rome_period_bounds(start, end)  # type: ignore[arg-type]
    if hi <= lo:  # type: ignore[operator]
        raise Invalid("end", "la fine del periodo precede l'inizio")
    return lo, hi  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------------- PUA (P1, P3)
@dataclass(frozen=True)
class AccessCounters:
    """Requests registered in the period (the cohort), and how many of them reached each step by now."""

    registered: int
    first_level_done: int
    referred_vmd: int
    referred_cot: int
    oriented: int
    withdrawn: int

    @property
    def p1(self) -> float | None:
        """N° first-level assessments done / N° requests registered."""
        return self.first_level_done / self.registered if self.registered else None

    @property
    def p3(self) -> float | None:
        """N° referrals to VMD / N° requests received."""
        return self.referred_vmd / self.registered if self.registered else None


async def access_counters(session: AsyncSession, *, ambito_id: uuid.UUID, start: date | datetime,
                          end: date | datetime) -> AccessCounters:
    """Counters of the requests *registered* in the period. Cancelled requests (registration errors) are left out
    of every counter; withdrawn ones count as registered. One query (docs/decisions/pua.md §5)."""
    lo, hi = period_bounds(start, end)
    ar = pua_queries.access_facts().c

    def n(cond: Any) -> Any:
        return sa.func.count().filter(cond)

    row = (await session.execute(
        sa.select(sa.func.count().label("registered"),
                  n(ar.first_level_at.is_not(None)).label("first_level_done"),
                  n(ar.state.in_([s.value for s in VMD_STATES])).label("referred_vmd"),
                  n(ar.state.in_([s.value for s in COT_STATES])).label("referred_cot"),
                  n(ar.state == AccessState.oriented.value).label("oriented"),
                  n(ar.state == AccessState.withdrawn.value).label("withdrawn"))
        .where(ar.ambito_id == ambito_id, ar.registered_at >= lo, ar.registered_at < hi,
               ar.state != AccessState.cancelled.value)
    )).one()
    return AccessCounters(**row._mapping)


# ---------------------------------------------------------------------------------------------------- VMD
@dataclass(frozen=True)
class IntegratedShare:
    numerator: int  # VMDs concluded in the period with `integrated` true
    denominator: int  # VMDs concluded in the period (cancelled ones never count)
    start: datetime
    end: datetime

    @property
    def share(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None


def _concluded(v: Any, ambito_id: uuid.UUID, lo: datetime, hi: datetime) -> list[Any]:
    return [v.ambito_id == ambito_id, v.state == VmdState.concluded.value, v.concluded_at >= lo,
            v.concluded_at < hi]


async def integrated_share(session: AsyncSession, *, ambito_id: uuid.UUID, start: date | datetime,
                           end: date | datetime, comune_id: uuid.UUID | None = None) -> IntegratedShare:
    """Among the VMDs of the Ambito CONCLUDED in the period (by `concluded_at`), how many are integrated.
    Optionally for one owning comune of the cartella. One query (on the partial index ix_vmd_concluded)."""
    lo, hi = period_bounds(start, end)
    v = assessment_queries.vmd_facts().c
    conds = _concluded(v, ambito_id, lo, hi)
    if comune_id is not None:
        conds.append(cartelle.cartella_owner_sql(v.cartella_id) == comune_id)
    row = (await session.execute(
        sa.select(sa.func.count().label("den"), sa.func.count().filter(v.integrated.is_(True)).label("num"))
        .where(*conds))).one()
    return IntegratedShare(numerator=int(row.num), denominator=int(row.den), start=lo, end=hi)


async def integrated_share_by_comune(session: AsyncSession, *, ambito_id: uuid.UUID, start: date | datetime,
                                     end: date | datetime) -> dict[uuid.UUID, tuple[int, int]]:
    """The same indicator stratified by the cartella's owning comune: {comune_id: (numerator, denominator)}."""
    lo, hi = period_bounds(start, end)
    v = assessment_queries.vmd_facts().c
    comune = cartelle.cartella_owner_sql(v.cartella_id).label("comune_id")
    rows = (await session.execute(
        sa.select(comune, sa.func.count().filter(v.integrated.is_(True)), sa.func.count())
        .where(*_concluded(v, ambito_id, lo, hi)).group_by(comune))).all()
    return {c: (int(n), int(d)) for c, n, d in rows}
