"""Servizi: accreditation of providers (data with a period), activation orders from a plan's intervention, the
delivery log the provider's operators keep, and the weeks flagged below the threshold. Every fact reporting needs
(order, acceptance, start, suspensions, end, each delivery) is a dated column on these rows; summaries and costs
are computed when read (queries.py)."""
from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from domain.kernel import person_refs
from domain.kernel.columns import created_at_field, fk, id_field, ts_field

MONEY = sa.Numeric(12, 2)
QUANTITY = sa.Numeric(8, 2)


class IntensityUnit(StrEnum):
    hours_week = "hours_week"
    accesses_week = "accesses_week"


INTENSITY_UNIT_LABELS = {"hours_week": "ore/settimana", "accesses_week": "accessi/settimana"}


class ActivationState(StrEnum):
    requested = "requested"  # ordered to the provider, waiting for its answer
    accepted = "accepted"
    declined = "declined"
    active = "active"
    suspended = "suspended"
    ended = "ended"


ACTIVATION_STATE_LABELS = {
    "requested": "Inviata all'ente erogatore", "accepted": "Accettata dall'ente", "declined": "Rifiutata dall'ente",
    "active": "In erogazione", "suspended": "Sospesa", "ended": "Conclusa",
}


class EndReason(StrEnum):
    goals_reached = "goals_reached"
    plan_changed = "plan_changed"
    person_request = "person_request"
    admitted_to_facility = "admitted_to_facility"
    deceased = "deceased"
    period_over = "period_over"
    other = "other"


END_REASON_LABELS = {
    "goals_reached": "Obiettivi raggiunti", "plan_changed": "Progetto modificato",
    "person_request": "Richiesta della persona", "admitted_to_facility": "Ingresso in struttura",
    "deceased": "Decesso", "period_over": "Periodo concluso", "other": "Altro",
}


class Accreditation(SQLModel, table=True):
    """A provider accredited for a service type in the Ambito for a period `[valid_from, valid_to)`, with the unit
    cost (per hour or per access) the Ambito pays it: the default of every order to it."""

    __tablename__ = "service_accreditation"
    __table_args__ = (sa.Index("ix_service_accreditation_org", "organisation_id", "service_type", "valid_from"),)

    id: uuid.UUID = id_field()
    ambito_id: uuid.UUID = fk("organisation.id", index=False)
    organisation_id: uuid.UUID = fk("organisation.id", index=False)
    service_type: str = fk("service_type.code", index=False)
    valid_from: date
    valid_to: date | None = None
    unit_cost: Decimal | None = Field(default=None, sa_type=MONEY)
    reference: str | None = Field(default=None, max_length=200)  # the act (determina, albo) it rests on
    created_at: datetime = created_at_field()
    created_by: uuid.UUID | None = fk("app_user.id", nullable=True, index=False)


class Activation(SQLModel, table=True):
    """An activation order: one intervention of a progetto individualizzato, delivered by one provider."""

    __tablename__ = "service_activation"
    __table_args__ = (
        # one running order per intervention: a second one waits until the first is declined or ended
        sa.Index("ux_service_activation_open", "intervention_id", unique=True,
                 postgresql_where=sa.text("state in ('requested', 'accepted', 'active', 'suspended')")),
        sa.Index("ix_service_activation_provider", "provider_org_id", "state"),
        sa.Index("ix_service_activation_comune", "comune_id", "requested_at"),
        sa.Index("ix_service_activation_list", "ambito_id", "requested_at", "id"),
        sa.Index("ix_service_activation_running", "state", "service_type"),
    )

    id: uuid.UUID = id_field()
    ambito_id: uuid.UUID = fk("organisation.id", index=False)
    person_id: uuid.UUID = fk("person.id")
    comune_id: uuid.UUID | None = fk("organisation.id", nullable=True, index=False)  # residence: the row filter
    cartella_id: uuid.UUID = fk("cartella.id", index=False)
    plan_id: uuid.UUID = fk("care_plan.id")
    intervention_id: uuid.UUID = fk("care_plan_intervention.id", index=False)
    case_manager_id: uuid.UUID | None = fk("app_user.id", nullable=True, index=False)
    provider_org_id: uuid.UUID = fk("organisation.id", index=False)
    service_type: str = fk("service_type.code", index=False)
    intensity_value: Decimal = Field(sa_type=QUANTITY)
    intensity_unit: IntensityUnit = Field(sa_type=sa.String(20))
    unit_cost: Decimal | None = Field(default=None, sa_type=MONEY)
    funding_source: str | None = fk("funding_source.code", nullable=True, index=False)
    start_date: date
    end_date: date | None = None  # half-open: the first day with no service
    state: ActivationState = Field(default=ActivationState.requested, sa_type=sa.String(20))
    requested_at: datetime = created_at_field()
    requested_by: uuid.UUID | None = fk("app_user.id", nullable=True, index=False)
    answered_at: datetime | None = ts_field()
    answered_by: uuid.UUID | None = fk("app_user.id", nullable=True, index=False)
    decline_reason: str | None = Field(default=None, max_length=1000)
    started_at: datetime | None = ts_field()
    suspended_at: datetime | None = ts_field()
    suspension_reason: str | None = Field(default=None, max_length=1000)
    ended_at: datetime | None = ts_field()
    end_reason: EndReason | None = Field(default=None, sa_type=sa.String(30))
    end_note: str | None = Field(default=None, max_length=1000)
    notes: str | None = Field(default=None, max_length=2000)
    version: int = 1


class Delivery(SQLModel, table=True):
    """One day of service as the provider's operator records it: hours or accesses, who, a short note."""

    __tablename__ = "service_delivery"
    __table_args__ = (
        sa.Index("ix_service_delivery_activation", "activation_id", "delivered_on", "id"),
        sa.CheckConstraint("hours is null or hours >= 0", name="ck_service_delivery_hours"),
        sa.CheckConstraint("accesses is null or accesses >= 0", name="ck_service_delivery_accesses"),
    )

    id: uuid.UUID = id_field()
    activation_id: uuid.UUID = fk("service_activation.id", index=False)
    person_id: uuid.UUID = fk("person.id")
    provider_org_id: uuid.UUID = fk("organisation.id", index=False)
    delivered_on: date
    hours: Decimal | None = Field(default=None, sa_type=QUANTITY)
    accesses: int | None = None
    operator_user_id: uuid.UUID = fk("app_user.id", index=False)
    operator_name: str | None = Field(default=None, max_length=200)  # a worker of the provider without an account
    note: str | None = Field(default=None, max_length=500)
    recorded_at: datetime = created_at_field()
    recorded_by: uuid.UUID = fk("app_user.id", index=False)


class Suspension(SQLModel, table=True):
    """A period `[from_date, to_date)` the service did not run (hospital stay, absence): its days are not planned, so
    a suspended week is neither counted as planned nor flagged. `to_date` is set by the resumption (or the end)."""

    __tablename__ = "service_suspension"
    __table_args__ = (sa.Index("ix_service_suspension_activation", "activation_id", "from_date"),)

    id: uuid.UUID = id_field()
    activation_id: uuid.UUID = fk("service_activation.id", index=False)
    from_date: date
    to_date: date | None = None
    reason: str = Field(max_length=1000)
    created_at: datetime = created_at_field()
    created_by: uuid.UUID | None = fk("app_user.id", nullable=True, index=False)


class WeekFlag(SQLModel, table=True):
    """A week delivered below the threshold, flagged once (the unique key), with the work item it raised."""

    __tablename__ = "service_week_flag"
    __table_args__ = (sa.UniqueConstraint("activation_id", "week_start", name="ux_service_week_flag"),)

    id: uuid.UUID = id_field()
    activation_id: uuid.UUID = fk("service_activation.id", index=False)
    week_start: date  # a Monday
    planned: Decimal = Field(sa_type=QUANTITY)
    delivered: Decimal = Field(sa_type=QUANTITY)
    flagged_at: datetime = created_at_field()
    work_item_id: uuid.UUID | None = Field(default=None)


person_refs.register(Activation, "person_id")
person_refs.register(Delivery, "person_id")
