"""Report export jobs over HTTP: a job moves step by step (done / total), its file is the synchronous route's answer
for the same question and the same caller (small cells included), only its owner sees it, it expires (410) and its
bytes leave the disk, bad input is refused naming the parameter with nothing written."""
from __future__ import annotations

import io

import openpyxl
import pytest
import sqlalchemy as sa

from domain.kernel import jobs, storage
from domain.kernel.models import Job
from domain.kernel.settings import get_settings
from domain.reporting import definitions, exports
from domain.reporting.models import ReportExport
from domain.security.models import Role
from domain.security.principal import clear_principal_cache
from tests.api.test_reports import _six_requests
from tests.support import bearer, make_user

pytestmark = pytest.mark.api
URL = "/api/reports/exports"
PROBLEM = "application/problem+json"


@pytest.fixture(autouse=True)
def export_dir(tmp_path, monkeypatch):
    """A store of its own: an expiry here must not remove the bytes another test (or xdist worker) still serves."""
    monkeypatch.setenv("REPORT_EXPORTS_DIR", str(tmp_path / "exports"))
    get_settings.cache_clear()
    yield tmp_path / "exports"
    monkeypatch.delenv("REPORT_EXPORTS_DIR")
    get_settings.cache_clear()


async def run_steps(session, n: int | None = None) -> int:
    """Run the export jobs ready now (n of them, or all), as the worker would, in the test's transaction."""
    done = 0
    while n is None or done < n:
        out = await jobs.run_ready_in_session(session, limit=1, kinds=[exports.JOB_KIND])
        if not out:
            break
        assert out[0].state == "done", out
        done += 1
    return done


async def finished(client, session, h, body) -> dict:
    r = await client.post(URL, json=body, headers=h)
    assert r.status_code == 202, r.text
    await run_steps(session)
    job = (await client.get(r.headers["Location"], headers=h)).json()
    assert job["state"] == "done", job
    return job


def cells(xlsx: bytes) -> list[tuple]:
    return list(openpyxl.load_workbook(io.BytesIO(xlsx)).active.iter_rows(values_only=True))


class TestProgress:
    async def test_an_export_moves_one_indicator_at_a_time_to_a_file(self, session, client):
        await _six_requests(session)
        h = bearer(await make_user(session, Role.analyst, "ambito-crema"))
        r = await client.post(URL, json={"what": "indicators", "year": 2026, "by": "comune", "format": "csv",
                                         "indicator": "P1,P2,D6"}, headers=h)
        assert r.status_code == 202, r.text
        job = r.json()
        assert r.headers["Location"] == f"/api/reports/exports/{job['id']}"
        assert (job["state"], job["state_label"], job["done"], job["total"]) == ("pending", "In coda", 0, 3)
        assert job["file_url"] is None and job["started_at"] is None and job["expires_at"] is None
        seen = []
        for _ in range(3):
            assert await run_steps(session, 1) == 1
            now = (await client.get(r.headers["Location"], headers=h)).json()
            seen.append((now["state"], now["done"]))
        assert seen == [("running", 1), ("running", 2), ("done", 3)]
        assert now["state_label"] == "Pronta" and now["file_name"] == "indicatori-2026-comune.csv"
        assert now["started_at"] and now["finished_at"]
        # expiry after the configured hours (72 by default) from the end
        assert (now["expires_at"] > now["finished_at"]) and now["file_url"].endswith("/file")
        assert await run_steps(session) == 0  # nothing is left queued once done
        assert (await session.execute(sa.text(
            "select count(*) from report_export_part where export_id = :e"), {"e": job["id"]})).scalar() == 0

    async def test_a_restarted_step_resumes_from_the_first_step_without_rows(self, session, client):
        """A killed worker's step leaves nothing (its transaction): the export continues from the next step only."""
        h = bearer(await make_user(session, Role.analyst, "ambito-crema"))
        job = (await client.post(URL, json={"what": "leps", "year": 2026, "format": "html"}, headers=h)).json()
        assert job["total"] == len(definitions.registry()) * 3  # every indicator in 2024, 2025 and 2026
        await run_steps(session, 5)
        keys = (await session.execute(sa.select(Job.dedup_key).where(Job.kind == exports.JOB_KIND)
                                      .order_by(Job.created_at, Job.dedup_key))).scalars().all()
        assert keys == [f"report_export:{job['id']}:{i}" for i in range(6)]  # one job per step, never twice


class TestSameFileAsTheSynchronousRoute:
    @pytest.mark.parametrize("fmt", ["csv", "html"])
    async def test_indicators_byte_for_byte(self, session, client, fmt):
        await _six_requests(session)
        h = bearer(await make_user(session, Role.analyst, "ambito-crema"))
        params = {"year": 2026, "by": "comune", "indicator": "P1,P2,P3,D6"}
        job = await finished(client, session, h, {"what": "indicators", "format": fmt, **params})
        f = await client.get(job["file_url"], headers=h)
        sync = await client.get("/api/reports/indicators", params={**params, "format": fmt}, headers=h)
        assert f.status_code == 200 and sync.status_code == 200
        hidden = "<5" if fmt == "csv" else "&lt;5"
        assert f.content == sync.content and hidden in f.content.decode("utf-8-sig")  # the small cell is hidden
        assert f.headers["content-type"] == sync.headers["content-type"]
        assert "attachment" in f.headers["content-disposition"]

    async def test_indicators_xlsx_same_cells(self, session, client):
        """An XLSX carries its creation time in its properties: the cells are what must be equal."""
        await _six_requests(session)
        h = bearer(await make_user(session, Role.analyst, "ambito-crema"))
        job = await finished(client, session, h, {"what": "indicators", "format": "xlsx", "year": 2026,
                                                  "by": "sub_ambito"})
        f = await client.get(job["file_url"], headers=h)
        sync = await client.get("/api/reports/indicators", params={"year": 2026, "by": "sub_ambito",
                                                                   "format": "xlsx"}, headers=h)
        assert cells(f.content) == cells(sync.content) and len(cells(f.content)) > len(definitions.registry())

    async def test_a_comune_gets_its_own_rows_and_the_ambito_totals_as_in_the_route(self, session, client):
        await _six_requests(session)
        h = bearer(await make_user(session, Role.comune_social_worker, "comune-offanengo"))
        params = {"year": 2026, "by": "comune", "indicator": "P1"}
        job = await finished(client, session, h, {"what": "indicators", "format": "csv", **params})
        f = (await client.get(job["file_url"], headers=h)).content
        assert f == (await client.get("/api/reports/indicators", params={**params, "format": "csv"},
                                      headers=h)).content
        lines = f.decode("utf-8-sig").splitlines()
        assert len(lines) == 3 and "Offanengo" in lines[1] and "Crema" in lines[2]  # header, own comune, Ambito

    @pytest.mark.parametrize("fmt", ["html", "xlsx"])
    async def test_the_yearly_report(self, session, client, fmt):
        await _six_requests(session)
        h = bearer(await make_user(session, Role.csc_operator, "ambito-crema"))
        job = await finished(client, session, h, {"what": "leps", "year": 2026, "format": fmt})
        f = (await client.get(job["file_url"], headers=h)).content
        sync = (await client.get("/api/reports/leps", params={"year": 2026, "format": fmt}, headers=h)).content
        if fmt == "html":
            assert f == sync and "<svg" in f.decode()
        else:
            assert cells(f) == cells(sync) and len(cells(f)) == 1 + len(definitions.registry()) * 3


class TestOwnerOnly:
    async def test_another_user_neither_sees_nor_downloads_nor_cancels_it(self, session, client):
        h = bearer(await make_user(session, Role.analyst, "ambito-crema"))
        other = bearer(await make_user(session, Role.analyst, "ambito-crema"))
        job = await finished(client, session, h, {"what": "indicators", "format": "csv", "indicator": "P1"})
        for method, url in (("GET", f"{URL}/{job['id']}"), ("GET", job["file_url"]), ("DELETE", f"{URL}/{job['id']}")):
            r = await client.request(method, url, headers=other)
            assert (r.status_code, r.headers["content-type"]) == (404, PROBLEM), (method, url)
        assert (await client.get(URL, headers=other)).json()["items"] == []
        mine = (await client.get(URL, headers=h)).json()["items"]
        assert [j["id"] for j in mine] == [job["id"]]

    async def test_asking_following_downloading_and_each_step_are_audited(self, session, client):
        user = await make_user(session, Role.analyst, "ambito-crema")
        h = bearer(user)
        job = await finished(client, session, h, {"what": "indicators", "format": "csv", "indicator": "P1,P2"})
        await client.get(job["file_url"], headers=h)
        rows = (await session.execute(sa.text(
            "select action, object_type, route from audit_event where actor_id = :u order by at, id"),
            {"u": user.id})).all()
        mine = [(a, t) for a, t, _r in rows]
        assert ("create", "report_export") in mine and ("read", "report_export") in mine
        assert ("export", "report_export") in mine  # the download
        steps = [r for a, t, r in rows if t == "indicator_report"]
        assert steps == [f"JOB {exports.JOB_KIND} {job['id']}"] * 2  # each step, as the job, in the user's name

    async def test_roles_without_report_read_are_refused(self, session, client):
        h = bearer(await make_user(session, Role.cot_operator, "asst-crema-cot"))
        r = await client.post(URL, json={"what": "leps", "format": "html"}, headers=h)
        assert r.status_code == 403 and r.headers["content-type"] == PROBLEM

    async def test_the_step_fails_when_the_user_lost_the_right_meanwhile(self, session, client):
        user = await make_user(session, Role.analyst, "ambito-crema")
        h = bearer(user)
        job = (await client.post(URL, json={"what": "indicators", "format": "csv", "indicator": "P1,P2"},
                                 headers=h)).json()
        await session.execute(sa.text("update app_user set active = false where id = :u"), {"u": user.id})
        clear_principal_cache()  # the user was just deactivated
        await run_steps(session)
        row = (await session.execute(sa.select(ReportExport).where(ReportExport.id == job["id"])
                                     .execution_options(populate_existing=True))).scalar_one()
        assert (row.state, row.steps_done, row.file_key) == ("failed", 0, None)
        assert row.error == "l'utente che ha chiesto l'esportazione non è più attivo"


class TestStates:
    async def test_before_it_is_ready_the_file_is_409_and_a_cancelled_one_410(self, session, client):
        h = bearer(await make_user(session, Role.analyst, "ambito-crema"))
        job = (await client.post(URL, json={"what": "leps", "format": "xlsx"}, headers=h)).json()
        r = await client.get(f"{URL}/{job['id']}/file", headers=h)
        assert (r.status_code, r.headers["content-type"]) == (409, PROBLEM)
        assert r.json()["state"] == "pending" and "non è ancora pronto" in r.json()["detail"]
        await run_steps(session, 2)
        r = await client.delete(f"{URL}/{job['id']}", headers=h)
        assert r.status_code == 200 and (r.json()["state"], r.json()["state_label"]) == ("cancelled", "Annullata")
        assert await run_steps(session) == 1  # the step already queued runs and does nothing
        assert (await client.get(f"{URL}/{job['id']}", headers=h)).json()["done"] == 2
        r = await client.get(f"{URL}/{job['id']}/file", headers=h)
        assert (r.status_code, r.headers["content-type"]) == (410, PROBLEM)
        again = await client.delete(f"{URL}/{job['id']}", headers=h)
        assert again.status_code == 409 and again.json()["allowed_actions"] == []

    async def test_the_file_expires_and_its_bytes_leave_the_disk(self, session, client, clock, export_dir):
        h = bearer(await make_user(session, Role.analyst, "ambito-crema"))
        job = await finished(client, session, h, {"what": "indicators", "format": "html", "indicator": "P1"})
        key = (await session.execute(sa.select(ReportExport.file_key).where(ReportExport.id == job["id"]))).scalar()
        store = storage.blob_store(exports.STORE_AREA)
        assert store.exists(key) and any(export_dir.rglob(key))
        clock.advance(hours=get_settings().report_export_ttl_hours - 1)
        assert (await client.get(job["file_url"], headers=h)).status_code == 200
        await exports.expire(session)
        assert store.exists(key)  # not yet
        clock.advance(hours=1)
        r = await client.get(job["file_url"], headers=h)
        assert (r.status_code, r.headers["content-type"]) == (410, PROBLEM) and "scaduto" in r.json()["detail"]
        assert (await client.get(f"{URL}/{job['id']}", headers=h)).json()["state_label"] == "Scaduta"
        await exports.enqueue_expiry(session)
        assert [o.state for o in await jobs.run_ready_in_session(session, kinds=[exports.EXPIRY_KIND])] == ["done"]
        assert not store.exists(key)
        row = (await session.execute(sa.select(ReportExport).where(ReportExport.id == job["id"])
                                     .execution_options(populate_existing=True))).scalar_one()
        assert (row.state, row.file_key) == ("expired", None)

    async def test_bytes_shared_with_a_ready_export_stay(self, session, client, clock):
        """The store is content-addressed: two equal files are one; the first to expire must not take it away."""
        h = bearer(await make_user(session, Role.analyst, "ambito-crema"))
        body = {"what": "indicators", "format": "csv", "indicator": "P1"}
        first = await finished(client, session, h, body)
        clock.advance(hours=2)
        second = await finished(client, session, h, body)
        clock.advance(hours=get_settings().report_export_ttl_hours - 1)
        assert await exports.expire(session) == 1
        assert (await client.get(first["file_url"], headers=h)).status_code == 410
        r = await client.get(second["file_url"], headers=h)
        assert r.status_code == 200 and r.content.startswith("\ufeffCodice".encode())

    async def test_a_full_disk_fails_the_export_and_the_file_answers_507(self, session, client, monkeypatch):
        monkeypatch.setenv("REPORT_EXPORTS_QUOTA_BYTES", "1")
        get_settings.cache_clear()
        h = bearer(await make_user(session, Role.analyst, "ambito-crema"))
        job = (await client.post(URL, json={"what": "indicators", "format": "csv", "indicator": "P1"},
                                 headers=h)).json()
        await run_steps(session)
        now = (await client.get(f"{URL}/{job['id']}", headers=h)).json()
        assert (now["state"], now["state_label"]) == ("failed", "Non riuscita") and "spazio" in now["error"]
        r = await client.get(f"{URL}/{job['id']}/file", headers=h)
        assert (r.status_code, r.headers["content-type"]) == (507, PROBLEM)
        assert r.json()["errors"][0]["field"] == "file"
        monkeypatch.delenv("REPORT_EXPORTS_QUOTA_BYTES")
        get_settings.cache_clear()


    async def test_a_step_that_fails_every_attempt_ends_the_export_failed(self, session, client):
        h = bearer(await make_user(session, Role.analyst, "ambito-crema"))
        job = (await client.post(URL, json={"what": "leps", "format": "html"}, headers=h)).json()
        await run_steps(session, 1)
        await exports.expire(session)
        assert (await client.get(f"{URL}/{job['id']}", headers=h)).json()["state"] == "running"  # still going
        await session.execute(sa.update(Job).where(Job.dedup_key == f"report_export:{job['id']}:1")
                              .values(state="dead", last_error="RuntimeError: boom"))
        await exports.expire(session)  # the periodic run notices
        now = (await client.get(f"{URL}/{job['id']}", headers=h)).json()
        assert (now["state"], now["done"]) == ("failed", 1) and "errore interno" in now["error"]
        assert (await client.get(f"{URL}/{job['id']}/file", headers=h)).status_code == 409


class TestBadInput:
    @pytest.mark.parametrize(("body", "field"), [
        ({"what": "persone", "format": "csv"}, "what"),
        ({"what": "indicators", "format": "pdf"}, "format"),
        ({"what": "leps", "format": "csv"}, "format"),
        ({"what": "indicators", "format": "csv", "year": 2019}, "year"),
        ({"what": "indicators", "format": "csv", "year": 2099}, "year"),
        ({"what": "indicators", "format": "csv", "indicator": "P9"}, "indicator"),
        ({"what": "indicators", "format": "csv", "by": "regione"}, "by"),
        ({"what": "indicators", "format": "csv", "indicator": "P1", "by": "area"}, "by"),
        ({"what": "indicators", "format": "csv", "reading": "sometimes"}, "reading"),
        ({"what": "indicators", "format": "csv", "year": 2025, "reading": "cohort", "cutoff": "2024-12-31"},
         "cutoff"),
        ({"what": "leps", "format": "html", "by": "comune"}, "by"),
        ({"what": "indicators", "format": "csv", "colour": "red"}, "colour"),
        ({"format": "csv"}, "what"),
    ])
    async def test_refused_naming_the_field_and_nothing_written(self, session, client, body, field):
        h = bearer(await make_user(session, Role.analyst, "ambito-crema"))
        r = await client.post(URL, json=body, headers=h)
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, r.text
        assert field in {e["field"].split(".")[-1] for e in r.json()["errors"]}
        assert (await session.execute(sa.select(sa.func.count()).select_from(ReportExport))).scalar() == 0
        assert (await session.execute(sa.select(sa.func.count()).select_from(Job)
                                      .where(Job.kind == exports.JOB_KIND))).scalar() == 0

    async def test_an_unknown_export_is_404(self, session, client):
        h = bearer(await make_user(session, Role.analyst, "ambito-crema"))
        r = await client.get(f"{URL}/00000000-0000-0000-0000-000000000000", headers=h)
        assert (r.status_code, r.headers["content-type"]) == (404, PROBLEM)

