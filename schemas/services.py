"""Public contracts of services: accreditations, activation orders from a plan's intervention, the delivery log,
weekly and monthly summaries, the cost of a plan (budget di salute) and the SAD indicator."""
from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.services.models import ACTIVATION_STATE_LABELS, END_REASON_LABELS, EndReason, IntensityUnit


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# ---------------------------------------------------------------------------------------------------- accreditation
class AccreditationCreate(_In):
    """Accreditamento di un ente per una tipologia di servizio, per un periodo."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"organisation_id": "0d6f5f7e-8c2b-4b7e-9a51-3c4d2e1f0a21", "service_type": "sad",
         "valid_from": "2026-01-01", "valid_to": "2029-01-01", "unit_cost": "21.50",
         "reference": "Albo dei soggetti accreditati SAD, determina 12/2025"}]})

    organisation_id: uuid.UUID = Field(title="Ente", description="L'ente accreditato (ETS, RSA, servizio comunale).")
    service_type: str = Field(max_length=40, title="Tipologia di servizio", description="Codice del catalogo (sad...).")
    valid_from: date = Field(title="Valido dal", description="Primo giorno dell'accreditamento.")
    valid_to: date | None = Field(default=None, title="Valido fino al (escluso)",
                                  description="Primo giorno in cui l'accreditamento non vale più; vuoto se aperto.")
    unit_cost: Decimal | None = Field(default=None, max_digits=12, decimal_places=2, title="Costo unitario",
                                      description="Euro per ora o per accesso: il valore proposto negli ordini.")
    reference: str | None = Field(default=None, max_length=200, title="Atto",
                                  description="L'atto su cui si fonda (albo, determina).")


class AccreditationPublic(BaseModel):
    id: uuid.UUID = Field(title="Identificativo", description="Identificativo dell'accreditamento.")
    organisation_id: uuid.UUID = Field(title="Ente", description="L'ente accreditato.")
    organisation_name: str | None = Field(default=None, title="Nome dell'ente", description="Il nome dell'ente.")
    service_type: str = Field(title="Tipologia di servizio", description="Codice del catalogo.")
    valid_from: date = Field(title="Valido dal", description="Primo giorno.")
    valid_to: date | None = Field(default=None, title="Valido fino al (escluso)", description="Primo giorno escluso.")
    unit_cost: Decimal | None = Field(default=None, title="Costo unitario", description="Euro per ora o accesso.")
    reference: str | None = Field(default=None, title="Atto", description="L'atto su cui si fonda.")

    @classmethod
    def of(cls, a, names: dict | None = None) -> AccreditationPublic:
        return cls(id=a.id, organisation_id=a.organisation_id, organisation_name=(names or {}).get(a.organisation_id),
                   service_type=a.service_type, valid_from=a.valid_from, valid_to=a.valid_to,
                   unit_cost=a.unit_cost, reference=a.reference)


class AccreditationList(BaseModel):
    items: list[AccreditationPublic] = Field(title="Accreditamenti", description="Gli accreditamenti dell'Ambito.")


# ---------------------------------------------------------------------------------------------------- activation
class ActivationCreate(_In):
    """Ordine di attivazione di un intervento del progetto a un ente erogatore."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"intervention_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
         "provider_org_id": "0d6f5f7e-8c2b-4b7e-9a51-3c4d2e1f0a21", "intensity_value": 6,
         "intensity_unit": "hours_week", "start_date": "2026-03-09", "end_date": "2026-04-06",
         "unit_cost": "21.50", "funding_source": "fna", "notes": "Igiene personale e spesa, lunedì e giovedì"}]})

    intervention_id: uuid.UUID = Field(title="Intervento", description="L'intervento del progetto individualizzato.")
    provider_org_id: uuid.UUID | None = Field(default=None, title="Ente erogatore",
                                              description="Se assente, l'ente indicato nell'intervento.")
    service_type: str | None = Field(default=None, max_length=40, title="Tipologia di servizio",
                                     description="Se assente, quella dell'intervento.")
    intensity_value: Decimal | None = Field(default=None, max_digits=8, decimal_places=2, title="Intensità",
                                            description="Ore o accessi a settimana (se assente, quella "
                                                        "dell'intervento).")
    intensity_unit: IntensityUnit | None = Field(default=None, title="Unità dell'intensità",
                                                 description="hours_week (ore/settimana) o accesses_week "
                                                             "(accessi/settimana).")
    start_date: date | None = Field(default=None, title="Inizio", description="Primo giorno di servizio previsto.")
    end_date: date | None = Field(default=None, title="Fine (esclusa)",
                                  description="Primo giorno senza servizio; vuoto se a tempo indeterminato.")
    unit_cost: Decimal | None = Field(default=None, max_digits=12, decimal_places=2, title="Costo unitario",
                                      description="Euro per ora o accesso; se assente, quello dell'accreditamento.")
    funding_source: str | None = Field(default=None, max_length=40, title="Fonte di finanziamento",
                                       description="Se assente, quella dell'intervento.")
    notes: str | None = Field(default=None, max_length=2000, title="Note", description="Indicazioni per l'ente.")


class DeclineIn(_In):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "Nessun operatore disponibile in zona"}]})
    reason: str = Field(min_length=1, max_length=1000, title="Motivo", description="Perché l'ente rifiuta.")


class EmptyIn(_In):
    model_config = ConfigDict(json_schema_extra={"examples": [{}]})


class StartIn(_In):
    model_config = ConfigDict(json_schema_extra={"examples": [{"start_date": "2026-03-02"}]})
    start_date: date | None = Field(default=None, title="Primo giorno",
                                    description="Il primo giorno effettivo di servizio (se assente, oggi).")


class SuspendIn(_In):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "Ricovero ospedaliero"}]})
    reason: str = Field(min_length=1, max_length=1000, title="Motivo", description="Perché il servizio è sospeso.")
    from_date: date | None = Field(default=None, title="Sospeso dal",
                                   description="Primo giorno senza servizio (se assente, oggi; mai nel futuro).")


class EndIn(_In):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"reason": "goals_reached", "end_date": "2026-04-06", "note": "Autonomia recuperata"}]})
    reason: EndReason = Field(title="Motivo della conclusione",
                              description="; ".join(f"{k}: {v}" for k, v in END_REASON_LABELS.items()))
    end_date: date | None = Field(default=None, title="Fine (esclusa)",
                                  description="Primo giorno senza servizio (se assente, oggi).")
    note: str | None = Field(default=None, max_length=1000, title="Nota", description="Dettaglio del motivo.")


class ActivationPublic(BaseModel):
    id: uuid.UUID = Field(title="Identificativo", description="Identificativo dell'attivazione.")
    view: Literal["full", "minimal"] = Field(title="Vista", description="full, o minimal per l'ente erogatore.")
    person_id: uuid.UUID = Field(title="Persona", description="La persona che riceve il servizio.")
    plan_id: uuid.UUID | None = Field(default=None, title="Progetto", description="Il progetto (vista completa).")
    intervention_id: uuid.UUID = Field(title="Intervento", description="L'intervento del progetto.")
    provider_org_id: uuid.UUID = Field(title="Ente erogatore", description="L'ente che eroga.")
    provider_name: str | None = Field(default=None, title="Nome dell'ente", description="Il nome dell'ente.")
    service_type: str = Field(title="Tipologia di servizio", description="Codice del catalogo.")
    intensity_value: Decimal = Field(title="Intensità", description="Ore o accessi a settimana.")
    intensity_unit: str = Field(title="Unità dell'intensità", description="hours_week o accesses_week.")
    unit_cost: Decimal | None = Field(default=None, title="Costo unitario", description="Vista completa.")
    funding_source: str | None = Field(default=None, title="Fonte di finanziamento", description="Vista completa.")
    start_date: date = Field(title="Inizio", description="Primo giorno di servizio.")
    end_date: date | None = Field(default=None, title="Fine (esclusa)", description="Primo giorno senza servizio.")
    state: str = Field(title="Stato", description="Codice dello stato.")
    state_label: str = Field(title="Stato (etichetta)", description="Lo stato in italiano.")
    allowed_actions: list[str] = Field(title="Azioni possibili", description="Le azioni ammesse dallo stato.")
    requested_at: datetime = Field(title="Ordinata il", description="Quando è stata ordinata.")
    answered_at: datetime | None = Field(default=None, title="Risposta dell'ente", description="Accettazione o "
                                                                                              "rifiuto.")
    decline_reason: str | None = Field(default=None, title="Motivo del rifiuto", description="Se rifiutata.")
    started_at: datetime | None = Field(default=None, title="Avviata il", description="Avvio del servizio.")
    suspended_at: datetime | None = Field(default=None, title="Sospesa il", description="Se sospesa.")
    suspension_reason: str | None = Field(default=None, title="Motivo della sospensione", description="Se sospesa.")
    ended_at: datetime | None = Field(default=None, title="Conclusa il", description="Conclusione.")
    end_reason: str | None = Field(default=None, title="Motivo della conclusione", description="Codice.")
    end_note: str | None = Field(default=None, title="Nota di conclusione", description="Dettaglio.")
    notes: str | None = Field(default=None, title="Note", description="Indicazioni per l'ente.")
    run_in_system: bool | None = Field(default=None, title="Gestito interamente nel sistema",
                                       description="Richiesta, valutazione, progetto, attivazione, erogazione e "
                                                   "chiusura registrati (vista completa).")
    version: int = Field(title="Versione", description="Cresce a ogni modifica.")

    @classmethod
    def of(cls, v: dict[str, Any]) -> ActivationPublic:
        a, full = v["activation"], v["view"] == "full"
        return cls(id=a.id, view=v["view"], person_id=a.person_id, plan_id=a.plan_id if full else None,
                   intervention_id=a.intervention_id, provider_org_id=a.provider_org_id,
                   provider_name=v.get("provider_name"), service_type=a.service_type,
                   intensity_value=a.intensity_value, intensity_unit=str(a.intensity_unit),
                   unit_cost=a.unit_cost if full else None, funding_source=a.funding_source if full else None,
                   start_date=a.start_date, end_date=a.end_date, state=str(a.state),
                   state_label=ACTIVATION_STATE_LABELS[str(a.state)], allowed_actions=v["allowed_actions"],
                   requested_at=a.requested_at, answered_at=a.answered_at, decline_reason=a.decline_reason,
                   started_at=a.started_at, suspended_at=a.suspended_at, suspension_reason=a.suspension_reason,
                   ended_at=a.ended_at, end_reason=str(a.end_reason) if a.end_reason else None,
                   end_note=a.end_note, notes=a.notes, run_in_system=v.get("run_in_system") if full else None,
                   version=a.version)


class ActivationPage(BaseModel):
    items: list[ActivationPublic] = Field(title="Attivazioni", description="Le attivazioni visibili.")
    next_cursor: str | None = Field(default=None, title="Cursore successivo", description="Assente all'ultima pagina.")


# ---------------------------------------------------------------------------------------------------- delivery
class DeliveryCreate(_In):
    """Una prestazione registrata dall'operatore dell'ente."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"delivered_on": "2026-03-02", "hours": "1.5", "note": "Igiene e spesa"}]})

    delivered_on: date = Field(title="Giorno", description="Il giorno della prestazione.")
    hours: Decimal | None = Field(default=None, max_digits=8, decimal_places=2, title="Ore",
                                  description="Ore erogate (servizi a ore).")
    accesses: int | None = Field(default=None, title="Accessi", description="Accessi (servizi ad accessi).")
    operator_user_id: uuid.UUID | None = Field(default=None, title="Operatore",
                                               description="L'operatore dell'ente (se assente, chi registra).")
    operator_name: str | None = Field(default=None, max_length=200, title="Nome dell'operatore",
                                      description="Un operatore senza utenza nel sistema.")
    note: str | None = Field(default=None, max_length=500, title="Nota", description="Breve nota.")


class DeliveryPublic(BaseModel):
    id: uuid.UUID = Field(title="Identificativo", description="Identificativo della prestazione.")
    activation_id: uuid.UUID = Field(title="Attivazione", description="L'attivazione.")
    delivered_on: date = Field(title="Giorno", description="Il giorno della prestazione.")
    hours: Decimal | None = Field(default=None, title="Ore", description="Ore erogate.")
    accesses: int | None = Field(default=None, title="Accessi", description="Accessi.")
    operator_user_id: uuid.UUID = Field(title="Operatore", description="L'operatore.")
    operator_name: str | None = Field(default=None, title="Nome dell'operatore", description="Se senza utenza.")
    note: str | None = Field(default=None, title="Nota", description="Breve nota.")
    recorded_at: datetime = Field(title="Registrata il", description="Quando è stata registrata.")

    @classmethod
    def of(cls, d) -> DeliveryPublic:
        return cls(id=d.id, activation_id=d.activation_id, delivered_on=d.delivered_on, hours=d.hours,
                   accesses=d.accesses, operator_user_id=d.operator_user_id, operator_name=d.operator_name,
                   note=d.note, recorded_at=d.recorded_at)


class DeliveryPage(BaseModel):
    items: list[DeliveryPublic] = Field(title="Prestazioni", description="Le prestazioni, per giorno.")
    next_cursor: str | None = Field(default=None, title="Cursore successivo", description="Assente all'ultima pagina.")


class PeriodRow(BaseModel):
    start: date = Field(title="Dal", description="Primo giorno del periodo.")
    end: date = Field(title="Al (escluso)", description="Primo giorno dopo il periodo.")
    planned: Decimal = Field(title="Previsto", description="Ore o accessi previsti nei giorni di servizio.")
    delivered: Decimal = Field(title="Erogato", description="Ore o accessi registrati.")
    percent: Decimal | None = Field(default=None, title="Percentuale", description="Erogato / previsto × 100.")
    below_threshold: bool = Field(title="Sotto soglia", description="Sotto la soglia di SERVICES_BELOW_THRESHOLD"
                                                                   "_PERCENT (solo settimane concluse).")
    flagged: bool = Field(default=False, title="Segnalata", description="La settimana ha generato un'attività.")


class SummaryPublic(BaseModel):
    activation_id: uuid.UUID = Field(title="Attivazione", description="L'attivazione.")
    unit: str = Field(title="Unità", description="hours_week o accesses_week.")
    threshold_percent: Decimal = Field(title="Soglia", description="La soglia in uso.")
    weeks: list[PeriodRow] = Field(title="Settimane", description="Da lunedì a lunedì.")
    months: list[PeriodRow] = Field(title="Mesi", description="Mesi di calendario.")
    planned_total: Decimal = Field(title="Previsto totale", description="Fino a oggi o alla fine.")
    delivered_total: Decimal = Field(title="Erogato totale", description="Tutte le prestazioni.")


class CostLine(BaseModel):
    intervention_id: uuid.UUID | None = Field(default=None, title="Intervento", description="L'intervento.")
    activation_id: uuid.UUID | None = Field(default=None, title="Attivazione", description="L'attivazione.")
    service_type: str | None = Field(default=None, title="Tipologia di servizio", description="Codice.")
    funding_source: str | None = Field(default=None, title="Fonte di finanziamento", description="Codice.")
    unit_cost: Decimal | None = Field(default=None, title="Costo unitario", description="Euro per ora o accesso.")
    planned_quantity: Decimal = Field(title="Quantità prevista", description="Ore o accessi nel periodo ordinato.")
    delivered_quantity: Decimal = Field(title="Quantità erogata", description="Ore o accessi registrati.")
    planned_cost: Decimal = Field(title="Costo previsto", description="Quantità prevista × costo unitario.")
    delivered_cost: Decimal = Field(title="Costo erogato", description="Quantità erogata × costo unitario.")
    co_payment: Decimal = Field(title="Compartecipazione", description="La quota della persona (regole del "
                                                                       "comune).")


class FundingLine(BaseModel):
    funding_source: str | None = Field(default=None, title="Fonte di finanziamento", description="Codice.")
    planned_cost: Decimal = Field(title="Costo previsto", description="Somma delle righe.")
    delivered_cost: Decimal = Field(title="Costo erogato", description="Somma delle righe.")
    co_payment: Decimal = Field(title="Compartecipazione", description="Somma delle righe.")


class PlanCostPublic(BaseModel):
    plan_id: uuid.UUID = Field(title="Progetto", description="Il progetto individualizzato.")
    lines: list[CostLine] = Field(title="Per intervento", description="Una riga per intervento (e attivazione).")
    by_funding_source: list[FundingLine] = Field(title="Per fonte", description="Totali per fonte.")
    planned_cost: Decimal = Field(title="Costo previsto", description="Totale.")
    delivered_cost: Decimal = Field(title="Costo erogato", description="Totale.")
    co_payment: Decimal = Field(title="Compartecipazione", description="Totale della persona.")


class SadIndicatorPublic(BaseModel):
    period_from: date = Field(title="Dal", description="Inizio del periodo (conclusioni).")
    period_to: date = Field(title="Al (escluso)", description="Fine del periodo.")
    sad_ended: int = Field(title="SAD conclusi", description="Attivazioni SAD concluse nel periodo.")
    run_in_system: int = Field(title="Gestiti interamente nel sistema",
                               description="Con richiesta PUA, VMD conclusa, progetto sottoscritto, attivazione, "
                                           "erogazioni e chiusura registrati.")
