"""A report export survives its worker being killed (SIGKILL, a real Celery process): the step it held is run again
by the next worker, the steps already done are not, the progress never goes back, and the file is byte for byte the
synchronous route's answer for the same question and the same user."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from domain.kernel import storage
from domain.kernel.models import Job
from domain.kernel.settings import get_settings
from domain.reporting import definitions, exports, service
from domain.reporting.models import ReportExport
from domain.security.models import Role
from domain.security.principal import load_principal
from integrations.tabular import report_files
from tests.api.test_reports import _six_requests
from tests.support import make_user
from tests.workers.procs import celery_env, client_app, kill, start_celery, start_worker, wait_for


async def test_a_killed_worker_resumes_the_export_and_the_file_is_the_synchronous_one(fresh_db, tmp_path, clock,
                                                                                      monkeypatch):
    clock.set(datetime.now(UTC))  # the workers run on the system clock: leases must really expire
    store_dir = tmp_path / "exports"
    monkeypatch.setenv("REPORT_EXPORTS_DIR", str(store_dir))
    get_settings.cache_clear()
    engine = create_async_engine(fresh_db["DATABASE_URL"])
    owner = create_async_engine(fresh_db["MIGRATION_DATABASE_URL"])
    logs = [tmp_path / "beat.log", tmp_path / "worker1.log", tmp_path / "worker2.log"]
    beat = worker1 = worker2 = None
    blocker = None
    try:
        async with AsyncSession(engine, expire_on_commit=False) as s:
            await _six_requests(s)
            user = await make_user(s, Role.analyst, "ambito-crema", username="mx.export.analyst")
            await s.commit()
            principal = await load_principal(s, str(user.id))
            year = clock.now().year
            export = await exports.create_export(s, principal=principal, what="leps", format="html", year=year)
            await s.commit()
        total = len(export.steps)
        assert total == len(definitions.registry()) * 3

        # The discharge indicators (D3 on) wait behind a lock: the worker stops mid-export, holding one step.
        blocker = await owner.connect()
        await blocker.begin()
        await blocker.execute(sa.text("lock table discharge_case in access exclusive mode"))

        seen: list[int] = []

        async def progress() -> ReportExport:
            async with AsyncSession(engine) as s:
                e = (await s.execute(sa.select(ReportExport).where(ReportExport.id == export.id))).scalar_one()
            seen.append(e.steps_done)
            return e

        env = celery_env(fresh_db, JOB_LEASE_SECONDS="3", JOB_SWEEP_SECONDS="1", REPORT_EXPORTS_DIR=str(store_dir))
        beat = start_celery(["beat", "--loglevel=INFO", "-s", str(tmp_path / "beat-schedule")], env, logs[0])
        worker1 = start_worker(env, logs[1])
        await asyncio.to_thread(client_app(fresh_db).send_task, "workers.tasks.relay_jobs")

        async def stuck():
            before = (await progress()).steps_done
            await asyncio.sleep(2)
            e = await progress()
            async with AsyncSession(engine) as s:
                running = (await s.execute(sa.select(sa.func.count()).select_from(Job).where(
                    Job.kind == exports.JOB_KIND, Job.state == "running"))).scalar()
            return e.steps_done > 0 and e.steps_done == before and running == 1 and e

        at_kill = await wait_for(stuck, timeout=180, what="the export to stop at the locked step", logs=logs)
        assert at_kill.state == "running" and 0 < at_kill.steps_done < total
        kill(worker1)
        assert worker1.returncode == -9
        await blocker.rollback()  # the killed worker's statement now runs into a closed socket: rolled back
        await blocker.close()
        blocker = None
        assert (await progress()).steps_done == at_kill.steps_done  # the held step left nothing

        worker2 = start_worker(env, logs[2])

        async def finished():
            e = await progress()
            return e if e.state == "done" else None

        final = await wait_for(finished, timeout=300, what="the export to resume and finish", logs=logs)
        assert final.steps_done == total and seen == sorted(seen)  # progress never went back
        async with AsyncSession(engine) as s:
            step_jobs = (await s.execute(sa.select(Job.dedup_key, Job.state, Job.last_error).where(
                Job.kind == exports.JOB_KIND))).all()
            parts = (await s.execute(sa.text("select count(*) from report_export_part"))).scalar()
        # one job per step, each done once; only the step the killed worker held was run again (after its lease)
        assert sorted(k for k, _s, _e in step_jobs) == sorted(f"report_export:{export.id}:{i}" for i in range(total))
        assert {st for _k, st, _e in step_jobs} == {"done"}
        assert [k for k, _s, e in step_jobs if e == "lease expired: worker lost"] == \
            [f"report_export:{export.id}:{at_kill.steps_done}"]
        assert parts == 0  # the steps' rows went with the file

        data = storage.blob_store(exports.STORE_AREA).get(final.file_key)
        async with AsyncSession(engine, expire_on_commit=False) as s:
            sync = report_files.leps_file(await service.leps_report(s, principal=principal, year=year), "html")
        assert data == sync.data and final.file_name == sync.name and final.media_type == sync.media_type
        assert b"<svg" in data and b"Rendiconto LEPS" in data
    finally:
        if blocker is not None:
            await blocker.close()
        for p in (worker1, worker2, beat):
            kill(p)
        await engine.dispose()
        await owner.dispose()
        get_settings.cache_clear()
