"""Export jobs of the reports: what was asked, by whom, how far the work is, and the file it left (which expires).
The numbers are never stored beyond the job: each step keeps the rows of one indicator (and year) until the file
is written, so a restarted worker resumes from the first step without rows."""
from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from domain.kernel.columns import created_at_field, fk, id_field, jsonb_field, ts_field


class ExportState(StrEnum):
    pending = "pending"
    running = "running"
    done = "done"
    failed = "failed"
    cancelled = "cancelled"
    expired = "expired"


class ReportExport(SQLModel, table=True):
    """One export asked by one user: the indicator table of a year (`indicators`) or the yearly LEPS report
    (`leps`), in one format. `steps` lists the units of work ([indicator code, year]); `steps_done` of them have
    their rows in `report_export_part`."""

    __tablename__ = "report_export"
    __table_args__ = (
        sa.Index("ix_report_export_owner", "created_by", "created_at", "id"),
        sa.Index("ix_report_export_expiry", "expires_at", postgresql_where=sa.text("state = 'done'")),
        sa.Index("ix_report_export_file", "file_key", postgresql_where=sa.text("file_key is not null")),
    )

    id: uuid.UUID = id_field()
    ambito_id: uuid.UUID = fk("organisation.id", index=False)
    created_by: uuid.UUID = fk("app_user.id", index=False)
    kind: str = Field(max_length=20)
    params: dict[str, Any] = jsonb_field()
    format: str = Field(max_length=10)
    state: ExportState = Field(default=ExportState.pending, sa_type=sa.String(20))
    steps: list[Any] = jsonb_field(default_factory=list)
    steps_done: int = 0
    error: str | None = Field(default=None, max_length=500)
    error_code: str | None = Field(default=None, max_length=40)
    file_key: str | None = Field(default=None, max_length=64)
    file_name: str | None = Field(default=None, max_length=255)
    media_type: str | None = Field(default=None, max_length=120)
    file_bytes: int | None = None
    created_at: datetime = created_at_field()
    started_at: datetime | None = ts_field()
    finished_at: datetime | None = ts_field()
    expires_at: datetime | None = ts_field()


class ReportExportPart(SQLModel, table=True):
    """The rows one step computed (as JSON), kept until the file is written."""

    __tablename__ = "report_export_part"

    export_id: uuid.UUID = Field(foreign_key="report_export.id", primary_key=True, ondelete="CASCADE")
    step: int = Field(primary_key=True)
    rows: list[Any] = jsonb_field(default_factory=list)
