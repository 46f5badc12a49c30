"""The case diary of a cartella and its attachments."""
from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from domain.kernel.columns import created_at_field, fk, id_field, ts_field


class EntryType(StrEnum):
    colloquio = "colloquio"
    visita_domiciliare = "visita_domiciliare"
    telefonata = "telefonata"
    riunione = "riunione"
    nota = "nota"


ENTRY_TYPE_LABELS = {"colloquio": "Colloquio", "visita_domiciliare": "Visita domiciliare",
                     "telefonata": "Telefonata", "riunione": "Riunione", "nota": "Nota"}


class DiaryEntry(SQLModel, table=True):
    """Editable by its author for 24 hours; afterwards it is amended by a new entry that points at it."""

    __tablename__ = "diary_entry"
    __table_args__ = (sa.Index("ix_diary_cartella_time", "cartella_id", "occurred_at"),)

    id: uuid.UUID = id_field()
    cartella_id: uuid.UUID = fk("cartella.id", index=False)
    type: EntryType = Field(sa_type=sa.String(30))
    occurred_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    text: str = Field(max_length=20000)
    author_id: uuid.UUID = fk("app_user.id")
    amends_id: uuid.UUID | None = fk("diary_entry.id", nullable=True)
    follow_up_due: date | None = None
    created_at: datetime = created_at_field()
    updated_at: datetime | None = ts_field()
    version: int = 1


class Attachment(SQLModel, table=True):
    """Metadata only: the bytes live in the attachment store, addressed by checksum."""

    __tablename__ = "attachment"
    __table_args__ = (sa.Index("ix_attachment_owner", "owner_type", "owner_id"),)

    id: uuid.UUID = id_field()
    cartella_id: uuid.UUID = fk("cartella.id")
    owner_type: str | None = Field(default=None, max_length=40)  # diary_entry | care_plan | vmd | relation ...
    owner_id: uuid.UUID | None = None
    kind: str = Field(max_length=40)  # ads_decree | signed_plan | urgency_evidence | other
    filename: str = Field(max_length=255)
    content_type: str = Field(max_length=100)
    size_bytes: int
    sha256: str = Field(max_length=64)
    storage_key: str = Field(max_length=200)
    uploaded_by: uuid.UUID = fk("app_user.id", index=False)
    uploaded_at: datetime = created_at_field()
