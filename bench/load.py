"""Load test: one Ambito's working day under locust at several user counts, per operation p50/p95/p99 and errors.

    python -m bench.load [--persons 1000000] [--users 25,100] [--duration 120] [--vmds 200] [--plans 100]
                         [--listed 40] [--think 1,5] [--output bench/results/load.json] [--keep]

On a throwaway embedded Postgres (as bench.run_all: migrated, reference data, demo users, N synthetic persons by
COPY), one API process under uvicorn (as `make run`), the working data the mix needs made through the API
(bench/load_data.py: VMDs in progress, active plans, listed RSA entries, a few discharge signals), then locust
headless (bench/locustfile.py: the mix, its weights and think times) once per user count, bounded in time: users
start over the first tenth of the run, the statistics restart once all are running. Prints a table per operation
(requests, p50/p95/p99 in ms, failures, expected 4xx apart) and what the audit trail gained per 1,000 requests
of the mix with a year projected (bench.audit_volume's assumptions). The Celery worker is not started: no request
of the mix waits for a job (the outbox messages of the discharge signals stay queued).

The load generator runs on the same machine as the API and Postgres: it takes a share of the CPU.
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import audit_volume, load_data
from bench.api_ratio import Server, _free_port, _server_env
from bench.common import cluster_options, run_and_write, throwaway_cluster
from bench.run_all import _load_reference, _seed_demo, _step

ROOT = Path(__file__).resolve().parents[1]
DB = "pua_load"
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "load.json"
LOCUSTFILE = ROOT / "bench" / "locustfile.py"
OPERATIONS = ("person_search", "pua_register", "pua_queue", "work_queue", "work_queue_vmd", "vmd_answers_save",
              "plan_read", "waiting_list_ranking", "waiting_list_unit", "cot_queue", "discharge_read",
              "fhir_patient_read", "fhir_discharge_transaction")


async def _signal_discharges(base: str, token: str, persons: list[dict], n: int) -> None:
    """A few discharge signals before the load, so that the COT's queue has cases from the first minute."""
    from bench.fhir_transactions import bundle

    async with httpx.AsyncClient(base_url=base, timeout=60, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}) as c:
        for p in persons[:n]:
            r = await c.post("/fhir", content=json.dumps(bundle({**p, "birth_date": date.fromisoformat(
                p["birth_date"])}, date.today())))
            if r.status_code != 200:
                raise load_data.PrepareError(f"discharge signal → {r.status_code}: {r.text[:600]}")


def _locust(base: str, users: int, duration: int, think: str, context: Path, out: Path) -> dict[str, Any]:
    prefix = out / f"u{users}"
    counts_file = out / f"u{users}-counts.json"
    env = {**os.environ, "LOAD_CONTEXT": str(context), "LOAD_COUNTS_OUT": str(counts_file), "LOAD_THINK": think,
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(users),
           "-r", str(max(1, users * 10 // duration)), "-t", f"{duration}s", "-H", base, "--csv", str(prefix),
           "--reset-stats", "--only-summary", "--stop-timeout", "10", "--loglevel", "WARNING",
           "--exit-code-on-error", "0"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=duration + 120)
    if proc.returncode != 0 or not Path(f"{prefix}_stats.csv").exists():
        raise RuntimeError(f"locust exited with {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    ops: dict[str, Any] = {}
    with open(f"{prefix}_stats.csv") as f:
        for row in csv.DictReader(f):
            if row["Name"] == "Aggregated":
                continue
            ops[row["Name"]] = {"requests": int(row["Request Count"]), "failures": int(row["Failure Count"]),
                                "p50_ms": float(row["50%"]), "p95_ms": float(row["95%"]),
                                "p99_ms": float(row["99%"]), "mean_ms": round(float(row["Average Response Time"]), 1),
                                "max_ms": round(float(row["Max Response Time"])), "req_per_s":
                                round(float(row["Requests/s"]), 2), "expected_4xx": {}}
    counts = json.loads(counts_file.read_text())
    for e in counts["expected"]:
        ops.setdefault(e["operation"], {"requests": 0})["expected_4xx"][str(e["status"])] = e["count"]
    with open(f"{prefix}_failures.csv") as f:
        failures = [{"operation": r["Name"], "error": r["Error"], "count": int(r["Occurrences"])}
                    for r in csv.DictReader(f)]
    n = sum(v["requests"] for v in ops.values())
    return {"users": users, "duration_s": duration, "requests": n, "sent_with_ramp": sum(counts["sent"].values()),
            "req_per_s": round(sum(v.get("req_per_s", 0) for v in ops.values()), 1),
            "failures": sum(v.get("failures", 0) for v in ops.values()), "operations": ops,
            "failure_messages": failures}


def run(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    with throwaway_cluster(DB, prefix="pua-load-", tmp_root=args.tmp_root, keep=args.keep) as (tmp, port, urls):
        _step(f"embedded Postgres on 127.0.0.1:{port} ({tmp}), migrated", t0)
        asyncio.run(_load_reference(urls["MIGRATION_DATABASE_URL"]))
        _step(_seed_demo(), t0)
        from deploy.seed import synthetic

        report = asyncio.run(synthetic.seed(urls["MIGRATION_DATABASE_URL"], persons=args.persons,
                                            quiet=args.persons < 200_000))
        _step(f"seeded {report.persons:,} persons and {report.cartelle:,} cartelle", t0)
        minutes = max(60, (len(args.users) * (args.duration + 120) + 1800) // 60)
        tokens = asyncio.run(load_data.tokens_and_roles(urls["MIGRATION_DATABASE_URL"], minutes))
        sample = asyncio.run(load_data.sample_persons(
            urls["DATABASE_URL"], cases=args.vmds + args.plans + args.listed, others=2000, discharge=500))
        server = Server("api", "api.main:create_app", _free_port(), _server_env(urls["DATABASE_URL"]),
                        args.api_workers, tmp / "api.log", factory=True)
        try:
            asyncio.run(server.wait_ready("/health/live"))
            data = asyncio.run(load_data.prepare(server.base, tokens, sample["cases"], vmds=args.vmds,
                                                 plans=args.plans, listed=args.listed))
            asyncio.run(_signal_discharges(server.base, tokens["gateway"], sample["discharge"], 5))
            _step(f"working data: {len(data['vmds'])} VMDs in progress, {len(data['plans'])} active plans, "
                  f"{len(data['waiting_list_entries'])} listed RSA entries, 5 discharge signals", t0)
            context = tmp / "context.json"
            context.write_text(json.dumps({"tokens": tokens, "persons": sample["persons"],
                                           "discharge_persons": sample["discharge"], **data}))
            runs = []
            for users in args.users:
                before = audit_volume.measure(port, DB)
                r = _locust(server.base, users, args.duration, args.think, context, tmp)
                r["audit"] = audit_volume.growth(before, audit_volume.measure(port, DB), r["sent_with_ramp"],
                                                 **audit_volume.YEAR)
                runs.append(r)
                _step(f"{users} users: {r['requests']:,} requests, {r['failures']} failures", t0)
            if server.proc.poll() is not None:
                raise RuntimeError("the API exited during the load:\n" + (tmp / "api.log").read_text()[-3000:])
        finally:
            server.stop()
    return {"at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform(), "shared_with_load_generator": True},
            "params": {"persons": args.persons, "users": args.users, "duration_s": args.duration,
                       "think_s": args.think, "api_workers": args.api_workers, "vmds": args.vmds,
                       "plans": args.plans, "listed": args.listed},
            "seed": {"persons": report.persons, "cartelle": report.cartelle}, "runs": runs,
            "total_s": round(time.perf_counter() - t0, 1)}


def summary(r: dict[str, Any]) -> str:
    lines = ["== load summary =="]
    for run_ in r["runs"]:
        lines.append(f"-- {run_['users']} users, {run_['duration_s']} s: {run_['requests']:,} requests, "
                     f"{run_['req_per_s']} req/s, {run_['failures']} failures")
        lines.append(f"{'operation':28s} {'requests':>8s} {'p50':>6s} {'p95':>6s} {'p99':>6s} {'errors':>7s}  "
                     "expected 4xx")
        for op in OPERATIONS:
            v = run_["operations"].get(op)
            if v is None:
                lines.append(f"{op:28s} {'(not run)':>8s}")
                continue
            err = v["failures"] / v["requests"] * 100 if v["requests"] else 0.0
            lines.append(f"{op:28s} {v['requests']:8d} {v['p50_ms']:6.0f} {v['p95_ms']:6.0f} {v['p99_ms']:6.0f} "
                         f"{err:6.2f}%  {v['expected_4xx'] or '-'}")
        for f in run_["failure_messages"]:
            lines.append(f"   failure {f['operation']} x{f['count']}: {f['error'][:200]}")
        lines.append("audit trail: " + "; ".join(audit_volume.growth_lines(run_["audit"])))
    lines.append(f"total: {r['total_s']} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.splitlines()[0])
    p.add_argument("--persons", type=int, default=1_000_000)
    p.add_argument("--users", type=lambda s: [int(x) for x in s.split(",")], default=[25, 100],
                   help="simulated user counts, one locust run each (comma separated)")
    p.add_argument("--duration", type=int, default=120, help="seconds of each run (the first tenth is the ramp)")
    p.add_argument("--think", default="1,5", help="think time between two tasks of a user: min,max seconds")
    p.add_argument("--vmds", type=int, default=200, help="VMDs in progress to save answers into")
    p.add_argument("--plans", type=int, default=100, help="active plans to read")
    p.add_argument("--listed", type=int, default=40, help="listed RSA waiting-list entries")
    p.add_argument("--api-workers", type=int, default=1, help="uvicorn worker processes (make run: 1)")
    cluster_options(p, DEFAULT_OUTPUT)  # --keep also keeps the API log and locust's CSV files
    result = run_and_write(p.parse_args(argv), run, summary)
    failed = [u["users"] for u in result["runs"] if u["failures"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
