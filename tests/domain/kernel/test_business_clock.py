"""The stored business clock (issue 16): an offset read at the boundaries and cached for a second, reaching
`app_now()` like a fixed clock; moved only in development mode, never back past a record without force, audited,
running the daily jobs of each day crossed. A FixedClock installed in the process (tests) wins."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from deploy import demo_clock
from domain.care_plan.jobs import REVIEW_REMINDERS
from domain.kernel import business_clock, clock
from domain.kernel.errors import Conflict
from domain.kernel.models import EntityHistory, Job
from domain.kernel.settings import get_settings
from domain.security import audit
from domain.security.models import AuditEvent


@pytest.fixture
def system_clock():
    """The process clock of a real service (no FixedClock), restored afterwards."""
    previous = clock.get_clock()
    c = clock.SystemClock()
    clock.set_clock(c)
    yield c
    clock.set_clock(previous)


@pytest.fixture
async def fresh_engine(fresh_db):
    engine = create_async_engine(fresh_db["DATABASE_URL"])
    yield engine
    await engine.dispose()


async def _store(engine, offset: timedelta) -> None:
    async with AsyncSession(engine) as s:
        await business_clock.store(s, offset)
        await s.commit()


async def test_the_offset_is_read_at_most_once_a_second(system_clock, fresh_engine):
    assert system_clock.stale(1.0) and not system_clock.shifted
    await _store(fresh_engine, timedelta(days=10))
    await business_clock.refresh(fresh_engine)
    assert system_clock.offset == timedelta(days=10) and system_clock.shifted
    assert abs(clock.now() - (datetime.now(UTC) + timedelta(days=10))) < timedelta(seconds=5)

    await _store(fresh_engine, timedelta(days=20))
    await business_clock.refresh(fresh_engine)  # read less than a second ago: the cached offset stays
    assert system_clock.offset == timedelta(days=10)
    system_clock.loaded_at -= 1.0
    await business_clock.refresh(fresh_engine)
    assert system_clock.offset == timedelta(days=20)


async def test_production_never_follows_the_stored_row(system_clock, fresh_engine, monkeypatch):
    # Only development moves the clock; a row changed by hand in production is not read, and the process keeps
    # (or returns to) the real time.
    await _store(fresh_engine, timedelta(days=10))
    system_clock.set_offset(timedelta(days=1))
    system_clock.loaded_at -= 5.0
    monkeypatch.setattr(get_settings(), "dev_mode", False)
    await business_clock.refresh(fresh_engine)
    assert system_clock.offset == timedelta(0)


async def test_a_shifted_clock_reaches_app_now_and_defaults(system_clock, fresh_engine):
    system_clock.set_offset(timedelta(days=3))
    async with AsyncSession(fresh_engine) as s:
        at = (await s.execute(sa.text("select app_now()"))).scalar_one()
    assert abs(at - (datetime.now(UTC) + timedelta(days=3))) < timedelta(seconds=5)
    system_clock.set_offset(timedelta(0))
    async with AsyncSession(fresh_engine) as s:
        at = (await s.execute(sa.text("select app_now()"))).scalar_one()
    assert abs(at - datetime.now(UTC)) < timedelta(seconds=5)


async def test_a_fixed_clock_in_the_process_wins_over_the_stored_one(clock, fresh_engine):
    await _store(fresh_engine, timedelta(days=10))
    await business_clock.refresh(fresh_engine)
    assert clock.now() == datetime.fromisoformat("2026-03-02T09:00:00+01:00")
    business_clock.adopt(timedelta(days=5))  # a move in this process does not unfreeze it either
    assert clock.now() == datetime.fromisoformat("2026-03-02T09:00:00+01:00")


async def test_refresh_survives_a_database_it_cannot_read(system_clock):
    broken = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:9/none")
    system_clock.set_offset(timedelta(hours=2))
    system_clock.loaded_at -= 5
    await business_clock.refresh(broken)
    assert system_clock.offset == timedelta(hours=2) and not system_clock.stale(1.0)
    await broken.dispose()


def test_durations_and_instants():
    assert demo_clock.parse_duration("49h") == timedelta(hours=49)
    assert demo_clock.parse_duration("1d2h30m") == timedelta(days=1, hours=2, minutes=30)
    assert demo_clock.parse_duration("0s") == timedelta(0)
    for bad in ("", "h", "3 days", "-1h"):
        with pytest.raises(demo_clock.Invalid):
            demo_clock.parse_duration(bad)
    with pytest.raises(demo_clock.Invalid):
        demo_clock.parse_instant("2026-03-14T09:30:00")  # no time zone


async def _moves(session) -> list[AuditEvent]:
    return list((await session.execute(sa.select(AuditEvent).where(AuditEvent.object_type == "business_clock")
                                       .order_by(AuditEvent.id))).scalars())


async def test_moves_are_audited_with_real_time_and_run_each_day_crossed_once(session, system_clock):
    audit.begin(route="test clock", method="CLI", request_id="clock-test-1")
    monday = datetime.fromisoformat("2026-03-16T09:00:00+01:00")
    state = await demo_clock.move(session, to=monday, force=True)
    assert abs(state.now - monday) < timedelta(seconds=5) and [str(d) for d in state.days_run] == ["2026-03-16"]
    state = await demo_clock.move(session, by=timedelta(hours=49))
    assert [str(d) for d in state.days_run] == ["2026-03-17", "2026-03-18"]
    state = await demo_clock.move(session, by=timedelta(0))  # the day reached, again: nothing new
    assert abs(clock.now() - (monday + timedelta(hours=49))) < timedelta(seconds=5)  # this process moved too
    await audit.flush(session)

    keys = (await session.execute(sa.select(Job.dedup_key).where(Job.kind == REVIEW_REMINDERS,
                                                                 Job.dedup_key.like("%2026-03-1%"))
                                  .order_by(Job.dedup_key))).scalars().all()
    assert keys == [f"{REVIEW_REMINDERS}:2026-03-{d}" for d in (16, 17, 18)]
    rows = await _moves(session)
    assert [r.action for r in rows] == ["clock_set", "clock_advance", "clock_advance"]
    assert all(abs(r.at - datetime.now(UTC)) < timedelta(minutes=5) for r in rows)  # real time, not business time
    assert audit.ACTION_LABELS["clock_reset"] and audit.OBJECT_TYPE_LABELS["business_clock"]


async def test_it_never_goes_back_past_a_record_without_force(session):
    audit.begin(route="test clock", method="CLI", request_id="clock-test-2")
    real = datetime.now(UTC)
    session.add(EntityHistory(entity_type="test", entity_id=uuid.uuid4(), version=1,
                              action="create", data={}, at=real + timedelta(days=30)))
    await session.flush()
    state = await demo_clock.move(session, to=real + timedelta(days=31))  # forwards past it: allowed
    assert state.offset_seconds > 30 * 86400
    # (that move enqueued the daily jobs of its day, stamped with its business time: records as well)
    with pytest.raises(Conflict) as refused:
        await demo_clock.move(session, to=real + timedelta(days=1))
    assert "prima dell'ultimo dato registrato" in refused.value.detail
    with pytest.raises(Conflict):
        await demo_clock.move(session, reset=True)
    state = await demo_clock.move(session, reset=True, force=True)
    assert state.offset_seconds == 0
    await audit.flush(session)
    assert [r.action for r in await _moves(session)] == ["clock_set", "clock_reset"]


async def test_outside_dev_mode_nothing_moves(session, monkeypatch, capsys):
    monkeypatch.setattr(get_settings(), "dev_mode", False)
    with pytest.raises(demo_clock.NotInDevMode):
        await demo_clock.move(session, by=timedelta(hours=1))
    assert demo_clock.main(["show"]) == 1
    assert "solo in sviluppo (DEV_MODE=true)" in capsys.readouterr().err


def test_the_command_answers_help(capsys):
    with pytest.raises(SystemExit) as done:
        demo_clock.main(["--help"])
    assert done.value.code == 0 and "show" in capsys.readouterr().out
