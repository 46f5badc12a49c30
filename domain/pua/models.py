"""PUA access requests: intake, first-level triage, orientation or referral."""
from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field, SQLModel

from domain.kernel import person_refs
from domain.kernel.columns import created_at_field, fk, id_field, jsonb_field, ts_field


class Channel(StrEnum):
    desk = "desk"
    phone = "phone"
    online = "online"
    referral_mmg = "referral_mmg"
    referral_hospital = "referral_hospital"
    referral_social_worker = "referral_social_worker"
    referral_ets = "referral_ets"


CHANNEL_LABELS = {
    "desk": "Sportello", "phone": "Telefono", "online": "Richiesta online", "referral_mmg": "Invio del MMG/PLS",
    "referral_hospital": "Segnalazione ospedaliera", "referral_social_worker": "Invio dell'assistente sociale",
    "referral_ets": "Invio di un ente del Terzo Settore",
}


class RequesterKind(StrEnum):
    self = "self"
    family = "family"
    caregiver = "caregiver"
    legal_representative = "legal_representative"
    mmg = "mmg"
    hospital = "hospital"
    social_worker = "social_worker"
    ets = "ets"
    other = "other"


class AccessState(StrEnum):
    registered = "registered"
    in_reception = "in_reception"
    first_level_done = "first_level_done"
    oriented = "oriented"
    referred_vmd = "referred_vmd"
    referred_cot = "referred_cot"
    referred_cot_vmd = "referred_cot_vmd"  # both at once (triage outcome "Attivazione della COT … e VMD")
    withdrawn = "withdrawn"
    cancelled = "cancelled"


ACCESS_STATE_LABELS = {
    "registered": "Registrata", "in_reception": "In accoglienza",
    "first_level_done": "Valutazione di primo livello svolta",
    "oriented": "Orientata (bisogno semplice)", "referred_vmd": "Inviata a VMD", "referred_cot": "Inviata alla COT",
    "referred_cot_vmd": "Inviata alla COT e a VMD",
    "withdrawn": "Ritirata", "cancelled": "Annullata",
}


class AccessRequest(SQLModel, table=True):
    __tablename__ = "access_request"
    __table_args__ = (
        sa.Index("ix_access_request_open", "ambito_id", "state", "registered_at"),
        # 0021_pua: the Ambito list (newest first, keyset on registered_at, id) and "what I registered".
        sa.Index("ix_access_request_ambito_registered", "ambito_id", "registered_at", "id"),
        sa.Index("ix_access_request_operator", "operator_id", "registered_at"),
    )

    id: uuid.UUID = id_field()
    ambito_id: uuid.UUID = fk("organisation.id", index=False)
    person_id: uuid.UUID = fk("person.id")
    cartella_id: uuid.UUID | None = fk("cartella.id", nullable=True)
    channel: Channel = Field(sa_type=sa.String(30))
    requester_kind: RequesterKind = Field(sa_type=sa.String(30))
    requester_name: str | None = Field(default=None, max_length=200)
    requester_contact: str | None = Field(default=None, max_length=200)
    referring_user_id: uuid.UUID | None = fk("app_user.id", nullable=True)
    referring_org_id: uuid.UUID | None = fk("organisation.id", nullable=True, index=False)
    reported_need: str = Field(max_length=4000)
    need_domains: list[str] = Field(default_factory=list, sa_type=ARRAY(sa.String(30)))
    location_org_id: uuid.UUID = fk("organisation.id", index=False)
    operator_id: uuid.UUID = fk("app_user.id", index=False)
    # the person's comune of residence at registration: the indicators count by it (0049_start_residence)
    residence_comune_id: uuid.UUID | None = fk("organisation.id", nullable=True, index=False)
    state: AccessState = Field(default=AccessState.registered, sa_type=sa.String(30))
    registered_at: datetime = created_at_field()
    reception_at: datetime | None = ts_field()
    first_level_at: datetime | None = ts_field()
    triage_response_id: uuid.UUID | None = None  # instrument_response with context (access_request, id)
    complexity: str | None = Field(default=None, max_length=20)  # simple | complex (from the triage)
    suggested_path: str | None = Field(default=None, max_length=20)  # orientation | vmd | cot (0021_pua)
    orientation: dict[str, Any] = jsonb_field()  # services suggested, information given, target organisation
    vmd_id: uuid.UUID | None = fk("vmd.id", nullable=True, index=False)
    closed_at: datetime | None = ts_field()
    close_reason: str | None = Field(default=None, max_length=500)
    version: int = 1


person_refs.register(AccessRequest, "person_id")
