"""Contracts of the report export jobs: what to export, and where the job stands."""
from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from domain.reporting.exports import WHAT_LABELS, is_expired
from domain.reporting.models import ReportExport
from domain.reporting.states import STATE_LABELS


class ExportCreate(BaseModel):
    what: str = Field(max_length=20, title="Cosa esportare",
                      description="`indicators`: la tabella degli indicatori di un anno (come GET "
                                  "/reports/indicators); `leps`: il rendiconto annuale (come GET /reports/leps).")
    format: str = Field(max_length=10, title="Formato",
                        description="indicators: csv, xlsx o html; leps: html o xlsx.")
    year: int | None = Field(default=None, title="Anno", description="Predefinito: l'anno in corso.")
    by: str = Field(default="ambito", max_length=20, title="Raggruppamento",
                    description="Solo per indicators: ambito, sub_ambito, comune, area, trigger, udo_type, urgency.")
    reading: str | None = Field(default=None, max_length=20, title="Lettura",
                                description="Solo per indicators: same_period, cohort o event_date.")
    cutoff: date | None = Field(default=None, title="Data limite", description="Solo per indicators, con cohort.")
    indicator: str | None = Field(default=None, max_length=200, title="Indicatori",
                                  description="Solo per indicators: codici separati da virgola (predefinito: tutti).")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"what": "indicators", "year": 2026, "by": "sub_ambito", "format": "xlsx"},
        {"what": "leps", "year": 2026, "format": "html"}]})


class ExportPublic(BaseModel):
    id: uuid.UUID
    what: str = Field(description="indicators o leps")
    what_label: str
    format: str
    params: dict = Field(description="Anno, raggruppamento, lettura, data limite, indicatori chiesti")
    state: str = Field(description="pending, running, done, failed, cancelled, expired")
    state_label: str
    done: int = Field(description="Passi completati (un indicatore, o un indicatore in un anno)")
    total: int = Field(description="Passi in tutto")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None = Field(description="Dopo questo istante il file non è più scaricabile (410)")
    error: str | None
    file_name: str | None
    file_bytes: int | None
    file_url: str | None = Field(description="Dove scaricare il file, quando è pronto")

    @classmethod
    def of(cls, e: ReportExport) -> ExportPublic:
        state = "expired" if is_expired(e) else str(e.state)
        ready = state == "done"
        return cls(id=e.id, what=e.kind, what_label=WHAT_LABELS[e.kind], format=e.format, params=dict(e.params),
                   state=state, state_label=STATE_LABELS[state], done=e.steps_done, total=len(e.steps),
                   created_at=e.created_at, started_at=e.started_at, finished_at=e.finished_at,
                   expires_at=e.expires_at, error=e.error, file_name=e.file_name if ready else None,
                   file_bytes=e.file_bytes if ready else None,
                   file_url=f"/api/reports/exports/{e.id}/file" if ready else None)


class ExportPage(BaseModel):
    items: list[ExportPublic]
    next_cursor: str | None = Field(description="Cursore opaco per la pagina successiva")
