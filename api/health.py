"""Liveness, readiness and the operator counters. Each answer says what it checked.

- `/health/live`: the process answers; nothing else is queried (a database outage must not make the orchestrator
  restart every API pod).
- `/health/ready`: the database, as the application role, is *required* (503 without it). The Celery broker is
  *best effort*: a job is committed in the `job` table (the source of truth) and the broker only wakes a worker
  sooner; when it is down the beat sweep still relays the jobs. So a broker outage is reported ("degraded") but
  keeps the pod in service (200). The body also carries the process-local counters.
- `/health/metrics`: the same counters in the Prometheus text format.
"""
from __future__ import annotations

import asyncio

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy.pool import NullPool

from api.logging import COUNTERS
from domain.kernel.db import get_engine
from domain.kernel.settings import get_settings

router = APIRouter(prefix="/health", tags=["salute"])

CHECK_TIMEOUT_SECONDS = 5.0

LIVE_CHECKS = {
    "process": "Il processo API risponde. Non interroga database né broker.",
}
READY_CHECKS = {
    # name: (required, what is checked)
    "database": (True, "Connessione al database con il ruolo applicativo (select 1). Obbligatorio."),
    "broker": (False, "Broker Celery raggiungibile. Facoltativo: serve solo a svegliare subito i worker; i lavori "
                      "restano nella tabella job e lo sweep periodico li riprende anche senza broker."),
}


def _counters() -> dict[str, int]:
    return {c.name: c.value for c in COUNTERS}


@router.get("/live", summary="Il processo è vivo",
            description="200 finché il processo risponde; non interroga database né broker.")
async def live() -> dict:
    return {"status": "ok",
            "checks": {name: {"status": "ok", "required": True, "description": what}
                       for name, what in LIVE_CHECKS.items()}}


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


async def _check(coro) -> str:
    try:
        await asyncio.wait_for(coro, timeout=CHECK_TIMEOUT_SECONDS)
        return "ok"
    except Exception as e:  # noqa: BLE001  (only the error type is reported: no URLs or hosts leak)
        return f"error: {type(e).__name__}"


async def _db_ping() -> None:
    async with get_engine().connect() as conn:
        await conn.execute(sa.text("select 1"))


@router.get("/ready", summary="Pronto a servire richieste",
            description="200 se il database risponde (anche con il broker irraggiungibile: stato `degraded`), 503 "
                        "se il database non risponde. Il corpo elenca ogni controllo, se è obbligatorio e il suo "
                        "esito, più i contatori del processo.",
            responses={200: {"description": "Servizio pronto (eventualmente degradato)"},
                       503: {"description": "Database non raggiungibile"}})
async def ready() -> JSONResponse:
    results = {
        "database": await _check(_db_ping()),
        "broker": await _check(asyncio.to_thread(_broker_ping, get_settings().celery_broker_url)),
    }
    checks = {name: {"status": results[name], "required": required, "description": what}
              for name, (required, what) in READY_CHECKS.items()}
    required_ok = all(c["status"] == "ok" for c in checks.values() if c["required"])
    all_ok = all(c["status"] == "ok" for c in checks.values())
    status = "ok" if all_ok else ("degraded" if required_ok else "unavailable")
    return JSONResponse({"status": status, "checks": checks, "counters": _counters()},
                        status_code=200 if required_ok else 503)


@router.get("/metrics", summary="Contatori del processo (formato Prometheus)", response_class=PlainTextResponse,
            description="Contatori locali a questo processo: si azzerano al riavvio, si allerta sul loro aumento.")
async def metrics() -> PlainTextResponse:
    lines = []
    for c in COUNTERS:
        lines += [f"# HELP {c.name} {c.help}", f"# TYPE {c.name} counter", f"{c.name} {c.value}"]
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4; charset=utf-8")
