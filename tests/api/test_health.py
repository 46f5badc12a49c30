"""/health/live and /health/ready (database + the broker as configured)."""
from __future__ import annotations

import time

import pytest

from domain.kernel.settings import get_settings
from integrations.postgres.devpg import free_port


async def test_live(client):
    r = await client.get("/health/live")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


async def test_ready_with_the_default_postgres_broker(client):
    assert get_settings().celery_broker_url.startswith("sqla+postgresql+psycopg://pua_app@")
    r = await client.get("/health/ready")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


@pytest.mark.parametrize("scheme", ["sqla+postgresql+psycopg://pua_app@127.0.0.1:{port}/pua", "amqp://127.0.0.1:{port}//"])
async def test_ready_is_503_when_the_broker_is_down(client, monkeypatch, scheme):
    monkeypatch.setattr(get_settings(), "broker_url", scheme.format(port=free_port()))
    started = time.monotonic()
    r = await client.get("/health/ready")
    assert time.monotonic() - started < 10
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "degraded" and body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("error: ")
    assert "127.0.0.1" not in r.text  # no hosts or URLs in the answer
