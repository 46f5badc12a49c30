"""Real processes for the fault tests: a Postgres server of the test's own (a copy of the session's server, so the
shared one is never stopped), the API under uvicorn as a subprocess, bounded waits."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg

from integrations.identity.jwt import ensure_dev_keys
from integrations.postgres import devpg
from tests.workers.procs import SCRUB, kill, wait_for

ROOT = Path(__file__).resolve().parents[2]
OWNER, APP_ROLE, TEMPLATE = "pua_owner", "pua_app", "pua_template"


class OwnPg:
    """A copy of the session's server on a port of its own; `stop()`/`start()` touch only this one."""

    def __init__(self, datadir: Path, port: int):
        self.datadir, self.port = datadir, port

    def create_db(self, name: str) -> dict[str, str]:
        devpg.ensure_database(self.port, name, OWNER, APP_ROLE, template=TEMPLATE)
        return devpg.urls(self.port, name, OWNER, APP_ROLE)

    def stop(self, mode: str = "fast") -> None:
        devpg.stop(self.datadir, mode=mode)

    def start(self) -> None:
        devpg.start(self.datadir, port=self.port, fast=True)

    def connect(self, db: str, user: str = devpg.SUPERUSER) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.port, user=user, dbname=db, autocommit=True)


@contextmanager
def own_pg(source_port: int):
    tmp = Path(tempfile.mkdtemp(prefix="pua-fault-pg-", dir="/var/tmp"))
    datadir = tmp / "data"
    port = devpg.clone(source_port, datadir)
    try:
        yield OwnPg(datadir, port)
    finally:
        devpg.stop(datadir, mode="immediate")
        shutil.rmtree(tmp, ignore_errors=True)


def api_env(db: dict[str, str], **extra: str) -> dict[str, str]:
    """A production-like API process: no development mode, token keys from a file (the tests' development key
    pair, so `issue_dev_token` signs for it), the database given."""
    _, public = ensure_dev_keys()
    env = {k: v for k, v in os.environ.items() if k not in SCRUB}
    env.update(DATABASE_URL=db["DATABASE_URL"], MIGRATION_DATABASE_URL=db["MIGRATION_DATABASE_URL"],
               DEV_MODE="false", JWT_PUBLIC_KEY_FILE=str(public), LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


class Api:
    def __init__(self, proc: subprocess.Popen, url: str, log: Path):
        self.proc, self.url, self.log = proc, url, log

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


@contextmanager
def run_api(env: dict[str, str], log: Path):
    port = devpg.free_port()
    out = open(log, "ab")
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory", "--host",
                             "127.0.0.1", "--port", str(port), "--no-access-log"], cwd=ROOT, env=env, stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)
    api = Api(proc, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"the API exited with {proc.returncode}\n{api.tail()}")
            try:
                if httpx.get(api.url + "/health/live", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("the API did not start within 60 s\n" + api.tail())
            time.sleep(0.2)
        yield api
    finally:
        kill(proc)
        out.close()


async def wait_until(check, *, timeout: float, what: str, interval: float = 0.2, api: Api | None = None):
    """`procs.wait_for`, failing with the API's log."""
    return await wait_for(check, timeout=timeout, what=what, interval=interval, logs=[api.log] if api else ())
