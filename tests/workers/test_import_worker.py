"""An import resumed after its worker is killed (SIGKILL, a real process) ends with exactly the rows of an
uninterrupted import of the same file (run by `python -m api import`, the command line), and a second run of the
command changes nothing (issue 17 acceptance)."""
from __future__ import annotations

import asyncio
import csv
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from domain.imports import service
from domain.imports.mapping import parse_mapping, template_dict
from domain.imports.models import ImportJob
from domain.kernel.models import Job
from domain.security.models import Role
from domain.security.principal import load_principal
from integrations.tabular.reader import read_table
from tests.factories.registry import encode_cf
from tests.support import make_user
from tests.workers.procs import celery_env, client_app, kill, start_celery, start_worker, wait_for

ROOT = Path(__file__).resolve().parents[2]
HEADERS = list(template_dict()["columns"].values())
SYLLABLES = ("ba", "ce", "di", "fo", "gu", "la", "me", "ni", "po", "ru", "sa", "te", "vi", "zo")
GIVEN = ("Anna", "Bruno", "Carla", "Dario", "Elena", "Franco", "Gina", "Ivo", "Lia", "Marco")
N = 500


def _surname(i: int) -> str:
    a, b, c = SYLLABLES[i % 14], SYLLABLES[(i // 14) % 14], SYLLABLES[(i // 196) % 14]
    return (a + b + c + "tti").capitalize()


def rows() -> list[dict[str, str]]:
    """Persons with cartelle, some twice (same CF), a few rejects, parents of minors: deterministic."""
    out: list[dict[str, str]] = []
    for i in range(N):
        sex = "F" if i % 2 else "M"
        minor = i % 25 == 0
        born = date(2014, 1, 1) + timedelta(days=i) if minor else date(1930, 1, 1) + timedelta(days=37 * i)
        surname, given = _surname(i), GIVEN[i % 10]
        row = {"id_origine": f"K{i}", "codice_fiscale": encode_cf(surname, given, sex, born, "Crema"),
               "cognome": surname, "nome": given, "sesso": sex, "data_nascita": born.strftime("%d/%m/%Y"),
               "comune_residenza": ("Crema", "Offanengo", "Pandino")[i % 3],
               "area": "minori e famiglia" if minor else ("anziani", "disabili", "")[i % 3],
               "case_manager": "mx.import.as" if i % 4 == 0 else ""}
        if i % 31 == 0:
            row["data_nascita"] = "31/02/1950"  # reject: not a date
        out.append(row)
        if i % 17 == 0 and i:
            out.append({**row, "id_origine": f"K{i}-bis", "cognome": surname.upper()})  # the same person again
        if minor:
            for j, (psex, pgiven) in enumerate((("M", "Paolo"), ("F", "Rita"))):
                pborn = date(1980 + j, 5, 5)
                out.append({"id_origine": f"K{i}-g{j}", "codice_fiscale": encode_cf(surname, pgiven, psex, pborn,
                                                                                  "Crema"),
                            "cognome": surname, "nome": pgiven, "sesso": psex,
                            "data_nascita": pborn.isoformat(), "relazione_di": f"K{i}", "tipo_relazione": "genitore"})
    return out


def write_csv(path: Path, data: list[dict[str, str]]) -> None:
    with open(path, "w", encoding="cp1252", newline="") as f:
        w = csv.writer(f, delimiter=";")
        w.writerow(HEADERS)
        for r in data:
            w.writerow([r.get(h, "") for h in HEADERS])


async def _users(engine) -> None:
    async with AsyncSession(engine, expire_on_commit=False) as s:
        await make_user(s, Role.data_steward, "ambito-crema", username="mx.import.steward")
        await make_user(s, Role.comune_social_worker, "comune-crema", username="mx.import.as")
        await s.commit()


# What an import leaves, without the generated ids: persons, cartelle, relations, matches and the report.
SNAPSHOT = {
    "persons": """select codice_fiscale, surname, given_name, birth_date, source, needs_review, status from person
                  where source = 'import' order by codice_fiscale""",
    "cartelle": """select p.codice_fiscale, c.area, o.code, c.legacy_code, u.username from cartella c
                   join person p on p.id = c.person_id join organisation o on o.id = c.owning_comune_id
                   left join app_user u on u.id = c.case_manager_id order by 1, 2""",
    "relations": """select p.codice_fiscale, r.kind, q.codice_fiscale from person_relation r
                    join person p on p.id = r.person_id left join person q on q.id = r.related_person_id
                    order by 1, 3""",
    "matches": "select count(*) from possible_match",
    "records": "select source_key, row_number from import_record order by 1",
    "report": """select row_number, outcome, matched_row, candidate_rows, errors::text, notes from import_row r
                 join import_job j on j.id = r.job_id where not j.dry_run and j.created_at = (
                   select min(created_at) from import_job) order by 1""",
}


async def snapshot(engine) -> dict[str, list]:
    async with engine.connect() as c:
        return {k: [tuple(r) for r in (await c.execute(sa.text(q))).all()] for k, q in SNAPSHOT.items()}


def cli(db: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": db["DATABASE_URL"], "MIGRATION_DATABASE_URL": db["MIGRATION_DATABASE_URL"]}
    return subprocess.run([sys.executable, "-m", "api", "import", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


async def test_killed_worker_resumes_to_the_same_rows_as_an_uninterrupted_run(fresh_db, pg_server, tmp_path, clock):
    clock.set(datetime.now(UTC))  # the workers run on the system clock: leases must really expire
    data = rows()
    path = tmp_path / "export.csv"
    write_csv(path, data)
    other = pg_server.urls(pg_server.create_db_from_template())
    straight, resumed = create_async_engine(other["DATABASE_URL"]), create_async_engine(fresh_db["DATABASE_URL"])
    logs = [tmp_path / "beat.log", tmp_path / "worker1.log", tmp_path / "worker2.log"]
    beat = worker1 = worker2 = None
    try:
        # 1. uninterrupted, by the command line
        await _users(straight)
        done = cli(other, str(path), "--as", "mx.import.steward")
        assert done.returncode == 0, done.stderr
        assert f"{len(data)}/{len(data)} righe" in done.stdout and "righe/s" in done.stderr  # summary, progress
        expected = await snapshot(straight)
        assert len(expected["persons"]) > 500 and expected["relations"] and expected["cartelle"]
        bad = {r["id_origine"] for r in data if r["data_nascita"] == "31/02/1950"}
        orphans = {r["id_origine"] for r in data if r.get("relazione_di") in bad}  # parents of a refused minor
        assert sum(1 for r in expected["report"] if r[1] == "reject") == len(bad) + len(orphans)
        again = cli(other, str(path), "--as", "mx.import.steward", "--quiet")
        assert again.returncode == 0 and "unchanged" in again.stdout
        assert {k: v for k, v in (await snapshot(straight)).items() if k != "report"} == \
            {k: v for k, v in expected.items() if k != "report"}  # the second run created nothing

        # 2. the same file in the worker, killed mid-import
        await _users(resumed)
        async with AsyncSession(resumed, expire_on_commit=False) as s:
            steward = (await s.execute(sa.text("select id from app_user where username = 'mx.import.steward'"))
                       ).scalar_one()
            principal = await load_principal(s, str(steward))
            table = read_table(path.read_bytes())
            job = await service.create_import(s, principal=principal, file_name=path.name, file_format="csv",
                                              sha256=table.sha256, headers=table.headers, rows=table.rows,
                                              mapping=parse_mapping(template_dict()), dry_run=False)
            await s.commit()
        env = celery_env(fresh_db, JOB_LEASE_SECONDS="3", JOB_SWEEP_SECONDS="1", IMPORT_CHUNK_ROWS="40")
        beat = start_celery(["beat", "--loglevel=INFO", "-s", str(tmp_path / "beat-schedule")], env, logs[0])
        worker1 = start_worker(env, logs[1])
        await asyncio.to_thread(client_app(fresh_db).send_task, "workers.tasks.relay_jobs")

        async def mid_import():
            async with AsyncSession(resumed) as s:
                done_rows = (await s.execute(sa.select(ImportJob.rows_done).where(ImportJob.id == job.id))).scalar()
                running = (await s.execute(sa.select(sa.func.count()).select_from(Job).where(
                    Job.kind == service.JOB_KIND, Job.state == "running"))).scalar()
            return done_rows >= 120 and running > 0 and done_rows

        at_kill = await wait_for(mid_import, timeout=120, what="the import to be a few chunks in", logs=logs)
        kill(worker1)
        assert worker1.returncode == -9
        async with AsyncSession(resumed) as s:
            stopped = (await s.execute(sa.select(ImportJob).where(ImportJob.id == job.id))).scalar_one()
            # the chunk the worker held when it died (none if it died between two chunks): its state can no longer
            # change but through the sweep
            held = (await s.execute(sa.select(sa.func.count()).select_from(Job).where(
                Job.kind == service.JOB_KIND, Job.state == "running"))).scalar()
        assert stopped.state == "running" and at_kill <= stopped.rows_done < len(data)

        worker2 = start_worker(env, logs[2])

        async def finished():
            async with AsyncSession(resumed) as s:
                j = (await s.execute(sa.select(ImportJob).where(ImportJob.id == job.id))).scalar_one()
            return j if j.state == "done" else None

        final = await wait_for(finished, timeout=240, what="the import to resume and finish", logs=logs)
        assert final.rows_done == len(data)
        lost = await snapshot(resumed)
        assert lost == expected
        async with AsyncSession(resumed) as s:
            retried = (await s.execute(sa.select(sa.func.count()).select_from(Job).where(
                Job.kind == service.JOB_KIND, Job.last_error == "lease expired: worker lost"))).scalar()
        assert held in (0, 1) and retried == held  # the chunk the killed worker held was run again, once
    finally:
        for p in (worker1, worker2, beat):
            kill(p)
        await straight.dispose()
        await resumed.dispose()
        pg_server.drop_db(other["DATABASE_URL"].rsplit("/", 1)[-1])
