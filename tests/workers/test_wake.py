"""`workers.wake()`: best effort, never raises, never blocks the request."""
from __future__ import annotations

import asyncio
import time
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

import workers
from integrations.postgres.devpg import free_port
from tests.workers.procs import sync_url


@contextmanager
def broker(url: str):
    """Point the process's Celery app at another broker, dropping its cached connection and producer pools."""
    from workers.celery_app import app

    def reset():
        if app._pool is not None:
            app._pool.force_close_all()
        app._pool = None
        if "amqp" in app.__dict__:
            app.__dict__["amqp"]._producer_pool = None

    previous = app.conf.broker_url
    app.conf.broker_url = url
    reset()
    try:
        yield app
    finally:
        app.conf.broker_url = previous
        reset()


@pytest.fixture
def dead_broker():
    with broker(f"sqla+postgresql+psycopg://pua_app@127.0.0.1:{free_port()}/nowhere") as app:
        yield app


async def test_wake_with_the_broker_down_reports_failure_without_raising(dead_broker):
    assert await asyncio.to_thread(workers.wake, block=True) is False


async def test_wake_returns_at_once_and_coalesces(dead_broker):
    started = time.monotonic()
    results = [workers.wake() for _ in range(50)]
    assert time.monotonic() - started < 0.5
    assert all(results)
    # The queued send fails in the background; afterwards a new wake is queued again.
    deadline = time.monotonic() + 15
    while workers._queued.is_set() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not workers._queued.is_set()
    assert workers.wake() is True


async def test_wake_reaches_a_working_broker(fresh_db):
    with broker("sqla+" + sync_url(fresh_db["DATABASE_URL"])):
        assert await asyncio.to_thread(workers.wake, block=True) is True
    engine = create_async_engine(fresh_db["DATABASE_URL"])
    try:
        async with engine.connect() as c:
            payloads = (await c.execute(sa.text("select payload from kombu_message where visible"))).scalars().all()
    finally:
        await engine.dispose()
    assert len(payloads) == 1 and "workers.tasks.relay_jobs" in payloads[0]


async def test_wakes_closer_than_the_minimum_interval_share_one_send(fresh_db, monkeypatch):
    """Under load every request commits jobs: wakes within the interval reach the broker as one message, and a
    wake after it as the next one (nothing is dropped)."""
    from domain.kernel.settings import get_settings

    monkeypatch.setattr(get_settings(), "job_wake_min_interval_seconds", 1.0)
    engine = create_async_engine(fresh_db["DATABASE_URL"])

    async def messages() -> int:
        async with engine.connect() as c:
            return (await c.execute(sa.text("select count(*) from kombu_message where visible"))).scalar_one()

    async def reaches(n: int) -> int:  # the send runs on the wake thread: wait for its row (bounded)
        deadline = time.monotonic() + 15
        while (count := await messages()) < n and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return count

    try:
        with broker("sqla+" + sync_url(fresh_db["DATABASE_URL"])):
            assert await asyncio.to_thread(workers.wake, block=True) is True  # the last send: the interval starts
            for _ in range(20):  # back to back: well inside the interval however loaded the machine is
                assert workers.wake() is True
            assert await reaches(2) == 2
            await asyncio.sleep(1.5)  # longer than the interval: nothing else was queued
            assert await messages() == 2
            assert workers.wake() is True
            assert await reaches(3) == 3
    finally:
        await engine.dispose()
