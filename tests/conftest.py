"""Test infrastructure: one real PostgreSQL per session (embedded binaries, run as an unprivileged user),
a template database migrated with Alembic and loaded with reference data, a rollback per test, and a fresh
database from the template for tests where another connection or process must see committed rows."""
from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from datetime import datetime
from pathlib import Path

# Settings are read once: point them at the test server and keys before anything imports them.
_TMP = Path(tempfile.mkdtemp(prefix="pua-test-", dir="/var/tmp"))
os.environ["DEV_KEYS_DIR"] = str(_TMP / "keys")
os.environ.setdefault("LOG_JSON", "true")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ["PRINCIPAL_CACHE_SECONDS"] = "0"
os.environ.setdefault("DEV_MODE", "true")  # development signing keys and demo users
os.environ.setdefault("PERSON_SEARCH_PER_MINUTE", "0")  # the brake is tested on its own (test_persons)

import pytest
import pytest_asyncio
from fastapi import Request
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

import domain.kernel.db  # noqa: F401  (registers the fixed-clock hook on every session)
from deploy.composition import compose
from integrations.postgres import devpg

OWNER, APP_ROLE = "pua_owner", "pua_app"
TEMPLATE = "pua_template"
FIXED_NOW = datetime.fromisoformat("2026-03-02T09:00:00+01:00")
ROOT = Path(__file__).resolve().parents[1]


class PgServer:
    def __init__(self, datadir: Path, port: int):
        self.datadir, self.port = datadir, port

    def urls(self, db: str) -> dict[str, str]:
        return devpg.urls(self.port, db, OWNER, APP_ROLE)

    def create_db_from_template(self, name: str | None = None) -> str:
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        devpg.ensure_database(self.port, name, OWNER, APP_ROLE, template=TEMPLATE)
        return name

    def drop_db(self, name: str) -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=devpg.SUPERUSER, dbname="postgres",
                             autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrate(url: str) -> None:
    from deploy.migrate import upgrade

    upgrade(url)


def load_reference(url: str) -> None:
    """The template gets the Crema reference data and the small second Ambito used by isolation tests."""
    from domain.territory.reference import default_ambito_dirs, load_reference_data

    dirs = [*default_ambito_dirs(), ROOT / "tests" / "data" / "reference" / "ambiti" / "cremona-test"]

    async def _run():
        engine = create_async_engine(url)
        async with AsyncSession(engine, expire_on_commit=False) as s:
            await load_reference_data(s, dirs)
            await s.commit()
        await engine.dispose()

    asyncio.run(_run())


compose()  # as the API, the worker and the scripts do before any work


@pytest.fixture(scope="session")
def pg_server():
    datadir = _TMP / "pg"
    port = devpg.start(datadir, fast=True)
    server = PgServer(datadir, port)
    devpg.ensure_database(port, TEMPLATE, OWNER, APP_ROLE)
    urls = server.urls(TEMPLATE)
    os.environ["MIGRATION_DATABASE_URL"] = urls["MIGRATION_DATABASE_URL"]
    migrate(urls["MIGRATION_DATABASE_URL"])
    load_reference(urls["MIGRATION_DATABASE_URL"])
    yield server
    devpg.stop(datadir, mode="immediate")
    shutil.rmtree(_TMP, ignore_errors=True)


@pytest.fixture(scope="session")
def test_db(pg_server) -> dict[str, str]:
    name = pg_server.create_db_from_template("pua_test")
    urls = pg_server.urls(name)
    os.environ["DATABASE_URL"] = urls["DATABASE_URL"]
    from domain.kernel.settings import get_settings

    get_settings.cache_clear()
    return urls


@pytest.fixture
def fresh_db(pg_server):
    """A database of its own, from the template, for tests whose rows must be committed and seen elsewhere."""
    name = pg_server.create_db_from_template()
    yield pg_server.urls(name)
    pg_server.drop_db(name)


@pytest_asyncio.fixture(scope="session")
async def app_engine(test_db):
    engine = create_async_engine(test_db["DATABASE_URL"], pool_size=5)
    yield engine
    await engine.dispose()


@pytest_asyncio.fixture
async def session(app_engine):
    """A session inside an outer transaction that is rolled back: commits only release savepoints."""
    async with app_engine.connect() as conn:
        trans = await conn.begin()
        s = AsyncSession(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False,
                         autoflush=False)
        try:
            yield s
        finally:
            await s.close()
            await trans.rollback()


@pytest.fixture(autouse=True)
def clock():
    from domain.kernel import clock as clock_mod
    from domain.security.principal import clear_principal_cache

    fixed = clock_mod.FixedClock(FIXED_NOW)
    previous = clock_mod.get_clock()
    clock_mod.set_clock(fixed)
    clear_principal_cache()
    yield fixed
    clock_mod.set_clock(previous)


@pytest.fixture(scope="session")
def app(test_db):
    from api.main import create_app

    return create_app()


@pytest_asyncio.fixture
async def client(app, session):
    """The app on the test's session: each request runs in a savepoint of its own, so a failed request rolls back
    only its own work, never the rows the test set up."""
    from api.deps import get_session, request_boundary

    async def _same_session(request: Request):
        async with request_boundary(session, request, savepoint=True):
            yield session

    app.dependency_overrides[get_session] = _same_session
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as c:
        yield c
    app.dependency_overrides.pop(get_session, None)


# ---------------------------------------------------------------------------------------------------- test tiers
# `make test` runs every tier; one tier alone: `make test PYTEST_ARGS="-m unit"` (or db, api, worker, slow).
#   unit    no database, no server: pure functions and the import contract
#   db      the domain against the session's Postgres (rollback per test)
#   api     HTTP through the ASGI app (the permission matrix included)
#   worker  real Celery workers and subprocesses
#   slow    the fuzz run, `make run` end to end, migrations up and down, benchmark smoke runs, fault tests
TIERS = ("unit", "db", "api", "worker", "slow")
_SLOW = ("tests/api/test_schemathesis.py", "tests/deploy/test_run.py", "tests/deploy/test_migrations.py",
         "tests/deploy/test_docs.py", "tests/bench/", "tests/deploy/test_import_acceptance.py",
         # real processes: Postgres restarts, a full disk, key rotation; backup and restore
         "tests/faults/", "tests/deploy/test_backup_restore.py")
_DB_FIXTURES = {"session", "client", "pg_server", "test_db", "fresh_db", "app_engine", "app"}


def pytest_configure(config):
    for tier in TIERS:
        config.addinivalue_line("markers", f"{tier}: test tier (see tests/conftest.py)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if any(item.get_closest_marker(t) for t in TIERS):
            continue
        path = item.nodeid.split("::")[0]
        if path.startswith(_SLOW):
            item.add_marker("slow")
        elif path.startswith("tests/workers/"):
            item.add_marker("worker")
        elif path.startswith("tests/api/"):
            item.add_marker("api")
        elif _DB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker("db")
        else:
            item.add_marker("unit")


# ---------------------------------------------------------------------------------------------- reproducible data
# Factories draw names (Faker) and sexes, birth dates, birthplaces (factory_boy's random) at random: each test, and
# each module before its module-scoped fixtures (e.g. the permission matrix's scenario), starts from a seed derived
# from its node id, so a failing test gets the same data when it is run again, alone or in the suite, with or
# without pytest-randomly (whose own reseed runs before fixtures, so this one wins).
def seed_of(nodeid: str) -> int:
    """The seed of a test (or module) node id: stable across runs and processes (not Python's salted hash)."""
    import hashlib

    return int.from_bytes(hashlib.sha256(nodeid.encode()).digest()[:4], "big")


def reseed_factories(nodeid: str) -> int:
    """Seed factory_boy's random and Faker for `nodeid`; returns the seed."""
    import factory.random
    from faker import Faker

    seed = seed_of(nodeid)
    factory.random.reseed_random(seed)
    Faker.seed(seed)
    return seed


@pytest.fixture(autouse=True, scope="module")
def _seeded_module(request):
    reseed_factories(request.node.nodeid)


@pytest.fixture(autouse=True)
def _seeded_test(request):
    seed = reseed_factories(request.node.nodeid)
    request.node.user_properties.append(("factory_seed", seed))
    return seed
