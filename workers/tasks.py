"""Celery tasks. They are thin: each runs one async function of domain.kernel.jobs on a fresh event loop with a
NullPool engine (asyncpg connections are bound to their loop; the worker threads each run their own loop). Each
first brings the process's business clock up to the stored one (domain.kernel.business_clock, at most once a
second)."""
from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta

import sqlalchemy as sa
from celery.backends.base import DisabledBackend
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.pool import NullPool

import domain.kernel.db  # noqa: F401  (registers the fixed-clock hook on every session)
from deploy.composition import compose, daily_enqueuers
from domain.kernel import business_clock, clock, jobs
from domain.kernel.db import make_engine
from domain.kernel.settings import get_settings
from workers.celery_app import app

log = logging.getLogger("workers.tasks")

KOMBU_KEEP_DELIVERED = timedelta(hours=1)

# Wake-ups and sweeps have no result: sending them must not touch the result backend (Celery's database backend
# connects when first used, which would tie the API's best-effort wake to it).
_NO_RESULT = {"ignore_result": True, "backend": DisabledBackend(app)}


def _factory(url: str | None = None):
    # the API's bounded waits (connect and command timeouts) and hidden parameters, without a pool between jobs
    engine = make_engine(url or get_settings().database_url, poolclass=NullPool)
    return engine, async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def relay(*, database_url: str | None = None, budget_seconds: float | None = None,
                max_jobs: int = 1000) -> dict:
    """Drain ready jobs until none is left or the budget is spent. `more` = stopped with work possibly left."""
    compose()
    budget = budget_seconds or get_settings().job_relay_budget_seconds
    engine, factory = _factory(database_url)
    started = time.monotonic()
    try:
        await business_clock.refresh(engine)
        outcomes = await jobs.drain(factory, budget_seconds=budget, max_jobs=max_jobs)
    finally:
        await engine.dispose()
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.state] = counts.get(o.state, 0) + 1
    more = bool(outcomes) and (len(outcomes) >= max_jobs or time.monotonic() - started >= budget)
    return {"ran": len(outcomes), "states": counts, "more": more}


async def sweep(*, database_url: str | None = None) -> int:
    engine, factory = _factory(database_url)
    try:
        await business_clock.refresh(engine)
        async with factory() as s:
            n = await jobs.sweep_expired_leases(s)
            await s.commit()
    finally:
        await engine.dispose()
    return n


async def enqueue_daily(*, database_url: str | None = None) -> list[str]:
    """Enqueue today's periodic jobs (review reminders...) in one transaction; each is idempotent per day."""
    compose()
    engine, factory = _factory(database_url)
    try:
        await business_clock.refresh(engine)
        async with factory() as s:
            names = []
            for name, enqueue in daily_enqueuers():
                await enqueue(s)
                names.append(name)
            await s.commit()
    finally:
        await engine.dispose()
    return names


def purge_delivered_broker_messages(broker_url: str) -> int:
    """kombu's SQL transport keeps every fetched message (visible=false) forever; drop those fetched over an hour
    ago. Its `timestamp` is the worker's naive local time of the fetch, so compare with the same."""
    if not broker_url.startswith(("sqla+", "sqlalchemy+")):
        return 0
    engine = sa.create_engine(broker_url.split("+", 1)[1], poolclass=NullPool)
    try:
        with engine.begin() as c:
            r = c.execute(sa.text("delete from kombu_message where visible = false and timestamp < :cut"),
                          {"cut": datetime.now() - KOMBU_KEEP_DELIVERED})
            return r.rowcount or 0
    finally:
        engine.dispose()


@app.task(name="workers.tasks.relay_jobs", **_NO_RESULT)
def relay_jobs() -> dict:
    result = asyncio.run(relay())
    if result["more"]:
        relay_jobs.apply_async(retry=False)
    if result["ran"]:
        log.info("relay: %s", result)
    return result


@app.task(name="workers.tasks.sweep_leases", **_NO_RESULT)
def sweep_leases() -> int:
    n = asyncio.run(sweep())
    if n:
        log.info("sweep: %d expired leases re-queued", n)
        relay_jobs.apply_async(retry=False)
    try:
        purge_delivered_broker_messages(get_settings().celery_broker_url)
    except Exception as e:  # noqa: BLE001  (housekeeping must not fail the sweep)
        log.warning("broker purge failed: %s", type(e).__name__)
    return n


@app.task(name="workers.tasks.daily_jobs", **_NO_RESULT)
def daily_jobs() -> list[str]:
    names = asyncio.run(enqueue_daily())
    relay_jobs.apply_async(retry=False)
    return names


@app.task(name="workers.tasks.ping", ignore_result=False)
def ping() -> dict:
    """Health of a worker: its business time and the database role it works as (result through the backend)."""

    async def _who() -> str:
        engine, factory = _factory()
        try:
            await business_clock.refresh(engine)
            async with factory() as s:
                return (await s.execute(sa.text("select current_user"))).scalar_one()
        finally:
            await engine.dispose()

    db_user = asyncio.run(_who())
    return {"now": clock.now().isoformat(), "db_user": db_user}
