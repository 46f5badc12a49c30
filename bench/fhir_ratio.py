"""The FHIR façade against the /api read of the same person, on the same server, in the same run (issue 12).

    python -m bench.fhir_ratio [--database-url …] [--requests 2000] [--concurrency 16] [--rounds 4]

One uvicorn server of our app on a seeded database (e.g. the one `python -m bench.run_all --keep` leaves, or
`DATABASE_URL`). Three loads over the same random persons, alternating which goes first in each round:
GET /api/persons/{id}, GET /fhir/Patient/{id} and GET /fhir/Patient?identifier=<codice fiscale system>|<cf>.
Prints req/s, p99 and the ratio of each FHIR load to the /api read (goal: ratio ≥ 0.7, p99 ≤ 400 ms at 16
concurrent clients). The person-search brake is lifted for the server (PERSON_SEARCH_PER_MINUTE): a benchmark is
not a person scrolling the registry.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from bench.api_ratio import Server, _free_port, _server_env, _token_and_ids
from bench.common import asyncpg_dsn, summarize
from domain.kernel.settings import get_settings
from integrations.fhir.systems import CODICE_FISCALE

RATIO_GOAL = 0.7
P99_GOAL_MS = 400.0
LOADS = ("api_read", "fhir_read", "fhir_search")


def _path(load: str, pid: str, cf: str) -> str:
    if load == "api_read":
        return f"/api/persons/{pid}"
    if load == "fhir_read":
        return f"/fhir/Patient/{pid}"
    return f"/fhir/Patient?identifier={quote(f'{CODICE_FISCALE}|{cf}', safe='')}"


async def drive(base: str, load: str, people: list[tuple[str, str]], n: int, concurrency: int,
                headers: dict[str, str], rng: random.Random) -> dict[str, Any]:
    order = [people[rng.randrange(len(people))] for _ in range(n)]
    statuses: dict[int, int] = {}
    lat: list[float] = []
    nxt = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30.0) as client:
        async def worker() -> None:
            nonlocal nxt
            while nxt < n:
                pid, cf = order[nxt]
                nxt += 1
                t0 = time.perf_counter()
                r = await client.get(_path(load, pid, cf))
                lat.append((time.perf_counter() - t0) * 1000)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return {"elapsed": elapsed, "statuses": statuses, "lat": lat}


async def _people(database_url: str, ids: list[str]) -> list[tuple[str, str]]:
    import asyncpg

    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await conn.fetch("select id::text, codice_fiscale from person where id = any($1::uuid[]) "
                                "and codice_fiscale is not null", ids)
    finally:
        await conn.close()
    return [(r["id"], r["codice_fiscale"]) for r in rows]


async def run(database_url: str | None = None, *, requests: int = 2000, concurrency: int = 16, rounds: int = 4,
              warmup: int = 200, ambito_code: str = "ambito-crema", log_dir: Path | None = None,
              rng_seed: int = 11) -> dict[str, Any]:
    s = get_settings()
    database_url = database_url or s.database_url
    username, token, ids = await _token_and_ids(database_url, ambito_code, 1000)
    people = await _people(database_url, ids)
    if not people:
        raise RuntimeError("no persons with a codice fiscale in the database: seed first")
    log_dir = log_dir or Path(os.environ.get("TMPDIR", "/tmp"))
    log_dir.mkdir(parents=True, exist_ok=True)
    ours = Server("ours", "api.main:create_app", _free_port(),
                  _server_env(database_url, {"DB_POOL_SIZE": str(s.db_pool_size),
                                             "PERSON_SEARCH_PER_MINUTE": "100000000"}),
                  1, log_dir / "bench-fhir.log", factory=True)
    headers = {"Authorization": f"Bearer {token}"}
    rng = random.Random(rng_seed)
    totals = {load: {"n": 0, "t": 0.0, "lat": [], "statuses": {}} for load in LOADS}
    try:
        await ours.wait_ready("/health/live")
        async with httpx.AsyncClient(base_url=ours.base, headers=headers, timeout=10) as c:
            pid, cf = people[0]
            for load in LOADS:  # correctness first: every load finds the person
                r = await c.get(_path(load, pid, cf))
                found = r.status_code == 200 and (load != "fhir_search" or len(r.json().get("entry", [])) == 1)
                if not found:
                    raise RuntimeError(f"{load}: answered {r.status_code}: {r.text[:200]}")
        for load in LOADS:
            await drive(ours.base, load, people, warmup, concurrency, headers, rng)
        per_round = max(1, requests // rounds)
        for i in range(rounds):
            for load in LOADS[i % len(LOADS):] + LOADS[:i % len(LOADS)]:
                res = await drive(ours.base, load, people, per_round, concurrency, headers, rng)
                t = totals[load]
                t["n"] += per_round
                t["t"] += res["elapsed"]
                t["lat"].extend(res["lat"])
                for k, v in res["statuses"].items():
                    t["statuses"][k] = t["statuses"].get(k, 0) + v
    finally:
        ours.stop()
    out: dict[str, Any] = {"requests_per_load": totals["api_read"]["n"], "concurrency": concurrency,
                           "rounds": rounds, "user": username}
    for load, t in totals.items():
        out[load] = {"req_per_s": round(t["n"] / t["t"], 1), "latency": summarize(t["lat"]),
                     "p99_ms": round(_p99(t["lat"]), 1), "statuses": {str(k): v for k, v in t["statuses"].items()}}
    for load in ("fhir_read", "fhir_search"):
        out[f"{load}_ratio"] = round(out[load]["req_per_s"] / out["api_read"]["req_per_s"], 3)
    out["ratio_goal"], out["p99_goal_ms"] = RATIO_GOAL, P99_GOAL_MS
    out["goals_met"] = all(out[f"{x}_ratio"] >= RATIO_GOAL and out[x]["p99_ms"] <= P99_GOAL_MS
                           for x in ("fhir_read", "fhir_search"))
    out["non_200"] = sum(v for load in LOADS for k, v in out[load]["statuses"].items() if k != "200")
    return out


def _p99(values: list[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.fhir_ratio", description=__doc__.splitlines()[0])
    p.add_argument("--database-url", default=None)
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--ambito", default="ambito-crema")
    a = p.parse_args(argv)
    res = asyncio.run(run(a.database_url, requests=a.requests, concurrency=a.concurrency, rounds=a.rounds,
                          warmup=a.warmup, ambito_code=a.ambito))
    print(json.dumps(res, indent=2))
    for load in ("fhir_read", "fhir_search"):
        print(f"{load}: {res[load]['req_per_s']} req/s, p99 {res[load]['p99_ms']} ms, ratio to GET /api/persons/{{id}} "
              f"{res[f'{load}_ratio']} (goal ≥ {RATIO_GOAL}, p99 ≤ {P99_GOAL_MS:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
