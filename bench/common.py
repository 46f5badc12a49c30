"""Shared helpers for the benchmarks: percentiles, database URLs, the user the benchmarks act as."""
from __future__ import annotations

import math
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
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
    otherwise a dedicated user `bench.pua` (`bench.pua.<ambito code>` outside Crema; ambito_pua_social_worker in the
    Ambito) created here. Flushes only:
    the caller commits."""

    import sqlalchemy as sa

    from domain.security.models import AppUser, Role, RoleAssignment, UserKind
    from domain.territory.models import Organisation

    ambito = (await session.execute(
        sa.select(Organisation).where(Organisation.code == ambito_code))).scalar_one_or_none()
    if ambito is None:
        raise RuntimeError(f"no Ambito {ambito_code}: load the reference data first")
    username = BENCH_USERNAME if ambito_code == "ambito-crema" else f"{BENCH_USERNAME}.{ambito_code}"
    found = (await session.execute(
        sa.select(AppUser.username).join(RoleAssignment, RoleAssignment.user_id == AppUser.id)
        .where(AppUser.ambito_id == ambito.id, AppUser.kind == UserKind.person, AppUser.active.is_(True),
               RoleAssignment.role == Role.ambito_pua_social_worker, RoleAssignment.valid_to.is_(None))
        .order_by((AppUser.username == username).desc(), AppUser.username).limit(1)
    )).scalar_one_or_none()
    if found:
        return found
    return await add_user(session, username=username, display_name="Operatore benchmark",
                          role=Role.ambito_pua_social_worker, org=ambito)


async def add_user(session: Any, *, username: str, display_name: str, role: Any, org: Any) -> str:
    """A benchmark's person user holding `role` on the organisation `org` since 2020, in that organisation's Ambito
    (the Ambito or the Region itself when `org` is one). Flushes only: the caller commits."""
    from datetime import date

    from domain.security.models import AppUser, RoleAssignment, UserKind

    user = AppUser(username=username, display_name=display_name, kind=UserKind.person,
                   ambito_id=org.ambito_id or org.id)
    session.add(user)
    await session.flush()
    session.add(RoleAssignment(user_id=user.id, role=role, organisation_id=org.id, valid_from=date(2020, 1, 1)))
    await session.flush()
    return username


def finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


@contextmanager
def throwaway_cluster(db: str, *, owner: str = "pua_owner", app_role: str = "pua_app", prefix: str = "pua-bench-",
                      tmp_root: str = "/var/tmp", keep: bool = False) -> Iterator[tuple[Path, int, dict[str, str]]]:
    """An embedded Postgres in a temp dir (fsync off: the data is disposable) with the database `db`, its owner and
    application roles, migrated; the process environment pointed at it (its own development keys, DEV_MODE for the
    demo users and development tokens, no search brake: the benchmarks measure the query). Yields (temp dir, port,
    URLs); stops the server and deletes the dir (unless `keep`) after."""
    import os
    import shutil
    import tempfile

    from integrations.postgres import devpg

    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=tmp_root))
    # Settings are read once: point everything at the bench cluster and its own dev keys before importing them.
    os.environ["DEV_KEYS_DIR"] = str(tmp / "keys")
    os.environ["DEV_MODE"] = "true"  # development keys and demo users (the API refuses them otherwise)
    os.environ.pop("PRINCIPAL_CACHE_SECONDS", None)
    # The search brake protects the registry from scraping by a person; the benchmarks measure the query itself.
    os.environ["PERSON_SEARCH_PER_MINUTE"] = "0"
    port = devpg.start(tmp / "pg", fast=True)
    try:
        devpg.ensure_database(port, db, owner, app_role)
        urls = devpg.urls(port, db, owner, app_role)
        os.environ.update(urls)
        from domain.kernel.settings import get_settings

        get_settings.cache_clear()
        from integrations.identity import jwt as jwt_mod

        jwt_mod.reset_keyset()
        from deploy.migrate import upgrade

        upgrade(urls["MIGRATION_DATABASE_URL"])
        yield tmp, port, urls
    finally:
        devpg.stop(tmp / "pg", mode="immediate")
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


def cluster_options(p: Any, default_output: Path) -> None:
    """The command-line options of a benchmark on a throwaway cluster: where the result goes, where the cluster lives
    and whether it stays."""
    p.add_argument("--output", type=Path, default=default_output)
    p.add_argument("--tmp-root", default="/var/tmp", help="where the throwaway cluster lives")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (cluster data, server logs)")


def run_and_write(args: Any, run: Any, summary: Any) -> dict[str, Any]:
    """Runs the benchmark, prints its summary and writes its result as JSON to args.output."""
    import json

    result = run(args)
    print(summary(result))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"written {args.output}")
    return result
