"""Contracts of imports from an older platform."""
from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from domain.imports.models import IMPORT_STATE_LABELS, ImportJob


class ImportPublic(BaseModel):
    id: uuid.UUID
    dry_run: bool = Field(description="Prova: nulla è scritto se non il resoconto")
    dry_run_of: uuid.UUID | None = Field(description="La prova confermata da questa importazione")
    source_system: str = Field(description="Sistema di provenienza (con `id_origine` identifica ogni riga)")
    file_name: str
    file_sha256: str
    file_format: str = Field(description="csv oppure xlsx")
    state: str = Field(description="pending, running, done, failed")
    state_label: str
    total_rows: int
    rows_done: int = Field(description="Righe elaborate")
    rows_per_second: float | None = Field(description="Righe al secondo di elaborazione (escluso il tempo in coda)")
    counts: dict[str, int] = Field(description="Righe per esito: create, match, possible_match, reject, unchanged")
    error: str | None
    created_by: uuid.UUID
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, j: ImportJob) -> ImportPublic:
        rate = round(j.rows_done / j.busy_seconds, 1) if j.busy_seconds else None
        return cls(id=j.id, dry_run=j.dry_run, dry_run_of=j.dry_run_of, source_system=j.source_system,
                   file_name=j.file_name, file_sha256=j.file_sha256, file_format=j.file_format, state=str(j.state),
                   state_label=IMPORT_STATE_LABELS[str(j.state)], total_rows=j.total_rows, rows_done=j.rows_done,
                   rows_per_second=rate, counts=dict(j.counts or {}), error=j.error, created_by=j.created_by,
                   created_at=j.created_at, started_at=j.started_at, finished_at=j.finished_at)


class ImportPage(BaseModel):
    items: list[ImportPublic]
    next_cursor: str | None = Field(description="Cursore opaco per la pagina successiva")
