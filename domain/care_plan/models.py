"""Progetti individualizzati: goals, interventions, reviews, every version kept."""
from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from domain.kernel import person_refs
from domain.kernel.columns import created_at_field, fk, id_field, jsonb_field, ts_field


class PlanKind(StrEnum):
    ordinary = "ordinary"
    temporary = "temporary"  # temporary / alternative, while waiting for a place
    discharge = "discharge"


PLAN_KIND_LABELS = {"ordinary": "Progetto individualizzato", "temporary": "Progetto temporaneo/alternativo",
                    "discharge": "Progetto di dimissione protetta"}


class PlanState(StrEnum):
    draft = "draft"
    proposed = "proposed"
    agreed = "agreed"
    active = "active"
    under_review = "under_review"
    completed = "completed"
    suspended = "suspended"
    revoked = "revoked"


PLAN_STATE_LABELS = {
    "draft": "Bozza", "proposed": "Proposto", "agreed": "Condiviso e sottoscritto (compilato)", "active": "Attivato",
    "under_review": "In verifica", "completed": "Concluso", "suspended": "Sospeso", "revoked": "Revocato",
}


class CarePlan(SQLModel, table=True):
    __tablename__ = "care_plan"
    __table_args__ = (sa.Index("ix_care_plan_review", "state", "next_review_due"),)

    id: uuid.UUID = id_field()
    ambito_id: uuid.UUID = fk("organisation.id", index=False)
    person_id: uuid.UUID = fk("person.id")
    cartella_id: uuid.UUID = fk("cartella.id")
    vmd_id: uuid.UUID | None = fk("vmd.id", nullable=True)
    kind: PlanKind = Field(default=PlanKind.ordinary, sa_type=sa.String(20))
    state: PlanState = Field(default=PlanState.draft, sa_type=sa.String(20))
    title: str = Field(max_length=200)
    summary: str | None = Field(default=None, max_length=8000)
    case_manager_id: uuid.UUID = fk("app_user.id")
    consent_id: uuid.UUID | None = fk("consent.id", nullable=True, index=False)
    agreed_version: int | None = None  # 0023_care_plan: the plan version the consent was given to
    signatories: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONB)
    review_interval_days: int = 180
    next_review_due: date | None = None
    agreed_at: datetime | None = ts_field()  # "compilato": seed indicator R3
    activated_at: datetime | None = ts_field()  # "attivato": first intervention started
    closed_at: datetime | None = ts_field()
    close_reason: str | None = Field(default=None, max_length=500)
    created_by: uuid.UUID = fk("app_user.id", index=False)
    created_at: datetime = created_at_field()
    version: int = 1


class Goal(SQLModel, table=True):
    __tablename__ = "care_plan_goal"

    id: uuid.UUID = id_field()
    plan_id: uuid.UUID = fk("care_plan.id")
    description: str = Field(max_length=2000)
    indicator: str = Field(max_length=500)
    target: str = Field(max_length=200)
    due_date: date | None = None
    status: str = Field(default="open", max_length=20)  # open | achieved | partly | not_achieved | dropped
    position: int = 0


class InterventionStatus(StrEnum):
    planned = "planned"
    active = "active"
    ended = "ended"
    cancelled = "cancelled"


class Intervention(SQLModel, table=True):
    __tablename__ = "care_plan_intervention"

    id: uuid.UUID = id_field()
    plan_id: uuid.UUID = fk("care_plan.id")
    service_type: str = fk("service_type.code")
    provider_org_id: uuid.UUID | None = fk("organisation.id", nullable=True)
    intensity_value: float | None = None
    intensity_unit: str | None = Field(default=None, max_length=40)  # e.g. ore/settimana, accessi/settimana
    start_date: date | None = None
    end_date: date | None = None
    funding_source: str | None = fk("funding_source.code", nullable=True, index=False)
    status: InterventionStatus = Field(default=InterventionStatus.planned, sa_type=sa.String(20))
    started_at: datetime | None = ts_field()
    notes: str | None = Field(default=None, max_length=2000)
    position: int = 0


class Review(SQLModel, table=True):
    __tablename__ = "care_plan_review"

    id: uuid.UUID = id_field()
    plan_id: uuid.UUID = fk("care_plan.id")
    due_date: date
    held_at: datetime | None = ts_field()
    outcome: str | None = Field(default=None, max_length=40)  # continue | modify | complete | suspend
    notes: str | None = Field(default=None, max_length=8000)
    by_user_id: uuid.UUID | None = fk("app_user.id", nullable=True, index=False)
    data: dict[str, Any] = jsonb_field()


person_refs.register(CarePlan, "person_id")
