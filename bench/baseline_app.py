"""The baselines of the ratio benchmarks: a bare FastAPI app with a raw asyncpg pool, the least a request costs.

    BASELINE_DSN=postgresql://pua_app@127.0.0.1:5432/pua uvicorn bench.baseline_app:app

Same server, same worker count and the same pool size as the real service; no authentication, no ORM, no
logging, no validation: what any FastAPI service on this Postgres would cost for "read one person"
(`GET /api/persons/{id}`, bench.api_ratio) and for "take a discharge Bundle" (`POST /fhir`,
bench.fhir_transactions: parse the JSON, find the patient by codice fiscale, store the Bundle, commit).
"""
from __future__ import annotations

import json
import os
import uuid
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

QUERY = ("select id, codice_fiscale, surname, given_name, sex, birth_date, residence_comune_id, "
         "domicile_comune_id, status, version from person where id = $1")


@asynccontextmanager
async def lifespan(app: FastAPI):
    size = int(os.environ.get("DB_POOL_SIZE", "10"))
    app.state.pool = await asyncpg.create_pool(os.environ["BASELINE_DSN"], min_size=1, max_size=size,
                                               init=_scratch_table)
    yield
    await app.state.pool.close()


async def _scratch_table(conn) -> None:  # per connection: the Bundles the baseline stores go nowhere lasting
    await conn.execute("create temp table if not exists bench_bundle (id uuid primary key, person_id uuid, "
                       "body jsonb not null)")


app = FastAPI(lifespan=lifespan)


@app.get("/health/live")
async def live():
    return {"status": "ok"}


@app.get("/api/persons/{person_id}")
async def get_person(person_id: uuid.UUID):
    async with app.state.pool.acquire() as conn:
        row = await conn.fetchrow(QUERY, person_id)
    if row is None:
        raise HTTPException(404)
    return JSONResponse({k: (str(v) if v is not None and not isinstance(v, (int, str)) else v)
                         for k, v in row.items()})


@app.post("/fhir")
async def transaction(request: Request):
    body = await request.body()
    entries = json.loads(body)["entry"]
    patient = next(e["resource"] for e in entries if e["resource"]["resourceType"] == "Patient")
    async with app.state.pool.acquire() as conn, conn.transaction():
        person_id = await conn.fetchval("select id from person where codice_fiscale = $1 and status = 'active' "
                                        "limit 1", patient["identifier"][0]["value"])
        await conn.execute("insert into bench_bundle (id, person_id, body) values ($1, $2, $3)", uuid.uuid4(),
                           person_id, body.decode())
    return JSONResponse({"resourceType": "Bundle", "type": "transaction-response",
                         "entry": [{"response": {"status": "201 Created"}} for _ in entries]})
