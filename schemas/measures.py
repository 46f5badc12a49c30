"""Public contracts of measures: the catalogue, calls (bandi) with their budget, applications and their steps."""
from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from domain.measures.models import APPLICATION_STATE_LABELS, PeriodRule
from domain.measures.states import MACHINE


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class MeasurePublic(BaseModel):
    code: str = Field(title="Codice", description="Codice della misura (b1, b2, pro_vi...).")
    label: str = Field(title="Nome", description="Nome della misura.")
    funding_source: str | None = Field(default=None, title="Fonte di finanziamento", description="Codice.")
    vmd_trigger: str | None = Field(default=None, title="Motivo della VMD", description="La VMD che la misura "
                                                                                       "richiede.")
    period_rule: str = Field(title="Regola del periodo", description="fixed_months (finestra annuale fissa) o "
                                                                    "from_start (durata dall'avvio).")
    start_month: int | None = Field(default=None, title="Mese di inizio", description="Per fixed_months (5 = "
                                                                                     "maggio).")
    months: int = Field(title="Durata in mesi", description="La durata del periodo.")
    max_amount: Decimal | None = Field(default=None, title="Importo massimo", description="Tetto per domanda.")
    yearly_budget: Decimal | None = Field(default=None, title="Budget annuo", description="Quando noto.")
    eligibility_notes: str | None = Field(default=None, title="Note di ammissibilità", description="Criteri.")
    active: bool = Field(title="Attiva", description="Se si possono aprire bandi.")
    status_counts: dict[str, int] | None = Field(
        default=None, title="Domande per stato", description="Nell'Ambito di chi legge, su tutti i bandi della misura "
                                                             "(solo numeri).")
    committed: Decimal | None = Field(default=None, title="Impegnato",
                                      description="Importi delle domande attive, in monitoraggio o concluse.")
    waiting_amount: Decimal | None = Field(default=None, title="In attesa di fondi",
                                           description="Importi delle domande in attesa di fondi.")

    @classmethod
    def of(cls, m, figures: dict | None = None) -> MeasurePublic:
        return cls(code=m.code, label=m.label, funding_source=m.funding_source, vmd_trigger=m.vmd_trigger,
                   period_rule=str(m.period_rule), start_month=m.start_month, months=m.months,
                   max_amount=m.max_amount, yearly_budget=m.yearly_budget, eligibility_notes=m.eligibility_notes,
                   active=m.active, **(figures or {}))


class MeasureList(BaseModel):
    items: list[MeasurePublic] = Field(title="Misure", description="Il catalogo delle misure.")


class MeasureUpdate(_In):
    """Regole della misura: tetto, budget, periodo (i valori sono dati, non codice)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"max_amount": "4800.00", "yearly_budget": "120000"}]})

    label: str | None = Field(default=None, max_length=200, title="Nome", description="Nome della misura.")
    max_amount: Decimal | None = Field(default=None, max_digits=12, decimal_places=2, title="Importo massimo",
                                       description="Tetto di una domanda, in euro.")
    yearly_budget: Decimal | None = Field(default=None, max_digits=12, decimal_places=2, title="Budget annuo",
                                          description="In euro, quando noto.")
    period_rule: PeriodRule | None = Field(default=None, title="Regola del periodo",
                                           description="fixed_months o from_start.")
    start_month: int | None = Field(default=None, title="Mese di inizio", description="1-12, per fixed_months.")
    months: int | None = Field(default=None, title="Durata in mesi", description="1-60.")
    eligibility_notes: str | None = Field(default=None, max_length=2000, title="Note di ammissibilità",
                                          description="Criteri in parole.")
    active: bool | None = Field(default=None, title="Attiva", description="Se si possono aprire bandi.")


class CallCreate(_In):
    """Un bando di una misura, con le date e il budget."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"measure_code": "pro_vi", "title": "Pro.Vi 2026-2027", "opens_on": "2026-03-01", "closes_on": "2026-04-15",
         "budget": "60000.00"}]})

    measure_code: str = Field(max_length=40, title="Misura", description="Codice della misura.")
    title: str = Field(min_length=1, max_length=200, title="Titolo", description="Titolo del bando.")
    opens_on: date = Field(title="Apertura", description="Primo giorno in cui si presentano domande.")
    closes_on: date = Field(title="Chiusura", description="Ultimo giorno in cui si presentano domande.")
    budget: Decimal = Field(max_digits=12, decimal_places=2, title="Budget", description="In euro.")


class CallUpdate(_In):
    model_config = ConfigDict(json_schema_extra={"examples": [{"budget": "75000.00"}]})

    title: str | None = Field(default=None, min_length=1, max_length=200, title="Titolo", description="Titolo.")
    closes_on: date | None = Field(default=None, title="Chiusura", description="Ultimo giorno per le domande.")
    budget: Decimal | None = Field(default=None, max_digits=12, decimal_places=2, title="Budget",
                                   description="In euro; se cresce, le domande in attesa di fondi sono attivate "
                                               "nell'ordine della graduatoria.")


class CallPublic(BaseModel):
    id: uuid.UUID = Field(title="Identificativo", description="Identificativo del bando.")
    measure_code: str = Field(title="Misura", description="Codice della misura.")
    title: str = Field(title="Titolo", description="Titolo del bando.")
    opens_on: date = Field(title="Apertura", description="Primo giorno.")
    closes_on: date = Field(title="Chiusura", description="Ultimo giorno.")
    open_today: bool = Field(title="Aperto oggi", description="Se oggi si presentano domande.")
    budget: Decimal = Field(title="Budget", description="In euro.")
    committed: Decimal = Field(title="Impegnato", description="Importi delle domande attive, in monitoraggio o "
                                                             "concluse.")
    available: Decimal = Field(title="Disponibile", description="Budget meno impegnato.")
    waiting_amount: Decimal = Field(title="In attesa di fondi", description="Importi delle domande in attesa.")
    status_counts: dict[str, int] = Field(title="Domande per stato", description="Conteggi per stato.")
    version: int = Field(title="Versione", description="Cresce a ogni modifica.")


class CallList(BaseModel):
    items: list[CallPublic] = Field(title="Bandi", description="I bandi dell'Ambito.")


class ApplicationCreate(_In):
    """Domanda di una misura su un bando."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"call_id": "9b2d4f6a-1c3e-4a5b-8d7f-0e1f2a3b4c5d", "person_id": "0d6f5f7e-8c2b-4b7e-9a51-3c4d2e1f0a21",
         "application_date": "2026-03-02", "cartella_id": "a3bb189e-8bf9-3888-9912-ace4e6543002",
         "requested_amount": "4800.00"}]})

    call_id: uuid.UUID = Field(title="Bando", description="Il bando della misura.")
    person_id: uuid.UUID = Field(title="Persona", description="La persona che chiede la misura.")
    application_date: date | None = Field(default=None, title="Data della domanda",
                                          description="Se assente, oggi; entro le date del bando.")
    cartella_id: uuid.UUID | None = Field(default=None, title="Cartella", description="La cartella della persona.")
    requested_amount: Decimal | None = Field(default=None, max_digits=12, decimal_places=2,
                                             title="Importo richiesto", description="Entro il tetto della misura.")


class AssessmentIn(_In):
    model_config = ConfigDict(json_schema_extra={"examples": [{"vmd_id": "5b0c7a52-2f0e-4d4b-9a8e-6f1f3c2d9e01"}]})

    vmd_id: uuid.UUID | None = Field(default=None, title="VMD esistente",
                                     description="Una VMD della persona (al posto di cartella ed équipe).")
    cartella_id: uuid.UUID | None = Field(default=None, title="Cartella", description="Dove richiedere la VMD.")
    team_id: uuid.UUID | None = Field(default=None, title="Équipe", description="L'équipe di valutazione.")


class EligibilityIn(_In):
    model_config = ConfigDict(json_schema_extra={"examples": [{"eligible": True}]})

    eligible: bool = Field(title="Idonea", description="L'esito della valutazione.")
    reason: str | None = Field(default=None, max_length=1000, title="Motivo",
                               description="Obbligatorio se non idonea.")


class ProjectIn(_In):
    model_config = ConfigDict(json_schema_extra={"examples": [{"plan_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7"}]})

    plan_id: uuid.UUID = Field(title="Progetto", description="Il progetto individualizzato della misura.")


class ActivationIn(_In):
    model_config = ConfigDict(json_schema_extra={"examples": [{"amount": "4800.00", "period_start": "2026-05-01"}]})

    amount: Decimal = Field(max_digits=12, decimal_places=2, title="Importo", description="In euro, entro il tetto.")
    period_start: date | None = Field(default=None, title="Inizio del periodo",
                                      description="Se assente, dalla regola della misura.")
    period_end: date | None = Field(default=None, title="Fine del periodo (esclusa)",
                                    description="Se assente, inizio + durata della misura.")


class EndApplicationIn(_In):
    model_config = ConfigDict(json_schema_extra={"examples": [{"note": "Ingresso in RSD"}]})

    note: str | None = Field(default=None, max_length=1000, title="Nota", description="Perché si conclude prima.")


class ApplicationPublic(BaseModel):
    id: uuid.UUID = Field(title="Identificativo", description="Identificativo della domanda.")
    call_id: uuid.UUID = Field(title="Bando", description="Il bando.")
    measure_code: str = Field(title="Misura", description="Codice della misura.")
    person_id: uuid.UUID = Field(title="Persona", description="La persona.")
    cartella_id: uuid.UUID | None = Field(default=None, title="Cartella", description="La cartella.")
    application_date: date = Field(title="Data della domanda", description="Entro le date del bando.")
    state: str = Field(title="Stato", description="Codice dello stato.")
    state_label: str = Field(title="Stato (etichetta)", description="Lo stato in italiano.")
    allowed_actions: list[str] = Field(title="Azioni possibili", description="Le azioni ammesse dallo stato.")
    requested_amount: Decimal | None = Field(default=None, title="Importo richiesto", description="In euro.")
    vmd_id: uuid.UUID | None = Field(default=None, title="VMD", description="La valutazione.")
    need_score: int | None = Field(default=None, title="Punteggio di bisogno", description="100 - Barthel.")
    not_eligible_reason: str | None = Field(default=None, title="Motivo di non idoneità", description="Se non "
                                                                                                     "idonea.")
    plan_id: uuid.UUID | None = Field(default=None, title="Progetto", description="Il progetto.")
    amount: Decimal | None = Field(default=None, title="Importo", description="In euro.")
    period_start: date | None = Field(default=None, title="Inizio del periodo", description="Primo giorno.")
    period_end: date | None = Field(default=None, title="Fine del periodo (esclusa)", description="Primo giorno "
                                                                                                "escluso.")
    waiting_rank: int | None = Field(default=None, title="Posizione in attesa di fondi",
                                     description="Calcolata alla lettura.")
    waiting_since: datetime | None = Field(default=None, title="In attesa dal", description="Se in attesa.")
    activated_at: datetime | None = Field(default=None, title="Attivata il", description="Attivazione.")
    ended_at: datetime | None = Field(default=None, title="Conclusa il", description="Conclusione.")
    end_reason: str | None = Field(default=None, title="Motivo della conclusione", description="period_over, "
                                                                                              "early_end.")
    version: int = Field(title="Versione", description="Cresce a ogni modifica.")

    @classmethod
    def of(cls, a, rank: int | None = None) -> ApplicationPublic:
        return cls(id=a.id, call_id=a.call_id, measure_code=a.measure_code, person_id=a.person_id,
                   cartella_id=a.cartella_id, application_date=a.application_date, state=str(a.state),
                   state_label=APPLICATION_STATE_LABELS[str(a.state)], allowed_actions=_allowed(a.state),
                   requested_amount=a.requested_amount, vmd_id=a.vmd_id, need_score=a.need_score,
                   not_eligible_reason=a.not_eligible_reason, plan_id=a.plan_id, amount=a.amount,
                   period_start=a.period_start, period_end=a.period_end, waiting_rank=rank,
                   waiting_since=a.waiting_since, activated_at=a.activated_at, ended_at=a.ended_at,
                   end_reason=a.end_reason, version=a.version)


def _allowed(state: Any) -> list[str]:
    return MACHINE.allowed_actions(state)


class ApplicationPage(BaseModel):
    items: list[ApplicationPublic] = Field(title="Domande", description="Le domande visibili.")
    next_cursor: str | None = Field(default=None, title="Cursore successivo", description="Assente all'ultima pagina.")


class WaitingRow(BaseModel):
    rank: int = Field(title="Posizione", description="1 = la prossima finanziata.")
    application_id: uuid.UUID | None = Field(default=None, title="Domanda", description="Se visibile al lettore.")
    person_id: uuid.UUID | None = Field(default=None, title="Persona", description="Se visibile al lettore.")
    application_date: date = Field(title="Data della domanda", description="Primo criterio.")
    need_score: int | None = Field(default=None, title="Punteggio di bisogno", description="Secondo criterio.")
    amount: Decimal | None = Field(default=None, title="Importo", description="In euro.")


class WaitingList(BaseModel):
    call_id: uuid.UUID = Field(title="Bando", description="Il bando.")
    rank_by: list[str] = Field(title="Criteri", description="MEASURES_WAITING_RANK.")
    items: list[WaitingRow] = Field(title="In attesa di fondi", description="In ordine di graduatoria.")
