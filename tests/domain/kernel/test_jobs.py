"""Durable jobs (outbox): enqueue, claim with a lease, run in one transaction, backoff, dead, sweep, events."""
from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from domain.kernel import events, jobs
from domain.kernel.models import EntityHistory, Job

CALLS: list[tuple[str, dict]] = []


@jobs.handler("test.jobs.ok")
async def ok_handler(session, payload):
    CALLS.append(("ok", payload))
    session.add(EntityHistory(entity_type="test.effect", entity_id=uuid.UUID(payload["id"]), version=1,
                              action="done", data={}))
    await session.flush()


@jobs.handler("test.jobs.boom")
async def boom_handler(session, payload):
    CALLS.append(("boom", payload))
    # Partial work that must vanish with the failed attempt.
    session.add(EntityHistory(entity_type="test.partial", entity_id=uuid.UUID(payload["id"]), version=1,
                              action="partial", data={}))
    await session.flush()
    raise RuntimeError("remote system unavailable")


@events.subscribe("test.person_died")
async def close_offers(session, payload):
    CALLS.append(("close_offers", payload))


@events.subscribe("test.person_died")
async def cancel_visits(session, payload):
    CALLS.append(("cancel_visits", payload))


@pytest.fixture(autouse=True)
def _calls():
    CALLS.clear()
    yield
    CALLS.clear()


async def _job(session, job_id) -> Job:
    return (await session.execute(sa.select(Job).where(Job.id == job_id)
                                  .execution_options(populate_existing=True))).scalar_one()


async def _count(session, entity_type: str, entity_id: uuid.UUID) -> int:
    return (await session.execute(sa.select(sa.func.count()).select_from(EntityHistory).where(
        EntityHistory.entity_type == entity_type, EntityHistory.entity_id == entity_id))).scalar_one()


class TestEnqueue:
    async def test_enqueue_writes_a_pending_job_and_flags_the_session(self, session, clock):
        job = await jobs.enqueue(session, kind="test.jobs.ok", payload={"id": str(uuid.uuid4())})
        row = await _job(session, job.id)
        assert (row.state, row.attempts, row.max_attempts) == ("pending", 0, 5)
        assert row.run_after == clock.now() and row.created_at == clock.now()
        assert session.info[jobs.ENQUEUED_FLAG] is True

    async def test_dedup_key_makes_enqueue_idempotent(self, session):
        payload = {"id": str(uuid.uuid4())}
        first = await jobs.enqueue(session, kind="test.jobs.ok", payload=payload, dedup_key="push:referral:1:v1")
        session.info.pop(jobs.ENQUEUED_FLAG)
        again = await jobs.enqueue(session, kind="test.jobs.ok", payload={"other": 1},
                                   dedup_key="push:referral:1:v1")
        assert again.id == first.id and again.payload == payload
        n = (await session.execute(sa.select(sa.func.count()).select_from(Job)
                                   .where(Job.dedup_key == "push:referral:1:v1"))).scalar_one()
        assert n == 1
        assert jobs.ENQUEUED_FLAG not in session.info  # nothing new to relay

    async def test_dedup_holds_after_the_job_is_done(self, session):
        payload = {"id": str(uuid.uuid4())}
        first = await jobs.enqueue(session, kind="test.jobs.ok", payload=payload, dedup_key="once")
        await jobs.run_ready_in_session(session)
        again = await jobs.enqueue(session, kind="test.jobs.ok", payload=payload, dedup_key="once")
        assert again.id == first.id and (await _job(session, first.id)).state == "done"
        assert await jobs.run_ready_in_session(session) == []
        assert len(CALLS) == 1

    async def test_payload_must_be_json(self, session):
        with pytest.raises(TypeError):
            await jobs.enqueue(session, kind="test.jobs.ok", payload={"id": uuid.uuid4()})

    async def test_a_kind_cannot_get_two_handlers(self):
        with pytest.raises(ValueError):
            @jobs.handler("test.jobs.ok")
            async def other(session, payload):  # pragma: no cover
                pass


class TestRun:
    async def test_success_marks_done_once_with_the_effect(self, session, clock):
        pid = str(uuid.uuid4())
        job = await jobs.enqueue(session, kind="test.jobs.ok", payload={"id": pid})
        outcomes = await jobs.run_ready_in_session(session)
        assert [(o.job_id, o.state, o.attempts) for o in outcomes] == [(job.id, "done", 1)]
        assert await jobs.run_ready_in_session(session) == []
        row = await _job(session, job.id)
        assert (row.state, row.attempts, row.finished_at, row.lease_until) == ("done", 1, clock.now(), None)
        assert CALLS == [("ok", {"id": pid})]
        assert await _count(session, "test.effect", uuid.UUID(pid)) == 1

    async def test_failure_backs_off_then_dies_after_max_attempts(self, session, clock):
        pid = str(uuid.uuid4())
        job = await jobs.enqueue(session, kind="test.jobs.boom", payload={"id": pid}, max_attempts=3)
        t0 = clock.now()

        [o] = await jobs.run_ready_in_session(session)
        row = await _job(session, job.id)
        assert (o.state, row.state, row.attempts) == ("pending", "pending", 1)
        assert row.run_after == t0 + timedelta(seconds=15)
        assert row.last_error == "RuntimeError: remote system unavailable"
        assert row.locked_by is None and row.lease_until is None

        assert await jobs.run_ready_in_session(session) == []  # not before its backoff
        clock.advance(seconds=14)
        assert await jobs.run_ready_in_session(session) == []
        clock.advance(seconds=1)
        [o] = await jobs.run_ready_in_session(session)
        row = await _job(session, job.id)
        assert (o.state, row.attempts, row.run_after) == ("pending", 2, clock.now() + timedelta(seconds=30))

        clock.advance(seconds=30)
        [o] = await jobs.run_ready_in_session(session)
        row = await _job(session, job.id)
        assert (o.state, row.state, row.attempts, row.finished_at) == ("dead", "dead", 3, clock.now())
        clock.advance(days=1)
        assert await jobs.run_ready_in_session(session) == []
        assert len(CALLS) == 3
        assert await _count(session, "test.partial", uuid.UUID(pid)) == 0  # every failed attempt rolled back

    async def test_backoff_doubles_and_is_capped(self):
        assert [jobs.backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [15, 30, 60, 120]
        assert jobs.backoff(30).total_seconds() == 3600

    async def test_only_kinds_with_a_handler_are_claimed(self, session):
        job = await jobs.enqueue(session, kind="test.jobs.nobody-handles-this", payload={})
        assert await jobs.run_ready_in_session(session) == []
        assert (await _job(session, job.id)).state == "pending"

    async def test_future_run_after_waits(self, session, clock):
        job = await jobs.enqueue(session, kind="test.jobs.ok", payload={"id": str(uuid.uuid4())},
                                 run_after=clock.now() + timedelta(hours=1))
        assert await jobs.run_ready_in_session(session) == []
        clock.advance(hours=1)
        assert [o.job_id for o in await jobs.run_ready_in_session(session)] == [job.id]


class TestLeases:
    async def test_claim_sets_running_with_a_lease(self, session, clock):
        job = await jobs.enqueue(session, kind="test.jobs.ok", payload={"id": str(uuid.uuid4())})
        claim = await jobs.claim_next(session, worker_id="w1")
        row = await _job(session, job.id)
        assert claim.id == job.id and claim.attempts == 1
        assert (row.state, row.attempts, row.locked_by) == ("running", 1, "w1")
        assert row.lease_until == clock.now() + timedelta(seconds=60)
        assert await jobs.claim_next(session, worker_id="w2") is None  # running jobs are not claimed again

    async def test_sweep_requeues_only_expired_leases(self, session, clock):
        job = await jobs.enqueue(session, kind="test.jobs.ok", payload={"id": str(uuid.uuid4())})
        await jobs.claim_next(session, worker_id="w1")
        clock.advance(seconds=59)
        assert await jobs.sweep_expired_leases(session) == 0
        clock.advance(seconds=2)
        assert await jobs.sweep_expired_leases(session) == 1
        row = await _job(session, job.id)
        assert (row.state, row.attempts, row.locked_by, row.lease_until) == ("pending", 1, None, None)
        assert row.last_error == "lease expired: worker lost"
        [o] = await jobs.run_ready_in_session(session)
        assert (o.state, o.attempts) == ("done", 2)

    async def test_sweep_buries_a_job_out_of_attempts(self, session, clock):
        job = await jobs.enqueue(session, kind="test.jobs.ok", payload={"id": str(uuid.uuid4())}, max_attempts=1)
        await jobs.claim_next(session, worker_id="w1")
        clock.advance(minutes=2)
        assert await jobs.sweep_expired_leases(session) == 1
        row = await _job(session, job.id)
        assert (row.state, row.finished_at) == ("dead", clock.now())


class TestEvents:
    async def test_publish_enqueues_one_job_per_subscriber(self, session):
        payload = {"person_id": str(uuid.uuid4())}
        await events.publish(session, "test.person_died", payload)
        kinds = (await session.execute(sa.select(Job.kind).where(Job.kind.like("event:test.person_died:%"))
                                       .order_by(Job.kind))).scalars().all()
        assert kinds == [
            "event:test.person_died:tests.domain.kernel.test_jobs.cancel_visits",
            "event:test.person_died:tests.domain.kernel.test_jobs.close_offers",
        ]
        outcomes = await jobs.run_ready_in_session(session)
        assert sorted(o.state for o in outcomes) == ["done", "done"]
        assert sorted(CALLS) == [("cancel_visits", payload), ("close_offers", payload)]

    async def test_publish_with_dedup_key_is_idempotent(self, session):
        for _ in range(2):
            await events.publish(session, "test.person_died", {"person_id": "p1"}, dedup_key="death:p1")
        n = (await session.execute(sa.select(sa.func.count()).select_from(Job)
                                   .where(Job.kind.like("event:test.person_died:%")))).scalar_one()
        assert n == 2

    async def test_publish_all_writes_every_subscriber_of_every_event_and_skips_known_keys(self, session):
        await events.publish(session, "test.person_died", {"person_id": "p2"}, dedup_key="death:p2")
        await events.publish_all(session, [("test.person_died", {"person_id": "p2"}, "death:p2"),
                                           ("test.person_died", {"person_id": "p3"}, "death:p3"),
                                           ("test.nobody_listens", {"x": 1}, None)])
        rows = (await session.execute(sa.select(Job.payload).where(Job.kind.like("event:test.person_died:%")))
                ).scalars().all()
        # two subscribers × two deaths: the second publication of p2 wrote nothing
        assert sorted(r["payload"]["person_id"] for r in rows) == ["p2", "p2", "p3", "p3"]
        assert session.info[jobs.ENQUEUED_FLAG] is True
        outcomes = await jobs.run_ready_in_session(session)
        assert [o.state for o in outcomes].count("done") >= 4

    async def test_enqueue_many_checks_the_payload_like_enqueue(self, session):
        with pytest.raises(TypeError):
            jobs.values(kind="test.jobs.ok", payload={"when": object()})
        await jobs.enqueue_many(session, [])  # nothing to write: no statement, no error

    async def test_event_without_subscribers_enqueues_nothing(self, session):
        await events.publish(session, "test.nobody_listens", {"x": 1})
        n = (await session.execute(sa.select(sa.func.count()).select_from(Job)
                                   .where(Job.kind.like("event:test.nobody_listens:%")))).scalar_one()
        assert n == 0


# ----------------------------------------------------------------- real transactions (a database of its own)


@pytest.fixture
async def factory(fresh_db):
    engine = create_async_engine(fresh_db["DATABASE_URL"])
    yield async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
    await engine.dispose()


class TestRealTransactions:
    async def test_job_of_a_rolled_back_transaction_never_runs(self, factory):
        async with factory() as s:
            await jobs.enqueue(s, kind="test.jobs.ok", payload={"id": str(uuid.uuid4())})
            await s.rollback()
        assert await jobs.drain(factory, budget_seconds=5) == []
        async with factory() as s:
            assert (await s.execute(sa.select(sa.func.count()).select_from(Job))).scalar_one() == 0
        assert CALLS == []

    async def test_committed_job_runs_once_and_its_effect_commits_with_done(self, factory, clock):
        pid = str(uuid.uuid4())
        async with factory() as s:
            job = await jobs.enqueue(s, kind="test.jobs.ok", payload={"id": pid})
            await s.commit()
        outcomes = await jobs.drain(factory, budget_seconds=5)
        assert [(o.state, o.attempts) for o in outcomes] == [("done", 1)]
        assert await jobs.drain(factory, budget_seconds=5) == []
        async with factory() as s:
            row = await _job(s, job.id)
            assert (row.state, row.finished_at) == ("done", clock.now())
            assert await _count(s, "test.effect", uuid.UUID(pid)) == 1

    async def test_failed_attempt_is_recorded_in_its_own_transaction(self, factory, clock):
        pid = str(uuid.uuid4())
        async with factory() as s:
            job = await jobs.enqueue(s, kind="test.jobs.boom", payload={"id": pid})
            await s.commit()
        [o] = await jobs.drain(factory, budget_seconds=5)
        async with factory() as s:
            row = await _job(s, job.id)
            assert (o.state, row.state, row.attempts) == ("pending", "pending", 1)
            assert row.run_after == clock.now() + timedelta(seconds=15)
            assert await _count(s, "test.partial", uuid.UUID(pid)) == 0

    async def test_a_live_workers_locked_job_is_not_swept_even_past_its_lease(self, factory, clock):
        async with factory() as s:
            job = await jobs.enqueue(s, kind="test.jobs.ok", payload={"id": str(uuid.uuid4())})
            await s.commit()
        async with factory() as s:
            claim = await jobs.claim_next(s, worker_id="slow")
            await s.commit()
        async with factory() as running:  # the handler's transaction holds the row lock
            assert await jobs._lock_claim(running, claim)
            clock.advance(minutes=5)
            async with factory() as sweeper:
                assert await jobs.sweep_expired_leases(sweeper) == 0
                await sweeper.commit()
            await running.rollback()  # the worker dies: its transaction ends, the lock goes
        async with factory() as sweeper:
            assert await jobs.sweep_expired_leases(sweeper) == 1
            await sweeper.commit()
        async with factory() as s:
            assert (await _job(s, job.id)).state == "pending"

    async def test_a_swept_claim_is_lost_and_does_not_run(self, factory, clock):
        async with factory() as s:
            job = await jobs.enqueue(s, kind="test.jobs.ok", payload={"id": str(uuid.uuid4())})
            await s.commit()
        async with factory() as s:
            claim = await jobs.claim_next(s, worker_id="w1")
            await s.commit()
        clock.advance(minutes=2)
        async with factory() as s:
            assert await jobs.sweep_expired_leases(s) == 1
            await s.commit()
        outcome = await jobs.run_claimed(factory, claim)
        assert outcome.state == "lost" and CALLS == []
        [again] = await jobs.drain(factory, budget_seconds=5)
        assert (again.job_id, again.state, again.attempts) == (job.id, "done", 2)

    async def test_concurrent_relays_never_run_a_job_twice(self, factory):
        async with factory() as s:
            for i in range(20):
                await jobs.enqueue(s, kind="test.jobs.ok", payload={"id": str(uuid.uuid4()), "i": i})
            await s.commit()
        results = await asyncio.gather(*(jobs.drain(factory, budget_seconds=20) for _ in range(4)))
        ran = [o.job_id for r in results for o in r]
        assert len(ran) == 20 and len(set(ran)) == 20
        assert sorted(p["i"] for _, p in CALLS) == list(range(20))
