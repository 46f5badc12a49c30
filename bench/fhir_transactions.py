"""The discharge signal as FHIR transaction Bundles: resources per second through one API process (issue 12).

    python -m bench.fhir_transactions [--database-url …] [--bundles 1500] [--concurrency 16] [--new-share 0.2]
                                      [--warmup 100]

One uvicorn server of our app on a seeded database. Each Bundle is what ASST sends (issue 12's example): the ASST
and its ward (two Organization entries, matched on their codes, the ward `partOf` the ASST), the Patient
(conditional create on the codice fiscale), the Encounter, the ServiceRequest to the COT and its Task — 6 entries.
A share of the Patients (default 80 %) are persons already registered, the rest are new (registered through the
registry's de-duplication). Warm-up Bundles are sent first, as many at once as the measured ones, so that every
pooled connection has prepared its statements (as in a server that has been running), and are not counted.
Prints bundles/s and resources/s (goal ≥ 750, stretch 2,000), the API process's CPU time per Bundle (what the
machine's other load cannot inflate much: the number to compare across runs), and checks that sending the first
Bundle again creates nothing. The same Bundles then go to a bare FastAPI + asyncpg baseline in the same run
(bench.baseline_app: parse, find the patient, store the Bundle, commit), and the ratio of the two is printed.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.api_ratio import Server, _free_port, _server_env
from bench.common import add_user, asyncpg_dsn, summarize
from deploy.seed.synthetic import encode_cf
from domain.kernel.settings import get_settings
from integrations.fhir import systems

GOAL, STRETCH = 750, 2000
ASST, WARD = "asst-crema", "asst-crema-reparto-medicina"
ENTRIES = 6
SURNAMES = ("Bassi", "Cattaneo", "Donati", "Ferrari", "Galli", "Lombardi", "Moretti", "Rizzi", "Sala", "Villa")
NAMES = (("Anna", True), ("Giulia", True), ("Rosa", True), ("Luigi", False), ("Mario", False), ("Pietro", False))


def bundle(person: dict[str, Any], today: date) -> dict[str, Any]:
    p, e, s, t, o, a = (f"urn:uuid:{uuid.uuid4()}" for _ in range(6))
    cf = person["codice_fiscale"]
    patient = {"resourceType": "Patient", "identifier": [{"system": systems.CODICE_FISCALE, "value": cf}],
               "name": [{"family": person["surname"], "given": [person["given_name"]]}],
               "gender": "female" if person["sex"] == "F" else "male", "birthDate": person["birth_date"].isoformat()}
    return {"resourceType": "Bundle", "type": "transaction",
            "identifier": {"system": "https://asst-crema.example/sid/segnalazioni", "value": str(uuid.uuid4())},
            "entry": [
                {"fullUrl": a, "request": {"method": "POST", "url": "Organization",
                                           "ifNoneExist": f"identifier={systems.ORGANISATION_CODE}|{ASST}"},
                 "resource": {"resourceType": "Organization", "name": "ASST di Crema",
                              "identifier": [{"system": systems.ORGANISATION_CODE, "value": ASST}]}},
                {"fullUrl": o, "request": {"method": "POST", "url": "Organization",
                                           "ifNoneExist": f"identifier={systems.ORGANISATION_CODE}|{WARD}"},
                 "resource": {"resourceType": "Organization", "name": "Medicina", "partOf": {"reference": a},
                              "identifier": [{"system": systems.ORGANISATION_CODE, "value": WARD}]}},
                {"fullUrl": p, "request": {"method": "POST", "url": "Patient",
                                           "ifNoneExist": f"identifier={systems.CODICE_FISCALE}|{cf}"},
                 "resource": patient},
                {"fullUrl": e, "request": {"method": "POST", "url": "Encounter"},
                 "resource": {"resourceType": "Encounter", "status": "in-progress", "class": {"code": "IMP"},
                              "subject": {"reference": p}, "serviceProvider": {"reference": o},
                              "period": {"start": (today - timedelta(days=6)).isoformat(),
                                         "end": (today + timedelta(days=3)).isoformat()}}},
                {"fullUrl": s, "request": {"method": "POST", "url": "ServiceRequest"},
                 "resource": {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
                              "subject": {"reference": p}, "encounter": {"reference": e},
                              "requester": {"reference": o},
                              "reasonCode": [{"coding": [{"system": systems.DISCHARGE_CRITERION,
                                                          "code": "over65_not_self_sufficient"}]}],
                              "note": [{"text": "Non autosufficiente dopo il ricovero, vive sola."}]}},
                {"fullUrl": t, "request": {"method": "POST", "url": "Task"},
                 "resource": {"resourceType": "Task", "status": "requested", "intent": "order",
                              "focus": {"reference": s}, "for": {"reference": p}}},
            ]}


def new_person(rng: random.Random) -> dict[str, Any]:
    surname = rng.choice(SURNAMES)
    given, female = rng.choice(NAMES)
    birth = date(1930, 1, 1) + timedelta(days=rng.randrange(365 * 20))
    return {"surname": surname, "given_name": given, "sex": "F" if female else "M", "birth_date": birth,
            "codice_fiscale": encode_cf(surname, given, female, birth, "D142")}


async def _setup(database_url: str, n_registered: int) -> tuple[str, list[dict[str, Any]]]:
    import asyncpg
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    from domain.security.models import AppUser, Role
    from domain.territory.models import Organisation
    from integrations.identity.dev_tokens import token_for

    engine = create_async_engine(database_url, pool_size=1)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            ward = (await session.execute(sa.select(Organisation).where(Organisation.code == WARD))).scalar_one()
            ward_ambito = ward.ambito_id  # the registered persons are the ward's Ambito's (80 % matched)
            username = "bench.reparto"
            if (await session.execute(sa.select(AppUser.id).where(AppUser.username == username))).first() is None:
                await add_user(session, username=username, display_name="Reparto benchmark", role=Role.ward_staff,
                               org=ward)
            await session.commit()
            token = await token_for(session, username=username, minutes=180)
    finally:
        await engine.dispose()
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await conn.fetch(
            "select codice_fiscale, surname, given_name, sex, birth_date from person where status = 'active' "
            "and codice_fiscale is not null and birth_date < '1955-01-01' and date_of_death is null "
            "and ambito_id = $2 order by random() limit $1", n_registered, ward_ambito)
    finally:
        await conn.close()
    return token, [dict(r) for r in rows]


async def run(database_url: str | None = None, *, bundles: int = 1500, concurrency: int = 16, new_share: float = 0.2,
              log_dir: Path | None = None, rng_seed: int = 13, warmup: int = 100) -> dict[str, Any]:
    s = get_settings()
    database_url = database_url or s.database_url
    rng = random.Random(rng_seed)
    total = bundles + warmup
    n_new = int(round(total * new_share))
    token, registered = await _setup(database_url, total - n_new)
    if len(registered) < total - n_new:
        raise RuntimeError("not enough registered persons born before 1955: seed more")
    people = [*registered, *(new_person(rng) for _ in range(n_new))]
    rng.shuffle(people)
    today = date.today()
    docs = [json.dumps(bundle(p, today)).encode() for p in people]  # serialised before the clock starts
    warm, docs = docs[:warmup], docs[warmup:]
    log_dir = log_dir or Path(os.environ.get("TMPDIR", "/tmp"))
    log_dir.mkdir(parents=True, exist_ok=True)
    pool = {"DB_POOL_SIZE": str(s.db_pool_size)}
    server = Server("ours", "api.main:create_app", _free_port(), _server_env(database_url, pool), 1,
                    log_dir / "bench-fhir-transactions.log", factory=True)
    base = Server("baseline", "bench.baseline_app:app", _free_port(),
                  _server_env(database_url, {"BASELINE_DSN": asyncpg_dsn(database_url), **pool}), 1,
                  log_dir / "bench-fhir-transactions-baseline.log")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
    try:
        await server.wait_ready("/health/live")
        await base.wait_ready("/health/live")
        ours = await _drive(server, headers, warm, docs, concurrency, replay=True)
        bare = await _drive(base, headers, warm, docs, concurrency)
    finally:
        server.stop()
        base.stop()
    ok, elapsed, cpu = ours["statuses"].get("200", 0), ours["elapsed"], ours["cpu"]
    out = {"bundles": len(docs), "entries_per_bundle": ENTRIES, "new_share": new_share, "concurrency": concurrency,
           "elapsed_s": round(elapsed, 2), "bundles_per_s": round(ok / elapsed, 1),
           "resources_per_s": round(ok * ENTRIES / elapsed, 1),
           "server_cpu_ms_per_bundle": round(cpu * 1000 / max(ok, 1), 2), "server_cpu_share": round(cpu / elapsed, 2),
           "statuses": ours["statuses"], "entry_statuses": ours["entry_statuses"], "latency": summarize(ours["lat"]),
           "replay_200": ours["replay_200"], "goal": GOAL, "stretch": STRETCH}
    bare_ok = bare["statuses"].get("200", 0)
    out["baseline"] = {"bundles_per_s": round(bare_ok / bare["elapsed"], 1), "statuses": bare["statuses"],
                       "latency": summarize(bare["lat"]),
                       "cpu_ms_per_bundle": round(bare["cpu"] * 1000 / max(bare_ok, 1), 2)}
    out["ratio"] = round(out["bundles_per_s"] / out["baseline"]["bundles_per_s"], 3)
    out["goal_met"] = out["resources_per_s"] >= GOAL
    return out


async def _drive(server: Server, headers: dict[str, str], warm: list[bytes], docs: list[bytes], concurrency: int,
                 replay: bool = False) -> dict[str, Any]:
    """Send the warm-up Bundles, then the measured ones, `concurrency` at a time; with `replay`, the first measured
    Bundle once more at the end (it must be answered 200 again)."""
    statuses: dict[str, int] = {}
    entry_status: dict[str, int] = {}
    lat: list[float] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=server.base, headers=headers, limits=limits, timeout=60) as client:
        async def send(queue: list[bytes], record: bool) -> None:
            while queue:
                doc = queue.pop()
                t0 = time.perf_counter()
                r = await client.post("/fhir", content=doc)
                if not record:
                    r.raise_for_status()
                    continue
                lat.append((time.perf_counter() - t0) * 1000)
                statuses[str(r.status_code)] = statuses.get(str(r.status_code), 0) + 1
                if r.status_code == 200:
                    for e in r.json()["entry"]:
                        entry_status[e["response"]["status"]] = entry_status.get(e["response"]["status"], 0) + 1

        queue = warm[::-1]  # one queue shared by the senders
        await asyncio.gather(*(send(queue, False) for _ in range(concurrency)))
        queue = docs[::-1]
        t0, cpu0 = time.perf_counter(), server.cpu_seconds()
        await asyncio.gather(*(send(queue, True) for _ in range(concurrency)))
        elapsed, cpu = time.perf_counter() - t0, server.cpu_seconds() - cpu0
        replay_ok = (await client.post("/fhir", content=docs[0])).status_code == 200 if replay else None
    return {"statuses": statuses, "entry_statuses": entry_status, "lat": lat, "elapsed": elapsed, "cpu": cpu,
            "replay_200": replay_ok}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.fhir_transactions", description=__doc__.splitlines()[0])
    p.add_argument("--database-url", default=None)
    p.add_argument("--bundles", type=int, default=1500)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--new-share", type=float, default=0.2)
    p.add_argument("--warmup", type=int, default=100, help="Bundles sent first and not counted")
    a = p.parse_args(argv)
    res = asyncio.run(run(a.database_url, bundles=a.bundles, concurrency=a.concurrency, new_share=a.new_share,
                          warmup=a.warmup))
    print(json.dumps(res, indent=2, default=str))
    print(f"{res['resources_per_s']} resources/s ({res['bundles_per_s']} bundles/s of {ENTRIES} entries; goal ≥ "
          f"{GOAL}, stretch {STRETCH}); API process {res['server_cpu_ms_per_bundle']} ms CPU per Bundle "
          f"({res['server_cpu_share']:.0%} of a core); bare FastAPI + asyncpg (parse, find the patient, store the "
          f"Bundle) {res['baseline']['bundles_per_s']} bundles/s, ratio {res['ratio']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
