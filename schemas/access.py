"""Contracts of consent, break-glass and the access log."""
from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from domain.security.models import ConsentPurpose, GrantorKind


class ConsentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: ConsentPurpose = Field(description="Finalità: cura, condivisione con ASST / RSA / ETS / CVI")
    grantor_kind: GrantorKind = Field(description="Chi presta il consenso: la persona, il genitore, il tutore, l'AdS")
    grantor_relation_id: uuid.UUID | None = Field(
        default=None, description="Relazione (genitore, tutore, AdS) di chi presta il consenso per conto della persona")
    valid_from: date
    valid_to: date | None = None
    scope_note: str | None = Field(default=None, max_length=500)
    document_ref: str | None = Field(default=None, max_length=200)


class ConsentRevoke(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=3, max_length=500)


class ConsentPublic(BaseModel):
    id: uuid.UUID
    person_id: uuid.UUID
    purpose: str
    purpose_label: str
    grantor_kind: str
    grantor_relation_id: uuid.UUID | None
    valid_from: date
    valid_to: date | None
    scope_note: str | None
    document_ref: str | None
    recorded_by: uuid.UUID
    recorded_at: datetime
    revoked_at: datetime | None
    revocation_reason: str | None
    active: bool


class BreakGlassCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    person_id: uuid.UUID
    reason: str = Field(min_length=15, max_length=1000, description="Motivo obbligatorio dell'accesso straordinario")
    hours: float | None = Field(default=None, gt=0, description="Durata in ore (predefinita 4)")


class BreakGlassPublic(BaseModel):
    id: uuid.UUID
    person_id: uuid.UUID
    reason: str
    started_at: datetime
    expires_at: datetime
    ended_at: datetime | None
    active: bool


class AccessLogEntry(BaseModel):
    at: datetime
    actor_username: str | None
    roles: list[str]
    organisations: list[str]
    action: str
    object_type: str | None
    route: str | None
    purpose: str | None
    legal_basis: str | None
    outcome: str
    break_glass: bool


class AccessLogPage(BaseModel):
    person_id: uuid.UUID
    items: list[AccessLogEntry]
    next_cursor: str | None = None
