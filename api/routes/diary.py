"""Case diary and attachments of a cartella."""
from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import Response

from api.deps import Authorized, Session
from api.downloads import content_disposition
from domain.diary import policy, service
from domain.diary.models import ENTRY_TYPE_LABELS, DiaryEntry
from domain.kernel.errors import Invalid
from domain.kernel.settings import get_settings
from domain.security.permissions import Permission
from schemas.diary import AttachmentPublic, DiaryEntryCreate, DiaryEntryPublic, DiaryEntryUpdate

router = APIRouter(tags=["diario e allegati"])


def _entry(e: DiaryEntry) -> dict:
    return {**e.model_dump(exclude={"type"}), "type": str(e.type), "type_label": ENTRY_TYPE_LABELS[str(e.type)],
            "editable_until": e.created_at + policy.EDIT_WINDOW}


@router.get("/cartelle/{cartella_id}/diary", response_model=list[DiaryEntryPublic], summary="Diario della cartella",
            description="Le voci del diario dalla più recente. Per la pagina successiva passare `before_at` e "
                        "`before_id` dell'ultima voce ricevuta. Ogni voce dice fino a quando il suo autore può "
                        "modificarla (`editable_until`).")
async def list_diary(cartella_id: uuid.UUID, session: Session, p: Authorized(Permission.diary_read),
                     limit: int = Query(50, ge=1, le=200), before_at: datetime | None = None,
                     before_id: uuid.UUID | None = None):
    before = (before_at, before_id) if before_at and before_id else None
    return [_entry(e) for e in await service.list_entries(session, principal=p, cartella_id=cartella_id,
                                                          limit=limit, before=before)]


@router.post("/cartelle/{cartella_id}/diary", response_model=DiaryEntryPublic, status_code=201,
             summary="Nuova voce di diario (o rettifica di una voce con amends_id)",
             description="Colloquio, visita domiciliare, telefonata, riunione o nota, con data e ora (con fuso "
                         "orario, non nel futuro). `follow_up_due` crea un'attività di verifica per l'autore. "
                         "Dopo 24 ore una voce non si modifica: si aggiunge una rettifica con `amends_id`.")
async def add_diary(cartella_id: uuid.UUID, body: DiaryEntryCreate, session: Session,
                    p: Authorized(Permission.diary_write)):
    return _entry(await service.add_entry(session, principal=p, cartella_id=cartella_id, **body.model_dump()))


@router.patch("/diary/{entry_id}", response_model=DiaryEntryPublic,
              summary="Modifica una voce: solo l'autore, entro 24 ore",
              description="Modifica parziale di una propria voce entro 24 ore dalla creazione; dopo risponde 409 "
                          "(si aggiunge una rettifica). Altri utenti: 403.")
async def edit_diary(entry_id: uuid.UUID, body: DiaryEntryUpdate, session: Session,
                     p: Authorized(Permission.diary_write)):
    changes = body.model_dump(exclude_unset=True)
    for k in ("type", "occurred_at", "text"):
        if k in changes and changes[k] is None:
            raise Invalid(k, "non può essere vuoto")
    return _entry(await service.edit_entry(session, principal=p, entry_id=entry_id, changes=changes))


@router.get("/cartelle/{cartella_id}/attachments", response_model=list[AttachmentPublic],
            summary="Allegati della cartella",
            description="Gli allegati della cartella (nome, tipo, dimensione, impronta SHA-256, chi li ha "
                        "caricati), senza contenuto: si scaricano uno alla volta.")
async def list_attachments(cartella_id: uuid.UUID, session: Session, p: Authorized(Permission.attachment_read)):
    return await service.list_attachments(session, principal=p, cartella_id=cartella_id)


@router.post("/cartelle/{cartella_id}/attachments", response_model=AttachmentPublic, status_code=201,
             summary="Carica un allegato (formati ammessi e dimensione massima da configurazione)",
             description="`multipart/form-data` con il file e il tipo di allegato. Formati ammessi (contenuto "
                         "verificato, non solo il nome): PDF, JPEG, PNG, testo, DOCX; dimensione massima 10 MB "
                         "(configurabili). Un formato non ammesso o un file troppo grande risponde 422 sul campo "
                         "`file`; con il volume degli allegati pieno risponde 507 e nulla è registrato.")
async def upload_attachment(cartella_id: uuid.UUID, session: Session, p: Authorized(Permission.attachment_write),
                            file: UploadFile = File(..., description="Il file da allegare."),
                            kind: str = Form(..., description="Tipo di allegato: ads_decree, signed_plan, "
                                             "urgency_evidence, consent_form, medical_report, other.",
                                             examples=["signed_plan"]),
                            owner_type: str | None = Form(None, description="Oggetto a cui l'allegato si "
                                                          "riferisce (es. care_plan).", examples=["care_plan"]),
                            owner_id: uuid.UUID | None = Form(None, description="Identificativo dell'oggetto a "
                                                              "cui l'allegato si riferisce.")):
    limit = get_settings().attachment_max_bytes
    data = await file.read(limit + 1)  # one byte more than allowed tells "too large" without reading it all
    return await service.add_attachment(session, principal=p, cartella_id=cartella_id, kind=kind,
                                        filename=file.filename or "allegato", content_type=file.content_type or "",
                                        data=data, owner_type=owner_type, owner_id=owner_id)


@router.get("/attachments/{attachment_id}/content", summary="Scarica un allegato", response_class=Response,
            description="Il contenuto del file con il suo tipo, come allegato da salvare (`Content-Disposition`) "
                        "e con l'impronta SHA-256 nell'intestazione `Digest`. Ogni scaricamento è registrato.",
            responses={200: {"content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                             "description": "Il file, con il suo tipo di contenuto"}})
async def download_attachment(attachment_id: uuid.UUID, session: Session, p: Authorized(Permission.attachment_read)):
    att, data = await service.read_attachment(session, principal=p, attachment_id=attachment_id)
    return Response(data, media_type=att.content_type,
                    headers={"Content-Disposition": content_disposition(att.filename),
                             "X-Content-Type-Options": "nosniff", "Digest": f"sha-256={att.sha256}"})
