"""Multidimensional assessment (VMD): request, assessors from both sides, instruments, equipe, outcome."""
from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field, SQLModel

from domain.kernel import person_refs
from domain.kernel.columns import created_at_field, fk, id_field, jsonb_field, ts_field


class VmdTrigger(StrEnum):
    pua = "pua"
    rsa_application = "rsa_application"
    udo_access = "udo_access"
    measure_b1 = "measure_b1"
    measure_b2 = "measure_b2"
    dopo_di_noi = "dopo_di_noi"
    pro_vi = "pro_vi"
    protected_discharge = "protected_discharge"
    mmg = "mmg"
    cdcd = "cdcd"
    asd = "asd"
    invalidita_civile = "invalidita_civile"
    other = "other"


VMD_TRIGGER_LABELS = {
    "pua": "Bisogno complesso al PUA", "rsa_application": "Domanda di ingresso in RSA",
    "udo_access": "Accesso a unità d'offerta sociosanitaria", "measure_b1": "Misura B1", "measure_b2": "Misura B2",
    "dopo_di_noi": "Dopo di Noi (L. 112/2016)", "pro_vi": "Progetto di Vita Indipendente (Pro.Vi)",
    "protected_discharge": "Dimissione protetta", "mmg": "Richiesta del MMG/specialista", "cdcd": "Segnalazione CDCD",
    "asd": "Percorso autismo", "invalidita_civile": "Invalidità civile", "other": "Altro",
}


class VmdState(StrEnum):
    requested = "requested"
    scheduled = "scheduled"
    in_progress = "in_progress"
    equipe_review = "equipe_review"
    concluded = "concluded"
    cancelled = "cancelled"


VMD_STATE_LABELS = {
    "requested": "Richiesta", "scheduled": "Programmata", "in_progress": "In corso",
    "equipe_review": "In riunione d'équipe", "concluded": "Conclusa", "cancelled": "Annullata",
}


class VmdOutcome(StrEnum):
    project_proposed = "project_proposed"
    waiting_list = "waiting_list"
    measure_eligible = "measure_eligible"
    measure_not_eligible = "measure_not_eligible"
    no_need = "no_need"


VMD_OUTCOME_LABELS = {
    "project_proposed": "Proposta di progetto individualizzato", "waiting_list": "Inserimento in lista d'attesa",
    "measure_eligible": "Idoneo alla misura", "measure_not_eligible": "Non idoneo alla misura",
    "no_need": "Nessun bisogno rilevato",
}


class Vmd(SQLModel, table=True):
    __tablename__ = "vmd"
    __table_args__ = (
        sa.Index("ix_vmd_state", "ambito_id", "state", "requested_at"),
        # the integration indicator counts VMDs concluded in a period (0022_assessment)
        sa.Index("ix_vmd_concluded", "ambito_id", "concluded_at", postgresql_where=sa.text("state = 'concluded'")),
    )

    id: uuid.UUID = id_field()
    ambito_id: uuid.UUID = fk("organisation.id", index=False)
    person_id: uuid.UUID = fk("person.id")
    cartella_id: uuid.UUID = fk("cartella.id")
    trigger: VmdTrigger = Field(sa_type=sa.String(30))
    requested_service_type: str | None = fk("service_type.code", nullable=True, index=False)
    # The PUA request that referred it (no FK: the request points back).
    access_request_id: uuid.UUID | None = Field(default=None, index=True)
    referring_user_id: uuid.UUID | None = fk("app_user.id", nullable=True, index=False)
    team_id: uuid.UUID = fk("team.id")
    # the person's comune of residence at the request: the indicators count by it (0049_start_residence)
    residence_comune_id: uuid.UUID | None = fk("organisation.id", nullable=True, index=False)
    requested_at: datetime = created_at_field()  # starts the clock (e.g. the 30-day RSA target)
    requested_by: uuid.UUID = fk("app_user.id", index=False)
    due_at: datetime | None = ts_field()
    state: VmdState = Field(default=VmdState.requested, sa_type=sa.String(30))
    scheduled_for: datetime | None = ts_field()
    location: str | None = Field(default=None, max_length=200)
    outcome: VmdOutcome | None = Field(default=None, sa_type=sa.String(30))
    outcome_notes: str | None = Field(default=None, max_length=4000)
    concluded_at: datetime | None = ts_field()
    reassessment_due: date | None = None
    integrated: bool = False
    version: int = 1
    # 0022_assessment: request notes, cancellation, and the VMD this one reassesses (a new row, not a state loop)
    notes: str | None = Field(default=None, max_length=4000)
    cancelled_at: datetime | None = ts_field()
    cancel_reason: str | None = Field(default=None, max_length=500)
    previous_vmd_id: uuid.UUID | None = fk("vmd.id", nullable=True, index=False)
    # 0031_vmd_outcomes: every outcome of the equipe, in the order of VmdOutcome (`outcome` keeps the first, for
    # readers of the single value), and the date of the application that starts the clock (default: the request's)
    outcomes: list[str] = Field(default_factory=list, sa_type=ARRAY(sa.String(30)))
    application_date: date | None = None

    @property
    def all_outcomes(self) -> list[str]:
        """The outcomes, read compatibly: rows concluded before 0031 have only the single `outcome`."""
        return [str(o) for o in self.outcomes] or ([str(self.outcome)] if self.outcome else [])


class VmdAssessor(SQLModel, table=True):
    """An assessor of one side (ASST, comune/Ambito...) who fills their own domains and signs."""

    __tablename__ = "vmd_assessor"
    __table_args__ = (sa.UniqueConstraint("vmd_id", "user_id"),)

    id: uuid.UUID = id_field()
    vmd_id: uuid.UUID = fk("vmd.id")
    user_id: uuid.UUID = fk("app_user.id")
    organisation_id: uuid.UUID = fk("organisation.id", index=False)
    side: str = Field(max_length=30)
    domains: list[str] = Field(default_factory=list, sa_type=ARRAY(sa.String(30)))
    signed_at: datetime | None = ts_field()
    added_at: datetime = created_at_field()


class InstrumentResponse(SQLModel, table=True):
    """Answers to one version of an instrument, scored by the server. Used by the PUA triage and by VMD assessors."""

    __tablename__ = "instrument_response"
    __table_args__ = (sa.Index("ix_instrument_response_context", "context_type", "context_id"),)

    id: uuid.UUID = id_field()
    person_id: uuid.UUID = fk("person.id")
    context_type: str = Field(max_length=40)  # access_request | vmd
    context_id: uuid.UUID
    instrument_code: str = Field(max_length=60)
    instrument_version: int
    answers: dict[str, Any] = jsonb_field()
    scores: dict[str, Any] = jsonb_field()
    outcome: str | None = Field(default=None, max_length=40)
    author_id: uuid.UUID = fk("app_user.id", index=False)
    author_org_id: uuid.UUID = fk("organisation.id", index=False)
    recorded_at: datetime = created_at_field()


class EquipeMeeting(SQLModel, table=True):
    __tablename__ = "equipe_meeting"

    id: uuid.UUID = id_field()
    vmd_id: uuid.UUID = fk("vmd.id")
    held_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    participants: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONB)
    minutes: str = Field(max_length=20000)
    decision: str | None = Field(default=None, max_length=4000)
    recorded_by: uuid.UUID = fk("app_user.id", index=False)
    recorded_at: datetime = created_at_field()


person_refs.register(Vmd, "person_id")
person_refs.register(InstrumentResponse, "person_id")
