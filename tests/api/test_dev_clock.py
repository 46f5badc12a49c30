"""GET/PUT /api/dev/clock: the demo clock for a system administrator, in development mode only (404 otherwise)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from domain.kernel.settings import get_settings
from domain.security.models import AuditEvent, Role
from tests.support import bearer, make_user


@pytest.fixture
async def admin_h(session):
    return bearer(await make_user(session, Role.system_admin, "ambito-crema", username="admin.clock"))


async def test_an_administrator_reads_and_moves_the_clock(client, session, admin_h, clock):
    r = await client.get("/api/dev/clock", headers=admin_h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert datetime.fromisoformat(body["in_process_fixed"]) == clock.now()
    real = datetime.now(UTC)
    assert abs(datetime.fromisoformat(body["real_now"]) - real) < timedelta(minutes=1)

    target = real + timedelta(days=40)
    r = await client.put("/api/dev/clock", headers=admin_h, json={"set": target.isoformat()})
    assert r.status_code == 200, r.text
    assert abs(datetime.fromisoformat(r.json()["now"]) - target) < timedelta(seconds=30)
    assert len(r.json()["days_run"]) == 40  # each day crossed, once
    r = await client.put("/api/dev/clock", headers=admin_h, json={"advance": "49h"})
    assert r.status_code == 200 and len(r.json()["days_run"]) in (2, 3)
    r = await client.put("/api/dev/clock", headers=admin_h, json={"reset": True})
    assert r.status_code == 409 and "force" in r.json()["detail"]  # the daily jobs it ran are records now
    r = await client.put("/api/dev/clock", headers=admin_h, json={"reset": True, "force": True})
    assert r.status_code == 200 and r.json()["offset_seconds"] == 0
    assert clock.now() == datetime.fromisoformat("2026-03-02T09:00:00+01:00")  # the test's FixedClock still wins

    actions = (await session.execute(sa.select(AuditEvent.action).where(AuditEvent.object_type == "business_clock")
                                     .order_by(AuditEvent.id))).scalars().all()
    assert actions == ["clock_set", "clock_advance", "clock_reset"]


async def test_bad_bodies_are_422(client, admin_h):
    for body in ({}, {"advance": "3 giorni"}, {"set": "2026-03-14T09:30:00"}, {"advance": "1h", "reset": True}):
        r = await client.put("/api/dev/clock", headers=admin_h, json=body)
        assert r.status_code == 422, (body, r.text)


async def test_other_roles_are_refused(client, session):
    h = bearer(await make_user(session, Role.comune_social_worker, "comune-crema", username="sw.clock"))
    assert (await client.get("/api/dev/clock", headers=h)).status_code == 403
    assert (await client.put("/api/dev/clock", headers=h, json={"advance": "1h"})).status_code == 403


async def test_outside_dev_mode_the_routes_do_not_exist(client, admin_h, monkeypatch):
    monkeypatch.setattr(get_settings(), "dev_mode", False)
    for method, kw in (("GET", {}), ("PUT", {"json": {"advance": "1h"}})):
        r = await client.request(method, "/api/dev/clock", headers=admin_h, **kw)
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json"), r.text


async def test_a_move_far_away_is_refused_naming_the_field(client, session):
    """Found by the fuzzer: setting the clock to 2165 enqueued the daily jobs of fifty thousand days."""
    h = bearer(await make_user(session, Role.system_admin, "ambito-crema"))
    await session.commit()
    for body, field in (({"set": "2165-04-16T19:03:36Z"}, "set"), ({"advance": "500d"}, "advance")):
        r = await client.put("/api/dev/clock", json=body, headers=h)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, r.text
