"""Messages to ASST: writing one (with the decision whether it may go out at all), the relay's bookkeeping of each
attempt, and the integration operator's retry. Services never commit.

Nothing goes out without a basis: when a message is written, and again before every attempt, the person's consent
for `share_asst` or a legal basis recorded by the joint-care flows is looked up (`registry.consent.sharing_basis`);
without one the message is `withheld` (kept, visible, never silently dropped). A source that is itself the basis
(the protected-discharge protocol, which ASST started) says so with `source_basis`.
"""
from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.kernel import clock, jobs
from domain.kernel.errors import NotFound
from domain.kernel.settings import get_settings
from domain.outbox.models import MessageState, OutboxMessage
from domain.outbox.states import MACHINE
from domain.registry import consent
from domain.security import audit
from domain.security.permissions import Permission
from domain.security.principal import Principal

PURPOSE = "share_asst"
OBJECT = "outbox_message"
# The relay's job kind: the domain wakes it, the integration (integrations/asst/outbound.py) handles it.
RELAY_KIND = "outbox.relay"
NO_BASIS = "nessun consenso alla condivisione con ASST in vigore né base giuridica registrata"
NOT_FOUND = "Messaggio non trovato."


def backoff(attempts: int) -> timedelta:
    """Delay after `attempts` failed attempts: base * 2**(attempts-1) seconds, capped."""
    s = get_settings()
    return timedelta(seconds=min(s.outbox_backoff_max_seconds,
                                 s.outbox_backoff_base_seconds * (2 ** max(0, attempts - 1))))


async def wake_relay(session: AsyncSession, *, key: str, run_after=None) -> None:
    """One relay job; `key` makes it idempotent (the same wake twice enqueues nothing)."""
    await jobs.enqueue(session, kind=RELAY_KIND, payload={}, dedup_key=f"{RELAY_KIND}:{key}", run_after=run_after)


async def _basis(session: AsyncSession, person_id: uuid.UUID) -> tuple[str | None, str | None]:
    text = await consent.sharing_basis(session, person_id, PURPOSE)
    if text is None:
        return None, None
    return text, "consent" if text.startswith("consenso") else "legal_basis"


async def record(session: AsyncSession, *, message_id: uuid.UUID, ambito_id: uuid.UUID, person_id: uuid.UUID,
                 event: str, source_type: str, source_id: uuid.UUID, change: str, resource_types: list[str],
                 payload: dict[str, Any], source_state: str | None = None,
                 source_basis: str | None = None) -> OutboxMessage:
    """Write the message of one change (idempotent on event + source + change: a subscriber run twice writes it
    once), pending when a basis allows it, withheld otherwise, and wake the relay."""
    dedup = f"{event}:{source_id}:{change}"[:200]
    existing = (await session.execute(sa.select(OutboxMessage).where(OutboxMessage.dedup_key == dedup))
                ).scalar_one_or_none()
    if existing is not None:
        return existing
    basis, kind = (source_basis[:300], "source") if source_basis else await _basis(session, person_id)
    now = clock.now()
    values = dict(id=message_id, ambito_id=ambito_id, person_id=person_id, event=event, source_type=source_type,
                  source_id=source_id, source_state=source_state, dedup_key=dedup, idempotency_key=str(message_id),
                  resource_types=resource_types, payload=payload, basis=basis, basis_kind=kind,
                  state=(MessageState.pending if basis else MessageState.withheld).value,
                  withheld_reason=None if basis else NO_BASIS, max_attempts=get_settings().outbox_max_attempts,
                  next_attempt_at=now, created_at=now, updated_at=now)
    await session.execute(pg_insert(OutboxMessage).values(**values)
                          .on_conflict_do_nothing(index_elements=["dedup_key"]))
    msg = (await session.execute(sa.select(OutboxMessage).where(OutboxMessage.dedup_key == dedup)
                                 .execution_options(populate_existing=True))).scalar_one()
    if msg.state == MessageState.pending:
        await wake_relay(session, key=f"{msg.id}:new")
    return msg


async def last_source_state(session: AsyncSession, source_id: uuid.UUID) -> str | None:
    """The state the newest message about this record reported (a subscriber writes a message on a change of
    state only, while the record publishes every change)."""
    return (await session.execute(
        sa.select(OutboxMessage.source_state).where(OutboxMessage.source_id == source_id)
        .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc()).limit(1))).scalar_one_or_none()


# ---------------------------------------------------------------------------------------------------- the relay
async def next_ready(session: AsyncSession) -> OutboxMessage | None:
    """The oldest pending message due now, locked for the caller's transaction (another relay skips it). The lock
    is held while the message is sent: a relay killed mid-send releases it with its connection, and the message,
    still pending, is sent again by the next relay with the same idempotency key."""
    return (await session.execute(
        sa.select(OutboxMessage)
        .where(OutboxMessage.state == MessageState.pending.value, OutboxMessage.next_attempt_at <= clock.now())
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(1)
        .with_for_update(skip_locked=True).execution_options(populate_existing=True))).scalar_one_or_none()


async def has_ready(session: AsyncSession) -> bool:
    return bool((await session.execute(sa.select(sa.exists().where(
        OutboxMessage.state == MessageState.pending.value, OutboxMessage.next_attempt_at <= clock.now())))).scalar())


async def still_allowed(session: AsyncSession, msg: OutboxMessage) -> bool:
    """Check the basis again just before an attempt (a consent revoked since the message was written stops it):
    without one the message is withheld. A source basis stands."""
    if msg.basis_kind == "source":
        return True
    basis, kind = await _basis(session, msg.person_id)
    if basis is None:
        msg.state = MACHINE.next_state(msg.state, "withhold")
        msg.withheld_reason, msg.basis, msg.basis_kind, msg.updated_at = NO_BASIS, None, None, clock.now()
        return False
    msg.basis, msg.basis_kind = basis, kind
    return True


def delivered(msg: OutboxMessage, *, status: int) -> None:
    now = clock.now()
    msg.state = MACHINE.next_state(msg.state, "deliver")
    msg.attempts += 1
    msg.last_status, msg.sent_at, msg.updated_at = status, now, now


# Answers that another attempt can change: a timeout, too many requests, a conflict while ASST is busy with a copy,
# and every server error. Any other 4xx refuses the document itself: the same body would be refused again.
RETRIABLE_CLIENT_ERRORS = frozenset({408, 409, 425, 429})


def refused_for_good(status: int | None) -> bool:
    return status is not None and 400 <= status < 500 and status not in RETRIABLE_CLIENT_ERRORS


def failed(msg: OutboxMessage, *, error: str, status: int | None) -> MessageState:
    """One failed attempt: back off, or dead letter after max_attempts — at once when ASST refused the document
    itself (a 4xx another attempt cannot change), for the operator to look at. `error` carries no personal data
    (the status and the kind of failure, never the remote body)."""
    now = clock.now()
    msg.attempts += 1
    msg.last_error, msg.last_status, msg.updated_at = error[:1000], status, now
    if msg.attempts >= msg.max_attempts or refused_for_good(status):
        msg.state = MACHINE.next_state(msg.state, "bury")
        msg.dead_at = now
    else:
        msg.next_attempt_at = now + backoff(msg.attempts)
    return MessageState(msg.state)


# ---------------------------------------------------------------------------------------------------- operators
def _in_ambito(principal: Principal):
    return OutboxMessage.ambito_id == principal.ambito_id


async def get_message(session: AsyncSession, *, principal: Principal, message_id: uuid.UUID,
                      for_update: bool = False) -> OutboxMessage:
    """One message of the principal's Ambito (404 otherwise: another Ambito's messages are not revealed)."""
    q = sa.select(OutboxMessage).where(OutboxMessage.id == message_id, _in_ambito(principal))
    if for_update:
        q = q.with_for_update()
    msg = (await session.execute(q)).scalar_one_or_none()
    if msg is None:
        raise NotFound(NOT_FOUND)
    return msg


def shows_payload(principal: Principal) -> bool:
    """The payload is personal data: the integration operator sees it, the DPO the metadata only."""
    return Permission.outbox_payload in principal.permissions


def audit_read(action: str, msgs: list[OutboxMessage], principal: Principal) -> None:
    # A read of the payload is a read of the person's data; metadata names the person too (a message about them).
    audit.record(action=action, object_type=OBJECT, object_ids=[m.id for m in msgs],
                 person_ids=sorted({m.person_id for m in msgs}, key=str), result_count=len(msgs),
                 purpose="integration_payload" if shows_payload(principal) else "integration_metadata")


async def retry(session: AsyncSession, *, principal: Principal, message_id: uuid.UUID) -> OutboxMessage:
    """dead | withheld → pending: a fresh set of attempts from now (409 from any other state). A withheld message
    is checked for its basis again before it is sent, so a retry never bypasses consent."""
    msg = await get_message(session, principal=principal, message_id=message_id, for_update=True)
    msg.state = MACHINE.next_state(msg.state, "retry")
    now = clock.now()
    msg.attempts, msg.next_attempt_at, msg.dead_at, msg.withheld_reason = 0, now, None, None
    msg.max_attempts = get_settings().outbox_max_attempts
    msg.retries += 1
    msg.retried_by, msg.updated_at = principal.user_id, now
    await session.flush()
    await wake_relay(session, key=f"{msg.id}:retry:{msg.retries}")
    audit.record(action="update", object_type=OBJECT, object_ids=[msg.id], person_ids=[msg.person_id])
    return msg
