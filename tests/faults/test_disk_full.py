"""A full disk: the attachments volume and the scratch space of exports (TMPDIR) on a small tmpfs (as root; a
quota on the file store otherwise). Uploads and exports are refused with 507 problem+json, no attachment row
points at a missing file, no partial file is left, reads keep working, and room made again is used at once."""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from domain.security.models import Role
from integrations.postgres import devpg
from tests.factories.cartelle import create_cartella, create_person
from tests.faults.support import api_env, run_api
from tests.support import bearer, make_user

PROBLEM = "application/problem+json"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
QUOTA = 64 * 1024


@contextmanager
def small_volume(where: Path):
    """A 512 KiB tmpfs (a real ENOSPC) when we may mount one, else a plain directory (the store's quota emulates
    the limit; exports then cannot be made to fail)."""
    where.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k,mode=0777", "tmpfs", str(where)],
        stderr=subprocess.DEVNULL).returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(where)], check=False)


def fill(directory: Path) -> Path:
    """Write a file until the volume refuses one more byte."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as f:
        for chunk in (64 * 1024, 4096, 512, 1):
            while True:
                try:
                    f.write(b"\0" * chunk)
                except OSError as e:
                    assert e.errno == errno.ENOSPC
                    break
    return filler


async def _scenario(db: dict[str, str]):
    engine = create_async_engine(db["DATABASE_URL"])
    async with AsyncSession(engine, expire_on_commit=False) as s:
        person = await create_person(s, comune="comune-offanengo")
        cartella = await create_cartella(s, person=person)
        worker = await make_user(s, Role.comune_social_worker, "comune-offanengo")
        steward = await make_user(s, Role.data_steward, "comune-offanengo")
        await s.commit()
    await engine.dispose()
    return cartella.id, bearer(worker), bearer(steward)


def _upload(client: httpx.Client, cartella_id, headers, content: bytes, name: str) -> httpx.Response:
    return client.post(f"/api/cartelle/{cartella_id}/attachments", headers=headers,
                       files={"file": (name, content, "application/pdf")}, data={"kind": "other"})


@pytest.mark.timeout(180)
async def test_a_full_volume_refuses_uploads_and_exports_with_507_and_keeps_reads(fresh_db, tmp_path):
    cartella_id, worker, steward = await _scenario(fresh_db)
    volume = tmp_path / "volume"
    with small_volume(volume) as mounted:
        attachments, scratch = volume / "attachments", volume / "tmp"
        attachments.mkdir()
        scratch.mkdir()
        extra = {"ATTACHMENTS_DIR": str(attachments)}
        if mounted:
            extra["TMPDIR"] = str(scratch)
        else:
            extra["ATTACHMENTS_QUOTA_BYTES"] = str(QUOTA)
        with run_api(api_env(fresh_db, **extra), tmp_path / "api.log") as api, \
                httpx.Client(base_url=api.url, timeout=30) as client:
            first = _upload(client, cartella_id, worker, PDF, "primo.pdf")
            assert first.status_code == 201, first.text
            export = client.get("/api/imports/template?format=xlsx", headers=steward)
            assert export.status_code == 200 and export.content.startswith(b"PK"), export.text

            filler = fill(volume) if mounted else attachments / "filler"
            if not mounted:
                filler.write_bytes(b"\0" * QUOTA)
            blobs_before = sorted(p.name for p in attachments.rglob("*") if p.is_file())

            second = PDF + b"% secondo\n"
            r = _upload(client, cartella_id, worker, second, "secondo.pdf")
            assert r.status_code == 507, r.text
            assert r.headers["content-type"].startswith(PROBLEM)
            body = r.json()
            assert body["type"].endswith("/insufficient_storage") and body["status"] == 507
            assert [e["field"] for e in body["errors"]] == ["file"]
            # Nothing recorded as stored: no new row, no new (or partial) file.
            assert sorted(p.name for p in attachments.rglob("*") if p.is_file()) == blobs_before
            listed = client.get(f"/api/cartelle/{cartella_id}/attachments", headers=worker)
            assert listed.status_code == 200 and [a["id"] for a in listed.json()] == [first.json()["id"]]
            if mounted:
                r = client.get("/api/imports/template?format=xlsx", headers=steward)
                assert r.status_code == 507 and r.headers["content-type"].startswith(PROBLEM), r.text
                assert r.json()["type"].endswith("/insufficient_storage")

            # Reads keep working: the stored file, the list, the diary, health.
            r = client.get(f"/api/attachments/{first.json()['id']}/content", headers=worker)
            assert r.status_code == 200 and r.content == PDF
            assert client.get(f"/api/cartelle/{cartella_id}/diary", headers=worker).status_code == 200
            assert client.get("/health/ready").status_code == 200
            metrics = client.get("/health/metrics").text
            assert "pua_storage_full_total 0" not in metrics and "pua_storage_full_total" in metrics

            # Room made again: the same process stores at once (no restart).
            filler.unlink()
            r = _upload(client, cartella_id, worker, second, "secondo.pdf")
            assert r.status_code == 201, r.text
            assert client.get("/api/imports/template?format=xlsx", headers=steward).status_code == 200
            assert api.proc.poll() is None

        # The refused upload is in the audit trail as such (its own transaction).
        url = fresh_db["DATABASE_URL"]
        port, dbname = int(url.rsplit(":", 1)[1].split("/")[0]), url.rsplit("/", 1)[1]
        with psycopg.connect(host="127.0.0.1", port=port, user=devpg.SUPERUSER, dbname=dbname) as c:
            statuses = [r[0] for r in c.execute(
                "select status from audit_event where object_type = 'attachment' or status = 507 "
                "order by id").fetchall()]
        assert 507 in statuses, statuses


@pytest.mark.timeout(180)
async def test_a_full_database_volume_refuses_writes_with_507_and_keeps_reads(pg_server, tmp_path):
    """The database's own volume full, through a tablespace on a small tmpfs (the person table lives there): a
    registration is refused with 507 and writes nothing (no person, no history, no audit row of a success), reads
    keep working, and room made again is used at once."""
    import pwd

    from tests.faults.support import own_pg

    if os.geteuid() != 0:
        pytest.skip("a tablespace on its own small volume needs root to mount a tmpfs (docs/operations.md)")
    server_user = next((u for u in ("postgres", "pgdev") if _user_exists(u)), None)
    assert server_user, "devpg runs the server as 'postgres' or 'pgdev'"
    pw = pwd.getpwnam(server_user)
    # The server user must reach the tablespace: not under pytest's 0700 temp dir.
    outer = Path(tempfile.mkdtemp(prefix="pua-dbvolume-", dir="/var/tmp"))
    outer.chmod(0o755)
    volume = outer / "volume"
    volume.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size=1m,uid={pw.pw_uid},gid={pw.pw_gid},mode=0700", "tmpfs",
                       str(volume)], stderr=subprocess.DEVNULL).returncode != 0:
        pytest.skip("tmpfs cannot be mounted here")
    try:
        with own_pg(pg_server.port) as pg:
            db = pg.create_db("pua_dbfull")
            headers = await _person_writer(db)
            with pg.connect("pua_dbfull") as c:
                # The person table, empty (no page with room left), moves to the small volume: a registration has
                # to extend its file there.
                assert c.execute("select count(*) from person").fetchone()[0] == 0
                c.execute(f"create tablespace small location '{volume}'")
                c.execute("alter table person set tablespace small")
            with run_api(api_env(db), tmp_path / "api.log") as api, \
                    httpx.Client(base_url=api.url, timeout=30) as client:
                body = {"surname": "Pienobis", "given_name": "Carla", "sex": "F", "birth_date": "1938-07-14",
                        "other_identifier_type": "provisional"}
                filler = volume / "filler"
                subprocess.run(["runuser", "-u", server_user, "--", "sh", "-c",
                                f"cat /dev/zero > {filler} 2>/dev/null; true"], check=True, timeout=60)
                r = client.post("/api/persons", json=body, headers=headers)
                assert r.status_code == 507, r.text
                assert r.headers["content-type"].startswith(PROBLEM)
                assert r.json()["type"].endswith("/insufficient_storage")
                with pg.connect("pua_dbfull") as c:
                    assert c.execute("select count(*) from person where surname = 'Pienobis'").fetchone()[0] == 0
                    assert c.execute("select count(*) from audit_event where object_type = 'person' "
                                     "and action = 'create' and outcome = 'ok'").fetchone()[0] == 0
                # Reads keep working while the volume is full, of the full table too.
                r = client.get("/api/persons", params={"q": "pienobis"}, headers=headers)
                assert r.status_code == 200 and r.json()["items"] == []
                assert client.get("/api/me", headers=headers).status_code == 200
                assert client.get("/health/ready").status_code == 200
                # Room made again: the same process writes at once.
                filler.unlink()
                r = client.post("/api/persons", json=body, headers=headers)
                assert r.status_code == 201, r.text
                assert api.proc.poll() is None
            with pg.connect("pua_dbfull") as c:
                c.execute("alter table person set tablespace pg_default")
                c.execute("drop tablespace small")
    finally:
        subprocess.run(["umount", "-l", str(volume)], check=False)
        shutil.rmtree(outer, ignore_errors=True)


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


async def _person_writer(db: dict[str, str]) -> dict[str, str]:
    engine = create_async_engine(db["DATABASE_URL"])
    async with AsyncSession(engine, expire_on_commit=False) as s:
        user = await make_user(s, Role.comune_social_worker, "comune-crema")
        await s.commit()
    await engine.dispose()
    return bearer(user)
