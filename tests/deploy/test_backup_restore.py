"""Backup and restore, tested: a seeded database (synthetic Ambito, users, requests that wrote audit rows through
a real API process) is dumped with pg_dump (custom format, as the owner role) and restored with pg_restore into a
fresh database; every table's row count, the audit trail's last rows and the sequences match, and the service
runs on the restored copy (a real request, audited there)."""
from __future__ import annotations

import subprocess

import httpx
import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from deploy.seed import synthetic
from integrations.postgres import devpg
from tests.faults.support import APP_ROLE, OWNER, api_env, run_api
from tests.support import bearer, make_user

pytestmark = pytest.mark.slow
PERSONS = 3000


def _tables(c: psycopg.Connection) -> list[str]:
    """Every table with rows of its own (partitions included, partitioned parents left out: they hold none)."""
    return [r[0] for r in c.execute(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'public' and c.relkind = 'r' order by 1").fetchall()]


def _counts(c: psycopg.Connection) -> dict[str, int]:
    return {t: c.execute(f'select count(*) from public."{t}"').fetchone()[0] for t in _tables(c)}


def _last_audit(c: psycopg.Connection, n: int = 25) -> list[tuple]:
    return c.execute(f"select * from audit_event order by at desc, id desc limit {n}").fetchall()


def _sequences(c: psycopg.Connection) -> dict[str, int | None]:
    return dict(c.execute("select sequencename, last_value from pg_sequences where schemaname = 'public'")
                .fetchall())


@pytest.mark.timeout(300)
async def test_dump_restore_into_a_fresh_database_and_serve_from_it(pg_server, fresh_db, tmp_path):
    port = pg_server.port
    src = fresh_db["DATABASE_URL"].rsplit("/", 1)[1]
    await synthetic.seed(fresh_db["MIGRATION_DATABASE_URL"], persons=PERSONS, seed_value=7, batch=5000, quiet=True)
    engine = create_async_engine(fresh_db["DATABASE_URL"])
    async with AsyncSession(engine, expire_on_commit=False) as s:
        user = await make_user(s, "comune_social_worker", "comune-crema")
        await s.commit()
    await engine.dispose()
    headers = bearer(user)

    # Audit rows written the way production writes them: requests to a running API.
    with run_api(api_env(fresh_db), tmp_path / "api-src.log") as api, \
            httpx.Client(base_url=api.url, timeout=30) as client:
        found = client.get("/api/persons", params={"q": "rossi", "limit": 20}, headers=headers)
        assert found.status_code == 200, found.text
        person_id = found.json()["items"][0]["id"]
        for _ in range(3):
            assert client.get(f"/api/persons/{person_id}", headers=headers).status_code == 200
        assert client.get("/api/me", headers=headers).status_code == 200

    b = devpg.bindir()
    dump = tmp_path / "pua.dump"
    subprocess.run([str(b / "pg_dump"), "-h", "127.0.0.1", "-p", str(port), "-U", OWNER, "-d", src,
                    "--format=custom", "--file", str(dump)], check=True, timeout=120)
    # A fresh, empty database owned by the owner role, as the administrator makes it (docs/operations.md): the
    # restore, as the owner, creates the (trusted) extensions, the schema, the grants and the rows.
    restored = f"{src}_restored"
    with psycopg.connect(host="127.0.0.1", port=port, user=devpg.SUPERUSER, dbname="postgres",
                         autocommit=True) as c:
        c.execute(f'create database "{restored}" owner "{OWNER}"')
        c.execute(f'grant connect on database "{restored}" to "{APP_ROLE}"')
    try:
        done = subprocess.run([str(b / "pg_restore"), "-h", "127.0.0.1", "-p", str(port), "-U", OWNER, "-d",
                               restored, "--exit-on-error", "--no-owner", "--single-transaction", str(dump)],
                              timeout=180, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]

        with psycopg.connect(host="127.0.0.1", port=port, user=devpg.SUPERUSER, dbname=src) as a, \
                psycopg.connect(host="127.0.0.1", port=port, user=devpg.SUPERUSER, dbname=restored) as r:
            before = _counts(a)
            assert before["person"] >= PERSONS
            assert _counts(r) == before
            assert _last_audit(r) == _last_audit(a) and len(_last_audit(a)) >= 5
            assert _sequences(r) == _sequences(a)
            last_audit_id = a.execute("select max(id) from audit_event").fetchone()[0]
            # The grants came back with the schema: the application role reads, appends, and may not rewrite.
            r.execute(f'set role "{APP_ROLE}"')
            assert r.execute("select count(*) from person").fetchone()[0] == before["person"]
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                r.execute("delete from audit_event")

        # The service runs on the restored copy: a real request, audited there after the restored rows.
        restored_urls = devpg.urls(port, restored, OWNER, APP_ROLE)
        with run_api(api_env(restored_urls), tmp_path / "api-restored.log") as api, \
                httpx.Client(base_url=api.url, timeout=30) as client:
            assert client.get("/health/ready").json()["checks"]["database"]["status"] == "ok"
            r = client.get(f"/api/persons/{person_id}", headers=headers)
            assert r.status_code == 200 and r.json()["id"] == person_id
        with psycopg.connect(host="127.0.0.1", port=port, user=devpg.SUPERUSER, dbname=restored) as r:
            newest = r.execute("select id, action, object_ids from audit_event order by id desc limit 1").fetchone()
            assert newest[0] > last_audit_id and newest[1] == "read" and str(newest[2][0]) == person_id
    finally:
        pg_server.drop_db(restored)
