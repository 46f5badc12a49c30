"""Real Celery subprocesses for tests: environment, start, bounded waits, kill in finally."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from celery import Celery

ROOT = Path(__file__).resolve().parents[2]
SCRUB = ("BROKER_URL", "RESULT_BACKEND", "PUA_FIXED_NOW", "DATABASE_URL", "MIGRATION_DATABASE_URL",
         "PUA_EXTRA_HANDLER_MODULES")


def sync_url(async_url: str) -> str:
    return async_url.replace("postgresql+asyncpg://", "postgresql+psycopg://")


def celery_env(db: dict[str, str], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUB}
    env.update(DATABASE_URL=db["DATABASE_URL"], MIGRATION_DATABASE_URL=db["MIGRATION_DATABASE_URL"],
               PUA_EXTRA_HANDLER_MODULES="tests.workers.fault_handlers", LOG_LEVEL="INFO", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def start_celery(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    out = open(log, "ab")
    return subprocess.Popen([sys.executable, "-m", "celery", "-A", "workers.celery_app", *args], cwd=ROOT, env=env,
                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    return start_celery(["worker", "--pool=threads", "-c", "2", "--loglevel=INFO", "-n", f"w{time.time_ns()}@%h"],
                        env, log)


def kill(p: subprocess.Popen | None, sig: int = signal.SIGKILL) -> None:
    if p is None:
        return
    if p.poll() is None:
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass
    try:
        p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=5)


def client_app(db: dict[str, str]) -> Celery:
    """A producer for the worker's broker and result backend (the test database's Postgres)."""
    url = sync_url(db["DATABASE_URL"])
    app = Celery("test-client", broker="sqla+" + url, backend="db+" + url)
    app.conf.update(task_serializer="json", accept_content=["json"], result_accept_content=["json"])
    return app


async def wait_for(check, *, timeout: float, what: str, interval: float = 0.2, logs: list[Path] = ()):
    """Poll the async `check()` until it returns a truthy value; fail with the worker logs after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {p.name}\n" + p.read_text(errors="replace")[-3000:] for p in logs if p.exists())
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{tails}")
        await asyncio.sleep(interval)
