"""`make bench`: everything on a throwaway embedded Postgres, then a summary and bench/results/latest.json.

    python -m bench.run_all [--persons 1000000] [--ambiti 1] [--requests 2000] [--concurrency 16] [--samples 300]
                            [--output bench/results/latest.json] [--keep]

The regional scale of issue 18 (10 M persons over 90 Ambiti; docs/readme/bench.md):

    flock /tmp/bench.lock .venv/bin/python -m bench.run_all --persons 10000000 --ambiti 90 --import-rows 0

Steps: start an embedded Postgres in a temp dir (integrations/postgres/devpg.py, fsync off: the data is
disposable), create the database with the owner and application roles, migrate, load the reference data, the demo
users when `seed-demo` exists, seed synthetic persons (COPY): first the import's registry (160,000) for
bench.imports (the older platform's records: clean rows per second beside a bare COPY, the messy file's dry run
against its truth, a second run that creates nothing), then the rest up to N (over `--ambiti` Ambiti); then
bench.persons (codice fiscale lookup and fuzzy name search by a user of the largest Ambito, and with several
Ambiti the search across all of them), bench.api_ratio (our API against a bare FastAPI + asyncpg baseline) and
bench.fhir_ratio (the FHIR Patient read and identifier search against the /api read, same server, same run) and
bench.fhir_transactions (discharge signals as transaction Bundles, resources per second).
"""
from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import cluster_options, run_and_write, throwaway_cluster

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "latest.json"
OWNER, APP_ROLE, DB = "pua_owner", "pua_app", "pua_bench"


def _step(msg: str, t0: float) -> None:
    print(f"[{time.perf_counter() - t0:7.1f} s] {msg}", flush=True)


async def _load_reference(owner_url: str) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    from domain.territory.reference import load_reference_data

    engine = create_async_engine(owner_url)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as s:
            await load_reference_data(s)
            await s.commit()
    finally:
        await engine.dispose()


def _seed_demo() -> str:
    """Demo users when the seed-demo command exists (`python -m api seed-demo`); the benchmarks otherwise make
    their own user."""
    try:
        mod = importlib.import_module("deploy.seed.demo")
    except ModuleNotFoundError:
        return "seed-demo not available: the benchmarks create their own user"
    rc = mod.main([])
    return f"seed-demo exit code {rc or 0}"


def run(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    os.environ.setdefault("LOG_LEVEL", "INFO")
    result: dict[str, Any] = {}
    with throwaway_cluster(DB, owner=OWNER, app_role=APP_ROLE, tmp_root=args.tmp_root,
                           keep=args.keep) as (tmp, port, urls):
        _step(f"embedded Postgres on 127.0.0.1:{port} ({tmp}), migrated", t0)
        asyncio.run(_load_reference(urls["MIGRATION_DATABASE_URL"]))
        _step("reference data loaded", t0)
        _step(_seed_demo(), t0)

        from deploy.seed import synthetic

        # The import is measured on a registry of the Ambito's size (issue 17), before the rest of the persons.
        first = min(args.persons, args.import_persons) if args.import_rows != 0 else args.persons
        report = asyncio.run(synthetic.seed(urls["MIGRATION_DATABASE_URL"], persons=first, quiet=first < 200_000,
                                            ambiti=args.ambiti if first == args.persons else 1))
        print(synthetic.format_report(report), flush=True)
        _step(f"seeded {report.persons:,} persons in {report.elapsed_s:.1f} s", t0)
        ires = None
        if args.import_rows != 0:
            from bench import imports

            # Unless given, the files scale with the registry: 10,000 clean and 30,000 messy rows for 160,000.
            scale = first / imports.REGISTRY_PERSONS
            clean_rows = args.import_clean_rows or max(100, round(imports.CLEAN_ROWS * scale))
            rows = args.import_rows or max(200, round(imports.MESSY_ROWS * scale))  # 200: every kind of mess
            ires = asyncio.run(imports.run(urls["DATABASE_URL"], persons=first, clean_rows=clean_rows,
                                           rows=rows, seed_missing=False,
                                           owner_url=urls["MIGRATION_DATABASE_URL"]))
            print("\n".join(imports.summary_lines(ires)), flush=True)
            _step("import measured", t0)
            rest = args.persons - asyncio.run(_count_persons(urls["DATABASE_URL"]))
            if rest > 0:
                more = asyncio.run(synthetic.seed(urls["MIGRATION_DATABASE_URL"], persons=rest,
                                                  quiet=rest < 200_000, ambiti=args.ambiti))
                _step(f"seeded {more.persons:,} more persons in {more.elapsed_s:.1f} s", t0)
                for name in ("persons", "cartelle", "elapsed_s", "generate_s", "copy_s", "analyze_s", "index_s"):
                    setattr(report, name, getattr(report, name) + getattr(more, name))
                for area, n in more.by_area.items():
                    report.by_area[area] = report.by_area.get(area, 0) + n
                for code, n in more.by_ambito.items():
                    report.by_ambito[code] = report.by_ambito.get(code, 0) + n

        from bench import api_ratio, persons

        pres = asyncio.run(persons.run(urls["DATABASE_URL"], persons=args.persons, samples=args.samples,
                                       seed_missing=False, log_dir=tmp / "logs"))
        _step("person lookup/search measured", t0)
        ares = asyncio.run(api_ratio.run(urls["DATABASE_URL"], requests=args.requests,
                                         concurrency=args.concurrency, workers=args.workers, rounds=args.rounds,
                                         warmup=min(200, max(20, args.requests // 10)), log_dir=tmp / "logs"))
        _step("API ratio measured", t0)
        from bench import fhir_ratio

        fres = asyncio.run(fhir_ratio.run(urls["DATABASE_URL"], requests=args.requests,
                                          concurrency=args.concurrency, rounds=args.rounds,
                                          warmup=min(200, max(20, args.requests // 10)), log_dir=tmp / "logs"))
        _step("FHIR ratio measured", t0)
        from bench import fhir_transactions

        tres = asyncio.run(fhir_transactions.run(urls["DATABASE_URL"], bundles=min(1500, args.requests),
                                                 concurrency=args.concurrency, log_dir=tmp / "logs",
                                                 warmup=min(100, max(20, args.requests // 10))))
        _step("FHIR transactions measured", t0)
        result = {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform()},
            "params": {"persons": args.persons, "requests": args.requests, "concurrency": args.concurrency,
                       "workers": args.workers, "samples": args.samples, "import_persons": args.import_persons,
                       "import_clean_rows": args.import_clean_rows, "import_rows": args.import_rows,
                       "ambiti": args.ambiti},
            "seed": {"persons": report.persons, "cartelle": report.cartelle, "by_area": report.by_area,
                     "elapsed_s": round(report.elapsed_s, 1), "generate_s": round(report.generate_s, 1),
                     "copy_s": round(report.copy_s, 1), "analyze_s": round(report.analyze_s, 1),
                     "index_s": round(report.index_s, 1), "by_ambito": report.by_ambito},
            "persons": pres,
            "api_ratio": ares,
            "fhir_ratio": fres,
            "fhir_transactions": tres,
            "imports": ires,
            "total_s": round(time.perf_counter() - t0, 1),
        }
    return result


def summary(r: dict[str, Any]) -> str:
    p, a, s = r["persons"], r["api_ratio"], r["seed"]
    cf, fz = p["cf_lookup"], p["fuzzy_search"]
    return "\n".join([
        "== benchmark summary ==",
        f"seed: {s['persons']:,} persons + {s['cartelle']:,} cartelle in {s['elapsed_s']} s "
        f"(generate {s['generate_s']} s and COPY {s['copy_s']} s overlapped, indexes {s.get('index_s', 0)} s, "
        f"ANALYZE {s['analyze_s']} s; {len(s.get('by_ambito') or {}) or 1} Ambiti)",
        f"searching user's Ambito: {p['ambito']['code']} ({p['ambito']['persons']:,} persons)",
        f"codice fiscale lookup: p50 {cf['p50_ms']} ms, p95 {cf['p95_ms']} ms (n={cf['n']}; goal p95 ≤ "
        f"{p['cf_goal_p95_ms']} ms: {'met' if p['cf_goal_met'] else 'MISSED'})",
        f"fuzzy name search:     p50 {fz['p50_ms']} ms, p95 {fz['p95_ms']} ms (n={fz['n']}; goal p95 ≤ "
        f"{p['fuzzy_goal_p95_ms']} ms: {'met' if p['fuzzy_goal_met'] else 'MISSED'})",
        *([f"regional helpdesk, GET /api/regional/persons across all {p['ambiti_with_persons']} Ambiti (HTTP): "
           f"p50 {re_['p50_ms']} ms, p95 {re_['p95_ms']} ms, p99 {re_['p99_ms']} ms (goal p95 ≤ "
           f"{p['regional_goal_p95_ms']} ms: {'met' if p['regional_goal_met'] else 'MISSED'}); the query alone: "
           f"p50 {rg['p50_ms']} ms, p95 {rg['p95_ms']} ms; before the role (a surname alone too): p95 "
           f"{p['regional_statement_any_name']['p95_ms']} ms"]
          if (rg := p.get("regional_fuzzy_search")) and (re_ := p.get("regional_endpoint")) else []),
        f"API GET /api/persons/{{id}}: ours {a['ours']['req_per_s']} req/s, baseline {a['baseline']['req_per_s']} "
        f"req/s, ratio {a['ratio']} (goal ≥ {a['ratio_goal']}: {'met' if a['ratio_goal_met'] else 'MISSED'}; "
        f"rounds {a['round_ratios']}, non-200 {a['non_200']})",
        *(fhir_summary(r["fhir_ratio"]) if r.get("fhir_ratio") else []),
        *(transactions_summary(r["fhir_transactions"]) if r.get("fhir_transactions") else []),
        *(imports_summary(r["imports"]) if r.get("imports") else []),
        f"total: {r['total_s']} s",
    ])


def fhir_summary(f: dict[str, Any]) -> list[str]:
    return [f"FHIR {name}: {f[key]['req_per_s']} req/s, p99 {f[key]['p99_ms']} ms, ratio to GET /api/persons/{{id}} "
            f"{f[f'{key}_ratio']} (goal ≥ {f['ratio_goal']}, p99 ≤ {f['p99_goal_ms']:.0f} ms)"
            for key, name in (("fhir_read", "GET /fhir/Patient/{id}"),
                              ("fhir_search", "GET /fhir/Patient?identifier=…"))]


def transactions_summary(t: dict[str, Any]) -> list[str]:
    return [f"FHIR discharge transactions: {t['resources_per_s']} resources/s ({t['bundles_per_s']} bundles/s of "
            f"{t['entries_per_bundle']} entries, {round(t['new_share'] * 100)} % new persons; goal ≥ {t['goal']}, "
            f"stretch {t['stretch']}: {'met' if t['goal_met'] else 'MISSED'}; p95 {t['latency']['p95_ms']} ms; "
            f"statuses {t['statuses']}; same Bundle again: {'200' if t['replay_200'] else 'FAILED'}; bare FastAPI + "
            f"asyncpg {t['baseline']['bundles_per_s']} bundles/s, ratio {t['ratio']})"]


def imports_summary(ires: dict[str, Any]) -> list[str]:
    from bench import imports

    return imports.summary_lines(ires)


async def _count_persons(url: str) -> int:
    import asyncpg

    from bench.common import asyncpg_dsn

    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return await conn.fetchval("select count(*) from person")
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__.splitlines()[0])
    p.add_argument("--persons", type=int, default=1_000_000)
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--samples", type=int, default=300)
    p.add_argument("--ambiti", type=int, default=1,
                   help="spread the persons beyond the import's registry over this many Ambiti (issue 18: 90)")
    p.add_argument("--import-persons", type=int, default=160_000, help="registry size for bench.imports")
    p.add_argument("--import-clean-rows", type=int, default=None,
                   help="clean rows for the import's rate (default: 10,000 per 160,000 persons)")
    p.add_argument("--import-rows", type=int, default=None,
                   help="rows of the messy file (default: 30,000 per 160,000 persons; 0 skips bench.imports)")
    cluster_options(p, DEFAULT_OUTPUT)
    run_and_write(p.parse_args(argv), run, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
