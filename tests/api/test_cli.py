"""`python -m api` as an operator meets it: every command answers --help (exit 0) without touching a database, the
commands that change the schema or load data use the owner role by themselves, the documented commands work
against the embedded server of `make run` with nothing to set, and `make clean-data` starts from empty data."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
UNREACHABLE = "postgresql+asyncpg://nobody@127.0.0.1:9/none"
PROGS = {"migrate": "python -m api migrate", "load-reference": "python -m api load-reference",
         "seed-demo": "python -m api seed-demo", "seed": "python -m api seed", "token": "python -m api token",
         "clock": "python -m api clock",
         "run": "python -m deploy.run"}


def _env(**extra: str) -> dict[str, str]:
    """The environment of an operator's shell: no database URL set (unless given)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "MIGRATION_DATABASE_URL", "PG_PORT")}
    return {**env, **extra}


def _api(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "api", *args], cwd=ROOT, env=env or _env(), capture_output=True,
                          text=True, timeout=timeout)


class TestHelp:
    def test_top_level_help_lists_every_command(self):
        r = _api("--help")
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("usage: python -m api")
        for name in PROGS:
            assert f"\n  {name} " in r.stdout, name

    @pytest.mark.parametrize("command", list(PROGS))
    def test_every_command_parses_help_and_touches_no_database(self, command):
        # an unreachable database: --help must answer before anything connects (migrate used to migrate)
        r = _api(command, "--help", env=_env(DATABASE_URL=UNREACHABLE, MIGRATION_DATABASE_URL=UNREACHABLE))
        assert r.returncode == 0, (command, r.stdout, r.stderr)
        assert r.stdout.startswith(f"usage: {PROGS[command]}"), r.stdout
        assert "migrazioni" not in r.stdout and "Traceback" not in r.stderr

    def test_no_command_or_an_unknown_one_is_a_usage_error(self):
        r = _api()
        assert r.returncode == 2 and r.stderr.startswith("usage: python -m api")
        r = _api("migra")
        assert r.returncode == 2 and "comando sconosciuto 'migra'" in r.stderr


class TestOwnerRole:
    def _owner_url(self, env) -> str:
        r = subprocess.run([sys.executable, "-c", "from api.__main__ import owner_database_url as o; print(o())"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    def test_defaults_to_the_owner_of_the_embedded_server(self):
        assert self._owner_url(_env(PG_PORT="6543")) == "postgresql+asyncpg://pua_owner@127.0.0.1:6543/pua"

    def test_falls_back_like_deploy_migrate(self):
        app = "postgresql+asyncpg://owner@db.example:5432/pua"
        assert self._owner_url(_env(DATABASE_URL=app)) == app
        owner = "postgresql+asyncpg://pua_owner@db.example:5432/pua"
        assert self._owner_url(_env(DATABASE_URL=app, MIGRATION_DATABASE_URL=owner)) == owner


def test_documented_commands_work_beside_make_run_with_nothing_set(pg_server):
    """The embedded server of `make run` (database `pua`, roles pua_owner and pua_app) on its port: migrate,
    load-reference and seed-demo run as the owner, token as the application role, with no URL in the
    environment."""
    from integrations.postgres import devpg

    port = pg_server.port
    devpg.ensure_database(port, "pua", "pua_owner", "pua_app")
    env = _env(PG_PORT=str(port), DEV_MODE="true")  # seed-demo is for development only, like `make run`
    try:
        for command in (["migrate"], ["load-reference"], ["seed-demo"]):
            r = _api(*command, env=env, timeout=600)
            assert r.returncode == 0, (command, r.stdout[-2000:], r.stderr[-4000:])
        r = _api("token", "--user", "as.offanengo", env=env)
        assert r.returncode == 0 and r.stdout.strip().count(".") == 2, r.stderr
        with psycopg.connect(host="127.0.0.1", port=port, user="pua_app", dbname="pua") as c:
            owner = c.execute("select tableowner from pg_tables where tablename = 'person'").fetchone()
            users = c.execute("select count(*) from app_user where username = 'as.offanengo'").fetchone()
        assert owner == ("pua_owner",) and users == (1,)  # the schema was made by the owner, not the app role
    finally:
        pg_server.drop_db("pua")


def test_make_clean_data_stops_postgres_and_removes_its_data(tmp_path):
    from integrations.postgres import devpg

    datadir = tmp_path / "pua-crema" / "pg"
    port = devpg.start(datadir, fast=True)
    (datadir.parent / "celerybeat-schedule").write_text("x")
    with psycopg.connect(host="127.0.0.1", port=port, user=devpg.SUPERUSER, dbname="postgres") as c:
        assert c.execute("select 1").fetchone() == (1,)
    r = subprocess.run(["make", "clean-data", f"PG_DATA_DIR={datadir}"], cwd=ROOT, capture_output=True, text=True,
                       timeout=180)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert not datadir.exists() and not (datadir.parent / "celerybeat-schedule").exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host="127.0.0.1", port=port, user=devpg.SUPERUSER, dbname="postgres", connect_timeout=3)
