"""Postgres stopped and started again while requests are in flight: every answer is 201 or a 503 problem+json
with Retry-After (never a 500, never a hang), no request is half-written, `/health/ready` follows the database,
and the same API process serves again once the server is back (no restart of the API)."""
from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from tests.faults.support import api_env, own_pg, run_api, wait_until
from tests.support import bearer, make_user

PROBLEM = "application/problem+json"
WRITERS = 4


async def _user_headers(db: dict[str, str]) -> dict[str, str]:
    engine = create_async_engine(db["DATABASE_URL"])
    async with AsyncSession(engine, expire_on_commit=False) as s:
        user = await make_user(s, "comune_social_worker", "comune-crema")
        await s.commit()
    await engine.dispose()
    return bearer(user)


def _surname(n: int) -> str:
    letters = ""
    while True:
        n, r = divmod(n, 26)
        letters += chr(ord("a") + r)
        if n == 0:
            return "Riavvio" + letters


@pytest.mark.timeout(240)
async def test_requests_across_a_postgres_restart(pg_server, tmp_path):
    with own_pg(pg_server.port) as pg:
        db = pg.create_db("pua_restart")
        headers = await _user_headers(db)
        env = api_env(db, DB_CONNECT_TIMEOUT_SECONDS="2", DB_POOL_TIMEOUT_SECONDS="5",
                      DB_COMMAND_TIMEOUT_SECONDS="10", DB_RETRY_AFTER_SECONDS="3", DB_POOL_SIZE="4")
        with run_api(env, tmp_path / "api.log") as api:
            answers: list[tuple[str, int, httpx.Response]] = []  # (surname, status, response)
            counter = iter(range(10**6))
            stop = asyncio.Event()

            async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
                async def ready() -> int:
                    return (await client.get("/health/ready")).status_code

                assert await ready() == 200

                async def writer():
                    while not stop.is_set():
                        surname = _surname(next(counter))
                        body = {"surname": surname, "given_name": "Carla", "sex": "F", "birth_date": "1938-07-14",
                                "other_identifier_type": "provisional"}
                        r = await client.post("/api/persons", json=body, headers=headers)
                        answers.append((surname, r.status_code, r))
                        await asyncio.sleep(0.01)

                def created() -> int:
                    return sum(1 for _, st, _ in answers if st == 201)

                tasks = [asyncio.create_task(writer()) for _ in range(WRITERS)]
                try:
                    await wait_until(lambda: _true(created() >= 8), timeout=60, what="writes before the stop",
                                     api=api)
                    # Fast shutdown: the server ends every session, rolling back the transactions in flight.
                    await asyncio.to_thread(pg.stop, "fast")
                    # While it is down: writes and reads are refused with 503 and Retry-After, at once.
                    down = await client.post("/api/persons", json={"surname": "Giu", "given_name": "Anna", "sex": "F",
                                                                   "birth_date": "1940-01-01",
                                                                   "other_identifier_type": "provisional"},
                                             headers=headers)
                    assert down.status_code == 503, down.text
                    assert down.headers["content-type"].startswith(PROBLEM)
                    assert down.headers["retry-after"] == "3"
                    assert down.json()["type"].endswith("/unavailable") and down.json()["status"] == 503
                    r = await client.get("/api/me", headers=headers)
                    assert r.status_code == 503 and r.headers["retry-after"] == "3", r.text
                    some_id = next(r.json()["id"] for _, st, r in answers if st == 201)
                    r = await client.get(f"/fhir/Patient/{some_id}", headers=headers)  # FHIR: an OperationOutcome
                    assert r.status_code == 503 and r.headers["retry-after"] == "3", r.text
                    assert r.json()["resourceType"] == "OperationOutcome"
                    assert r.json()["issue"][0]["code"] == "transient"
                    r = await client.get("/health/ready")
                    assert r.status_code == 503 and r.json()["checks"]["database"]["status"].startswith("error")
                    assert (await client.get("/health/live")).status_code == 200
                    before_start = len(answers)
                    await asyncio.to_thread(pg.start)
                    # The same process recovers: ready again, and writes succeed again.
                    await wait_until(lambda: _eq(ready(), 200), timeout=60, what="ready after the restart",
                                     api=api)
                    await wait_until(lambda: _true(sum(1 for _, st, _ in answers[before_start:] if st == 201) >= 8),
                                     timeout=60, what="writes after the restart", api=api)
                finally:
                    stop.set()
                    await asyncio.gather(*tasks, return_exceptions=True)
                for t in tasks:
                    assert t.exception() is None, t.exception()  # no hang, no broken connection to the API

            assert api.proc.poll() is None  # never restarted
            statuses = {st for _, st, _ in answers}
            assert statuses <= {201, 503}, [(st, r.text) for _, st, r in answers if st not in (201, 503)][:3]
            for _, st, r in answers:
                if st == 503:
                    assert r.headers["content-type"].startswith(PROBLEM) and r.headers["retry-after"] == "3"

            # Nothing half-written: a 201 has its person, its history version and its audit row; a refused request
            # left nothing; no person exists that no answer reported.
            ok = {r.json()["id"]: surname for surname, st, r in answers if st == 201}
            refused = {surname for surname, st, _ in answers if st != 201}
            with pg.connect("pua_restart") as c:
                rows = dict(c.execute("select id::text, surname from person where surname like 'Riavvio%'")
                            .fetchall())
                assert rows == ok
                assert not refused & set(rows.values())
                history = {r[0] for r in c.execute(
                    "select entity_id::text from entity_history where entity_type = 'person' and version = 1 "
                    "and entity_id = any(%s)", ([uuid.UUID(i) for i in ok],)).fetchall()}
                assert history == set(ok)
                audited = {str(r[0]) for r in c.execute(
                    "select distinct unnest(object_ids) from audit_event where action = 'create' "
                    "and object_type = 'person' and outcome = 'ok'").fetchall()}
                assert set(ok) <= audited
            assert created() > 16


async def _true(v: bool) -> bool:
    return v


async def _eq(coro, expected) -> bool:
    return (await coro) == expected
