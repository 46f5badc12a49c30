"""Dimissioni protette (LEPS): the discharge case, from the ward's signal to the COT evaluation, the discharge
project, the discharge and the closure; with the facts D3-D7 are computed from, each with its timestamp."""
from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field, SQLModel

from domain.kernel import person_refs
from domain.kernel.columns import created_at_field, fk, id_field, ts_field


class DischargeState(StrEnum):
    signalled = "signalled"
    cot_requested = "cot_requested"
    evaluated = "evaluated"
    project_formulated = "project_formulated"
    discharged = "discharged"
    monitoring = "monitoring"
    closed = "closed"
    not_eligible = "not_eligible"
    deceased = "deceased"
    discharged_without_project = "discharged_without_project"
    cancelled = "cancelled"


DISCHARGE_STATE_LABELS = {
    "signalled": "Segnalata", "cot_requested": "Richiesta alla COT", "evaluated": "Valutata",
    "project_formulated": "Progetto di dimissione formulato", "discharged": "Dimessa",
    "monitoring": "In monitoraggio dopo la dimissione", "closed": "Chiusa",
    "not_eligible": "Non eleggibile", "deceased": "Deceduta",
    "discharged_without_project": "Dimessa senza progetto", "cancelled": "Segnalazione annullata",
}


class Setting(StrEnum):
    """The discharge setting the evaluation chooses."""
    home = "home"                          # home with SAD and/or ADI/C-DOM and aids
    cure_intermedie = "cure_intermedie"
    rsa = "rsa"                            # an urgent RSA waiting-list application (waiting_list context: seam)
    other_facility = "other_facility"
    shelter = "shelter"                    # low-threshold shelter for the homeless


SETTING_LABELS = {
    "home": "Domicilio con SAD e/o ADI/C-DOM e ausili", "cure_intermedie": "Cure intermedie",
    "rsa": "RSA", "other_facility": "Altra struttura", "shelter": "Struttura a bassa soglia",
}


class Service(StrEnum):
    """Services activated at discharge (D4: SAD and ADI; D5: SAD only)."""
    sad = "sad"
    adi = "adi"
    rsa_aperta = "rsa_aperta"
    palliative = "palliative"
    aids = "aids"


SERVICE_LABELS = {"sad": "SAD (LEPS)", "adi": "ADI / C-DOM", "rsa_aperta": "RSA aperta",
                  "palliative": "Cure palliative domiciliari", "aids": "Ausili"}


class DischargeCase(SQLModel, table=True):
    __tablename__ = "discharge_case"
    __table_args__ = (
        sa.Index("ix_discharge_case_cot_open", "cot_org_id", "evaluation_due_at"),
        sa.Index("ix_discharge_case_ward", "ward_org_id", "signalled_at"),
        sa.Index("ix_discharge_case_comune", "comune_id", "signalled_at"),
        sa.Index("ix_discharge_case_ambito", "ambito_id", "signalled_at", "id"),
    )

    id: uuid.UUID = id_field()
    ambito_id: uuid.UUID = fk("organisation.id", index=False)
    person_id: uuid.UUID = fk("person.id")
    state: DischargeState = Field(default=DischargeState.signalled, sa_type=sa.String(30))
    # the signal: who, from which ward, when
    ward_org_id: uuid.UUID = fk("organisation.id", index=False)
    opened_by: uuid.UUID = fk("app_user.id", index=False)
    signalled_at: datetime = created_at_field()
    admission_date: date
    expected_discharge_date: date
    criteria: list[str] = Field(default_factory=list, sa_type=ARRAY(sa.String(60)))
    social_risk: bool = False
    clinician_summary: str = Field(max_length=4000)
    # the COT request: the 48-hour clock
    cot_org_id: uuid.UUID | None = fk("organisation.id", nullable=True, index=False)
    comune_id: uuid.UUID | None = fk("organisation.id", nullable=True, index=False)  # residence (or site) comune
    out_of_ambito: bool = False  # resident and domiciled outside every loaded Ambito: handed over to this COT
    cot_requested_at: datetime | None = ts_field()
    evaluation_due_at: datetime | None = ts_field()
    requested_due_at: datetime | None = ts_field()  # 0041: the due time the signal gave (a FHIR Task's), as sent
    at_risk_at: datetime | None = ts_field()
    overdue_at: datetime | None = ts_field()
    # the evaluation
    vmd_id: uuid.UUID | None = fk("vmd.id", nullable=True, index=False)
    evaluated_at: datetime | None = ts_field()
    evaluation_hours: float | None = None  # elapsed calendar hours from the COT request
    setting: Setting | None = Field(default=None, sa_type=sa.String(30))
    setting_at: datetime | None = ts_field()
    # the project and the discharge
    plan_id: uuid.UUID | None = fk("care_plan.id", nullable=True, index=False)
    project_at: datetime | None = ts_field()
    services: list[str] = Field(default_factory=list, sa_type=ARRAY(sa.String(30)))
    services_at: datetime | None = ts_field()
    discharged_at: datetime | None = ts_field()
    monitoring_at: datetime | None = ts_field()  # 0036: the follow-up at home started
    closed_at: datetime | None = ts_field()
    exit_reason: str | None = Field(default=None, max_length=40)
    exit_note: str | None = Field(default=None, max_length=500)
    version: int = 1


person_refs.register(DischargeCase, "person_id")
