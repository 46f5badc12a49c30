"""Public contracts of the protected discharges (dimissioni protette): the ward's signal and the case as each
reader may see it."""
from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from domain.discharge.models import DISCHARGE_STATE_LABELS, SETTING_LABELS, DischargeState, Service, Setting
from schemas.persons import PersonCreate

VIEW_LABELS = {"full": "Completa", "status": "Solo lo stato (reparto segnalante)",
               "minimal": "Minima (ente erogatore nominato nel progetto)"}
# What a provider named in the discharge project sees (as for plans): when and where the person goes, with what.
MINIMAL_FIELDS = ("id", "person_id", "state", "expected_discharge_date", "discharged_at", "monitoring_at",
                  "closed_at", "plan_id", "services", "version")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class DischargeSignalCreate(_In):
    """Segnalazione di dimissione protetta dal reparto, con la richiesta alla COT."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"person_id": "0d6f5f7e-8c2b-4b7e-9a51-3c4d2e1f0a21", "ward_org_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
         "admission_date": "2026-02-24", "expected_discharge_date": "2026-03-04",
         "criteria": ["over65_not_self_sufficient"], "social_risk": True,
         "clinician_summary": "Anziana con frattura di femore operata, non autosufficiente, vive sola: serve "
                              "assistenza domiciliare (igiene, pasti) e infermieristica."}]})

    person_id: uuid.UUID | None = Field(default=None, title="Persona",
                                        description="Persona già registrata (ricercata in anagrafe).")
    person: PersonCreate | None = Field(default=None, title="Nuova persona",
                                        description="Persona da registrare (l'anagrafe la ritrova se il codice "
                                                    "fiscale è già presente).")
    ward_org_id: uuid.UUID = Field(title="Reparto", description="Reparto o presidio ASST che segnala (unità ASST).")
    admission_date: date = Field(title="Data di ricovero", description="Data del ricovero (AAAA-MM-GG).")
    expected_discharge_date: date = Field(title="Dimissione prevista",
                                          description="Data prevista di dimissione, non prima del ricovero.")
    criteria: list[str] = Field(default_factory=list, max_length=10, title="Criteri di eleggibilità",
                                description="Almeno uno tra: over65_not_self_sufficient, "
                                            "adult_not_self_sufficient_no_network, homeless.")
    social_risk: bool = Field(default=False, title="Rischio sociale",
                              description="Segnalazione di rischio sociale in dimissione (denominatore di D3).")
    clinician_summary: str = Field(default="", max_length=4000, title="Sintesi dei bisogni",
                                   description="Sintesi clinica dei bisogni a cura del reparto.")
    cot_requested_at: AwareDatetime | None = Field(default=None, title="Richiesta alla COT",
                                                   description="Data e ora della richiesta alla COT (predefinita: "
                                                               "adesso; mai nel futuro): da qui partono le 48 ore.")
    requested_due_at: AwareDatetime | None = Field(
        default=None, title="Scadenza indicata da chi segnala",
        description="Facoltativa, conservata come inviata (per l'ASST: la scadenza del Task). Non sposta le 48 ore "
                    "del protocollo; non prima della richiesta alla COT.")


class DischargePublic(BaseModel):
    id: uuid.UUID = Field(title="Identificativo", description="Identificativo della dimissione protetta.")
    view: Literal["full", "status", "minimal"] = Field(
        title="Vista", description="full (completa), status (solo stato: il reparto), minimal (l'ente erogatore).")
    view_label: str = Field(title="Vista (etichetta)", description="La vista, in italiano.")
    person_id: uuid.UUID = Field(title="Persona", description="La persona dimessa.")
    state: DischargeState = Field(title="Stato", description="Stato del percorso.")
    state_label: str = Field(title="Stato (etichetta)", description="Lo stato, in italiano.")
    allowed_actions: list[str] = Field(default_factory=list, title="Azioni possibili",
                                       description="Le azioni che lo stato consente.")
    ward_org_id: uuid.UUID | None = Field(default=None, title="Reparto", description="Il reparto che ha segnalato.")
    opened_by: uuid.UUID | None = Field(default=None, title="Segnalata da",
                                        description="L'operatore che ha segnalato.")
    signalled_at: datetime | None = Field(default=None, title="Segnalata il",
                                          description="Data e ora della segnalazione.")
    admission_date: date | None = Field(default=None, title="Ricovero", description="Data del ricovero.")
    expected_discharge_date: date = Field(title="Dimissione prevista", description="Data prevista di dimissione.")
    cot_org_id: uuid.UUID | None = Field(default=None, title="COT", description="La COT che valuta.")
    out_of_ambito: bool = Field(default=False, title="Fuori Ambito",
                                description="Persona residente e domiciliata fuori da ogni Ambito caricato: "
                                            "presa in carico dalla COT della sede segnalante.")
    cot_requested_at: datetime | None = Field(default=None, title="Richiesta alla COT",
                                              description="Inizio delle 48 ore.")
    evaluation_due_at: datetime | None = Field(default=None, title="Scadenza della valutazione",
                                               description="Richiesta alla COT + 48 ore.")
    requested_due_at: datetime | None = Field(default=None, title="Scadenza indicata da chi segnala",
                                              description="Come inviata con la segnalazione (facoltativa).")
    evaluated_at: datetime | None = Field(default=None, title="Valutata il", description="Valutazione conclusa.")
    discharged_at: datetime | None = Field(default=None, title="Dimessa il", description="Data della dimissione.")
    monitoring_at: datetime | None = Field(default=None, title="Monitoraggio dal",
                                           description="Inizio del monitoraggio dopo la dimissione.")
    closed_at: datetime | None = Field(default=None, title="Chiusa il", description="Chiusura del percorso.")
    version: int = Field(title="Versione", description="Versione, per le modifiche concorrenti.")
    # full view only
    comune_id: uuid.UUID | None = Field(default=None, title="Comune", description="Comune avvisato (residenza).")
    criteria: list[str] | None = Field(default=None, title="Criteri", description="Criteri di eleggibilità.")
    social_risk: bool | None = Field(default=None, title="Rischio sociale", description="Rischio sociale.")
    clinician_summary: str | None = Field(default=None, title="Sintesi dei bisogni", description="Dal reparto.")
    at_risk_at: datetime | None = Field(default=None, title="A rischio dal", description="Segnata a 36 ore.")
    overdue_at: datetime | None = Field(default=None, title="Scaduta dal", description="Segnata a 48 ore.")
    vmd_id: uuid.UUID | None = Field(default=None, title="VMD", description="La VMD della valutazione.")
    evaluation_hours: float | None = Field(default=None, title="Ore alla valutazione",
                                           description="Ore trascorse dalla richiesta alla COT alla valutazione.")
    setting: str | None = Field(default=None, title="Setting", description="Setting di dimissione scelto.")
    setting_label: str | None = Field(default=None, title="Setting (etichetta)", description="In italiano.")
    plan_id: uuid.UUID | None = Field(default=None, title="Progetto", description="Progetto di dimissione.")
    project_at: datetime | None = Field(default=None, title="Progetto formulato il", description="Data e ora.")
    services: list[str] | None = Field(default=None, title="Servizi attivati", description="sad, adi...")
    services_at: datetime | None = Field(default=None, title="Servizi attivati il", description="Data e ora.")
    exit_reason: str | None = Field(default=None, title="Uscita", description="Motivo di uscita dal percorso.")
    exit_note: str | None = Field(default=None, title="Nota di uscita", description="Motivazione.")

    @classmethod
    def of(cls, case: Any, view: str, allowed: list[str]) -> DischargePublic:
        setting = {"setting": str(case.setting) if case.setting else None,
                   "setting_label": SETTING_LABELS.get(str(case.setting)) if case.setting else None}
        labels = dict(view=view, view_label=VIEW_LABELS[view], state_label=DISCHARGE_STATE_LABELS[str(case.state)],
                      allowed_actions=allowed)
        if view == "minimal":
            return cls(**{f: getattr(case, f) for f in MINIMAL_FIELDS}, **setting, **labels)
        out: dict[str, Any] = {f: getattr(case, f) for f in (
            "id", "person_id", "state", "ward_org_id", "opened_by", "signalled_at", "admission_date",
            "expected_discharge_date", "cot_org_id", "out_of_ambito", "cot_requested_at", "evaluation_due_at",
            "requested_due_at", "evaluated_at", "discharged_at", "monitoring_at", "closed_at", "version")}
        out.update(labels)
        if view == "full":
            out.update({f: getattr(case, f) for f in (
                "comune_id", "criteria", "social_risk", "clinician_summary", "at_risk_at", "overdue_at", "vmd_id",
                "evaluation_hours", "plan_id", "project_at", "services", "services_at", "exit_reason",
                "exit_note")}, **setting)
        return cls(**out)


class DischargePage(BaseModel):
    items: list[DischargePublic]
    next_cursor: str | None = Field(default=None, description="Da passare come `cursor` per la pagina successiva.")


class _Versioned(_In):
    version: int | None = Field(default=None, ge=1, title="Versione",
                                description="Versione letta (facoltativa): se è cambiata nel frattempo, 409.")


class EvaluationRequestIn(_Versioned):
    """Richiesta della VMD di dimissione protetta all'équipe."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"cartella_id": "0d6f5f7e-8c2b-4b7e-9a51-3c4d2e1f0a21", "team_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
         "notes": "Valutazione in reparto prima della dimissione prevista."}]})

    cartella_id: uuid.UUID = Field(title="Cartella", description="Cartella sociale della persona.")
    team_id: uuid.UUID = Field(title="Équipe", description="Équipe di valutazione a cui si chiede la VMD.")
    notes: str | None = Field(default=None, max_length=2000, title="Note", description="Note per l'équipe.")


class EvaluationIn(_Versioned):
    """Valutazione conclusa: la VMD conclusa e il setting scelto."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"vmd_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "setting": "home"}]})

    vmd_id: uuid.UUID = Field(title="VMD", description="La VMD conclusa della persona: la valutazione è conclusa "
                                                       "all'ora della sua conclusione.")
    setting: Setting = Field(title="Setting", description="home (domicilio con SAD/ADI), cure_intermedie, rsa, "
                                                          "other_facility, shelter (bassa soglia).")


class ProjectIn(_Versioned):
    """Progetto di dimissione: un progetto individualizzato di tipo `discharge`."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"cartella_id": "0d6f5f7e-8c2b-4b7e-9a51-3c4d2e1f0a21",
         "case_manager_id": "a3bb189e-8bf9-3888-9912-ace4e6543002", "title": "Rientro a domicilio con SAD e ADI",
         "summary": "Igiene personale e terapia al domicilio."}]})

    cartella_id: uuid.UUID = Field(title="Cartella", description="Cartella sociale su cui si apre il progetto.")
    case_manager_id: uuid.UUID = Field(title="Case manager", description="Operatore responsabile del progetto.")
    title: str = Field(min_length=1, max_length=200, title="Titolo", description="Titolo del progetto.")
    summary: str | None = Field(default=None, max_length=8000, title="Sintesi", description="Sintesi del progetto.")


class DischargeIn(_Versioned):
    """Dimissione con i servizi attivati."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"services": ["sad", "adi"]}]})

    services: list[Service] = Field(default_factory=list, max_length=5, title="Servizi attivati",
                                    description="sad, adi, rsa_aperta, palliative, aids.")


class SettingIn(_Versioned):
    """Il setting di dimissione scelto dall'équipe."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"setting": "home"}]})

    setting: Setting = Field(title="Setting", description="home (domicilio con SAD/ADI), cure_intermedie, rsa, "
                                                          "other_facility, shelter (bassa soglia).")


class MonitoringIn(_Versioned):
    """Avvio del monitoraggio dopo la dimissione."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"version": 5}]})


class CancelIn(_Versioned):
    """Annullamento di una segnalazione inserita per errore o due volte, prima della valutazione."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"reason": "Segnalazione doppia: la persona era già stata segnalata ieri."}]})

    reason: str = Field(min_length=1, max_length=500, title="Motivo", description="Motivo dell'annullamento.")


class CloseIn(_Versioned):
    """Chiusura del percorso dopo il monitoraggio."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"version": 5}]})


class ExitIn(_Versioned):
    """Uscita dal percorso: non eleggibile, o dimessa senza progetto, con il motivo."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"action": "not_eligible", "reason": "Rete familiare adeguata: rientro a domicilio senza servizi."}]})

    action: Literal["not_eligible", "discharge_without_project"] = Field(
        title="Uscita", description="not_eligible oppure discharge_without_project.")
    reason: str = Field(min_length=1, max_length=500, title="Motivo", description="Motivo dell'uscita.")
