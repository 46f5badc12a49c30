"""The baseline of the API ratio benchmark: a bare FastAPI app with a raw asyncpg pool and one query per request.

    BASELINE_DSN=postgresql://pua_app@127.0.0.1:5432/pua uvicorn bench.baseline_app:app

Same server, same worker count and the same pool size as the real service; no authentication, no ORM, no
logging: what any FastAPI service on this Postgres would cost for "read one person".
"""
from __future__ import annotations

import os
import uuid
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse

QUERY = ("select id, codice_fiscale, surname, given_name, sex, birth_date, residence_comune_id, "
         "domicile_comune_id, status, version from person where id = $1")


@asynccontextmanager
async def lifespan(app: FastAPI):
    size = int(os.environ.get("DB_POOL_SIZE", "10"))
    app.state.pool = await asyncpg.create_pool(os.environ["BASELINE_DSN"], min_size=1, max_size=size)
    yield
    await app.state.pool.close()


app = FastAPI(lifespan=lifespan)


@app.get("/api/persons/{person_id}")
async def get_person(person_id: uuid.UUID):
    async with app.state.pool.acquire() as conn:
        row = await conn.fetchrow(QUERY, person_id)
    if row is None:
        raise HTTPException(404)
    return JSONResponse({k: (str(v) if v is not None and not isinstance(v, (int, str)) else v)
                         for k, v in row.items()})
