"""Issue 17 acceptance on a seeded registry, through the command line: a generated file with realistic mess and its
truth (deploy/seed/import_file.py); the dry-run report agrees with the truth row by row and writes nothing, the
real run merges no possible duplicate, and a second run changes nothing. The 30,000-row version against 160,000
persons is `bench/imports.py` (make bench); this one keeps `make test` fast with fewer rows and persons."""
from __future__ import annotations

import asyncio
import csv
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from deploy.seed import import_file
from domain.kernel.clock import ROME
from domain.security.models import Role
from tests.support import make_user

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PERSONS, ROWS = 20_000, 1_200
COUNTED = ("person", "cartella", "person_relation", "possible_match", "person_merge", "import_record")


def _cli(db: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": db["DATABASE_URL"], "MIGRATION_DATABASE_URL": db["MIGRATION_DATABASE_URL"],
           "DEV_MODE": "true"}
    return subprocess.run([sys.executable, "-m", "api", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)


async def _counts(engine) -> dict[str, int]:
    async with engine.connect() as c:
        return {t: (await c.execute(sa.text(f"select count(*) from {t}"))).scalar_one() for t in COUNTED}


def agrees(truth: dict, line: dict) -> bool:
    """One report line against the generator's truth for the row."""
    if line["esito"] != truth["outcome"]:
        return False
    if truth["outcome"] == "match":
        return (line["persona"] == truth["same_as_person_id"] if truth["same_as_person_id"]
                else line["riga_corrispondente"] == str(truth["same_as_row"]))
    if truth["outcome"] == "possible_match":
        if truth["candidate_person_id"]:
            return truth["candidate_person_id"] in line["persone_candidate"].split()
        return str(truth["candidate_row"]) in line["righe_candidate"].split()
    if truth["outcome"] == "reject":
        return truth["reject_field"] in {e.split(":")[0].strip() for e in line["errore"].split(";")}
    return True


async def test_dry_run_agrees_with_the_truth_row_by_row_and_a_second_run_changes_nothing(fresh_db, tmp_path):
    seeded = _cli(fresh_db, "seed", "--persons", str(PERSONS))
    assert seeded.returncode == 0, seeded.stderr
    engine = create_async_engine(fresh_db["DATABASE_URL"])
    try:
        async with AsyncSession(engine, expire_on_commit=False) as s:
            await make_user(s, Role.data_steward, "ambito-crema", username="acc.steward")
            for code in ("comune-crema", "comune-offanengo", "comune-pandino"):
                await make_user(s, Role.comune_social_worker, code, username=f"acc.{code}")
            await s.commit()
        sample, comuni, operators = await import_file.load_inputs(fresh_db["DATABASE_URL"])
        # birth dates "in the future" from the day the command runs (business time = real time here)
        rows, truth = await asyncio.to_thread(import_file.generate, ROWS, registry_sample=sample, comuni=comuni,
                                              operators=operators, seed=7, today=datetime.now(ROME).date())
        path = tmp_path / "esportazione.csv"
        import_file.write_csv(rows, path)  # Windows-1252, semicolons

        before = await _counts(engine)
        dry = _cli(fresh_db, "import", str(path), "--as", "acc.steward", "--dry-run", "--quiet",
                   "--report", str(tmp_path / "resoconto.csv"))
        assert dry.returncode == 0, dry.stderr
        assert await _counts(engine) == before  # the dry run wrote nothing but its report
        with open(tmp_path / "resoconto.csv", encoding="utf-8-sig", newline="") as f:
            report = {int(r["riga"]): r for r in csv.DictReader(f, delimiter=";")}
        assert sorted(report) == [t["row"] for t in truth]
        wrong = [(t, report[t["row"]]) for t in truth if not agrees(t, report[t["row"]])]
        assert wrong == [], f"{len(wrong)} rows disagree with the truth, e.g. {wrong[:3]}"
        kinds = {t["outcome"] for t in truth}
        assert kinds >= {"create", "match", "possible_match", "reject"}  # the file really is messy

        real = _cli(fresh_db, "import", str(path), "--as", "acc.steward", "--quiet")
        assert real.returncode == 0, real.stderr
        after = await _counts(engine)
        flagged = sum(1 for t in truth if t["outcome"] == "possible_match")
        assert after["possible_match"] - before["possible_match"] >= flagged
        assert after["person_merge"] == before["person_merge"]  # no possible duplicate merged automatically
        assert after["import_record"] - before["import_record"] == sum(1 for t in truth if t["outcome"] != "reject")

        again = _cli(fresh_db, "import", str(path), "--as", "acc.steward", "--quiet")
        assert again.returncode == 0, again.stderr
        assert await _counts(engine) == after  # a second run changes nothing
        rejected = sum(1 for t in truth if t["outcome"] == "reject")
        assert f"reject: {rejected}, unchanged: {len(truth) - rejected}" in again.stdout
    finally:
        await engine.dispose()
