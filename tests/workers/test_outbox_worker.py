"""A real Celery worker killed (SIGKILL) while it sends a message to ASST: nothing is lost, and ASST receives at
most one duplicate, which carries the same idempotency key (and the same Bundle identifier) as the first copy.

The relay holds the message's row lock while it sends; the killed worker's connection dies, Postgres rolls its
transaction back, the message is still pending, the lease sweep puts the relay job back and a second worker
sends the message again with its key (docs/decisions/fhir.md, "Outbound to ASST")."""
from __future__ import annotations

import collections
import uuid
from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from domain.outbox import service as outbox
from domain.outbox.models import OutboxMessage
from integrations.asst import outbound
from tests.factories.cartelle import create_person
from tests.integrations.asst.fake_asst import FakeAsst
from tests.workers.procs import celery_env, kill, start_celery, start_worker, wait_for

N = 3


async def _messages(engine) -> list[uuid.UUID]:
    async with AsyncSession(engine, expire_on_commit=False) as s:
        person = await create_person(s, comune="comune-crema", birth_date=date(1941, 6, 6))
        ids = []
        for i in range(N):
            mid = uuid.uuid4()
            resource = {"resourceType": "Consent", "id": str(uuid.uuid4()), "status": "active",
                        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                              "code": "patient-privacy"}]},
                        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
                        "patient": {"reference": f"Patient/{person.id}"}}
            await outbox.record(s, message_id=mid, ambito_id=person.ambito_id, person_id=person.id,
                                event="consent.changed", source_type="consent", source_id=uuid.UUID(resource["id"]),
                                change=f"granted-{i}", resource_types=["Consent"],
                                payload=outbound.bundle(mid, [resource]), source_basis="protocollo di prova")
            ids.append(mid)
        await s.commit()
    return ids


async def test_a_worker_killed_mid_send_loses_nothing_and_duplicates_at_most_one_message(fresh_db, tmp_path, clock):
    clock.set(datetime.now(UTC))  # the workers run on the system clock: leases must really expire
    fake = FakeAsst().start()
    fake.script("hang")  # the first request is held: the worker is mid-send when it is killed
    engine = create_async_engine(fresh_db["DATABASE_URL"])
    logs = [tmp_path / "beat.log", tmp_path / "worker1.log", tmp_path / "worker2.log"]
    beat = worker1 = worker2 = None
    try:
        ids = await _messages(engine)
        env = celery_env(fresh_db, JOB_LEASE_SECONDS="5", JOB_SWEEP_SECONDS="1", JOB_RELAY_SECONDS="1",
                         ASST_FHIR_BASE_URL=fake.url, ASST_FHIR_TIMEOUT_SECONDS="4")
        beat = start_celery(["beat", "--loglevel=INFO", "-s", str(tmp_path / "beat-schedule")], env, logs[0])
        worker1 = start_worker(env, logs[1])

        async def in_flight():
            return len(fake.received) >= 1

        await wait_for(in_flight, timeout=90, what="the first message to reach ASST", logs=logs)
        kill(worker1)
        assert worker1.returncode == -9
        first = fake.received[0]
        async with AsyncSession(engine) as s:
            states = dict((await s.execute(sa.select(OutboxMessage.id, OutboxMessage.state))).all())
        assert states[uuid.UUID(first.key)] == "pending"  # the killed send left no trace but the request itself
        fake.release()

        worker2 = start_worker(env, logs[2])

        async def all_sent():
            async with AsyncSession(engine) as s:
                rows = (await s.execute(sa.select(OutboxMessage.state).where(OutboxMessage.id.in_(ids)))).scalars()
                return all(state == "sent" for state in rows)

        await wait_for(all_sent, timeout=120, what="every message to be sent after the kill", logs=logs)
        keys = collections.Counter(fake.keys())
        assert set(keys) == {str(i) for i in ids}  # nothing lost
        assert sorted(keys.values()) == [1] * (N - 1) + [2]  # at most one duplicate...
        assert keys[first.key] == 2  # ...the message in flight at the kill
        copies = [r for r in fake.received if r.key == first.key]
        assert copies[0].body == copies[1].body  # same Bundle, same identifier
        assert copies[1].body["identifier"]["value"] == f"urn:uuid:{first.key}"
    finally:
        fake.release()
        for p in (worker1, worker2, beat):
            kill(p)
        fake.stop()
        await engine.dispose()
