"""The protected-discharge evaluation clock on a real worker: the job runs twice, the worker is killed (SIGKILL) in
between, and the COT's queue shows the at-risk and overdue marks once each (issue 10 acceptance)."""
from __future__ import annotations

import asyncio
from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from domain.discharge import service
from domain.discharge.jobs import EVALUATION_CLOCK
from domain.discharge.models import DischargeCase
from domain.kernel import jobs
from domain.kernel.models import Job, WorkItem
from domain.security.models import Role
from domain.security.principal import load_principal
from schemas.discharge import DischargeSignalCreate
from tests.conftest import FIXED_NOW
from tests.factories.cartelle import create_person
from tests.support import make_user, org
from tests.workers.procs import celery_env, client_app, kill, start_worker, wait_for


async def _signal(engine) -> DischargeCase:
    """A case whose COT request is at FIXED_NOW (the test's clock), committed."""
    async with AsyncSession(engine, expire_on_commit=False) as s:
        ward = await make_user(s, Role.ward_staff, "asst-crema-reparto-medicina")
        person = await create_person(s, comune="comune-offanengo", birth_date=date(1947, 6, 12))
        await s.commit()
        principal = await load_principal(s, str(ward.id))
        case = await service.open_signal(s, principal=principal, data=DischargeSignalCreate(
            person_id=person.id, ward_org_id=(await org(s, "asst-crema-reparto-medicina")).id,
            admission_date=date(2026, 2, 26), expected_discharge_date=date(2026, 3, 4),
            criteria=["over65_not_self_sufficient"], social_risk=True, clinician_summary="Non autosufficiente."))
        await s.commit()
        return case


async def _run_job(engine, fresh, tag: str, logs) -> None:
    async with AsyncSession(engine, expire_on_commit=False) as s:
        job = await jobs.enqueue(s, kind=EVALUATION_CLOCK, payload={}, dedup_key=f"{EVALUATION_CLOCK}:{tag}")
        await s.commit()
    await asyncio.to_thread(client_app(fresh).send_task, "workers.tasks.relay_jobs")

    async def done():
        async with AsyncSession(engine) as s:
            state = (await s.execute(sa.select(Job.state).where(Job.id == job.id))).scalar_one()
        return state == "done"

    await wait_for(done, timeout=60, what=f"the evaluation-clock job {tag} to run", logs=logs)


async def _marks(engine, case_id):
    async with AsyncSession(engine) as s:
        c = (await s.execute(sa.select(DischargeCase).where(DischargeCase.id == case_id))).scalar_one()
        kinds = (await s.execute(sa.select(WorkItem.kind).where(
            WorkItem.source_id == case_id, WorkItem.kind.in_([service.AT_RISK_KIND, service.OVERDUE_KIND]))
            .order_by(WorkItem.kind))).scalars().all()
    return c.at_risk_at, c.overdue_at, list(kinds)


async def test_marks_once_across_two_runs_and_a_killed_worker(fresh_db, tmp_path, clock):
    engine = create_async_engine(fresh_db["DATABASE_URL"])
    logs = [tmp_path / "worker1.log", tmp_path / "worker2.log"]
    worker1 = worker2 = None
    try:
        case = await _signal(engine)
        async with engine.begin() as c:  # the worker's business clock: 49 hours after the COT request
            await c.execute(sa.text("update business_clock set offset_seconds = extract(epoch from (:at - now()))"),
                            {"at": FIXED_NOW + timedelta(hours=49)})
        env = celery_env(fresh_db)
        worker1 = start_worker(env, logs[0])
        await _run_job(engine, fresh_db, "first", logs)
        first = await _marks(engine, case.id)
        assert first[0] is not None and first[1] is not None
        assert first[2] == [service.AT_RISK_KIND, service.OVERDUE_KIND]
        kill(worker1)
        assert worker1.returncode == -9
        worker2 = start_worker(env, logs[1])
        await _run_job(engine, fresh_db, "second", logs)
        assert await _marks(engine, case.id) == first  # nothing changed, nothing doubled
    finally:
        for p in (worker1, worker2):
            kill(p)
        await engine.dispose()
