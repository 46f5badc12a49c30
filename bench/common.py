"""Shared helpers for the benchmarks: percentiles, database URLs, the user the benchmarks act as."""
from __future__ import annotations

import math
import statistics
from typing import Any

BENCH_USERNAME = "bench.pua"


def summarize(samples_ms: list[float]) -> dict[str, float]:
    """p50/p95/p99/mean/max in milliseconds (linear interpolation between order statistics)."""
    if not samples_ms:
        return {"n": 0, "p50_ms": math.nan, "p95_ms": math.nan, "p99_ms": math.nan, "mean_ms": math.nan,
                "max_ms": math.nan}
    xs = sorted(samples_ms)
    if len(xs) == 1:
        q = [xs[0]] * 99
    else:
        q = statistics.quantiles(xs, n=100, method="inclusive")
    return {"n": len(xs), "p50_ms": round(q[49], 3), "p95_ms": round(q[94], 3), "p99_ms": round(q[98], 3),
            "mean_ms": round(statistics.fmean(xs), 3), "max_ms": round(xs[-1], 3)}


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://").replace("postgresql+psycopg://", "postgresql://")


def sqlalchemy_url(url: str) -> str:
    return url if "+" in url.split("://", 1)[0] else url.replace("postgresql://", "postgresql+asyncpg://", 1)


async def ensure_bench_user(session: Any, ambito_code: str = "ambito-crema") -> str:
    """The username the benchmarks act as: a demo PUA social worker of the Ambito when `seed-demo` made one,
    otherwise a dedicated user `bench.pua` (ambito_pua_social_worker in the Ambito) created here. Flushes only:
    the caller commits."""
    from datetime import date

    import sqlalchemy as sa

    from domain.security.models import AppUser, Role, RoleAssignment, UserKind
    from domain.territory.models import Organisation

    ambito = (await session.execute(
        sa.select(Organisation).where(Organisation.code == ambito_code))).scalar_one_or_none()
    if ambito is None:
        raise RuntimeError(f"no Ambito {ambito_code}: load the reference data first")
    found = (await session.execute(
        sa.select(AppUser.username).join(RoleAssignment, RoleAssignment.user_id == AppUser.id)
        .where(AppUser.ambito_id == ambito.id, AppUser.kind == UserKind.person, AppUser.active.is_(True),
               RoleAssignment.role == Role.ambito_pua_social_worker, RoleAssignment.valid_to.is_(None))
        .order_by((AppUser.username == BENCH_USERNAME).desc(), AppUser.username).limit(1)
    )).scalar_one_or_none()
    if found:
        return found
    user = AppUser(username=BENCH_USERNAME, display_name="Operatore benchmark", kind=UserKind.person,
                   ambito_id=ambito.id)
    session.add(user)
    await session.flush()
    session.add(RoleAssignment(user_id=user.id, role=Role.ambito_pua_social_worker, organisation_id=ambito.id,
                               valid_from=date(2020, 1, 1)))
    await session.flush()
    return BENCH_USERNAME


def finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)
