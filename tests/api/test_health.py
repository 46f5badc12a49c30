"""/health/live, /health/ready (database required, broker best effort) and the operator counters."""
from __future__ import annotations

import time

import pytest

from domain.kernel.settings import get_settings
from integrations.postgres.devpg import free_port


async def test_live_says_it_checks_only_the_process(client):
    r = await client.get("/health/live")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert list(body["checks"]) == ["process"]
    assert body["checks"]["process"]["status"] == "ok"
    assert "database" in body["checks"]["process"]["description"]  # says what it does not query


async def test_ready_with_the_default_postgres_broker(client):
    assert get_settings().celery_broker_url.startswith("sqla+postgresql+psycopg://pua_app@")
    r = await client.get("/health/ready")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok"
    assert {name: (c["status"], c["required"]) for name, c in body["checks"].items()} == {
        "database": ("ok", True), "broker": ("ok", False)}
    assert all(c["description"] for c in body["checks"].values())
    assert body["counters"]["pua_audit_write_failures_total"] >= 0


@pytest.mark.parametrize("scheme", ["sqla+postgresql+psycopg://pua_app@127.0.0.1:{port}/pua", "amqp://127.0.0.1:{port}//"])
async def test_ready_stays_200_degraded_when_the_broker_is_down(client, monkeypatch, scheme):
    # Jobs live in the job table and the beat sweep relays them: a broker outage must not take the API out.
    monkeypatch.setattr(get_settings(), "broker_url", scheme.format(port=free_port()))
    started = time.monotonic()
    r = await client.get("/health/ready")
    assert time.monotonic() - started < 10
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["broker"]["status"].startswith("error: ")
    assert body["checks"]["broker"]["required"] is False
    assert "127.0.0.1" not in r.text  # no hosts or URLs in the answer


async def test_ready_is_503_when_the_database_is_down(client, monkeypatch):
    from sqlalchemy.ext.asyncio import create_async_engine

    from domain.kernel import db

    previous = db.get_engine()
    dead = create_async_engine(f"postgresql+asyncpg://pua_app@127.0.0.1:{free_port()}/pua")
    db.set_engine(dead)
    try:
        r = await client.get("/health/ready")
    finally:
        db.set_engine(previous)
        await dead.dispose()
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["status"].startswith("error: ")
    assert "127.0.0.1" not in r.text
    # Liveness does not depend on the database.
    assert (await client.get("/health/live")).status_code == 200


async def test_metrics_in_prometheus_text_format(client):
    r = await client.get("/health/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    lines = r.text.splitlines()
    assert "# TYPE pua_audit_write_failures_total counter" in lines
    value = next(line for line in lines if line.startswith("pua_audit_write_failures_total "))
    assert int(value.split()[1]) >= 0
