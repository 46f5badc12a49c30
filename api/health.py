"""Liveness and readiness. `/health/ready` checks the database and the Celery broker as configured: with the
default Postgres broker it reads kombu's queue table as the application role; with Redis/AMQP it connects."""
from __future__ import annotations

import asyncio

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.pool import NullPool

from domain.kernel.db import get_engine
from domain.kernel.settings import get_settings

router = APIRouter(prefix="/health", tags=["salute"])

CHECK_TIMEOUT_SECONDS = 5.0


@router.get("/live", summary="Il processo è vivo")
async def live() -> dict:
    return {"status": "ok"}


def _broker_ping(url: str) -> None:
    if url.startswith(("sqla+", "sqlalchemy+")):
        # kombu's SQL transport connects lazily, so ask the table it polls (also proves the grants).
        engine = sa.create_engine(url.split("+", 1)[1], poolclass=NullPool, connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as c:
                c.execute(sa.text("select 1 from kombu_queue limit 1"))
        finally:
            engine.dispose()
        return
    from kombu import Connection

    with Connection(url, connect_timeout=3) as c:
        c.ensure_connection(max_retries=1)
        c.default_channel  # noqa: B018  (Redis pings when the channel opens)


async def _check(name: str, checks: dict[str, str], coro) -> None:
    try:
        await asyncio.wait_for(coro, timeout=CHECK_TIMEOUT_SECONDS)
        checks[name] = "ok"
    except Exception as e:  # noqa: BLE001  (only the error type is reported: no URLs or hosts leak)
        checks[name] = f"error: {type(e).__name__}"


async def _db_ping() -> None:
    async with get_engine().connect() as conn:
        await conn.execute(sa.text("select 1"))


@router.get("/ready", summary="Database e broker raggiungibili",
            description="200 se database e broker rispondono, 503 altrimenti (con l'esito di ciascun controllo).",
            responses={200: {"description": "Servizio pronto"},
                       503: {"description": "Database o broker non raggiungibili"}})
async def ready() -> JSONResponse:
    checks: dict[str, str] = {}
    await _check("database", checks, _db_ping())
    await _check("broker", checks, asyncio.to_thread(_broker_ping, get_settings().celery_broker_url))
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "degraded", "checks": checks}, status_code=200 if ok else 503)
