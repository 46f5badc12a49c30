"""The demo clock of a development service (GET/PUT /api/dev/clock)."""
from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ClockMove(BaseModel):
    """Uno spostamento dell'orologio di prova: un istante (`set`), una durata in avanti (`advance`) o il ritorno
    al tempo reale (`reset`), uno solo dei tre."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"set": "2026-03-16T09:00:00+01:00"},
        {"advance": "49h"},
        {"reset": True, "force": True}]})

    set: datetime | None = Field(default=None, title="Istante",
                                 description="Porta l'orologio a questo istante (con fuso orario).")
    advance: str | None = Field(default=None, title="Durata", max_length=40, pattern=r"^(\d+d)?(\d+h)?(\d+m)?(\d+s)?$",
                                description="Sposta l'orologio in avanti: `49h`, `3d`, `1d2h30m`, `90s`.")
    reset: bool = Field(default=False, title="Tempo reale", description="Riporta l'orologio al tempo reale.")
    force: bool = Field(default=False, title="Forza",
                        description="Consente di tornare prima dell'ultimo dato già registrato.")

    @model_validator(mode="after")
    def _one(self) -> ClockMove:
        if [self.set is not None, self.advance is not None, self.reset].count(True) != 1:
            raise ValueError("indicare uno solo tra set, advance e reset")
        if self.set is not None and self.set.tzinfo is None:
            raise ValueError("set: l'istante deve indicare il fuso orario")
        return self


class ClockPublic(BaseModel):
    """L'orologio di prova: tempo di lavoro, tempo reale, scarto."""

    now: datetime = Field(title="Tempo di lavoro", description="Il tempo di lavoro dell'orologio memorizzato (UTC).")
    now_rome: datetime = Field(title="Tempo di lavoro (Europe/Rome)", description="Lo stesso istante, ora italiana.")
    real_now: datetime = Field(title="Tempo reale", description="L'ora vera del server.")
    offset_seconds: float = Field(title="Scarto", description="Secondi tra tempo di lavoro e tempo reale.")
    in_process_fixed: datetime | None = Field(
        default=None, title="Orologio fermo del processo",
        description="Un orologio fermo installato nel processo (prove automatiche), che prevale su quello "
                    "memorizzato.")
    days_run: list[date] = Field(default_factory=list, title="Giorni eseguiti",
                                 description="I giorni di cui lo spostamento ha accodato i lavori giornalieri.")
