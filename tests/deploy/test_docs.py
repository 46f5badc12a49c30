"""docs/readme/journey.md, vmd.md, discharge.md, waiting_list.md and services.md run as written (services.md after
the others: it moves the development clock one day forward), then docs/operations.md (its backup and restore drill
does not depend on the clock).

The ```bash blocks of each document, in order, run in one bash shell per document (`set -euo pipefail`: a failing
command, a failing pipe or an undefined variable fails its block) against a live service started the way `make run`
starts it (deploy.run: embedded Postgres on a free port with its own data dir under /var/tmp, migrations,
reference and demo data, DEV_MODE on, worker, beat and API on a free port), and every block must exit 0. Where a
block is meant to show something (a state, a label, a total), the document checks it itself (`jq -e 'select(…)'`,
`grep`, `test`), so a wrong answer fails its block.

The shell is an operator's second terminal beside `make run`: the repository root (a work dir with `.venv`, so the
files the documents write stay out of the tree), PORT and PG_PORT of the running service (the documents default
to 8000 and 54329), no database URL and no DEV_MODE. Commands that are not part of the walkthrough (`make run`
itself, the test suite) are in ```sh blocks, which are not run.
"""
from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from integrations.postgres import devpg
from tests.deploy.test_run import SCRUB, _alive, _wait_ready

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DOCS = ("docs/readme/journey.md", "docs/readme/vmd.md", "docs/readme/discharge.md", "docs/readme/waiting_list.md",
        "docs/readme/services.md",
        "docs/operations.md")  # the backup, restore and archive drill, on the data the walkthroughs wrote
BASH_BLOCK = re.compile(r"^```bash[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
DOC_TIMEOUT_SECONDS = 120
TOOLS = ("bash", "curl", "jq", "psql")  # what the documents' blocks run besides .venv/bin/python and coreutils


def bash_blocks(doc: str) -> list[str]:
    """The ```bash blocks of a document, in order."""
    return BASH_BLOCK.findall((ROOT / doc).read_text())


@dataclass
class Block:
    number: int
    source: str
    status: str  # "ok", "failed", "not run"
    output: str


def run_document(doc: str, workdir: Path, env: dict[str, str]) -> list[Block]:
    """Runs the bash blocks of `doc` one after the other in one shell; each block's output goes to its own file and
    a marker file says which blocks started and which finished."""
    blocks = bash_blocks(doc)
    name = Path(doc).stem
    marks = workdir / f"{name}.marks"
    lines = ["set -euo pipefail"]
    for i, source in enumerate(blocks, 1):
        script = workdir / f"{name}-{i}.sh"
        script.write_text(source)
        lines += [f"echo start {i} >> {marks}",
                  f"source {script} > {workdir / f'{name}-{i}.out'} 2>&1",
                  f"echo ok {i} >> {marks}"]
    driver = workdir / f"{name}.sh"
    driver.write_text("\n".join(lines) + "\n")
    try:
        subprocess.run(["bash", str(driver)], cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=DOC_TIMEOUT_SECONDS)
        timed_out = False
    except subprocess.TimeoutExpired:
        timed_out = True
    done = marks.read_text().split() if marks.exists() else []
    started = {int(n) for kind, n in zip(done[::2], done[1::2], strict=True) if kind == "start"}
    finished = {int(n) for kind, n in zip(done[::2], done[1::2], strict=True) if kind == "ok"}
    results = []
    for i, source in enumerate(blocks, 1):
        out = workdir / f"{name}-{i}.out"
        status = "ok" if i in finished else "failed" if i in started else "not run"
        if status == "failed" and timed_out:
            status = f"timed out after {DOC_TIMEOUT_SECONDS} s"
        results.append(Block(i, source, status, out.read_text(errors="replace") if out.exists() else ""))
    return results


def test_journey_vmd_and_discharge_walkthroughs_run_as_written_against_make_run():
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    assert not missing, f"the documents use {', '.join(TOOLS)}; not installed: {', '.join(missing)}"
    for doc in DOCS:
        assert bash_blocks(doc), f"{doc}: no ```bash block"
    # Under /var/tmp: the Postgres server user must be able to traverse every parent of its data dir.
    tmp = Path(tempfile.mkdtemp(prefix="pua-docs-", dir="/var/tmp"))
    pg_port, port = devpg.free_port(), devpg.free_port()
    base = {k: v for k, v in os.environ.items() if k not in SCRUB}
    common = dict(PG_PORT=str(pg_port), PORT=str(port), DEV_KEYS_DIR=str(tmp / "keys"))
    service_env = {**base, **common, "PG_DATA_DIR": str(tmp / "pg"), "PYTHONUNBUFFERED": "1",
                   "LOG_LEVEL": "WARNING"}
    log = tmp / "run.log"
    with open(log, "wb") as out:
        # `make run` is `.venv/bin/python -m deploy.run` (DEV_MODE on by itself, demo data seeded).
        proc = subprocess.Popen([sys.executable, "-m", "deploy.run"], cwd=ROOT, env=service_env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        asyncio.run(_wait_ready(proc, port, log))
        workdir = tmp / "work"
        workdir.mkdir()
        (workdir / ".venv").symlink_to(Path(sys.prefix))
        shell_env = {**base, **common}
        failures = []
        for doc in DOCS:
            blocks = run_document(doc, workdir, shell_env)
            for block in blocks:
                if block.status not in ("ok", "not run"):
                    failures.append(f"--- {doc}, ```bash block {block.number} of {len(blocks)}: {block.status}\n"
                                    f"{block.source}--- its output (last 3000 characters):\n{block.output[-3000:]}")
            not_run = [b.number for b in blocks if b.status == "not run"]
            if not_run:
                failures.append(f"--- {doc}: blocks {not_run} not run")
        assert not failures, "\n".join(failures)
        assert proc.poll() is None, f"deploy.run died during the walkthroughs:\n{log.read_text()[-4000:]}"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # Ctrl-C: stops API, beat, worker and Postgres
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        # children run in sessions of their own: whatever deploy.run did not stop is killed here
        for pid in re.findall(r"started \w+ pid=(\d+)", log.read_text(errors="replace")):
            if _alive(int(pid)):
                try:
                    os.killpg(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if (tmp / "pg" / "postmaster.pid").exists():
            devpg.stop(tmp / "pg", mode="immediate")
        shutil.rmtree(tmp, ignore_errors=True)
