"""Imports from the Ambito's older platform: the job, its staged rows with their outcome, and the provenance of
every record an import created (which is also what makes a second run create nothing)."""
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


class ImportState(StrEnum):
    pending = "pending"
    running = "running"
    done = "done"
    failed = "failed"


IMPORT_STATE_LABELS = {"pending": "In coda", "running": "In corso", "done": "Completata", "failed": "Non riuscita"}


class RowOutcome(StrEnum):
    create = "create"  # a new person (and their cartella or relation)
    match = "match"  # the same identifier is already registered, or was created by an earlier row
    possible_match = "possible_match"  # registered, and queued for the data stewards beside its look-alikes
    reject = "reject"  # a field is wrong: nothing of the row is written
    unchanged = "unchanged"  # imported by an earlier run (same source system and source key)


ROW_OUTCOME_LABELS = {
    "create": "Nuova persona", "match": "Persona già registrata", "possible_match": "Possibile duplicato (ai data "
    "steward)", "reject": "Scartata", "unchanged": "Già importata in precedenza",
}


class ImportJob(SQLModel, table=True):
    """One file, one mapping, one run (dry or real). The rows are staged when the job is created, so the worker
    never re-reads the file and a restarted job continues from the first row without an outcome."""

    __tablename__ = "import_job"
    __table_args__ = (sa.Index("ix_import_job_ambito", "ambito_id", "created_at", "id"),)

    id: uuid.UUID = id_field()
    ambito_id: uuid.UUID = fk("organisation.id", index=False)
    created_by: uuid.UUID = fk("app_user.id", index=False)
    dry_run: bool = True
    # The dry run whose rows a real run imports (the steward confirmed its report).
    dry_run_of: uuid.UUID | None = fk("import_job.id", nullable=True, index=False)
    source_system: str = Field(max_length=60)
    file_name: str = Field(max_length=255)
    file_sha256: str = Field(max_length=64)
    file_format: str = Field(max_length=10)
    mapping: dict[str, Any] = jsonb_field()
    state: ImportState = Field(default=ImportState.pending, sa_type=sa.String(20))
    total_rows: int = 0
    rows_done: int = 0
    counts: dict[str, Any] = jsonb_field()
    error: str | None = Field(default=None, max_length=500)
    started_at: datetime | None = ts_field()
    finished_at: datetime | None = ts_field()
    # Seconds spent processing rows (excluding time in the queue): rows per second = rows_done / busy_seconds.
    busy_seconds: float = 0.0
    created_at: datetime = created_at_field()


class ImportRow(SQLModel, table=True):
    """A staged row (raw values as read, by header) and what the import did with it."""

    __tablename__ = "import_row"
    __table_args__ = (
        sa.Index("ix_import_row_todo", "job_id", "phase", "row_number", postgresql_where=sa.text("outcome is null")),
        sa.Index("ix_import_row_person", "job_id", "person_id", postgresql_where=sa.text("person_id is not null")),
    )

    job_id: uuid.UUID = Field(foreign_key="import_job.id", primary_key=True)
    row_number: int = Field(primary_key=True)  # 1 = the first data row after the header
    # Persons before related persons: a relation row finds the person it belongs to whatever the file's order.
    phase: int = 1
    source_key: str | None = Field(default=None, max_length=120)
    raw: dict[str, Any] = jsonb_field()
    outcome: RowOutcome | None = Field(default=None, sa_type=sa.String(20))
    person_id: uuid.UUID | None = None
    matched_row: int | None = None
    reason: str | None = Field(default=None, max_length=60)
    candidate_person_ids: list[uuid.UUID] = Field(default_factory=list, sa_type=ARRAY(sa.Uuid()),
                                                  sa_column_kwargs={"server_default": sa.text("'{}'")})
    candidate_rows: list[int] = Field(default_factory=list, sa_type=ARRAY(sa.Integer()),
                                      sa_column_kwargs={"server_default": sa.text("'{}'")})
    cartella_id: uuid.UUID | None = None
    relation_id: uuid.UUID | None = None
    errors: list[dict[str, Any]] = jsonb_field(default_factory=list)
    notes: list[str] = Field(default_factory=list, sa_type=ARRAY(sa.Text()),
                             sa_column_kwargs={"server_default": sa.text("'{}'")})


class ImportRecord(SQLModel, table=True):
    """Provenance: the record an import wrote for a source row. Unique per (Ambito, source system, source key):
    the same row imported again is recognised and changes nothing."""

    __tablename__ = "import_record"
    __table_args__ = (sa.UniqueConstraint("ambito_id", "source_system", "source_key", name="uq_import_record_key"),)

    id: uuid.UUID = id_field()
    ambito_id: uuid.UUID = fk("organisation.id", index=False)
    source_system: str = Field(max_length=60)
    source_key: str = Field(max_length=120)
    person_id: uuid.UUID | None = fk("person.id", nullable=True)
    cartella_id: uuid.UUID | None = None
    relation_id: uuid.UUID | None = None
    job_id: uuid.UUID = fk("import_job.id", index=False)
    file_name: str = Field(max_length=255)
    row_number: int
    created_at: datetime = created_at_field()


# A merge moves the provenance to the kept person; the report (import_row) keeps what the import saw at the time.
person_refs.register(ImportRecord, "person_id")
