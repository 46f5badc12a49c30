"""Misure (B1, B2, Dopo di Noi, Pro.Vi, voucher...): the catalogue of measures as data, the calls (bandi) with
their budget, and the applications with their state, period and amount. Budget figures are computed when read
from the applications' amounts (queries.py): nothing is kept twice."""
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


class PeriodRule(StrEnum):
    fixed_months = "fixed_months"  # a yearly window starting on `start_month` (Pro.Vi: May → April)
    from_start = "from_start"  # `months` from the day the measure starts


PERIOD_RULE_LABELS = {"fixed_months": "Periodo annuale fisso (es. maggio-aprile)",
                      "from_start": "Durata dalla data di avvio"}


class ApplicationState(StrEnum):
    submitted = "submitted"
    assessment_pending = "assessment_pending"
    eligible = "eligible"
    not_eligible = "not_eligible"
    project_defined = "project_defined"
    waiting_funds = "waiting_funds"  # eligible, project defined, but the call's budget is committed
    active = "active"
    monitoring = "monitoring"
    ended = "ended"
    withdrawn = "withdrawn"


APPLICATION_STATE_LABELS = {
    "submitted": "Presentata", "assessment_pending": "In attesa di valutazione (VMD)", "eligible": "Idonea",
    "not_eligible": "Non idonea", "project_defined": "Progetto definito", "waiting_funds": "In attesa di fondi",
    "active": "Attiva", "monitoring": "In monitoraggio", "ended": "Conclusa", "withdrawn": "Ritirata",
}
# States whose amount is committed on the call's budget.
COMMITTED_STATES = ("active", "monitoring", "ended")


class Measure(SQLModel, table=True):
    """One measure of the catalogue: the rules the seed gives as fields, never as code."""

    __tablename__ = "measure"

    code: str = Field(primary_key=True, max_length=40)
    label: str = Field(max_length=200)
    # no foreign key: the migration seeds the catalogue before the reference data (funding sources) is loaded; the
    # service checks the code against the catalogue when an administrator adds a measure
    funding_source: str | None = Field(default=None, max_length=40)
    vmd_trigger: str | None = Field(default=None, max_length=30)  # the VMD the eligibility rests on
    period_rule: PeriodRule = Field(default=PeriodRule.from_start, sa_type=sa.String(20))
    start_month: int | None = None  # fixed_months: the month the yearly window opens (5 = May)
    months: int = 12
    max_amount: Decimal | None = Field(default=None, sa_type=MONEY)  # the cap of one application
    yearly_budget: Decimal | None = Field(default=None, sa_type=MONEY)
    eligibility_notes: str | None = Field(default=None, max_length=2000)
    active: bool = True


class MeasureCall(SQLModel, table=True):
    """A call (bando) of a measure in the Ambito: open from `opens_on` through `closes_on`, with its budget."""

    __tablename__ = "measure_call"
    __table_args__ = (sa.Index("ix_measure_call_measure", "ambito_id", "measure_code", "opens_on"),)

    id: uuid.UUID = id_field()
    ambito_id: uuid.UUID = fk("organisation.id", index=False)
    measure_code: str = fk("measure.code", index=False)
    title: str = Field(max_length=200)
    opens_on: date
    closes_on: date  # the last day an application is accepted
    budget: Decimal = Field(sa_type=MONEY)
    created_at: datetime = created_at_field()
    created_by: uuid.UUID | None = fk("app_user.id", nullable=True, index=False)
    version: int = 1


class MeasureApplication(SQLModel, table=True):
    __tablename__ = "measure_application"
    __table_args__ = (
        sa.Index("ux_measure_application_open", "person_id", "call_id", unique=True,
                 postgresql_where=sa.text("state not in ('not_eligible', 'ended', 'withdrawn')")),
        sa.Index("ix_measure_application_call", "call_id", "state"),
        sa.Index("ix_measure_application_list", "ambito_id", "applied_at", "id"),
        sa.Index("ix_measure_application_comune", "comune_id"),
        sa.Index("ix_measure_application_period", "state", "period_end"),
    )

    id: uuid.UUID = id_field()
    ambito_id: uuid.UUID = fk("organisation.id", index=False)
    call_id: uuid.UUID = fk("measure_call.id", index=False)
    measure_code: str = fk("measure.code", index=False)
    person_id: uuid.UUID = fk("person.id")
    comune_id: uuid.UUID | None = fk("organisation.id", nullable=True, index=False)  # residence: the row filter
    cartella_id: uuid.UUID | None = fk("cartella.id", nullable=True, index=False)
    application_date: date
    applied_at: datetime = created_at_field()
    applied_by: uuid.UUID | None = fk("app_user.id", nullable=True, index=False)
    state: ApplicationState = Field(default=ApplicationState.submitted, sa_type=sa.String(30))
    requested_amount: Decimal | None = Field(default=None, sa_type=MONEY)
    vmd_id: uuid.UUID | None = fk("vmd.id", nullable=True, index=False)
    need_score: int | None = None  # 100 - the VMD's Barthel, recorded at the eligibility decision
    decided_at: datetime | None = ts_field()
    decided_by: uuid.UUID | None = fk("app_user.id", nullable=True, index=False)
    not_eligible_reason: str | None = Field(default=None, max_length=1000)
    plan_id: uuid.UUID | None = fk("care_plan.id", nullable=True, index=False)
    amount: Decimal | None = Field(default=None, sa_type=MONEY)
    period_start: date | None = None
    period_end: date | None = None  # half-open: the first day the measure no longer runs
    waiting_since: datetime | None = ts_field()
    activated_at: datetime | None = ts_field()
    monitoring_at: datetime | None = ts_field()
    ended_at: datetime | None = ts_field()
    end_reason: str | None = Field(default=None, max_length=30)  # period_over | early_end | withdrawn
    end_note: str | None = Field(default=None, max_length=1000)
    version: int = 1


person_refs.register(MeasureApplication, "person_id")
