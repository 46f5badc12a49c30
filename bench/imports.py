"""Import of the older platform's records (issue 17) on a seeded registry, through the command line's own entry
point (deploy.import_cli.run_file), as a data steward:

    python -m bench.imports [--persons 160000] [--clean-rows 10000] [--rows 30000] [--database-url URL]

1. Throughput: a file of clean new persons (every row `create`), imported for real with de-duplication, audit and
   provenance on: rows per second, beside the rate of a bare COPY of the same rows (the file read and parsed, then
   COPY into a scratch table of text columns), and their ratio.
2. Truth: the 30,000-row file with realistic mess (deploy/seed/import_file.py), dry run first: its report compared
   with the generator's truth row by row (agreement printed, disagreements by kind with examples); the dry run
   writes nothing. Then the real run (no possible duplicate merged), then the same file again: it creates nothing.

When the database holds fewer persons than `--persons`, the difference is seeded first (reference data needed).
Prints a JSON document; `run()` returns it as a dict.
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.common import add_user, asyncpg_dsn, ensure_bench_user
from domain.kernel.settings import get_settings

RATE_GOAL, RATE_STRETCH = 300.0, 1_000.0
REGISTRY_PERSONS, CLEAN_ROWS, MESSY_ROWS = 160_000, 10_000, 30_000
COUNTED = ("person", "cartella", "person_relation", "possible_match", "person_merge", "import_record")
STEWARD_USERNAME = "bench.steward"


async def ensure_steward(session: Any, ambito_code: str = "ambito-crema") -> str:
    """A data steward of the Ambito (the demo `steward` when seed-demo made one), else `bench.steward` created here.
    Flushes only: the caller commits."""

    from domain.security.models import AppUser, Role, RoleAssignment, UserKind
    from domain.territory.models import Organisation

    ambito = (await session.execute(sa.select(Organisation).where(Organisation.code == ambito_code))).scalar_one()
    found = (await session.execute(
        sa.select(AppUser.username).join(RoleAssignment, RoleAssignment.user_id == AppUser.id)
        .where(AppUser.ambito_id == ambito.id, AppUser.kind == UserKind.person, AppUser.active.is_(True),
               RoleAssignment.role == Role.data_steward, RoleAssignment.valid_to.is_(None))
        .order_by(AppUser.username).limit(1))).scalar_one_or_none()
    if found:
        return found
    return await add_user(session, username=STEWARD_USERNAME, display_name="Data steward benchmark",
                          role=Role.data_steward, org=ambito)


async def _counts(engine) -> dict[str, int]:
    async with engine.connect() as c:
        return {t: (await c.execute(sa.text(f"select count(*) from {t}"))).scalar_one() for t in COUNTED}


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in after}


async def bare_copy(url: str, path: Path) -> dict[str, Any]:
    """The baseline: read and parse the same file, COPY its rows into a scratch table of text columns."""
    import asyncpg

    from deploy.seed.import_file import HEADERS

    t0 = time.perf_counter()
    with open(path, encoding="cp1252", newline="") as f:
        records = [tuple(r[h] for h in HEADERS) for r in csv.DictReader(io.StringIO(f.read()), delimiter=";")]
    t1 = time.perf_counter()
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        cols = ", ".join(f"{h} text" for h in HEADERS)
        await conn.execute(f"create temporary table bench_import_copy ({cols})")
        t2 = time.perf_counter()
        async with conn.transaction():
            await conn.copy_records_to_table("bench_import_copy", records=records, columns=list(HEADERS))
        t3 = time.perf_counter()
        await conn.execute("drop table bench_import_copy")
    finally:
        await conn.close()
    total = (t1 - t0) + (t3 - t2)
    return {"rows": len(records), "read_s": round(t1 - t0, 3), "copy_s": round(t3 - t2, 3),
            "rows_per_s": round(len(records) / total, 1) if total else None,
            "copy_only_rows_per_s": round(len(records) / (t3 - t2), 1) if t3 > t2 else None}


async def _report_rows(engine, import_id) -> dict[int, dict[str, Any]]:
    async with engine.connect() as c:
        rows = (await c.execute(sa.text(
            "select row_number, outcome, person_id, matched_row, candidate_person_ids, candidate_rows, errors "
            "from import_row where job_id = :j order by row_number"), {"j": import_id})).mappings().all()
    return {r["row_number"]: dict(r) for r in rows}


def compare(truth: list[dict[str, Any]], report: dict[int, dict[str, Any]], examples: int = 5) -> dict[str, Any]:
    """Row-by-row agreement of a report with the truth, with the disagreements by kind and a few examples."""
    from deploy.seed.import_file import agrees

    wrong: list[tuple[dict, dict]] = []
    for t in truth:
        got = report.get(t["row"], {})
        if not agrees(t, got):
            wrong.append((t, got))
    by_kind = Counter(t["kind"] for t, _ in wrong)
    shown = []
    for t, got in wrong[:examples]:
        shown.append({"truth": {k: v for k, v in t.items() if v not in ("", None)},
                      "report": {k: (str(v) if k == "person_id" else v) for k, v in got.items()
                                 if v not in (None, [], "")}})
    n = len(truth)
    return {"rows": n, "agree": n - len(wrong), "agreement": round((n - len(wrong)) / n, 5) if n else None,
            "disagree_by_kind": dict(by_kind.most_common()), "examples": shown}


async def run(url: str | None = None, *, persons: int = REGISTRY_PERSONS, clean_rows: int = CLEAN_ROWS,
              rows: int = MESSY_ROWS, ambito_code: str = "ambito-crema", seed_missing: bool = True,
              owner_url: str | None = None, rng_seed: int = 42, workdir: Path | None = None,
              quiet: bool = True) -> dict[str, Any]:
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    from deploy import import_cli
    from deploy.seed import import_file, synthetic

    s = get_settings()
    url = url or s.database_url
    owner_url = owner_url or s.migration_database_url or url
    engine = create_async_engine(url, pool_size=2)
    out: dict[str, Any] = {"persons_goal": persons, "rate_goal_rows_per_s": RATE_GOAL,
                           "rate_stretch_rows_per_s": RATE_STRETCH}
    tmp = tempfile.TemporaryDirectory(prefix="bench-imports-") if workdir is None else None
    work = Path(tmp.name) if tmp else workdir

    def progress():  # one bar per run: its rate counts from the run's start
        return None if quiet else import_cli.Progress()

    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            ambito_id = (await session.execute(sa.text("select id from organisation where code = :c"),
                                               {"c": ambito_code})).scalar_one()
            have = (await session.execute(sa.text("select count(*) from person where ambito_id = :a"),
                                          {"a": ambito_id})).scalar_one()
        if have < persons and seed_missing:
            report = await synthetic.seed(owner_url, persons=persons - have, ambito_code=ambito_code, quiet=True)
            out["seeded"] = {"persons": report.persons, "cartelle": report.cartelle,
                             "elapsed_s": round(report.elapsed_s, 1)}
            have += report.persons
        out["persons_in_db"] = have
        async with AsyncSession(engine, expire_on_commit=False) as session:
            steward = await ensure_steward(session, ambito_code)
            operator = await ensure_bench_user(session, ambito_code)  # a case manager, when no demo user is one
            await session.commit()
        out["steward"], out["operator"] = steward, operator

        # ---- 1. throughput on clean rows
        sample, comuni, operators = await import_file.load_inputs(url, ambito_code)
        t0 = time.perf_counter()
        clean, _truth = await asyncio.to_thread(import_file.generate, clean_rows, registry_sample=sample,
                                                comuni=comuni, operators=operators, seed=rng_seed, shares={},
                                                id_prefix="BNC")
        clean_path = work / "pulito.csv"
        import_file.write_csv(clean, clean_path)
        gen_s = time.perf_counter() - t0
        baseline = await bare_copy(url, clean_path)
        before = await _counts(engine)
        o = await import_cli.run_file(clean_path, username=steward, dry_run=False, database_url=url,
                                      progress=progress())
        after = await _counts(engine)
        rate = o.rate
        out["clean"] = {
            "rows": clean_rows, "generate_s": round(gen_s, 1), "import_id": str(o.import_id), "state": o.state,
            "seconds": round(o.seconds, 1), "rows_per_s": round(rate, 1), "counts": o.counts,
            "written": _delta(after, before), "copy_baseline": baseline,
            "ratio_import_to_copy": round(rate / baseline["rows_per_s"], 5) if baseline["rows_per_s"] else None,
            "goal_met": rate >= RATE_GOAL, "stretch_met": rate >= RATE_STRETCH,
            "switch_28215_s": round(28_215 / rate, 1) if rate else None,
        }

        # ---- 2. the messy file: dry run against the truth, real run, second run
        sample, comuni, operators = await import_file.load_inputs(url, ambito_code)
        t0 = time.perf_counter()
        messy, truth = await asyncio.to_thread(import_file.generate, rows, registry_sample=sample, comuni=comuni,
                                               operators=operators, seed=rng_seed, id_prefix="BNM")
        messy_path = work / "esportazione.csv"
        import_file.write_csv(messy, messy_path)  # Windows-1252, semicolons
        import_file.write_truth(truth, work / "verita.csv")
        m: dict[str, Any] = {"rows": rows, "generate_s": round(time.perf_counter() - t0, 1),
                             "truth": import_file.summary(truth)}
        before = await _counts(engine)
        dry = await import_cli.run_file(messy_path, username=steward, dry_run=True, database_url=url,
                                        progress=progress())
        m["dry_run"] = {"import_id": str(dry.import_id), "state": dry.state, "seconds": round(dry.seconds, 1),
                        "rows_per_s": round(dry.rate, 1), "counts": dry.counts,
                        "wrote": _delta(await _counts(engine), before)}
        m["agreement"] = compare(truth, await _report_rows(engine, dry.import_id))
        real = await import_cli.run_file(messy_path, username=steward, dry_run=False, database_url=url,
                                         progress=progress())
        after_real = await _counts(engine)
        m["real_run"] = {"import_id": str(real.import_id), "state": real.state, "seconds": round(real.seconds, 1),
                         "rows_per_s": round(real.rate, 1), "counts": real.counts,
                         "written": _delta(after_real, before)}
        m["real_agreement"] = compare(truth, await _report_rows(engine, real.import_id))
        again = await import_cli.run_file(messy_path, username=steward, dry_run=False, database_url=url,
                                          progress=progress())
        written_again = _delta(await _counts(engine), after_real)
        m["second_run"] = {"import_id": str(again.import_id), "state": again.state,
                           "seconds": round(again.seconds, 1), "counts": again.counts, "written": written_again,
                           "created_nothing": not any(written_again.values())}
        m["merged_automatically"] = after_real["person_merge"] - before["person_merge"]
        out["messy"] = m
    finally:
        await engine.dispose()
        if tmp is not None:
            tmp.cleanup()
    return out


def summary_lines(r: dict[str, Any]) -> list[str]:
    c, m = r["clean"], r["messy"]
    b = c["copy_baseline"]
    a = m["agreement"]
    goal = "met" if c["goal_met"] else "MISSED"
    lines = [
        f"import, clean rows: {c['rows_per_s']:,} rows/s ({c['rows']:,} rows in {c['seconds']} s into "
        f"{r['persons_in_db']:,} persons; goal ≥ {RATE_GOAL:.0f}: {goal}, stretch {RATE_STRETCH:.0f}: "
        f"{'met' if c['stretch_met'] else 'not met'}; 28,215 records in {c['switch_28215_s']} s)",
        f"bare COPY of the same rows: {b['rows_per_s']:,} rows/s (read {b['read_s']} s + COPY {b['copy_s']} s); "
        f"ratio import/COPY {c['ratio_import_to_copy']} (COPY {1 / c['ratio_import_to_copy']:,.0f}× faster)"
        if c["ratio_import_to_copy"] else "bare COPY: no rate",
        f"messy file, dry run vs truth: {a['agree']:,}/{a['rows']:,} rows agree ({a['agreement']:.2%}); "
        f"dry run {m['dry_run']['rows_per_s']:,} rows/s, wrote {sum(m['dry_run']['wrote'].values())} records",
    ]
    if a["disagree_by_kind"]:
        lines.append(f"  disagreements by kind: {a['disagree_by_kind']}")
    sr = m["second_run"]
    lines += [
        f"real run: {m['real_run']['counts']} in {m['real_run']['seconds']} s; merged automatically: "
        f"{m['merged_automatically']}",
        f"second run: {sr['counts']} — " + ("created nothing" if sr["created_nothing"]
                                            else f"WROTE {sr['written']}"),
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.imports", description=__doc__.splitlines()[0])
    p.add_argument("--persons", type=int, default=REGISTRY_PERSONS)
    p.add_argument("--clean-rows", type=int, default=CLEAN_ROWS)
    p.add_argument("--rows", type=int, default=MESSY_ROWS)
    p.add_argument("--database-url", default=None)
    p.add_argument("--ambito", default="ambito-crema")
    p.add_argument("--no-seed", action="store_true", help="do not seed missing persons")
    p.add_argument("--progress", action="store_true", help="progress bars on stderr")
    a = p.parse_args(argv)
    res = asyncio.run(run(a.database_url, persons=a.persons, clean_rows=a.clean_rows, rows=a.rows,
                          ambito_code=a.ambito, seed_missing=not a.no_seed, quiet=not a.progress))
    print(json.dumps(res, indent=2, default=str))
    print("\n".join(summary_lines(res)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
