"""Acceptance of the demo clock (issue 16) against a live service: the API in process on a committed database
with the clock of a real service (no FixedClock), and a real Celery worker reading the same stored clock.

Set the clock to a Monday morning, register a PUA request, advance three working days: the request is overdue in
the triage queue, and the daily jobs ran once for each day crossed (the worker ran them)."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from domain.assessment.jobs import REASSESSMENT_REMINDERS
from domain.care_plan.jobs import REVIEW_REMINDERS
from domain.kernel import clock as clock_mod
from domain.kernel import db
from domain.kernel.models import Job
from domain.security.models import AuditEvent, Role
from tests.domain.pua.helpers import elderly_woman, mmg_referral, setup_pua
from tests.support import bearer, make_user
from tests.workers.procs import celery_env, client_app, kill, start_worker, wait_for

MONDAY = datetime.fromisoformat("2026-03-16T09:00:00+01:00")
DAYS = ["2026-03-16", "2026-03-17", "2026-03-18", "2026-03-19"]  # Monday and the three working days crossed


@pytest.fixture
async def live(fresh_db):
    """The API of a real service on `fresh_db`: its own engine, the stored business clock."""
    from api.main import create_app

    engine = create_async_engine(fresh_db["DATABASE_URL"], pool_size=4)
    saved_engine, saved_clock = (db._engine, db._sessionmaker), clock_mod.get_clock()
    db.set_engine(engine)
    clock_mod.set_clock(clock_mod.SystemClock())
    try:
        async with AsyncClient(transport=ASGITransport(app=create_app()), base_url="http://live") as http:
            yield fresh_db, engine, http
    finally:
        clock_mod.set_clock(saved_clock)
        db._engine, db._sessionmaker = saved_engine
        await engine.dispose()


async def _daily_keys(engine) -> list[tuple[str, str]]:
    async with engine.connect() as c:
        rows = (await c.execute(sa.select(Job.dedup_key, Job.state)
                                .where(Job.kind.in_([REVIEW_REMINDERS, REASSESSMENT_REMINDERS]))
                                .order_by(Job.dedup_key))).all()
    return [tuple(r) for r in rows]


async def test_a_request_turns_overdue_when_the_clock_moves_three_working_days(live, tmp_path):
    fresh, engine, http = live
    async with AsyncSession(engine, expire_on_commit=False) as s:
        pua = await setup_pua(s)
        person = await elderly_woman(s)
        admin = await make_user(s, Role.system_admin, "ambito-crema", username="admin.demo.clock")
        await s.commit()
    admin_h, operator_h = bearer(admin), bearer(pua.operator)
    log = tmp_path / "worker.log"
    worker = start_worker(celery_env(fresh), log)
    try:
        # A Monday morning: back in time, past the records the setup just wrote, hence `force`.
        r = await http.put("/api/dev/clock", headers=admin_h, json={"set": MONDAY.isoformat(), "force": True})
        assert r.status_code == 200, r.text
        assert r.json()["days_run"] == DAYS[:1] and r.json()["in_process_fixed"] is None
        assert abs(clock_mod.now() - MONDAY) < timedelta(minutes=1)

        r = await http.post("/api/pua/requests", headers=bearer(pua.mmg), json=mmg_referral(person.id))
        assert r.status_code == 201, r.text
        rid = r.json()["id"]
        queue = (await http.get("/api/pua/queue", headers=operator_h, params={"limit": 200})).json()
        [item] = [w for w in queue["items"] if w["source_id"] == rid]
        due = datetime.fromisoformat(item["due_at"])
        assert abs(due - (MONDAY + timedelta(days=2))) < timedelta(minutes=1)  # two working days
        assert item["overdue"] is False

        r = await http.put("/api/dev/clock", headers=admin_h, json={"advance": "3d"})
        assert r.status_code == 200, r.text
        assert r.json()["days_run"] == DAYS[1:]
        queue = (await http.get("/api/pua/queue", headers=operator_h, params={"limit": 200})).json()
        [item] = [w for w in queue["items"] if w["source_id"] == rid]
        assert item["overdue"] is True

        # The worker reads the same stored clock, and runs each day's jobs: one per kind and day crossed.
        app = client_app(fresh)
        pong = await asyncio.to_thread(lambda: app.send_task("workers.tasks.ping").get(timeout=60))
        assert abs(datetime.fromisoformat(pong["now"]) - (MONDAY + timedelta(days=3))) < timedelta(minutes=2)
        await asyncio.to_thread(app.send_task, "workers.tasks.relay_jobs")
        expected = sorted((f"{kind}:{day}", "done") for kind in (REVIEW_REMINDERS, REASSESSMENT_REMINDERS)
                          for day in DAYS)

        async def all_done():
            return await _daily_keys(engine) == expected

        await wait_for(all_done, timeout=60, what="the daily jobs of each day crossed to run", logs=[log])

        # Beat's hourly run on the same day adds nothing (idempotent per day).
        async def taken() -> int:
            async with engine.connect() as c:
                return (await c.execute(sa.text("select count(*) from kombu_message where visible = false")
                                        )).scalar_one()

        before = await taken()
        await asyncio.to_thread(app.send_task, "workers.tasks.daily_jobs")

        async def took_it():
            return await taken() > before

        await wait_for(took_it, timeout=60, what="the worker to take the daily_jobs task", logs=[log])
        await asyncio.sleep(2)
        assert await _daily_keys(engine) == expected

        async with engine.connect() as c:
            actions = (await c.execute(sa.select(AuditEvent.action).where(AuditEvent.object_type == "business_clock")
                                       .order_by(AuditEvent.id))).scalars().all()
        assert actions == ["clock_set", "clock_advance"]
    finally:
        kill(worker)
