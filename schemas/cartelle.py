"""Public contracts of the cartella sociale API: cartelle, transfers, assignments, history."""
from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from domain.registry.models import AREA_LABELS, Area, AssignmentReason, CartellaStatus

STATUS_LABELS = {"open": "Aperta", "closed": "Chiusa"}
ASSIGNMENT_REASON_LABELS = {
    "case_manager": "Case manager",
    "assessor": "Valutatore",
    "provider": "Ente erogatore",
    "referring_mmg": "MMG/PLS inviante",
    "team": "Équipe",
    "break_glass": "Accesso di emergenza",
}
HISTORY_ACTION_LABELS = {
    "opened": "Apertura",
    "case_manager_changed": "Cambio case manager",
    "closed": "Chiusura",
    "closed_by_merge": "Chiusura per fusione anagrafica",
    "merged_from": "Unione con cartella di persona duplicata",
    "transferred": "Trasferimento ad altro comune",
    "assignment_added": "Nuova assegnazione",
    "assignment_changed": "Assegnazione modificata",
    "assignment_ended": "Fine assegnazione",
}
# Reasons that the generic assignment endpoint may create; break-glass has its own audited procedure.
API_ASSIGNMENT_REASONS = [r for r in AssignmentReason if r != AssignmentReason.break_glass]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CartellaCreate(_In):
    """Apertura di una cartella sociale."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"area": "anziani"},
        {"area": "minori_famiglia", "case_manager_id": "a3bb189e-8bf9-3888-9912-ace4e6543002"}]})

    area: Area = Field(description="Area della cartella; 'non_noto' quando l'area non è ancora nota (si corregge "
                                   "chiudendo e aprendo la cartella dell'area giusta).")
    owning_comune_id: uuid.UUID | None = Field(
        default=None, description="Comune titolare, richiesto solo se la persona non ha residenza né domicilio "
                                  "nell'Ambito e l'operatore non opera per un solo comune.")
    case_manager_id: uuid.UUID | None = Field(default=None, description="Case manager iniziale (facoltativo).")


class CartellaUpdate(_In):
    """Cambio del case manager."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"case_manager_id": "a3bb189e-8bf9-3888-9912-ace4e6543002", "version": 3}]})

    case_manager_id: uuid.UUID | None = Field(description="Nuovo case manager; null lo rimuove.")
    version: int | None = Field(default=None, ge=1, description="Versione attesa (controllo di concorrenza).")


class CartellaClose(_In):
    """Chiusura della cartella."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"reason": "Trasferimento in RSA fuori Ambito", "closed_on": "2026-03-02", "version": 5}]})

    reason: str = Field(min_length=1, max_length=200, description="Motivo della chiusura.")
    closed_on: date | None = Field(default=None, description="Data di chiusura (predefinita: oggi).")
    version: int | None = Field(default=None, ge=1, description="Versione attesa (controllo di concorrenza).")


class CartellaTransferCreate(_In):
    """Trasferimento a un altro comune; il corpo si può omettere (il comune di residenza attuale)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {},
        {"to_comune_id": "1e2d3c4b-5a69-4788-9a0b-1c2d3e4f5a6b", "reason": "Cambio di residenza", "version": 4}]})

    to_comune_id: uuid.UUID | None = Field(
        default=None, description="Nuovo comune titolare; se assente, il comune di residenza (o domicilio) "
                                  "attuale della persona.")
    reason: str | None = Field(default=None, max_length=200, description="Motivo del trasferimento.")
    version: int | None = Field(default=None, ge=1, description="Versione attesa (controllo di concorrenza).")


class CartellaPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    person_id: uuid.UUID
    area: Area
    area_label: str
    owning_comune_id: uuid.UUID
    case_manager_id: uuid.UUID | None
    status: CartellaStatus
    status_label: str
    opened_at: datetime
    closed_at: datetime | None
    close_reason: str | None
    legacy_code: str | None
    version: int

    @classmethod
    def of(cls, c: Any) -> CartellaPublic:
        return cls(id=c.id, person_id=c.person_id, area=c.area, area_label=AREA_LABELS[str(c.area)],
                   owning_comune_id=c.owning_comune_id, case_manager_id=c.case_manager_id, status=c.status,
                   status_label=STATUS_LABELS[str(c.status)], opened_at=c.opened_at, closed_at=c.closed_at,
                   close_reason=c.close_reason, legacy_code=c.legacy_code, version=c.version)


class CartellaTransferPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    from_comune_id: uuid.UUID
    to_comune_id: uuid.UUID
    reason: str | None
    by_user_id: uuid.UUID | None
    at: datetime


class CartellaDetail(CartellaPublic):
    transfers: list[CartellaTransferPublic] = []


class CartellaPage(BaseModel):
    items: list[CartellaPublic]
    next_cursor: uuid.UUID | None = None


class AssignmentCreate(_In):
    """Nuova assegnazione della cartella: un operatore, un'équipe o un'organizzazione."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"reason": "team", "team_id": "4d5e6f70-8192-4a3b-bc4d-5e6f708192a3"},
        {"reason": "provider", "organisation_id": "3f2b8c1d-6e4a-4f7b-8c9d-0a1b2c3d4e5f",
         "valid_to": "2026-09-30T23:59:00+02:00"}]})

    reason: AssignmentReason = Field(description="Motivo: case_manager, assessor, provider, referring_mmg, team.")
    user_id: uuid.UUID | None = Field(default=None, description="Operatore assegnato.")
    team_id: uuid.UUID | None = Field(default=None, description="Équipe assegnata.")
    organisation_id: uuid.UUID | None = Field(default=None, description="Organizzazione assegnata.")
    valid_to: datetime | None = Field(default=None, description="Fine della validità (facoltativa, futura).")
    source_type: str | None = Field(default=None, max_length=60,
                                    description="Oggetto che origina l'assegnazione (es. 'assessment').")
    source_id: uuid.UUID | None = Field(default=None, description="Identificativo dell'oggetto di origine.")


class AssignmentPublic(BaseModel):
    id: uuid.UUID
    cartella_id: uuid.UUID
    reason: AssignmentReason
    reason_label: str
    user_id: uuid.UUID | None
    team_id: uuid.UUID | None
    organisation_id: uuid.UUID | None
    valid_from: datetime
    valid_to: datetime | None
    active: bool
    source_type: str | None
    source_id: uuid.UUID | None
    created_by: uuid.UUID | None

    @classmethod
    def of(cls, a: Any, *, active: bool) -> AssignmentPublic:
        return cls(id=a.id, cartella_id=a.cartella_id, reason=a.reason,
                   reason_label=ASSIGNMENT_REASON_LABELS[str(a.reason)], user_id=a.user_id, team_id=a.team_id,
                   organisation_id=a.organisation_id, valid_from=a.valid_from, valid_to=a.valid_to, active=active,
                   source_type=a.source_type, source_id=a.source_id, created_by=a.created_by)


class AssignmentPage(BaseModel):
    items: list[AssignmentPublic]
    next_cursor: uuid.UUID | None = None


class CartellaHistoryEntry(BaseModel):
    version: int
    action: str
    action_label: str
    at: datetime
    actor_id: uuid.UUID | None
    data: dict[str, Any]

    @classmethod
    def of(cls, h: Any) -> CartellaHistoryEntry:
        return cls(version=h.version, action=h.action, action_label=HISTORY_ACTION_LABELS.get(h.action, h.action),
                   at=h.at, actor_id=h.actor_id, data=h.data or {})
