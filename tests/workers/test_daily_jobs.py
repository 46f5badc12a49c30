"""Periodic work: beat runs `daily_jobs` every hour; it enqueues each day's jobs (care-plan review reminders) once
per day whatever the number of runs, and the relay then runs them."""
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from domain.care_plan.jobs import REVIEW_REMINDERS
from domain.kernel.models import Job
from workers import tasks
from workers.celery_app import app


async def _jobs(url):
    engine = create_async_engine(url)
    async with engine.connect() as c:
        rows = (await c.execute(sa.select(Job.dedup_key, Job.state).where(Job.kind == REVIEW_REMINDERS)
                                .order_by(Job.dedup_key))).all()
    await engine.dispose()
    return [tuple(r) for r in rows]


async def test_beat_schedules_the_daily_jobs():
    entry = app.conf.beat_schedule["daily-jobs"]
    assert entry["task"] == "workers.tasks.daily_jobs" and entry["task"] in app.tasks


async def test_daily_jobs_are_enqueued_once_a_day_and_run(fresh_db, clock):
    url = fresh_db["DATABASE_URL"]
    assert await tasks.enqueue_daily(database_url=url) == ["domain.care_plan.jobs:enqueue_review_reminders",
                                                           "domain.assessment.jobs:enqueue_reassessment_reminders",
                                                           "domain.discharge.jobs:enqueue_evaluation_clock",
                                                           "domain.waiting_list.jobs:enqueue_clocks",
                                                           "integrations.asst.outbound:enqueue_relay",
                                                           "domain.services.jobs:enqueue_daily",
                                                           "domain.measures.jobs:enqueue_daily",
                                                           "domain.security.jobs:enqueue_audit_partitions",
                                                           "domain.reporting.exports:enqueue_expiry"]
    await tasks.enqueue_daily(database_url=url)  # the next hourly run of the same day adds nothing
    assert await _jobs(url) == [(f"{REVIEW_REMINDERS}:2026-03-02", "pending")]

    result = await tasks.relay(database_url=url)
    # review reminders, reassessment reminders, the discharge evaluation clock (once an hour), the waiting-list clocks,
    # the outbox relay, the services' weekly check and period ends, the measures' period ends, the audit partitions,
    # the expiry of report export files
    assert result["states"] == {"done": 9}
    clock.advance(days=1)
    await tasks.enqueue_daily(database_url=url)
    assert await _jobs(url) == [(f"{REVIEW_REMINDERS}:2026-03-02", "done"),
                                (f"{REVIEW_REMINDERS}:2026-03-03", "pending")]
