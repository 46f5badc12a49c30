"""Public contracts of the progetto individualizzato API (care plans): plan, goals, interventions, reviews,
versions, and the minimal view given to providers (ETS / RSA) and MMG."""
from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.care_plan.models import InterventionStatus, PlanKind, PlanState

INTERVENTION_STATUS_LABELS = {"planned": "Previsto", "active": "In corso", "ended": "Concluso",
                              "cancelled": "Annullato"}
GOAL_STATUS_LABELS = {"open": "Aperto", "achieved": "Raggiunto", "partly": "Parzialmente raggiunto",
                      "not_achieved": "Non raggiunto", "dropped": "Abbandonato"}
REVIEW_OUTCOME_LABELS = {"continue": "Prosecuzione senza modifiche", "modify": "Prosecuzione con modifiche",
                         "complete": "Conclusione del progetto", "suspend": "Sospensione del progetto",
                         "revoke": "Revoca del progetto"}
HISTORY_ACTION_LABELS = {
    "created": "Creazione", "updated": "Modifica dei dati del progetto", "goal_added": "Nuovo obiettivo",
    "goal_updated": "Modifica di un obiettivo", "intervention_added": "Nuovo intervento",
    "intervention_updated": "Modifica di un intervento", "intervention_started": "Avvio di un intervento",
    "intervention_ended": "Conclusione di un intervento", "intervention_cancelled": "Annullamento di un intervento",
    "proposed": "Proposta", "back_to_draft": "Ritorno in bozza", "agreed": "Sottoscrizione (compilato)",
    "activated": "Attivazione", "review_started": "Avvio della verifica", "review_recorded": "Esito della verifica",
    "completed": "Conclusione", "suspended": "Sospensione", "resumed": "Ripresa", "revoked": "Revoca",
    "temporary_closed": "Chiusura del progetto temporaneo",
}


class GoalStatus(StrEnum):
    open = "open"
    achieved = "achieved"
    partly = "partly"
    not_achieved = "not_achieved"
    dropped = "dropped"


class ReviewOutcome(StrEnum):
    continue_ = "continue"
    modify = "modify"
    complete = "complete"
    suspend = "suspend"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# ---------------------------------------------------------------------------------------------------- inputs
class CarePlanCreate(_In):
    """Nuovo progetto in bozza su una cartella."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"cartella_id": "0d6f5f7e-8c2b-4b7e-9a51-3c4d2e1f0a21", "kind": "ordinary",
         "vmd_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "case_manager_id": "a3bb189e-8bf9-3888-9912-ace4e6543002",
         "title": "Sostegno al domicilio dopo la caduta",
         "summary": "Anziana che vive sola, autonomia ridotta nelle attività di base; figlia caregiver sovraccarica.",
         "review_interval_days": 180}]})

    cartella_id: uuid.UUID = Field(description="Cartella sociale su cui si apre il progetto.")
    kind: PlanKind = Field(default=PlanKind.ordinary,
                           description="ordinary (progetto individualizzato), temporary (temporaneo/alternativo, "
                                       "in attesa di un posto), discharge (dimissione protetta).")
    vmd_id: uuid.UUID | None = Field(default=None, description="VMD conclusa da cui nasce il progetto (facoltativa): "
                                                               "stessa cartella, esito 'project_proposed' o "
                                                               "'waiting_list' (in tal caso kind = temporary).")
    case_manager_id: uuid.UUID = Field(description="Case manager: operatore con un ruolo nell'Ambito.")
    title: str = Field(min_length=1, max_length=200, description="Titolo del progetto.")
    summary: str | None = Field(default=None, max_length=8000, description="Sintesi dei bisogni e del progetto.")
    review_interval_days: int | None = Field(default=None, ge=7, le=730,
                                             description="Intervallo tra le verifiche in giorni (predefinito "
                                                         "180, configurabile).")


class CarePlanUpdate(_In):
    """Modifica parziale del progetto: solo i campi presenti cambiano."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"summary": "Aggiornata dopo il colloquio con la figlia.", "version": 4}]})

    title: str | None = Field(default=None, min_length=1, max_length=200, description="Titolo del progetto.")
    summary: str | None = Field(default=None, max_length=8000, description="Sintesi dei bisogni e del progetto.")
    case_manager_id: uuid.UUID | None = Field(default=None, description="Nuovo case manager.")
    review_interval_days: int | None = Field(default=None, ge=7, le=730,
                                             description="Intervallo tra le verifiche in giorni.")
    version: int | None = Field(default=None, ge=1, description="Versione attesa (controllo di concorrenza).")


class GoalCreate(_In):
    """Nuovo obiettivo del progetto."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"description": "Recuperare l'autonomia nell'igiene personale", "indicator": "Indice di Barthel",
         "target": "Barthel ≥ 60", "due_date": "2026-09-30"}]})

    description: str = Field(min_length=1, max_length=2000, description="Obiettivo.")
    indicator: str = Field(min_length=1, max_length=500, description="Indicatore con cui si misura.")
    target: str = Field(min_length=1, max_length=200, description="Risultato atteso misurabile (es. 'Barthel ≥ 50').")
    due_date: date | None = Field(default=None, description="Entro quando.")


class GoalUpdate(_In):
    """Modifica parziale di un obiettivo: solo i campi presenti cambiano."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"status": "partly", "target": "Barthel ≥ 55"}]})

    description: str | None = Field(default=None, min_length=1, max_length=2000, description="Obiettivo.")
    indicator: str | None = Field(default=None, min_length=1, max_length=500,
                                  description="Indicatore con cui si misura.")
    target: str | None = Field(default=None, min_length=1, max_length=200, description="Risultato atteso misurabile.")
    due_date: date | None = Field(default=None, description="Entro quando.")
    status: GoalStatus | None = Field(default=None, description="open, achieved, partly, not_achieved, dropped.")


class InterventionCreate(_In):
    """Nuovo intervento del progetto."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"service_type": "sad", "provider_org_id": "3f2b8c1d-6e4a-4f7b-8c9d-0a1b2c3d4e5f", "intensity_value": 6,
         "intensity_unit": "ore/settimana", "start_date": "2026-03-09", "end_date": "2026-09-30",
         "funding_source": "fna", "notes": "Igiene personale al mattino, tre accessi settimanali."}]})

    service_type: str = Field(min_length=1, max_length=40, description="Codice del catalogo dei servizi (es. 'sad').")
    provider_org_id: uuid.UUID | None = Field(default=None, description="Ente erogatore (organizzazione dell'Ambito).")
    intensity_value: float | None = Field(default=None, gt=0, le=10000, description="Intensità, es. 6.")
    intensity_unit: str | None = Field(default=None, min_length=1, max_length=40,
                                       description="Unità dell'intensità, es. 'ore/settimana', 'accessi/settimana'.")
    start_date: date | None = Field(default=None, description="Inizio previsto.")
    end_date: date | None = Field(default=None, description="Fine prevista.")
    funding_source: str | None = Field(default=None, max_length=40, description="Codice della fonte di finanziamento.")
    notes: str | None = Field(default=None, max_length=2000, description="Note.")


class InterventionUpdate(_In):
    """Modifica parziale di un intervento: solo i campi presenti cambiano."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"intensity_value": 8, "intensity_unit": "ore/settimana"}]})

    service_type: str | None = Field(default=None, min_length=1, max_length=40,
                                     description="Codice del catalogo dei servizi.")
    provider_org_id: uuid.UUID | None = Field(default=None, description="Ente erogatore.")
    intensity_value: float | None = Field(default=None, gt=0, le=10000, description="Intensità.")
    intensity_unit: str | None = Field(default=None, min_length=1, max_length=40,
                                       description="Unità dell'intensità.")
    start_date: date | None = Field(default=None, description="Inizio previsto.")
    end_date: date | None = Field(default=None, description="Fine prevista.")
    funding_source: str | None = Field(default=None, max_length=40, description="Codice della fonte di finanziamento.")
    notes: str | None = Field(default=None, max_length=2000, description="Note.")


class AgreeIn(_In):
    """Sottoscrizione: il consenso che la rende possibile; il corpo si può omettere (vale l'unico consenso alla
    cura in vigore della persona)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {},
        {"consent_id": "9b2e4f6a-1c3d-4e5f-8a7b-6c5d4e3f2a10"}]})

    consent_id: uuid.UUID | None = Field(default=None, description=(
        "Consenso attivo della persona (finalità 'care'), prestato da lei o dal genitore / tutore / amministratore "
        "di sostegno. Se omesso vale l'unico consenso alla cura in vigore; nessuno o più d'uno: 422 su "
        "consent_id."))


class ActivateIn(_In):
    """Attivazione; il corpo si può omettere (avvia gli interventi previsti con inizio entro oggi)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {},
        {"intervention_ids": ["2c1f8e4b-7a6d-4c3b-9e2f-1a0b9c8d7e6f"]}]})

    intervention_ids: list[uuid.UUID] | None = Field(
        default=None, max_length=100,
        description="Interventi da avviare; se assente, tutti quelli previsti con inizio entro oggi.")


class ReviewRecord(_In):
    """Esito della verifica."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"outcome": "continue", "notes": "Obiettivi in linea; si prosegue senza modifiche."}]})

    outcome: ReviewOutcome = Field(description="continue, modify, complete, suspend.")
    notes: str | None = Field(default=None, max_length=8000, description="Note della verifica.")


class ReasonIn(_In):
    """Motivo dell'azione."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"reason": "Obiettivi raggiunti: la persona è di nuovo autonoma."}]})

    reason: str = Field(min_length=1, max_length=500, description="Motivo.")


class OptionalReasonIn(_In):
    """Motivo facoltativo; il corpo si può omettere."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {},
        {"reason": "Rientro a domicilio dopo il ricovero."}]})

    reason: str | None = Field(default=None, max_length=500, description="Motivo (facoltativo).")


# ---------------------------------------------------------------------------------------------------- outputs
class GoalPublic(BaseModel):
    id: uuid.UUID
    description: str
    indicator: str
    target: str
    due_date: date | None
    status: str
    status_label: str
    position: int


class InterventionPublic(BaseModel):
    id: uuid.UUID
    service_type: str
    service_label: str | None
    provider_org_id: uuid.UUID | None
    provider_name: str | None
    intensity_value: float | None
    intensity_unit: str | None
    intensity_label: str | None = Field(description="Es. '6 ore/settimana'.")
    start_date: date | None
    end_date: date | None
    funding_source: str | None
    funding_label: str | None
    status: InterventionStatus
    status_label: str
    started_at: datetime | None
    notes: str | None = None
    position: int


class ReviewPublic(BaseModel):
    id: uuid.UUID
    due_date: date
    held_at: datetime | None
    outcome: str | None
    outcome_label: str | None
    notes: str | None
    by_user_id: uuid.UUID | None


class Signatory(BaseModel):
    role: str
    role_label: str
    name: str
    user_id: uuid.UUID | None = None
    organisation: str | None = None


class _PlanFrame(BaseModel):
    """What every view of a plan shows, the minimal one included."""

    id: uuid.UUID
    cartella_id: uuid.UUID
    person_id: uuid.UUID
    kind: PlanKind
    kind_label: str
    state: PlanState
    state_label: str
    case_manager_id: uuid.UUID


class CarePlanSummary(_PlanFrame):
    title: str | None
    agreed_at: datetime | None
    activated_at: datetime | None
    next_review_due: date | None
    version: int
    view: Literal["full", "minimal"] = "full"


class CarePlanDetail(CarePlanSummary):
    ambito_id: uuid.UUID
    vmd_id: uuid.UUID | None
    summary: str | None
    case_manager_name: str | None
    consent_id: uuid.UUID | None
    agreed_version: int | None
    signatories: list[Signatory]
    review_interval_days: int
    review_overdue: bool
    closed_at: datetime | None
    close_reason: str | None
    created_by: uuid.UUID
    created_at: datetime
    allowed_actions: list[str]
    goals: list[GoalPublic]
    interventions: list[InterventionPublic]
    reviews: list[ReviewPublic]


class CarePlanMinimal(_PlanFrame):
    """What a provider (ETS, RSA) sees: the plan's frame and the interventions of its organisation; an MMG sees
    the frame and a summary of every intervention (no notes)."""

    view: Literal["minimal"] = "minimal"
    case_manager_name: str | None
    activated_at: datetime | None
    version: int
    interventions: list[InterventionPublic]


class CarePlanPage(BaseModel):
    items: list[CarePlanSummary]
    next_cursor: uuid.UUID | None = None


class CarePlanVersionSummary(BaseModel):
    version: int
    action: str
    action_label: str
    state: str | None
    at: datetime
    actor_id: uuid.UUID | None


class CarePlanVersion(CarePlanVersionSummary):
    data: dict[str, Any] = Field(description="Istantanea completa: progetto, obiettivi, interventi, verifiche.")
