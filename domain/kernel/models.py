"""Kernel tables: change history, work items, durable jobs and the stored business clock."""
from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from domain.kernel.columns import created_at_field, fk, id_field, jsonb_field, ts_field


class EntityHistory(SQLModel, table=True):
    """One row per version of a versioned entity (persons, cartelle, plans...). Keeps the ids it had at the time;
    a merged person's old id resolves through `person_merge`."""

    __tablename__ = "entity_history"
    __table_args__ = (sa.UniqueConstraint("entity_type", "entity_id", "version"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=sa.BigInteger)
    entity_type: str = Field(max_length=60)
    entity_id: uuid.UUID
    version: int
    action: str = Field(max_length=40)
    data: dict[str, Any] = jsonb_field()
    actor_id: uuid.UUID | None = None
    request_id: str | None = Field(default=None, max_length=64)
    at: datetime = created_at_field()


class WorkItemState(StrEnum):
    open = "open"
    in_progress = "in_progress"
    done = "done"
    cancelled = "cancelled"


WORK_ITEM_STATE_LABELS = {
    "open": "Da fare", "in_progress": "In lavorazione", "done": "Completato", "cancelled": "Annullato",
}


_OPEN = sa.text("state in ('open','in_progress')")  # the queue's partial indexes (planner needs the literal)


class WorkItem(SQLModel, table=True):
    """Everything someone must do, in one table: 'my queue' is one indexed query."""

    __tablename__ = "work_item"
    __table_args__ = (
        sa.Index("ix_work_item_user_queue", "assignee_user_id", "due_at", postgresql_where=_OPEN),
        sa.Index("ix_work_item_team_queue", "assignee_team_id", "due_at", postgresql_where=_OPEN),
        sa.Index("ix_work_item_org_queue", "assignee_org_id", "due_at", postgresql_where=_OPEN),
        sa.Index("ix_work_item_source", "source_type", "source_id"),
        sa.Index("uq_work_item_dedup_open", "dedup_key", unique=True,
                 postgresql_where=sa.text("dedup_key is not null and state in ('open','in_progress')")),
    )

    id: uuid.UUID = id_field()
    ambito_id: uuid.UUID | None = fk("organisation.id", nullable=True)
    kind: str = Field(max_length=60, index=True)
    title: str = Field(max_length=200)
    state: WorkItemState = Field(default=WorkItemState.open, sa_type=sa.String(20))
    assignee_user_id: uuid.UUID | None = fk("app_user.id", nullable=True, index=False)
    assignee_team_id: uuid.UUID | None = fk("team.id", nullable=True, index=False)
    assignee_org_id: uuid.UUID | None = fk("organisation.id", nullable=True, index=False)
    due_at: datetime | None = ts_field()
    source_type: str = Field(max_length=60)
    source_id: uuid.UUID
    person_id: uuid.UUID | None = fk("person.id", nullable=True)
    cartella_id: uuid.UUID | None = fk("cartella.id", nullable=True)
    dedup_key: str | None = Field(default=None, max_length=200)
    data: dict[str, Any] = jsonb_field()
    created_at: datetime = created_at_field()
    completed_at: datetime | None = ts_field()
    completed_by: uuid.UUID | None = None


class JobState(StrEnum):
    pending = "pending"
    running = "running"
    done = "done"
    dead = "dead"


class Job(SQLModel, table=True):
    """Durable work (outbox): written in the transaction that needs it, claimed with a lease, retried with a
    backoff; Celery only wakes the relay. A worker killed mid-job loses nothing: the lease expires and the job is
    claimed again."""

    __tablename__ = "job"
    __table_args__ = (
        sa.Index("ix_job_ready", "run_after", postgresql_where=sa.text("state = 'pending'")),
        sa.Index("ix_job_lease", "lease_until", postgresql_where=sa.text("state = 'running'")),
    )

    id: uuid.UUID = id_field()
    kind: str = Field(max_length=200)  # event jobs: event:<name>:<module.qualname> (0006_jobs widened it)
    payload: dict[str, Any] = jsonb_field()
    state: JobState = Field(default=JobState.pending, sa_type=sa.String(20))
    attempts: int = 0
    max_attempts: int = 5
    run_after: datetime = created_at_field()
    lease_until: datetime | None = ts_field()
    locked_by: str | None = Field(default=None, max_length=120)
    last_error: str | None = None
    dedup_key: str | None = Field(default=None, max_length=200, unique=True)
    created_at: datetime = created_at_field()
    finished_at: datetime | None = ts_field()


from domain.kernel import person_refs  # noqa: E402

person_refs.register(WorkItem, "person_id")


class BusinessClock(SQLModel, table=True):
    """The stored business clock: business now = real now + `offset_seconds` (zero unless moved). One row (id 1),
    created by the migration; moved only in development mode (deploy/demo_clock.py). `changed_at` is real time."""

    __tablename__ = "business_clock"
    __table_args__ = (sa.CheckConstraint("id = 1", name="ck_business_clock_one_row"),)

    id: int = Field(default=1, primary_key=True, sa_type=sa.SmallInteger,
                    sa_column_kwargs={"autoincrement": False})
    offset_seconds: float = Field(default=0.0, sa_column_kwargs={"server_default": sa.text("0")})
    changed_at: datetime = Field(default=None, sa_type=sa.DateTime(timezone=True), nullable=False,
                                 sa_column_kwargs={"server_default": sa.text("now()")})
    changed_by: uuid.UUID | None = None


class IdempotentRequest(SQLModel, table=True):
    """An inbound request that must act once (a FHIR transaction Bundle, keyed by Bundle.identifier): the answer
    it got, sent again to the same request; a different request under the same key is refused."""

    __tablename__ = "idempotent_request"
    __table_args__ = (sa.UniqueConstraint("ambito_id", "scope", "key"),)

    id: uuid.UUID = id_field()
    ambito_id: uuid.UUID = fk("organisation.id", index=False)
    scope: str = Field(max_length=40)
    key: str = Field(max_length=400)
    request_hash: str = Field(max_length=64)
    status: int
    response: dict[str, Any] = jsonb_field()
    created_by: uuid.UUID | None = None
    created_at: datetime = created_at_field()
