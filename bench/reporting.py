"""Every indicator for one Ambito-year by sub-ambito, computed cold, beside one `SELECT count(*)` over the largest
fact table as the baseline measured in the same run (issue 14: ≤ 2 s on 1,000,000 persons with a year of events):

    python -m bench.reporting [--persons 1000000] [--year 2025] [--rounds 3] [--database-url URL]

Without `--database-url` it starts a throwaway embedded Postgres (fsync off), migrates, loads the reference data,
seeds the synthetic persons (deploy/seed/synthetic.py) and their activity (deploy/seed/activity.py: the cartelle
over 2020-2025 with the seed's 2023 table open at the end of 2023, and a year of events in proportion), runs
VACUUM ANALYZE as autovacuum would on a live database, then measures. "Cold": no precomputed rows exist (every
number is computed from the facts), each measurement restarts the Postgres server (its shared buffers are empty)
when the server is ours, opens a new connection and runs `DISCARD ALL`; the operating system's page cache is
**not** dropped (the machine is shared). The report is the service's own per-indicator path
(domain.reporting.service.definition_rows: counts, small-cell suppression, values), as the Ambito-wide reader sees
it. Prints a JSON document; `run()` returns it as a dict. It also checks the 2023 report of open cartelle by area
against the seed's table (times the scale).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

GOAL_S = 2.0
FACT_TABLES = ("access_request", "vmd", "discharge_case", "waiting_list_entry", "care_plan", "cartella",
               "service_activation", "measure_application")


@asynccontextmanager
async def _cold_session(url: str) -> AsyncIterator[Any]:
    """A session on a new engine and connection with nothing pooled, its session state discarded."""
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
    from sqlalchemy.pool import NullPool

    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            await raw.driver_connection.execute("DISCARD ALL")  # outside a transaction: before the session begins
            async with AsyncSession(bind=conn, expire_on_commit=False) as session:
                yield session
    finally:
        await engine.dispose()


async def _largest_fact_table(url: str) -> tuple[str, int]:
    import sqlalchemy as sa

    async with _cold_session(url) as session:
        sizes = {t: int((await session.execute(sa.text(f"select count(*) from {t}"))).scalar_one())
                 for t in FACT_TABLES}
    table = max(sizes, key=lambda t: sizes[t])
    return table, sizes[table]


async def _baseline(url: str, table: str) -> float:
    import sqlalchemy as sa

    async with _cold_session(url) as session:
        t0 = time.perf_counter()
        (await session.execute(sa.text(f"select count(*) from {table}"))).scalar_one()
        return time.perf_counter() - t0


async def report_cold(url: str, *, year: int, ambito_code: str = "ambito-crema",
                      by: str = "sub_ambito") -> tuple[float, dict[str, float], list[Any]]:
    """Every indicator of the year by `by`, on a new connection: total seconds, seconds per indicator, rows."""
    import sqlalchemy as sa

    from domain.reporting import definitions, indicators, service
    from domain.territory import queries as territory
    from domain.territory.models import Organisation

    async with _cold_session(url) as session:
        t0 = time.perf_counter()
        ambito = (await session.execute(sa.select(Organisation.id, Organisation.name).where(
            Organisation.code == ambito_code))).one()
        tree = await territory.ambito_tree(session, ambito.id)
        scope = service.Scope(tree=tree, names={o: n for o, _k, n, _p in tree}, ambito_name=ambito.name,
                              visible=None)
        per: dict[str, float] = {}
        rows: list[Any] = []
        for d in definitions.registry().values():
            t1 = time.perf_counter()
            rows += await service.definition_rows(session, d, ambito_id=ambito.id, year=year, by=by,
                                                  r=indicators.reading_for(d, year), scope=scope)
            per[d.code] = round(time.perf_counter() - t1, 4)
        return time.perf_counter() - t0, per, rows


async def open_cartelle_2023(url: str, ambito_code: str = "ambito-crema") -> dict[str, int]:
    """The 2023 report of open cartelle by area, as the service computes it: {area: count}."""
    _total, _per, rows = await report_cold(url, year=2023, ambito_code=ambito_code, by="area")
    return {r.key: r.numerator for r in rows if r.code == "CARTELLE" and r.grouping == "area"}


async def measure(url: str, *, year: int, rounds: int, restart: Callable[[], None] | None) -> dict[str, Any]:
    table, n = await _largest_fact_table(url)
    base, totals, per_rounds = [], [], []
    for _ in range(rounds):
        if restart:
            restart()
        base.append(await _baseline(url, table))
        if restart:
            restart()
        total, per, _rows = await report_cold(url, year=year)
        totals.append(total)
        per_rounds.append(per)
    med_total, med_base = statistics.median(totals), statistics.median(base)
    slowest = sorted(per_rounds[0], key=lambda c: -statistics.median(p[c] for p in per_rounds))[:5]
    return {
        "year": year, "by": "sub_ambito", "rounds": rounds, "indicators": len(per_rounds[0]),
        "largest_fact_table": table, "largest_fact_rows": n,
        "baseline_count_s": [round(x, 4) for x in base], "report_s": [round(x, 3) for x in totals],
        "median_report_s": round(med_total, 3), "median_baseline_s": round(med_base, 4),
        "ratio_to_baseline": round(med_total / med_base, 1) if med_base else None,
        "slowest": {c: round(statistics.median(p[c] for p in per_rounds), 4) for c in slowest},
        "goal_s": GOAL_S, "goal_met": med_total <= GOAL_S,
        "cold": "server restarted before each measurement" if restart else "new connection + DISCARD ALL only",
        "os_cache_dropped": False,
    }


async def _vacuum(owner_url: str) -> None:
    """What autovacuum does to a live table after a bulk load: statistics and the visibility map (the
    indicators' look-ups of the person are index-only scans, which need it)."""
    import asyncpg

    from bench.common import asyncpg_dsn

    conn = await asyncpg.connect(asyncpg_dsn(owner_url))
    try:
        for table in ("person", *FACT_TABLES):
            await conn.execute(f"VACUUM ANALYZE {table}")
    finally:
        await conn.close()


async def _counts(url: str) -> dict[str, int]:
    import asyncpg

    from bench.common import asyncpg_dsn

    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return {t: await conn.fetchval(f"select count(*) from {t}") for t in ("person", *FACT_TABLES)}
    finally:
        await conn.close()


def run(*, persons: int, year: int, rounds: int, scale: float, database_url: str | None = None,
        tmp_root: str = "/var/tmp", keep: bool = False) -> dict[str, Any]:
    if database_url:
        return asyncio.run(measure(database_url, year=year, rounds=rounds, restart=None))
    from bench.common import throwaway_cluster

    out: dict[str, Any] = {"persons": persons, "scale": scale}
    with throwaway_cluster("pua_bench", prefix="pua-bench-reporting-", tmp_root=tmp_root, keep=keep) as (
            tmp, port, urls):
        from bench.run_all import _load_reference
        from deploy.seed import activity, synthetic
        from integrations.postgres import devpg

        asyncio.run(_load_reference(urls["MIGRATION_DATABASE_URL"]))
        t0 = time.perf_counter()
        asyncio.run(synthetic.seed(urls["MIGRATION_DATABASE_URL"], persons=persons, quiet=True))
        act = asyncio.run(activity.seed(urls["MIGRATION_DATABASE_URL"], scale=scale, year=year))
        asyncio.run(_vacuum(urls["MIGRATION_DATABASE_URL"]))
        out["seed_s"] = round(time.perf_counter() - t0, 1)
        out["activity"] = activity.format_report(act)
        out["rows"] = asyncio.run(_counts(urls["DATABASE_URL"]))
        out["open_cartelle_2023_expected"] = activity.targets(scale)
        out["open_cartelle_2023_report"] = asyncio.run(open_cartelle_2023(urls["DATABASE_URL"]))
        out["open_cartelle_2023_match"] = all(
            out["open_cartelle_2023_report"].get(a) == n for a, n in out["open_cartelle_2023_expected"].items())

        def restart() -> None:
            devpg.stop(tmp / "pg", mode="fast")
            devpg.start(tmp / "pg", port=port, fast=True)

        out |= asyncio.run(measure(urls["DATABASE_URL"], year=year, rounds=rounds, restart=restart))
    return out


def summary_lines(r: dict[str, Any]) -> list[str]:
    return [f"indicators cold ({r['indicators']} for one Ambito-year by sub-ambito, {r['cold']}; OS cache not "
            f"dropped): median {r['median_report_s']} s over {r['rounds']} rounds {r['report_s']}; baseline "
            f"SELECT count(*) over {r['largest_fact_table']} ({r['largest_fact_rows']:,} rows) "
            f"{r['median_baseline_s']} s, ratio {r['ratio_to_baseline']} (goal ≤ {r['goal_s']} s: "
            f"{'met' if r['goal_met'] else 'MISSED'}); slowest {r['slowest']}"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.reporting", description=__doc__.splitlines()[0])
    p.add_argument("--persons", type=int, default=1_000_000)
    p.add_argument("--year", type=int, default=2025)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--scale", type=float, default=1.0, help="× the seed's 2023 table of open cartelle")
    p.add_argument("--database-url", default=None, help="measure an existing database (seeded already)")
    p.add_argument("--tmp-root", default="/var/tmp")
    p.add_argument("--keep", action="store_true")
    a = p.parse_args(argv)
    r = run(persons=a.persons, year=a.year, rounds=a.rounds, scale=a.scale, database_url=a.database_url,
            tmp_root=a.tmp_root, keep=a.keep)
    print(json.dumps(r, indent=2, default=str))
    print("\n".join(summary_lines(r)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
