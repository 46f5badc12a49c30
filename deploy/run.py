"""`make run` / `python -m deploy.run`: the whole service on one machine.

1. Postgres: DATABASE_URL set → use it as is. Otherwise start the embedded server (integrations.postgres.devpg)
   on settings.pg_data_dir / 127.0.0.1:settings.pg_port (a server already running on that data dir is reused),
   create the owner role, the application role and the database, and export DATABASE_URL /
   MIGRATION_DATABASE_URL to the children.
2. alembic upgrade head (owner role).
3. Reference data and demo data, in one transaction as the owner (both loaders are idempotent; their counts are
   printed: a second run inserts nothing).
4. Development signing keys (dev tokens).
5. Children: celery worker (threads pool, 2 threads), celery beat, uvicorn (HOST:PORT, default 127.0.0.1:8000; set
   HOST=0.0.0.0 to be reachable from other machines). Uvicorn's access log is off: it writes raw URLs, query
   strings included (codici fiscali, names); requests are logged by the API's own structured log instead.
6. Ctrl-C / SIGTERM: stop every child (SIGTERM, then SIGKILL after a grace period), then Postgres if we started it.
If a child dies on its own, everything is stopped and the exit code is 1.

This is a development tool: it turns DEV_MODE on for itself and its children (development signing keys, demo
users). A deployment runs the image's roles instead (deploy/Dockerfile, docker-compose, k8s).
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DB_NAME, OWNER = "pua", "pua_owner"
STOP_GRACE_SECONDS = 15.0
# How long an idle client connection stays open. uvicorn's default (5 s) is shorter than the pause of an operator
# between two requests and than the idle timeout of a proxy that keeps connections to the API (60 s for most load
# balancers and ingress controllers): a request sent on a connection the server is closing at that moment gets a
# connection reset (a 502 behind a proxy). bench.load found it; the Dockerfile and deploy/k8s/api.yaml use the same.
KEEP_ALIVE_SECONDS = 75
DEFAULT_HOST = "127.0.0.1"  # only this machine, unless HOST says otherwise


def say(msg: str) -> None:
    print(f"[run] {msg}", flush=True)


def _pg_running(datadir: Path) -> bool:
    pidfile = datadir / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().splitlines()[0])
        os.kill(pid, 0)
        return True
    except (OSError, ValueError, IndexError):
        return False


def _json_safe(counts) -> str:
    return json.dumps(counts if isinstance(counts, dict) else {"result": counts}, default=str, sort_keys=True)


class NotInDevMode(RuntimeError):
    pass


def require_dev_mode(what: str) -> None:
    from domain.kernel.settings import get_settings

    if not get_settings().dev_mode:
        raise NotInDevMode(f"{what}: consentito solo in sviluppo (DEV_MODE=true); gli utenti dimostrativi non "
                           "devono esistere in un'installazione reale.")


def seed_demo_command(argv: list[str]) -> int:
    """`python -m api seed-demo`: demo users, teams and persons, refused outside development mode."""
    try:
        if not {"-h", "--help"} & set(argv):  # help touches nothing: always allowed
            require_dev_mode("seed-demo")
    except NotInDevMode as e:
        print(f"errore: {e}", file=sys.stderr)
        return 2
    from deploy.seed.demo import main as demo_main

    return demo_main(argv)


def seed(owner_url: str) -> dict:
    """Reference + demo data in one transaction as the owner; returns both loaders' counts."""
    require_dev_mode("dati dimostrativi")
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    import domain.kernel.db  # noqa: F401
    from deploy.seed.demo import load_demo
    from domain.territory.reference import load_reference_data

    async def _run() -> dict:
        engine = create_async_engine(owner_url)
        try:
            async with AsyncSession(engine, expire_on_commit=False, autoflush=False) as s:
                reference = await load_reference_data(s)
                demo = await load_demo(s)
                await s.commit()
        finally:
            await engine.dispose()
        return {"reference": reference, "demo": demo}

    return asyncio.run(_run())


def uvicorn_argv(host: str, port: str) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory", "--host", host, "--port", port,
            "--no-access-log", "--timeout-keep-alive", str(KEEP_ALIVE_SECONDS)]


class Children:
    def __init__(self) -> None:
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        # Own session: Ctrl-C reaches only us, and we stop the children in order.
        p = subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True)
        self.procs[name] = p
        say(f"started {name} pid={p.pid}")

    def exited(self) -> list[tuple[str, int]]:
        return [(n, p.returncode) for n, p in self.procs.items() if p.poll() is not None]

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for name, p in self.procs.items():
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say(f"{name} did not stop in time: killing it")
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=5)
            say(f"stopped {name} pid={p.pid}")


def main(argv: list[str] | None = None) -> int:
    import argparse

    argparse.ArgumentParser(prog="python -m deploy.run", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv or [])
    # Before the settings are read: development keys and demo users are allowed, here and in the children.
    os.environ["DEV_MODE"] = "true"
    from domain.kernel.settings import get_settings

    get_settings.cache_clear()
    settings = get_settings()
    env = dict(os.environ)
    started_pg: Path | None = None
    stopping = {"signal": None}

    def _on_signal(signum, _frame):
        stopping["signal"] = signum

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)

    children = Children()
    try:
        if not os.environ.get("DATABASE_URL"):
            from integrations.postgres import devpg

            datadir = Path(settings.pg_data_dir).resolve()
            was_running = _pg_running(datadir)
            port = devpg.start(datadir, settings.pg_port, fast=False)
            if not was_running:
                started_pg = datadir
            say(f"postgres {'reused' if was_running else 'started'}: 127.0.0.1:{port} data={datadir}")
            devpg.ensure_database(port, DB_NAME, OWNER, settings.app_db_role)
            env.update(devpg.urls(port, DB_NAME, OWNER, settings.app_db_role))
            os.environ.update(devpg.urls(port, DB_NAME, OWNER, settings.app_db_role))
            get_settings.cache_clear()
            settings = get_settings()
        else:
            say("postgres: using DATABASE_URL")
        owner_url = settings.owner_database_url

        from deploy.migrate import upgrade

        upgrade(owner_url)
        say("migrations: at head")

        counts = seed(owner_url)
        say(f"seed reference: {_json_safe(counts['reference'])}")
        say(f"seed demo: {_json_safe(counts['demo'])}")

        from integrations.identity.jwt import ensure_dev_keys

        ensure_dev_keys(settings)
        if stopping["signal"]:
            return 0

        run_dir = Path(settings.pg_data_dir).resolve().parent
        run_dir.mkdir(parents=True, exist_ok=True)
        host, port = os.environ.get("HOST") or DEFAULT_HOST, os.environ.get("PORT", "8000")
        celery = [sys.executable, "-m", "celery", "-A", "workers.celery_app"]
        children.start("worker", [*celery, "worker", "--pool=threads", "-c", "2", "--loglevel=INFO"], env)
        children.start("beat", [*celery, "beat", "--loglevel=INFO",
                                "-s", str(run_dir / "celerybeat-schedule")], env)
        children.start("api", uvicorn_argv(host, port), env)
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        say(f"API:      http://{shown}:{port}/api   docs: http://{shown}:{port}/docs")
        say(f"health:   http://{shown}:{port}/health/ready")
        say(f"broker:   {'redis/other (BROKER_URL)' if settings.broker_url else 'postgres (kombu sqla)'}")
        say("token:    .venv/bin/python -m api token --user <username>   (then: -H 'Authorization: Bearer <token>')")
        say("Ctrl-C stops everything.")

        while not stopping["signal"]:
            dead = children.exited()
            if dead:
                for name, code in dead:
                    say(f"{name} exited with code {code}: stopping")
                return 1
            time.sleep(0.5)
        say("stopping")
        return 0
    finally:
        children.stop()
        if started_pg is not None:
            from integrations.postgres import devpg

            devpg.stop(started_pg)
            say("postgres stopped")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
