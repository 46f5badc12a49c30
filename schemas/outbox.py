"""Contracts of the outbox to ASST (the integration operator's and the DPO's lists)."""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from domain.outbox.models import EVENT_LABELS, MESSAGE_STATE_LABELS, OutboxMessage
from domain.outbox.states import MACHINE


class OutboxMessagePublic(BaseModel):
    id: uuid.UUID = Field(description="Identificativo del messaggio; è anche la chiave di idempotenza")
    idempotency_key: str = Field(description="Inviata come intestazione X-Idempotency-Key e come identifier "
                                             "del Bundle: la stessa a ogni tentativo")
    event: str = Field(description="L'evento che ha prodotto il messaggio")
    event_label: str
    source_type: str = Field(description="vmd, care_plan, discharge_case, waiting_list_entry, consent")
    source_id: uuid.UUID
    source_state: str | None = Field(description="Lo stato del dato comunicato")
    person_id: uuid.UUID
    resource_types: list[str] = Field(description="Le risorse FHIR del Bundle")
    state: str = Field(description="pending, sent, withheld, dead")
    state_label: str
    allowed_actions: list[str]
    basis: str | None = Field(description="Consenso o base giuridica su cui il messaggio parte")
    withheld_reason: str | None = Field(description="Perché è trattenuto")
    attempts: int
    max_attempts: int
    next_attempt_at: datetime | None = Field(description="Prossimo tentativo (solo se in attesa)")
    last_status: int | None = Field(description="Ultimo codice HTTP ricevuto da ASST")
    last_error: str | None = Field(description="Ultimo errore (codice o tipo di errore, senza dati personali)")
    retries: int = Field(description="Quante volte un operatore l'ha rimesso in coda")
    created_at: datetime
    sent_at: datetime | None
    dead_at: datetime | None
    payload: dict[str, Any] | None = Field(
        description="Il Bundle FHIR (dati personali): solo per l'operatore integrazioni, assente per il DPO")

    @classmethod
    def of(cls, m: OutboxMessage, *, with_payload: bool) -> OutboxMessagePublic:
        state = str(m.state)
        return cls(id=m.id, idempotency_key=m.idempotency_key, event=m.event,
                   event_label=EVENT_LABELS.get(m.event, m.event), source_type=m.source_type, source_id=m.source_id,
                   source_state=m.source_state, person_id=m.person_id, resource_types=list(m.resource_types or []),
                   state=state, state_label=MESSAGE_STATE_LABELS[state], allowed_actions=MACHINE.allowed_actions(state),
                   basis=m.basis, withheld_reason=m.withheld_reason, attempts=m.attempts, max_attempts=m.max_attempts,
                   next_attempt_at=m.next_attempt_at if state == "pending" else None, last_status=m.last_status,
                   last_error=m.last_error, retries=m.retries, created_at=m.created_at, sent_at=m.sent_at,
                   dead_at=m.dead_at, payload=m.payload if with_payload else None)


class OutboxPage(BaseModel):
    items: list[OutboxMessagePublic]
    next_cursor: str | None = Field(default=None, description="Da passare come `cursor` per la pagina successiva.")
