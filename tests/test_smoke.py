import sqlalchemy as sa


async def test_database_is_migrated_and_clock_reaches_defaults(session, clock):
    now = (await session.execute(sa.text("select app_now()"))).scalar_one()
    assert now == clock.now()


async def test_health_live(client):
    r = await client.get("/health/live")
    assert r.status_code == 200 and r.json()["status"] == "ok"


async def test_unknown_route_is_problem_json(client):
    r = await client.get("/api/nope")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_an_unhandled_error_is_logged_without_its_message(test_db):
    """A database error quotes the value it choked on; the log line keeps where it happened, never the value."""
    import pytest
    from sqlalchemy.exc import DBAPIError

    from api.logging import safe_traceback
    from domain.kernel.db import make_engine

    engine = make_engine(test_db["DATABASE_URL"], pool_size=1)
    try:
        async with engine.connect() as conn:
            with pytest.raises(DBAPIError) as e:
                await conn.execute(sa.text("select cast(:v as integer)"), {"v": "RSSMRA85T10A562S"})
    finally:
        await engine.dispose()
    assert "RSSMRA85T10A562S" in str(e.value)  # the driver does quote it...
    logged = " ".join(safe_traceback(e.value))
    assert "RSSMRA85T10A562S" not in logged and "DBAPIError" in logged and ".py:" in logged  # ...the log does not
