"""Throughput of our API against a bare FastAPI + asyncpg baseline, measured in the same run.

    python -m bench.api_ratio [--requests 2000] [--concurrency 16] [--workers 1] [--rounds 4]

Starts two uvicorn servers on 127.0.0.1 with the same worker count and pool size: our app (`api.main`) and
`bench.baseline_app` (one `SELECT … FROM person WHERE id = $1` per request). Both get the same load: GET
/api/persons/{id} over random ids of the database, a bounded number of concurrent httpx clients, the same bearer
token (a real development token of a demo user; the baseline ignores it), a warm-up first, then rounds that
alternate which server goes first. Prints req/s of each and the ratio ours/baseline (goal ≥ 0.7, issue 18; 0.4 before).

The load generator shares the machine with both servers and Postgres: on a small box it takes a large share of
the CPU, which compresses the ratio towards 1. Compare ratios measured on the same machine only.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import asyncpg_dsn, ensure_bench_user, summarize
from deploy.run import KEEP_ALIVE_SECONDS
from domain.kernel.settings import get_settings

ROOT = Path(__file__).resolve().parents[1]
RATIO_GOAL = 0.7  # issue 18, at 1 M and at 10 M persons


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _server_env(database_url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PRINCIPAL_CACHE_SECONDS", "PUA_FIXED_NOW")}
    env["DATABASE_URL"] = database_url
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


class Server:
    def __init__(self, name: str, app: str, port: int, env: dict[str, str], workers: int, log: Path,
                 factory: bool = False):
        self.name, self.port = name, port
        cmd = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--workers",
               str(workers), "--no-access-log", "--log-level", "warning",
               "--timeout-keep-alive", str(KEEP_ALIVE_SECONDS)]  # as deployed
        if factory:
            cmd.insert(4, "--factory")
        self.log = open(log, "ab")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_ready(self, path: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.base, timeout=2.0) as c:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} server exited with {self.proc.returncode}")
                try:
                    r = await c.get(path)
                    if r.status_code < 500:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError(f"{self.name} server not ready after {timeout} s")

    def cpu_seconds(self) -> float:
        """User + system CPU the server process has used so far (all its threads; one uvicorn worker)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)  # our own child's process group
                self.proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.log.close()


async def drive(base: str, ids: list[str], n: int, concurrency: int, headers: dict[str, str],
                rng: random.Random) -> dict[str, Any]:
    """n GET requests with at most `concurrency` in flight; returns elapsed seconds, statuses and latencies."""
    order = [ids[rng.randrange(len(ids))] for _ in range(n)]
    statuses: dict[int, int] = {}
    lat: list[float] = []
    nxt = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30.0) as client:
        async def worker() -> None:
            nonlocal nxt
            while nxt < n:
                pid = order[nxt]
                nxt += 1
                t0 = time.perf_counter()
                r = await client.get(f"/api/persons/{pid}")
                lat.append((time.perf_counter() - t0) * 1000)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return {"elapsed": elapsed, "statuses": statuses, "lat": lat}


async def _token_and_ids(database_url: str, ambito_code: str, n_ids: int) -> tuple[str, str, list[str]]:
    import asyncpg
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    from integrations.identity.dev_tokens import token_for

    engine = create_async_engine(database_url, pool_size=1)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            username = await ensure_bench_user(session, ambito_code)
            await session.commit()
            token = await token_for(session, username=username, minutes=180)
    finally:
        await engine.dispose()
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await conn.fetch(
            "select p.id from person p join organisation o on o.id = p.ambito_id "
            "where o.code = $1 and p.status = 'active' order by random() limit $2", ambito_code, n_ids)
    finally:
        await conn.close()
    return username, token, [str(r["id"]) for r in rows]


async def run(database_url: str | None = None, *, requests: int = 2000, concurrency: int = 16, workers: int = 1,
              rounds: int = 4, warmup: int = 200, ambito_code: str = "ambito-crema", log_dir: Path | None = None,
              rng_seed: int = 7) -> dict[str, Any]:
    s = get_settings()
    database_url = database_url or s.database_url
    username, token, ids = await _token_and_ids(database_url, ambito_code, 1000)
    if not ids:
        raise RuntimeError("no persons in the database: seed first")
    log_dir = log_dir or Path(os.environ.get("TMPDIR", "/tmp"))
    log_dir.mkdir(parents=True, exist_ok=True)
    pool = str(s.db_pool_size)
    ours = Server("ours", "api.main:create_app", _free_port(),
                  _server_env(database_url, {"DB_POOL_SIZE": pool}), workers, log_dir / "bench-ours.log",
                  factory=True)
    base = Server("baseline", "bench.baseline_app:app", _free_port(),
                  _server_env(database_url, {"BASELINE_DSN": asyncpg_dsn(database_url), "DB_POOL_SIZE": pool}),
                  workers, log_dir / "bench-baseline.log")
    headers = {"Authorization": f"Bearer {token}"}
    rng = random.Random(rng_seed)
    try:
        await ours.wait_ready("/health/live")
        await base.wait_ready(f"/api/persons/{ids[0]}")
        # correctness first: both answer 200 for the same person
        async with httpx.AsyncClient(headers=headers, timeout=10) as c:
            for srv in (ours, base):
                r = await c.get(f"{srv.base}/api/persons/{ids[0]}")
                if r.status_code != 200:
                    raise RuntimeError(f"{srv.name}: GET /api/persons/{{id}} answered {r.status_code}: {r.text[:200]}")
        for srv in (ours, base):
            await drive(srv.base, ids, warmup, concurrency, headers, rng)
        totals = {"ours": {"n": 0, "t": 0.0, "lat": [], "statuses": {}},
                  "baseline": {"n": 0, "t": 0.0, "lat": [], "statuses": {}}}
        per_round = max(1, requests // rounds)
        round_ratios = []
        for i in range(rounds):
            order = (ours, base) if i % 2 == 0 else (base, ours)
            rps = {}
            for srv in order:
                res = await drive(srv.base, ids, per_round, concurrency, headers, rng)
                t = totals[srv.name]
                t["n"] += per_round
                t["t"] += res["elapsed"]
                t["lat"].extend(res["lat"])
                for k, v in res["statuses"].items():
                    t["statuses"][k] = t["statuses"].get(k, 0) + v
                rps[srv.name] = per_round / res["elapsed"]
            round_ratios.append(round(rps["ours"] / rps["baseline"], 3))
    finally:
        ours.stop()
        base.stop()
    out: dict[str, Any] = {"requests_per_server": totals["ours"]["n"], "concurrency": concurrency,
                           "workers": workers, "rounds": rounds, "user": username, "endpoint": "GET /api/persons/{id}"}
    for name, t in totals.items():
        out[name] = {"req_per_s": round(t["n"] / t["t"], 1), "statuses": {str(k): v for k, v in t["statuses"].items()},
                     "latency": summarize(t["lat"])}
    out["ratio"] = round(out["ours"]["req_per_s"] / out["baseline"]["req_per_s"], 3)
    out["round_ratios"] = round_ratios
    out["ratio_goal"] = RATIO_GOAL
    out["ratio_goal_met"] = out["ratio"] >= RATIO_GOAL
    errors = sum(v for name in ("ours", "baseline") for k, v in out[name]["statuses"].items() if k != "200")
    out["non_200"] = errors
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.api_ratio", description=__doc__.splitlines()[0])
    p.add_argument("--database-url", default=None)
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--ambito", default="ambito-crema")
    a = p.parse_args(argv)
    res = asyncio.run(run(a.database_url, requests=a.requests, concurrency=a.concurrency, workers=a.workers,
                          rounds=a.rounds, warmup=a.warmup, ambito_code=a.ambito))
    print(json.dumps(res, indent=2))
    print(f"ours {res['ours']['req_per_s']} req/s, baseline {res['baseline']['req_per_s']} req/s, "
          f"ratio {res['ratio']} (goal ≥ {RATIO_GOAL})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
