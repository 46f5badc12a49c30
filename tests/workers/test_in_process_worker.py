"""An in-process Celery worker (celery.contrib.testing) on memory:// running the real relay against a database
with committed rows."""
from __future__ import annotations

import asyncio

import sqlalchemy as sa
from celery import Celery
from celery.contrib.testing.worker import start_worker
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from domain.kernel import jobs
from domain.kernel.models import Job
from tests.workers import fault_handlers  # noqa: F401  (registers test.fault.slow_effect)
from tests.workers.fault_handlers import EFFECT_TABLE_DDL
from workers import tasks


async def test_in_process_worker_relays_committed_jobs(fresh_db, clock):
    owner = create_async_engine(fresh_db["MIGRATION_DATABASE_URL"])
    async with owner.begin() as c:
        await c.execute(sa.text(EFFECT_TABLE_DDL))
    await owner.dispose()
    engine = create_async_engine(fresh_db["DATABASE_URL"])
    try:
        async with AsyncSession(engine, expire_on_commit=False) as s:
            created = [await jobs.enqueue(s, kind="test.fault.slow_effect", payload={"tag": f"t{i}"})
                       for i in range(3)]
            await s.commit()

        app = Celery("in-process-test", broker="memory://", backend="cache+memory://")
        app.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json")

        @app.task(name="test.relay")
        def relay_task():
            return asyncio.run(tasks.relay(database_url=fresh_db["DATABASE_URL"]))

        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            first = await asyncio.to_thread(lambda: relay_task.delay().get(timeout=30))
            second = await asyncio.to_thread(lambda: relay_task.delay().get(timeout=30))

        assert first == {"ran": 3, "states": {"done": 3}, "more": False}
        assert second == {"ran": 0, "states": {}, "more": False}
        async with AsyncSession(engine) as s:
            states = (await s.execute(sa.select(Job.state, Job.finished_at)
                                      .where(Job.id.in_([j.id for j in created])))).all()
            assert states == [("done", clock.now())] * 3
        async with engine.connect() as c:
            tags = (await c.execute(sa.text("select tag from fault_effect order by tag"))).scalars().all()
        assert tags == ["t0", "t1", "t2"]
    finally:
        await engine.dispose()
