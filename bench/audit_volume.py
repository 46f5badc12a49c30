"""How much audit trail a working day's requests write: rows and bytes per 1,000 requests, and a year projected.

    python -m bench.audit_volume [--persons 20000] [--requests 2000] [--concurrency 4]
                                 [--users 150] [--requests-per-user-day 300] [--working-days 250]
                                 [--region-residents 10000000] [--output FILE]

On a throwaway embedded Postgres (migrated, reference data, N synthetic persons), an API under uvicorn gets a
request mix of an Ambito operator's day (weights in MIX): person search (20 results a page), person read, the
person's cartelle, work queue, PUA registration of a request for a known person, FHIR Patient read, the Ambito's
RSA ranking, /api/me. Then it reads what the audit trail gained: rows, the bytes of the partitions (heap, TOAST
and indexes: what the disk holds) and the bytes of the rows themselves, per 1,000 requests and per operation.

The year is projected from the assumptions on the command line (printed with the result): active users of the
Ambito x API requests per user per working day x working days, and the region scaled by residents (the Ambito has
AMBITO_RESIDENTS). VMD answers, care-plan reads and discharge transactions of the issue's load mix are not in the
mix (the synthetic seed has no assessments, plans or discharges); their audit rows are of the same kind (one row
per request naming the person), so the per-request figure holds for them. No timing is measured.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
from pathlib import Path
from typing import Any

import httpx

from bench.api_ratio import Server, _free_port, _server_env
from bench.common import throwaway_cluster

ROOT = Path(__file__).resolve().parents[1]
OWNER, APP_ROLE, DB = "pua_owner", "pua_app", "pua_audit_bench"
AMBITO_RESIDENTS = 160_531
# The year's assumptions (command line defaults; bench.load projects its mix with the same).
YEAR = {"users": 150, "requests_per_user_day": 300, "working_days": 250, "region_residents": 10_000_000}
# operation: weight (share of the requests)
MIX = {"person_search": 25, "person_read": 20, "person_cartelle": 10, "work_queue": 15, "pua_register": 5,
       "fhir_patient_read": 10, "waiting_list_ranking": 5, "me": 10}
SIZE_SQL = """
    select coalesce(sum(pg_total_relation_size(c.oid)), 0)
    from pg_inherits i join pg_class c on c.oid = i.inhrelid where i.inhparent = 'audit_event'::regclass
"""


async def _prepare(owner_url: str, app_url: str, persons: int) -> tuple[str, list[tuple[str, str]]]:
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    from bench.common import ensure_bench_user
    from bench.run_all import _load_reference
    from deploy.seed import synthetic
    from integrations.identity.dev_tokens import token_for

    await _load_reference(owner_url)
    await synthetic.seed(owner_url, persons=persons, seed_value=11, quiet=True)
    engine = create_async_engine(app_url, pool_size=1)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as s:
            username = await ensure_bench_user(s)
            await s.commit()
            token = await token_for(s, username=username, minutes=240)
    finally:
        await engine.dispose()
    import asyncpg

    conn = await asyncpg.connect(app_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await conn.fetch("select id::text, surname from person where status = 'active' "
                                "order by random() limit 500")
    finally:
        await conn.close()
    return token, [(r["id"], r["surname"]) for r in rows]


def _request(op: str, rng: random.Random, people: list[tuple[str, str]]) -> tuple[str, str, dict | None]:
    pid, surname = people[rng.randrange(len(people))]
    if op == "person_search":
        return "GET", f"/api/persons?q={surname.lower()}&limit=20", None
    if op == "person_read":
        return "GET", f"/api/persons/{pid}", None
    if op == "person_cartelle":
        return "GET", f"/api/persons/{pid}/cartelle", None
    if op == "work_queue":
        return "GET", "/api/work-items/mine", None
    if op == "pua_register":
        return "POST", "/api/pua/requests", {"person_id": pid, "channel": "phone", "requester_kind": "self",
                                             "reported_need": "Chiede informazioni sull'assistenza domiciliare."}
    if op == "fhir_patient_read":
        return "GET", f"/fhir/Patient/{pid}", None
    if op == "waiting_list_ranking":
        return "GET", "/api/waiting-lists/ranking?udo_type=rsa", None
    return "GET", "/api/me", None


async def _drive(base: str, token: str, people, n: int, concurrency: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    ops = rng.choices(list(MIX), weights=list(MIX.values()), k=n)
    plan = [(op, *_request(op, rng, people)) for op in ops]
    done: dict[str, int] = {}
    statuses: dict[str, dict[int, int]] = {}
    nxt = 0
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
        async def worker() -> None:
            nonlocal nxt
            while nxt < len(plan):
                op, method, url, body = plan[nxt]
                nxt += 1
                r = await c.request(method, url, json=body)
                done[op] = done.get(op, 0) + 1
                st = statuses.setdefault(op, {})
                st[r.status_code] = st.get(r.status_code, 0) + 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"requests": done, "statuses": statuses}


def measure(port: int, db: str = DB) -> dict[str, Any]:
    """The audit trail's rows, bytes of rows and bytes on disk now (as the superuser of the local cluster)."""
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname=db, autocommit=True) as c:
        c.execute("vacuum analyze audit_event")  # settle the visibility map / free space map into the sizes
        total = c.execute(SIZE_SQL).fetchone()[0]
        rows, row_bytes = c.execute("select count(*), coalesce(sum(pg_column_size(a.*)), 0) from audit_event a"
                                    ).fetchone()
        by_route = c.execute("select route, count(*), sum(pg_column_size(a.*)) from audit_event a "
                             "group by route order by 2 desc").fetchall()
    return {"rows": rows, "row_bytes": int(row_bytes), "disk_bytes": int(total),
            "by_route": {r[0]: {"rows": r[1], "row_bytes": int(r[2])} for r in by_route}}


def run(args: argparse.Namespace) -> dict[str, Any]:
    with throwaway_cluster(DB, owner=OWNER, app_role=APP_ROLE, prefix="pua-audit-bench-",
                           tmp_root=args.tmp_root) as (tmp, port, urls):
        token, people = asyncio.run(_prepare(urls["MIGRATION_DATABASE_URL"], urls["DATABASE_URL"], args.persons))
        api = Server("api", "api.main:create_app", _free_port(), _server_env(urls["DATABASE_URL"]), 1,
                     tmp / "api.log", factory=True)
        try:
            asyncio.run(api.wait_ready("/health/live"))
            before = measure(port)
            driven = asyncio.run(_drive(api.base, token, people, args.requests, args.concurrency, seed=5))
            after = measure(port)
        finally:
            api.stop()

    n = sum(driven["requests"].values())
    per_op = {}
    for op, count in sorted(driven["requests"].items()):
        per_op[op] = {"requests": count, "statuses": {str(k): v for k, v in driven["statuses"][op].items()}}
    return {"persons": args.persons, "requests": n, "mix": MIX, "per_operation": per_op,
            **growth(before, after, n, users=args.users, requests_per_user_day=args.requests_per_user_day,
                     working_days=args.working_days, region_residents=args.region_residents)}


def growth(before: dict[str, Any], after: dict[str, Any], n: int, *, users: int, requests_per_user_day: int,
           working_days: int, region_residents: int) -> dict[str, Any]:
    """What `n` requests added to the audit trail (two `measure` readings), per 1,000 requests, and a year projected
    for the Ambito (users x requests a day x working days) and for the region (scaled by residents)."""
    rows = after["rows"] - before["rows"]
    row_bytes = after["row_bytes"] - before["row_bytes"]
    disk = after["disk_bytes"] - before["disk_bytes"]
    per_k = {"rows": round(rows * 1000 / n, 1), "row_bytes": round(row_bytes * 1000 / n),
             "disk_bytes": round(disk * 1000 / n)}
    ambito_requests = users * requests_per_user_day * working_days
    region_factor = region_residents / AMBITO_RESIDENTS
    year = {
        "ambito": {"requests": ambito_requests, "rows": round(ambito_requests / 1000 * per_k["rows"]),
                   "disk_gb": round(ambito_requests / 1000 * per_k["disk_bytes"] / 1e9, 2)},
        "region": {"requests": round(ambito_requests * region_factor),
                   "rows": round(ambito_requests * region_factor / 1000 * per_k["rows"]),
                   "disk_gb": round(ambito_requests * region_factor / 1000 * per_k["disk_bytes"] / 1e9, 1)},
    }
    by_route = {}
    for route, v in after["by_route"].items():
        prev = before["by_route"].get(route, {"rows": 0, "row_bytes": 0})
        if v["rows"] - prev["rows"]:
            by_route[route] = {"rows": v["rows"] - prev["rows"], "row_bytes": v["row_bytes"] - prev["row_bytes"]}
    return {"audit_rows": rows, "audit_row_bytes": row_bytes, "audit_disk_bytes": disk, "per_1000_requests": per_k,
            "bytes_per_row_on_disk": round(disk / rows) if rows else None, "by_route": by_route,
            "assumptions": {"users": users, "requests_per_user_day": requests_per_user_day,
                            "working_days": working_days, "ambito_residents": AMBITO_RESIDENTS,
                            "region_residents": region_residents},
            "year": year}


def growth_lines(r: dict[str, Any]) -> list[str]:
    k, a, y = r["per_1000_requests"], r["assumptions"], r["year"]
    return [
        f"per 1,000 requests: {k['rows']} audit rows, {k['row_bytes']} bytes of rows, "
        f"{k['disk_bytes']} bytes on disk (heap + indexes); {r['bytes_per_row_on_disk']} bytes per row on disk",
        f"a year, Ambito ({a['users']} users x {a['requests_per_user_day']} requests x {a['working_days']} days = "
        f"{y['ambito']['requests']:,} requests): {y['ambito']['rows']:,} rows, {y['ambito']['disk_gb']} GB",
        f"a year, region ({a['region_residents']:,} residents, x{a['region_residents'] / AMBITO_RESIDENTS:.1f}): "
        f"{y['region']['rows']:,} rows, {y['region']['disk_gb']} GB"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--persons", type=int, default=20_000)
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--users", type=int, default=YEAR["users"], help="active users of the Ambito")
    p.add_argument("--requests-per-user-day", type=int, default=YEAR["requests_per_user_day"],
                   help="API requests per user per working day")
    p.add_argument("--working-days", type=int, default=YEAR["working_days"])
    p.add_argument("--region-residents", type=int, default=YEAR["region_residents"],
                   help="Lombardy: about 10 million")
    p.add_argument("--tmp-root", default="/var/tmp")
    p.add_argument("--output", type=Path)
    args = p.parse_args(argv)
    r = run(args)
    print("== audit volume ==")
    print(f"requests {r['requests']} (mix {r['mix']})")
    for op, v in r["per_operation"].items():
        print(f"  {op:22s} {v['requests']:6d} requests, statuses {v['statuses']}")
    print("\n".join(growth_lines(r)))
    if args.output:
        args.output.write_text(json.dumps(r, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
