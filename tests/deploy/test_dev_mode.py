"""Demo users exist only in development: `python -m api seed-demo` and the `make run` seed refuse without DEV_MODE;
`make run` listens on this machine only unless HOST says otherwise."""
from __future__ import annotations

import asyncio
import contextlib
import io

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from api.__main__ import main as api_main
from deploy import run
from domain.kernel.settings import get_settings


async def _demo_users(url: str) -> int:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as c:
            return (await c.execute(sa.text("select count(*) from app_user where username = 'as.offanengo'"))).scalar()
    finally:
        await engine.dispose()


async def test_seed_demo_is_refused_outside_dev_mode(fresh_db, monkeypatch):
    url = fresh_db["MIGRATION_DATABASE_URL"]
    monkeypatch.setattr(get_settings(), "dev_mode", False)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = await asyncio.to_thread(api_main, ["seed-demo", "--database-url", url])
    assert rc == 2
    assert "DEV_MODE=true" in err.getvalue() and out.getvalue() == ""
    assert await _demo_users(url) == 0
    with contextlib.redirect_stdout(io.StringIO()) as help_out, pytest.raises(SystemExit) as exit_:
        run.seed_demo_command(["--help"])  # help stays available, and touches nothing
    assert exit_.value.code == 0 and "seed-demo" in help_out.getvalue()
    with pytest.raises(run.NotInDevMode):
        run.seed(url)
    assert await _demo_users(url) == 0

    monkeypatch.setattr(get_settings(), "dev_mode", True)
    with contextlib.redirect_stdout(out):
        assert await asyncio.to_thread(api_main, ["seed-demo", "--database-url", url]) == 0
    assert await _demo_users(url) == 1


async def test_make_run_listens_on_localhost_by_default():
    assert run.DEFAULT_HOST == "127.0.0.1"
    argv = run.uvicorn_argv(run.DEFAULT_HOST, "8000")
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
