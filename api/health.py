from __future__ import annotations

import asyncio

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from domain.kernel.db import get_engine
from domain.kernel.settings import get_settings

router = APIRouter(prefix="/health", tags=["salute"])


@router.get("/live", summary="Il processo è vivo")
async def live() -> dict:
    return {"status": "ok"}


def _broker_ping(url: str) -> None:
    from kombu import Connection

    with Connection(url, connect_timeout=2) as c:
        c.ensure_connection(max_retries=1)


@router.get("/ready", summary="Database e broker raggiungibili")
async def ready() -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        async with get_engine().connect() as conn:
            await conn.execute(sa.text("select 1"))
        checks["database"] = "ok"
    except Exception as e:  # noqa: BLE001
        checks["database"] = f"error: {type(e).__name__}"
    try:
        await asyncio.wait_for(asyncio.to_thread(_broker_ping, get_settings().celery_broker_url), timeout=5)
        checks["broker"] = "ok"
    except Exception as e:  # noqa: BLE001
        checks["broker"] = f"error: {type(e).__name__}"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "degraded", "checks": checks}, status_code=200 if ok else 503)
