import sqlalchemy as sa


async def test_database_is_migrated_and_clock_reaches_defaults(session, clock):
    now = (await session.execute(sa.text("select app_now()"))).scalar_one()
    assert now == clock.now()


async def test_health_live(client):
    r = await client.get("/health/live")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


async def test_unknown_route_is_problem_json(client):
    r = await client.get("/api/nope")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
