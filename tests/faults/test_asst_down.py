"""The ASST endpoint down for a day, then back (issue 19): for the first hours nothing listens at its address
(connection refused), then its proxy answers 503. Messages written during the day back off with the configured
schedule, become dead letters after the configured attempts, and are delivered once an operator retries them when
ASST is back; a message written after the return goes at once. Nothing is lost and nothing reaches ASST twice: each
message arrives once, under its own idempotency key. The business clock moves the day; the relay runs every
minute of it, as the worker would (domain.kernel.jobs.run_ready_in_session: the same claim, handler and failure
path, in the test's transaction)."""
from __future__ import annotations

import socket
from datetime import timedelta

import pytest
import sqlalchemy as sa

from domain.kernel.settings import get_settings
from domain.outbox import service as outbox
from domain.outbox.models import OutboxMessage
from domain.security.models import Role
from domain.security.principal import load_principal
from tests.integrations.asst.fake_asst import FakeAsst
from tests.integrations.asst.test_outbound import _case, _one_message, _run
from tests.support import make_user

ATTEMPTS, BASE, CAP = 8, 30, 3600
# The waits between the attempts of one message: base × 2^(n-1), capped; dead at the last attempt.
SCHEDULE = [min(BASE * 2 ** n, CAP) for n in range(ATTEMPTS - 1)]


def _closed_port_url() -> str:
    """An address on 127.0.0.1 where nothing listens (bound, then closed: refused until someone takes it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/fhir"


@pytest.fixture
def asst(monkeypatch):
    fake = FakeAsst().start()

    def point_to(url: str) -> None:
        monkeypatch.setenv("ASST_FHIR_BASE_URL", url)
        get_settings.cache_clear()

    for k, v in {"ASST_FHIR_TIMEOUT_SECONDS": "2", "OUTBOX_MAX_ATTEMPTS": str(ATTEMPTS),
                 "OUTBOX_BACKOFF_BASE_SECONDS": str(BASE), "OUTBOX_BACKOFF_MAX_SECONDS": str(CAP)}.items():
        monkeypatch.setenv(k, v)
    point_to(_closed_port_url())
    yield fake, point_to
    fake.stop()
    monkeypatch.undo()
    get_settings.cache_clear()


async def _state(session, ids) -> dict:
    rows = (await session.execute(sa.select(OutboxMessage).where(OutboxMessage.id.in_(ids))
                                  .execution_options(populate_existing=True))).scalars()
    return {m.id: m for m in rows}


async def test_a_day_without_asst_then_back(session, clock, asst):
    fake, point_to = asst
    person, *_ = await _case(session)
    day_start = clock.now()
    written: dict = {}  # message id -> when it was written
    for minute in range(24 * 60):
        if minute == 8 * 60:  # from 08:00 the proxy answers, with 503 for everything
            fake.default = 503
            point_to(fake.url)
        if minute in (0, 5 * 60, 8 * 60 + 30, 20 * 60):
            msg = await _one_message(session, person)
            written[msg.id] = clock.now()
        await _run(session)
        clock.advance(minutes=1)

    states = await _state(session, written)
    assert {m.state for m in states.values()} == {"dead"}
    assert {m.attempts for m in states.values()} == {ATTEMPTS}
    # The attempts followed the schedule: from the first to the dead letter, the waits plus at most a minute each
    # (the relay runs every minute).
    for mid, at in written.items():
        lived = (states[mid].dead_at - at).total_seconds()
        assert sum(SCHEDULE) <= lived <= sum(SCHEDULE) + 60 * ATTEMPTS, (mid, lived)
    # What reached the proxy: only attempts made after 08:00, each under its message's key, none accepted.
    assert fake.received and all(r.key in {str(i) for i in written} for r in fake.received)
    assert {m.last_status for m in states.values() if m.dead_at > day_start + timedelta(hours=8)} == {503}
    assert {m.last_status for m in states.values() if m.dead_at < day_start + timedelta(hours=8)} == {None}
    refused_before = len(fake.received)

    # ASST is back. Dead letters are not retried by themselves; a new message goes at once.
    fake.default = 200
    await _run(session)
    assert len(fake.received) == refused_before
    late = await _one_message(session, person)
    await _run(session)
    assert (await _state(session, [late.id]))[late.id].state == "sent"

    # The integration operator retries the dead letters: each is delivered, once.
    operator = await load_principal(session, str(
        (await make_user(session, Role.integration_operator, "ambito-crema")).id))
    for mid in written:
        await outbox.retry(session, principal=operator, message_id=mid)
    await _run(session)
    states = await _state(session, [*written, late.id])
    assert {m.state for m in states.values()} == {"sent"}
    accepted = [r.key for r in fake.received[refused_before:]]
    assert sorted(accepted) == sorted(str(i) for i in [*written, late.id])  # nothing lost, nothing twice
    assert all(r.body["identifier"]["value"].endswith(r.key) for r in fake.received[refused_before:])
