"""Real `celery -A workers.celery_app worker` subprocesses on the default broker (kombu's SQL transport on the
test database's Postgres), working as the non-superuser application role."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

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
    """The committed effect rows of `tag`."""
    async with engine.connect() as c:
        return list((await c.execute(sa.text("select at from fault_effect where tag = :t"), {"t": tag})).scalars())


async def _handler_backend(engine) -> dict | None:
    """The database session of a handler that has inserted its effect row and not committed: idle in transaction
    (the handler sleeps), holding a transaction id (it wrote), its last statement the handler's insert."""
    async with engine.connect() as c:
        row = (await c.execute(sa.text(
            "select pid, backend_xid::text as xid from pg_stat_activity where datname = current_database() "
            "and pid <> pg_backend_pid() and state = 'idle in transaction' and backend_xid is not null "
            "and query ilike 'insert into fault_effect%'"))).mappings().first()
    return dict(row) if row else None


async def _backend_alive(engine, pid: int) -> bool:
    async with engine.connect() as c:
        return bool((await c.execute(sa.text("select count(*) from pg_stat_activity where pid = :p"),
                                     {"p": pid})).scalar_one())


async def _last_effect_id(engine) -> int | None:
    async with engine.connect() as c:
        last, called = (await c.execute(sa.text("select last_value, is_called from fault_effect_id_seq"))).one()
    return last if called else None


async def _uncommitted_row(engine, effect_id: int) -> bool:
    """Whether another transaction holds an uncommitted effect row with this id: inserting the same key then waits
    for that transaction (here until lock_timeout). No row lets the insert through; a committed one is a unique
    violation. The probe is rolled back either way."""
    async with engine.connect() as c:
        tx = await c.begin()
        try:
            await c.execute(sa.text("set local lock_timeout = '300ms'"))
            await c.execute(sa.text("insert into fault_effect (id, tag, at) values (:id, 'probe', now())"),
                            {"id": effect_id})
            return False
        except sa.exc.DBAPIError as e:
            if "lock timeout" in str(e.orig) or getattr(e.orig, "sqlstate", None) == "55P03":
                return True
            raise
        finally:
            await tx.rollback()


async def _consumed_housekeeping(engine) -> int:
    """Relay and sweep messages the workers have fetched from the broker (kombu's SQL transport keeps them with
    visible = false): the beat sends both every second, so the count grows while a worker runs."""
    async with engine.connect() as c:
        return (await c.execute(sa.text(
            "select count(*) from kombu_message where not visible and (payload like '%workers.tasks.relay_jobs%' "
            "or payload like '%workers.tasks.sweep_leases%')"))).scalar_one()


async def test_worker_killed_mid_job_loses_nothing_and_doubles_nothing(db, tmp_path, clock):
    """THE fault test: SIGKILL a worker while its job runs — after its handler has written the effect row, before
    it commits; after the lease expires the beat sweep re-queues the job, a new worker runs it, and its effect
    exists exactly once (the killed attempt's write was rolled back). Every wait polls the database for a state,
    with a deadline; no fixed sleeps."""
    fresh, engine = db
    clock.set(datetime.now(UTC))  # the workers run on the system clock: leases must really expire
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

        # Before the kill: the handler has inserted its effect row and sleeps with the transaction open.
        backend = await wait_for(lambda: _handler_backend(engine), timeout=30, logs=logs,
                                 what="worker 1's handler to insert its effect row (idle in transaction)")
        effect_id = await _last_effect_id(engine)
        assert effect_id is not None
        assert await _uncommitted_row(engine, effect_id), "no uncommitted effect row held by the handler"
        assert await _effects(engine, "fault") == []  # written, not committed

        kill(worker1)
        assert worker1.returncode == -9

        async def backend_gone():
            return not await _backend_alive(engine, backend["pid"])

        await wait_for(backend_gone, timeout=30, logs=logs,
                       what="the killed worker's database session to end (its transaction rolled back)")
        assert not await _uncommitted_row(engine, effect_id)  # the killed attempt's row is gone, not committed
        assert await _effects(engine, "fault") == []
        after_kill = await _job(engine, job.id)
        assert (after_kill.state, after_kill.attempts) == ("running", 1)

        worker2 = start_worker({**env, "FAULT_HANDLER_SLEEP": "0.2"}, logs[2])

        async def done():
            j = await _job(engine, job.id)
            return j if j.state == "done" else None

        finished = await wait_for(done, timeout=90, what="the job to be swept and run again", logs=logs)
        assert finished.attempts == 2
        assert finished.last_error == "lease expired: worker lost"
        assert len(await _effects(engine, "fault")) == 1  # after the restart: the effect, committed, once

        # A second run, if there were one, would come from a later relay or sweep: let worker 2 fetch three more of
        # them (it runs two at a time, so at least one has finished) and check that nothing ran again.
        seen = await _consumed_housekeeping(engine)

        async def three_more():
            return await _consumed_housekeeping(engine) >= seen + 3

        await wait_for(three_more, timeout=60, what="worker 2 to take three more relay/sweep tasks", logs=logs)
        assert len(await _effects(engine, "fault")) == 1
        final = await _job(engine, job.id)
        assert (final.state, final.attempts) == ("done", 2)
    finally:
        for p in (worker1, worker2, beat):
            kill(p)


async def test_worker_runs_as_app_role_on_the_stored_clock_and_db_result_backend(db, tmp_path):
    fresh, engine = db
    async with engine.begin() as c:  # the stored business clock (issue 16) at FIXED_NOW: the worker reads it
        await c.execute(sa.text("update business_clock set offset_seconds = extract(epoch from (:at - now()))"),
                        {"at": FIXED_NOW})
    near = lambda at: abs(at - FIXED_NOW) < timedelta(minutes=2)  # noqa: E731  (business time keeps flowing)
    log = tmp_path / "worker.log"
    worker = None
    try:
        worker = start_worker(celery_env(fresh), log)
        app = client_app(fresh)
        result = await asyncio.to_thread(lambda: app.send_task("workers.tasks.ping").get(timeout=60))
        assert near(datetime.fromisoformat(result["now"])) and result["db_user"] == "pua_app"

        job = await _enqueue(engine, "clock")  # the test clock is fixed at FIXED_NOW
        await asyncio.to_thread(app.send_task, "workers.tasks.relay_jobs")

        async def done():
            j = await _job(engine, job.id)
            return j if j.state == "done" else None

        finished = await wait_for(done, timeout=60, what="the job to run", logs=[log])
        assert near(finished.finished_at)
        [effect] = await _effects(engine, "clock")
        assert near(effect)
        async with engine.connect() as c:  # the broker and result tables were used by the application role
            assert (await c.execute(sa.text("select count(*) from kombu_queue"))).scalar_one() >= 1
            assert (await c.execute(sa.text("select count(*) from celery_taskmeta"))).scalar_one() >= 1
    finally:
        kill(worker)
