"""Public contracts of the VMD API (valutazione multidimensionale) and of the instrument catalogue."""
from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from domain.assessment.models import (
    VMD_OUTCOME_LABELS,
    VMD_STATE_LABELS,
    VMD_TRIGGER_LABELS,
    VmdOutcome,
    VmdState,
    VmdTrigger,
)
from domain.assessment.states import FINAL_STATES, allowed_actions
from schemas.instruments import AssessmentDomain, InstrumentStatus, ScoreResult

SIDE_LABELS = {
    "asst": "ASST", "comune": "Comune", "ambito": "Ambito", "csc": "CSC", "third_sector": "Terzo Settore",
    "provider": "Ente gestore", "ats": "ATS", "primary_care": "Cure primarie",
}
DOMAIN_LABELS = {
    "functional": "Funzionale", "cognitive": "Cognitivo", "health": "Sanitario", "social_network": "Rete sociale",
    "caregiver": "Caregiver", "housing": "Abitazione", "economic": "Condizione economica",
}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ================================================================================================ inputs
class VmdCreate(_In):
    """Richiesta di una valutazione multidimensionale."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"person_id": "5b0c7a52-2f0e-4d4b-9a8e-6f1f3c2d9e01", "cartella_id": "0d6f5f7e-8c2b-4b7e-9a51-3c4d2e1f0a21",
         "trigger": "rsa_application", "requested_service_type": "rsa",
         "team_id": "4d5e6f70-8192-4a3b-bc4d-5e6f708192a3",
         "notes": "Domanda di ingresso in RSA presentata dalla figlia."}]})

    person_id: uuid.UUID = Field(description="Persona da valutare.")
    cartella_id: uuid.UUID = Field(description="Cartella sociale della persona a cui la VMD è collegata.")
    trigger: VmdTrigger = Field(description="Motivo di attivazione (PUA, domanda RSA, misura B1...).")
    requested_service_type: str | None = Field(default=None, max_length=40,
                                               description="Tipo di servizio richiesto (codice del catalogo).")
    team_id: uuid.UUID = Field(description="Équipe che svolge la VMD (VMD, sub-ambito, micro-équipe, autismo).")
    access_request_id: uuid.UUID | None = Field(default=None, description="Richiesta di accesso PUA di origine.")
    referring_user_id: uuid.UUID | None = Field(default=None, description="Operatore inviante (es. MMG).")
    notes: str | None = Field(default=None, max_length=4000, description="Note della richiesta.")
    application_date: date | None = Field(default=None, description=(
        "Data della domanda (per la RSA, l'inserimento della domanda): da qui decorrono i giorni della scadenza. "
        "Predefinita: il giorno della richiesta; non può seguirlo."))


class VmdSchedule(_In):
    """Programmazione della valutazione."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"scheduled_for": "2026-03-10T10:30:00+01:00", "location": "Casa di Comunità di Crema"}]})

    scheduled_for: AwareDatetime = Field(description="Data e ora della valutazione (con fuso orario).")
    location: str | None = Field(default=None, max_length=200, description="Luogo (es. Casa di Comunità, domicilio).")


class AssessorCreate(_In):
    """Nuovo valutatore della VMD."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"user_id": "a3bb189e-8bf9-3888-9912-ace4e6543002"},
        {"user_id": "b4cc29af-9c0a-4999-8a23-bdf5f7654113", "domains": ["social_network", "caregiver", "housing"]}]})

    user_id: uuid.UUID = Field(description="Membro attivo dell'équipe che diventa valutatore.")
    domains: list[AssessmentDomain] | None = Field(
        default=None, min_length=1,
        description="Domini compilati dal valutatore; se assenti, quelli predefiniti per il lato "
                    "dell'organizzazione (ASST: funzionale, sanitario, cognitivo; comune/Ambito: rete sociale, "
                    "caregiver, abitazione, condizione economica).")


class ResponseCreate(_In):
    """Uno strumento di valutazione compilato."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"instrument_code": "barthel",
         "answers": {"feeding": "independent", "bathing": "dependent", "grooming": "needs_help",
                     "dressing": "needs_help", "bowels": "continent", "bladder": "occasional_accident",
                     "toilet_use": "needs_help", "transfers": "minor_help", "mobility": "walks_with_help",
                     "stairs": "needs_help"}}]})

    instrument_code: str = Field(min_length=1, max_length=60, description="Codice dello strumento (es. barthel).")
    instrument_version: int | None = Field(default=None, ge=1,
                                           description="Versione; se assente, l'ultima versione attiva.")
    answers: dict[str, Any] = Field(description="Risposte {voce: valore}.")


class MeetingParticipant(_In):
    """Un partecipante: un operatore del sistema o una persona esterna (nome)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"user_id": "a3bb189e-8bf9-3888-9912-ace4e6543002"},
        {"name": "Laura Bianchi", "role": "figlia e caregiver"}]})

    user_id: uuid.UUID | None = Field(default=None, description="Operatore del sistema.")
    name: str | None = Field(default=None, max_length=200, description="Nome di un partecipante esterno.")
    organisation: str | None = Field(default=None, max_length=200, description="Ente del partecipante esterno.")
    role: str | None = Field(default=None, max_length=100, description="Ruolo (es. MMG, figlia e caregiver).")

    @model_validator(mode="after")
    def _someone(self) -> MeetingParticipant:
        if self.user_id is None and not (self.name or "").strip():
            raise ValueError("indicare l'operatore (user_id) o il nome del partecipante")
        return self


class MeetingCreate(_In):
    """Riunione d'équipe."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"held_at": "2026-03-02T09:00:00+01:00",
         "participants": [{"user_id": "a3bb189e-8bf9-3888-9912-ace4e6543002"},
                          {"user_id": "b4cc29af-9c0a-4999-8a23-bdf5f7654113"},
                          {"name": "Laura Bianchi", "role": "figlia e caregiver"}],
         "minutes": "Valutati i punteggi di Barthel e IADL; la famiglia preferisce la permanenza al domicilio.",
         "decision": "Progetto individualizzato con SAD e pasti a domicilio."}]})

    held_at: AwareDatetime = Field(description="Data e ora della riunione.")
    participants: list[MeetingParticipant] = Field(min_length=1, max_length=50, description="Partecipanti.")
    minutes: str = Field(min_length=1, max_length=20000, description="Verbale.")
    decision: str | None = Field(default=None, max_length=4000, description="Decisione dell'équipe.")


class VmdConclude(_In):
    """Esito della VMD."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"outcome": "project_proposed", "notes": "Proposto progetto con SAD.", "reassessment_due": "2026-09-12"},
        {"outcomes": ["measure_eligible", "project_proposed"], "notes": "Idonea alla misura B2; progetto con SAD."}]})

    outcome: VmdOutcome | None = Field(default=None, description="Esito della VMD (uno solo).")
    outcomes: list[VmdOutcome] | None = Field(default=None, min_length=1, max_length=5, description=(
        "Più esiti insieme (es. idoneità alla misura e proposta di progetto; lista d'attesa e progetto "
        "temporaneo), in alternativa a `outcome`. 'Nessun bisogno' esclude gli altri."))
    notes: str | None = Field(default=None, max_length=4000, description="Note dell'esito.")
    reassessment_due: date | None = Field(default=None, description="Data prevista per la rivalutazione.")


class VmdCancel(_In):
    """Annullamento della VMD."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"reason": "Rinuncia della persona"}]})

    reason: str = Field(min_length=1, max_length=500, description="Motivo (rinuncia, decesso, altro ricovero...).")


class ReassessmentCreate(_In):
    """Rivalutazione; il corpo si può omettere (stessa équipe e stesso motivo)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {},
        {"trigger": "measure_b2", "notes": "Rivalutazione per la misura B2."}]})

    team_id: uuid.UUID | None = Field(default=None, description="Équipe; se assente, la stessa della VMD conclusa.")
    trigger: VmdTrigger | None = Field(default=None, description="Motivo; se assente, lo stesso della VMD conclusa.")
    notes: str | None = Field(default=None, max_length=4000, description="Note della richiesta.")


class ScoreRequest(_In):
    """Risposte da valutare, senza salvarle."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"answers": {"feeding": "independent", "bathing": "dependent", "grooming": "needs_help",
                     "dressing": "needs_help", "bowels": "continent", "bladder": "occasional_accident",
                     "toilet_use": "needs_help", "transfers": "minor_help", "mobility": "walks_with_help",
                     "stairs": "needs_help"}}]})

    version: int | None = Field(default=None, ge=1, description="Versione; se assente, l'ultima attiva.")
    answers: dict[str, Any] = Field(description="Risposte {voce: valore}.")


# ================================================================================================ outputs
class VmdPublic(BaseModel):
    view: Literal["full", "summary"] = Field(default="full", description=(
        "full: tutto; summary (MMG, RSA, ETS): esiti, punteggi, date e case manager; luogo della valutazione, note, "
        "note dell'esito, motivo dell'annullamento, valutatori, riunioni e risposte sono omessi (null o vuoti)."))
    id: uuid.UUID
    ambito_id: uuid.UUID
    person_id: uuid.UUID
    cartella_id: uuid.UUID
    trigger: VmdTrigger
    trigger_label: str
    requested_service_type: str | None
    access_request_id: uuid.UUID | None
    referring_user_id: uuid.UUID | None
    team_id: uuid.UUID
    requested_at: datetime
    requested_by: uuid.UUID
    due_at: datetime | None
    overdue: bool = Field(description="Scaduta e non ancora conclusa.")
    state: VmdState
    state_label: str
    allowed_actions: list[str] = Field(description="Azioni ammesse nello stato attuale.")
    scheduled_for: datetime | None
    location: str | None
    outcome: VmdOutcome | None = Field(description="Il primo degli esiti (per chi legge un solo esito).")
    outcome_label: str | None
    outcomes: list[VmdOutcome] = Field(description="Tutti gli esiti della VMD.")
    outcome_labels: list[str]
    outcome_notes: str | None
    application_date: date | None = Field(description="Data della domanda da cui decorre la scadenza.")
    concluded_at: datetime | None
    reassessment_due: date | None
    integrated: bool = Field(description="Firmata da almeno un valutatore ASST e uno del comune/Ambito.")
    notes: str | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    previous_vmd_id: uuid.UUID | None
    version: int

    @classmethod
    def of(cls, v: Any, *, now: datetime, view: str = "full") -> VmdPublic:
        state = VmdState(v.state)
        outcome = str(v.outcome) if v.outcome else None
        full = view == "full"
        return cls(
            view=view, id=v.id, ambito_id=v.ambito_id, person_id=v.person_id, cartella_id=v.cartella_id,
            trigger=v.trigger,
            trigger_label=VMD_TRIGGER_LABELS[str(v.trigger)], requested_service_type=v.requested_service_type,
            access_request_id=v.access_request_id, referring_user_id=v.referring_user_id, team_id=v.team_id,
            requested_at=v.requested_at, requested_by=v.requested_by, due_at=v.due_at,
            overdue=bool(v.due_at and v.due_at < now and state not in FINAL_STATES), state=state,
            state_label=VMD_STATE_LABELS[state.value], allowed_actions=allowed_actions(state),
            scheduled_for=v.scheduled_for, location=v.location if full else None, outcome=outcome,
            outcome_label=VMD_OUTCOME_LABELS[outcome] if outcome else None, outcomes=v.all_outcomes,
            outcome_labels=[VMD_OUTCOME_LABELS[o] for o in v.all_outcomes],
            outcome_notes=v.outcome_notes if full else None,
            application_date=v.application_date,
            concluded_at=v.concluded_at, reassessment_due=v.reassessment_due, integrated=v.integrated,
            notes=v.notes if full else None, cancelled_at=v.cancelled_at,
            cancel_reason=v.cancel_reason if full else None,
            previous_vmd_id=v.previous_vmd_id, version=v.version)


class AssessorPublic(BaseModel):
    id: uuid.UUID
    vmd_id: uuid.UUID
    user_id: uuid.UUID
    organisation_id: uuid.UUID
    side: str
    side_label: str
    domains: list[str]
    domain_labels: list[str]
    signed: bool
    signed_at: datetime | None
    added_at: datetime

    @classmethod
    def of(cls, a: Any) -> AssessorPublic:
        doms = list(a.domains or [])
        return cls(id=a.id, vmd_id=a.vmd_id, user_id=a.user_id, organisation_id=a.organisation_id, side=a.side,
                   side_label=SIDE_LABELS.get(a.side, a.side), domains=doms,
                   domain_labels=[DOMAIN_LABELS.get(d, d) for d in doms], signed=a.signed_at is not None,
                   signed_at=a.signed_at, added_at=a.added_at)


class ResponsePublic(BaseModel):
    id: uuid.UUID
    instrument_code: str
    instrument_version: int
    instrument_title: str | None
    author_id: uuid.UUID
    author_org_id: uuid.UUID
    author_side: str | None
    recorded_at: datetime
    answers_masked: bool = Field(
        description="Risposte sanitarie dell'ASST non visibili senza il consenso 'Condivisione con ASST': "
                    "restano visibili solo punteggi e fasce.")
    answers: dict[str, Any] | None
    scores: dict[str, Any] = Field(description="Punteggi per codice, con fascia.")
    outcomes: dict[str, Any] | None
    outcome: str | None


class MeetingPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    vmd_id: uuid.UUID
    held_at: datetime
    participants: list[dict[str, Any]]
    minutes: str
    decision: str | None
    recorded_by: uuid.UUID
    recorded_at: datetime


class CaseManagerPublic(BaseModel):
    user_id: uuid.UUID
    display_name: str
    profession: str | None


class VmdDetail(VmdPublic):
    case_manager: CaseManagerPublic | None = Field(default=None, description="Case manager della cartella.")
    assessors: list[AssessorPublic]
    responses: list[ResponsePublic]
    meetings: list[MeetingPublic]
    signed_sides: list[str] = Field(description="Lati (ASST, comune, Ambito...) dei valutatori che hanno firmato.")


class VmdPage(BaseModel):
    items: list[VmdPublic]
    next_cursor: uuid.UUID | None


# ------------------------------------------------------------------------------------------------ instruments
class InstrumentVersionInfo(BaseModel):
    version: int
    status: InstrumentStatus
    retired: bool
    title: str


class InstrumentSummary(BaseModel):
    code: str
    title: str = Field(description="Titolo dell'ultima versione attiva (o dell'ultima versione).")
    domains: list[AssessmentDomain]
    latest_active_version: int | None
    retired: bool = Field(description="Vero quando nessuna versione è attiva.")
    versions: list[InstrumentVersionInfo]


class InstrumentList(BaseModel):
    items: list[InstrumentSummary]


class ScorePreview(ScoreResult):
    status: InstrumentStatus = Field(description="Stato della versione usata (una versione ritirata non accetta "
                                                 "nuove compilazioni in una VMD).")
