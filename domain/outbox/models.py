"""The outbox to ASST: one row per message, the FHIR transaction Bundle it carries, its basis and its delivery.

A message is written by the integration's event subscriber (integrations/asst/outbound.py) when a VMD is concluded,
a plan is activated or closed, a discharge case or a waiting-list application changes state, or a consent changes.
The row is also the relay's queue: `state = pending` and `next_attempt_at <= now` is what the relay sends next.
"""
from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from domain.kernel import person_refs
from domain.kernel.columns import created_at_field, fk, id_field, jsonb_field, ts_field


class MessageState(StrEnum):
    pending = "pending"    # waiting for its (next) attempt, or for the ASST address to be configured
    sent = "sent"          # ASST answered 2xx
    withheld = "withheld"  # no consent and no recorded legal basis for sharing with ASST: not sent, kept visible
    dead = "dead"          # out of attempts (dead letter): an integration operator retries it


MESSAGE_STATE_LABELS = {"pending": "In attesa di invio", "sent": "Inviato", "withheld": "Trattenuto (senza base)",
                        "dead": "Non recapitato (da riprovare)"}

# The events that write a message, with their Italian label (what the operator reads).
EVENT_LABELS = {
    "vmd.concluded": "Valutazione multidimensionale conclusa",
    "care_plan.state_changed": "Progetto individualizzato attivato o chiuso",
    "discharge.state_changed": "Dimissione protetta: cambio di stato",
    "waiting_list.state_changed": "Lista d'attesa: cambio di stato della domanda",
    "consent.changed": "Consenso registrato o revocato",
}


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox_message"
    __table_args__ = (
        # The relay's queue: the oldest ready pending message first.
        sa.Index("ix_outbox_message_ready", "next_attempt_at", "id", postgresql_where=sa.text("state = 'pending'")),
        # The operator's lists: an Ambito's messages in one state, newest first (keyset on created_at, id).
        sa.Index("ix_outbox_message_list", "ambito_id", "state", "created_at", "id"),
        sa.Index("ix_outbox_message_all", "ambito_id", "created_at", "id"),
        sa.Index("ix_outbox_message_source", "source_id", "created_at"),
        sa.CheckConstraint("state in ('pending', 'sent', 'withheld', 'dead')", name="ck_outbox_message_state"),
    )

    id: uuid.UUID = id_field()
    ambito_id: uuid.UUID = fk("organisation.id", index=False)
    person_id: uuid.UUID = fk("person.id")
    event: str = Field(max_length=60)
    source_type: str = Field(max_length=60)
    source_id: uuid.UUID
    source_state: str | None = Field(default=None, max_length=40)  # the record's state the message reports
    # One message per (source, change): the subscriber's job may run twice, the message is written once.
    dedup_key: str = Field(max_length=200, unique=True)
    # Sent as the X-Idempotency-Key header and as the Bundle's identifier: the same on every attempt.
    idempotency_key: str = Field(max_length=80, unique=True)
    resource_types: list[str] = Field(default_factory=list, sa_type=sa.ARRAY(sa.String(40)))
    payload: dict[str, Any] = jsonb_field()  # the FHIR transaction Bundle (personal data)
    state: MessageState = Field(default=MessageState.pending, sa_type=sa.String(20))
    basis: str | None = Field(default=None, max_length=300)  # consent or legal basis it went out on
    # consent | legal_basis: checked again before each attempt; source: the record itself is the basis (a protected
    # discharge is a protocol ASST is party to), so a later consent change does not stop it.
    basis_kind: str | None = Field(default=None, max_length=20)
    withheld_reason: str | None = Field(default=None, max_length=300)
    attempts: int = 0
    max_attempts: int = 8
    next_attempt_at: datetime = created_at_field()
    last_error: str | None = Field(default=None, max_length=1000)  # no personal data: status and exception type
    last_status: int | None = None
    retries: int = 0  # how many times an operator put it back in the queue
    retried_by: uuid.UUID | None = None
    created_at: datetime = created_at_field()
    sent_at: datetime | None = ts_field()
    dead_at: datetime | None = ts_field()
    updated_at: datetime | None = ts_field()


# A message records what went out about a person: after a merge it keeps the id it was sent with.
person_refs.keep_old_id(OutboxMessage, "person_id")
