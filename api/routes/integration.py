"""The outbox to ASST, for the integration operator (messages with their payload, retry of dead letters) and the
DPO (metadata only). The system administrator has no access: the payloads are personal data."""
from __future__ import annotations

import uuid

from fastapi import APIRouter, Query

from api.deps import Authorized, Session
from domain.outbox import queries, service
from domain.outbox.models import MessageState
from domain.security.permissions import Permission
from schemas.outbox import OutboxMessagePublic, OutboxPage

router = APIRouter(tags=["integrazione ASST"])


@router.get("/integration/outbox", response_model=OutboxPage, summary="Messaggi verso ASST",
            description="I messaggi FHIR verso ASST dell'Ambito, dal più recente; `state=dead` elenca quelli non "
                        "recapitati (da riprovare), `withheld` quelli trattenuti perché manca il consenso o una base "
                        "giuridica. Il contenuto (`payload`, dati personali) solo per l'operatore integrazioni.")
async def list_messages(session: Session, p: Authorized(Permission.outbox_read),
                        state: MessageState | None = Query(None, description="pending, sent, withheld, dead"),
                        limit: int = Query(50, ge=1, le=200), cursor: str | None = Query(None, max_length=1000)):
    items, nxt = await queries.list_messages(session, principal=p, state=state, limit=limit, token=cursor)
    service.audit_read("list", items, p)
    with_payload = service.shows_payload(p)
    return OutboxPage(items=[OutboxMessagePublic.of(m, with_payload=with_payload) for m in items], next_cursor=nxt)


@router.get("/integration/outbox/{message_id}", response_model=OutboxMessagePublic, summary="Un messaggio verso ASST",
            description="Stato, tentativi, ultimo errore, base dell'invio; il Bundle FHIR solo per l'operatore "
                        "integrazioni.")
async def get_message(message_id: uuid.UUID, session: Session, p: Authorized(Permission.outbox_read)):
    msg = await service.get_message(session, principal=p, message_id=message_id)
    service.audit_read("read", [msg], p)
    return OutboxMessagePublic.of(msg, with_payload=service.shows_payload(p))


@router.post("/integration/outbox/{message_id}/retry", response_model=OutboxMessagePublic,
             summary="Riprova un messaggio non recapitato o trattenuto",
             description="Rimette in coda un messaggio `dead` o `withheld` con nuovi tentativi da subito, con la "
                         "stessa chiave di idempotenza. Il consenso o la base giuridica sono verificati di nuovo "
                         "prima dell'invio. 409 da ogni altro stato.")
async def retry(message_id: uuid.UUID, session: Session, p: Authorized(Permission.outbox_retry)):
    msg = await service.retry(session, principal=p, message_id=message_id)
    return OutboxMessagePublic.of(msg, with_payload=service.shows_payload(p))
