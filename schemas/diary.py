"""Contracts of the case diary and attachments."""
from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from domain.diary.models import EntryType


class DiaryEntryCreate(BaseModel):
    """Nuova voce di diario (o rettifica di una voce con `amends_id`)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"type": "visita_domiciliare", "occurred_at": "2026-03-02T08:15:00+01:00",
         "text": "Visita a domicilio con la figlia: casa in ordine, difficoltà a fare la doccia da sola.",
         "follow_up_due": "2026-03-16"}]})

    type: EntryType = Field(description="colloquio, visita_domiciliare, telefonata, riunione, nota")
    occurred_at: datetime = Field(description="Data e ora dell'evento")
    text: str = Field(min_length=1, max_length=20000, description="Testo della voce.")
    follow_up_due: date | None = Field(default=None, description="Data di verifica: crea un'attività per l'autore")
    amends_id: uuid.UUID | None = Field(default=None, description="Voce che questa rettifica (dopo 24 ore)")


class DiaryEntryUpdate(BaseModel):
    """Modifica di una voce: solo l'autore, entro 24 ore; solo i campi presenti cambiano."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"text": "Visita a domicilio con la figlia: difficoltà a fare la doccia e a salire le scale."}]})

    type: EntryType | None = Field(default=None, description="colloquio, visita_domiciliare, telefonata, "
                                                             "riunione, nota")
    occurred_at: datetime | None = Field(default=None, description="Data e ora dell'evento")
    text: str | None = Field(default=None, min_length=1, max_length=20000, description="Testo della voce")
    follow_up_due: date | None = Field(default=None, description="Data di verifica")


class DiaryEntryPublic(BaseModel):
    id: uuid.UUID
    cartella_id: uuid.UUID
    type: str
    type_label: str
    occurred_at: datetime
    text: str
    author_id: uuid.UUID
    amends_id: uuid.UUID | None
    follow_up_due: date | None
    created_at: datetime
    updated_at: datetime | None
    version: int
    editable_until: datetime


class AttachmentPublic(BaseModel):
    id: uuid.UUID
    cartella_id: uuid.UUID
    owner_type: str | None
    owner_id: uuid.UUID | None
    kind: str
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    uploaded_by: uuid.UUID
    uploaded_at: datetime
