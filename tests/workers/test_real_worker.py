"""Real `celery -A workers.celery_app worker` subprocesses on the default broker (kombu's SQL transport on the
test database's Postgres), working as the non-superuser application role."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from domain.kernel import jobs
from domain.kernel.models import Job
from tests.conftest import FIXED_NOW
from tests.workers import fault_handlers  # noqa: F401  (registers test.fault.slow_effect here too)
from tests.workers.fault_handlers import EFFECT_TABLE_DDL
from tests.workers.procs import celery_env, client_app, kill, start_celery, start_worker, wait_for


@pytest.fixture
async def db(fresh_db):
    owner = create_async_engine(fresh_db["MIGRATION_DATABASE_URL"])
    async with owner.begin() as c:
        await c.execute(sa.text(EFFECT_TABLE_DDL))
    await owner.dispose()
    engine = create_async_engine(fresh_db["DATABASE_URL"])
    yield fresh_db, engine
    await engine.dispose()


async def _enqueue(engine, tag: str) -> Job:
    async with AsyncSession(engine, expire_on_commit=False) as s:
        job = await jobs.enqueue(s, kind="test.fault.slow_effect", payload={"tag": tag})
        await s.commit()
        return job


async def _job(engine, job_id) -> Job:
    async with AsyncSession(engine) as s:
        return (await s.execute(sa.select(Job).where(Job.id == job_id))).scalar_one()


async def _effects(engine, tag: str) -> list[datetime]:
    async with engine.connect() as c:
        return list((await c.execute(sa.text("select at from fault_effect where tag = :t"), {"t": tag})).scalars())


async def test_worker_killed_mid_job_loses_nothing_and_doubles_nothing(db, tmp_path, clock):
    """THE fault test: SIGKILL a worker while its job runs; after the lease expires the beat sweep re-queues it,
    a new worker runs it, and its effect exists exactly once (the killed attempt's write was rolled back)."""
    fresh, engine = db
    clock.set(datetime.now(timezone.utc))  # the workers run on the system clock: leases must really expire
    env = celery_env(fresh, JOB_LEASE_SECONDS="3", JOB_SWEEP_SECONDS="1")
    logs = [tmp_path / "beat.log", tmp_path / "worker1.log", tmp_path / "worker2.log"]
    beat = worker1 = worker2 = None
    try:
        beat = start_celery(["beat", "--loglevel=INFO", "-s", str(tmp_path / "beat-schedule")], env, logs[0])
        worker1 = start_worker({**env, "FAULT_HANDLER_SLEEP": "120"}, logs[1])
        job = await _enqueue(engine, "fault")
        await asyncio.to_thread(client_app(fresh).send_task, "workers.tasks.relay_jobs")

        async def running():
            j = await _job(engine, job.id)
            return j if j.state == "running" else None

        claimed = await wait_for(running, timeout=60, what="worker 1 to claim the job", logs=logs)
        assert claimed.attempts == 1
        await asyncio.sleep(0.5)  # the handler has written its effect row, uncommitted, and sleeps
        kill(worker1)
        assert worker1.returncode == -9

        after_kill = await _job(engine, job.id)
        assert (after_kill.state, after_kill.attempts) == ("running", 1)
        assert await _effects(engine, "fault") == []  # the killed transaction was rolled back

        worker2 = start_worker({**env, "FAULT_HANDLER_SLEEP": "0.2"}, logs[2])

        async def done():
            j = await _job(engine, job.id)
            return j if j.state == "done" else None

        finished = await wait_for(done, timeout=90, what="the job to be swept and run again", logs=logs)
        assert finished.attempts == 2
        assert finished.last_error == "lease expired: worker lost"
        await asyncio.sleep(1.5)  # a second run, if there were one, would show up now
        assert len(await _effects(engine, "fault")) == 1
        assert (await _job(engine, job.id)).attempts == 2
    finally:
        for p in (worker1, worker2, beat):
            kill(p)


async def test_worker_runs_as_app_role_with_fixed_clock_and_db_result_backend(db, tmp_path):
    fresh, engine = db
    env = celery_env(fresh, PUA_FIXED_NOW=FIXED_NOW.isoformat())
    log = tmp_path / "worker.log"
    worker = None
    try:
        worker = start_worker(env, log)
        app = client_app(fresh)
        result = await asyncio.to_thread(lambda: app.send_task("workers.tasks.ping").get(timeout=60))
        assert result == {"now": FIXED_NOW.isoformat(), "db_user": "pua_app"}

        job = await _enqueue(engine, "clock")  # the test clock is fixed at FIXED_NOW as well
        await asyncio.to_thread(app.send_task, "workers.tasks.relay_jobs")

        async def done():
            j = await _job(engine, job.id)
            return j if j.state == "done" else None

        finished = await wait_for(done, timeout=60, what="the job to run", logs=[log])
        assert finished.finished_at == FIXED_NOW
        assert await _effects(engine, "clock") == [FIXED_NOW]
        async with engine.connect() as c:  # the broker and result tables were used by the application role
            assert (await c.execute(sa.text("select count(*) from kombu_queue"))).scalar_one() >= 1
            assert (await c.execute(sa.text("select count(*) from celery_taskmeta"))).scalar_one() >= 1
    finally:
        kill(worker)
