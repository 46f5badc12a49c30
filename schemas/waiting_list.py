"""Public contracts of the waiting lists (RSA and other UDO): the application, the equipe's decision, urgency,
beds and offers, and the entry and the lists as each reader may see them."""
from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from domain.waiting_list.models import (
    APPLICANT_LABELS,
    CAREGIVER_LABELS,
    ENTRY_STATE_LABELS,
    HISTORY_ACTION_LABELS,
    OFFER_STATE_LABELS,
    URGENCY_REASON_LABELS,
    URGENCY_STATE_LABELS,
    Applicant,
    Caregiver,
)

_ID = "Identificativo (UUID) "
VERSION = Field(default=None, title="Versione attesa",
                description="La versione letta: se nel frattempo la domanda è cambiata la richiesta è respinta (409).")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ApplicationCreate(_In):
    """Domanda di inserimento in lista d'attesa (RSA o altra unità d'offerta sociosanitaria)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"person_id": "0d6f5f7e-8c2b-4b7e-9a51-3c4d2e1f0a21", "udo_type": "cdi",
         "unit_ids": ["7c9e6679-7425-40de-944b-e07fc1f90ae7", "3f2b8c1d-6e4a-4f7b-8c9d-0a1b2c3d4e5f"],
         "applicant": "relative", "applicant_name": "Anna Rossi (figlia)", "application_date": "2026-02-20",
         "cartella_id": "a3bb189e-8bf9-3888-9912-ace4e6543002", "team_id": "9b2d4f6a-1c3e-4a5b-8d7f-0e1f2a3b4c5d"}]})

    person_id: uuid.UUID = Field(title="Persona", description="La persona per cui si presenta la domanda.")
    udo_type: str = Field(max_length=40, title="Tipologia di unità d'offerta",
                          description="rsa, cdi, rsd, css, cdd, cure_intermedie (quelle che tengono una lista).")
    unit_ids: list[uuid.UUID] = Field(default_factory=list, max_length=20, title="Unità scelte",
                                      description="Le unità d'offerta scelte, in ordine di preferenza.")
    applicant: Applicant = Field(title="Chi presenta la domanda",
                                 description="person (la persona), relative (un familiare), ads "
                                             "(l'amministratore di sostegno), social_worker (l'assistente sociale).")
    applicant_name: str | None = Field(default=None, max_length=200, title="Nome del richiedente",
                                       description="Chi ha firmato la domanda, se non è la persona.")
    application_date: date = Field(title="Data della domanda",
                                   description="Da qui partono i 30 giorni della valutazione congiunta.")
    cartella_id: uuid.UUID | None = Field(default=None, title="Cartella",
                                          description="La cartella su cui richiedere la VMD congiunta.")
    team_id: uuid.UUID | None = Field(default=None, title="Équipe", description="L'équipe di valutazione.")
    vmd_id: uuid.UUID | None = Field(default=None, title="VMD esistente",
                                     description="Una VMD già richiesta con motivo rsa_application o udo_access "
                                                 "(al posto di cartella ed équipe).")
    notes: str | None = Field(default=None, max_length=4000, title="Note", description="Note per l'équipe.")


class _ScoreInputs(_In):
    vmd_id: uuid.UUID | None = Field(default=None, title="VMD",
                                     description="La VMD firmata con il punteggio di Barthel (predefinita: quella "
                                                 "della domanda).")
    caregiver: Caregiver | None = Field(default=None, title="Caregiver",
                                        description="none (nessuno), present (presente), overloaded (sovraccarico).")
    lives_alone: bool | None = Field(default=None, title="Vive sola", description="La persona vive sola.")
    version: int | None = VERSION


class DecisionIn(_ScoreInputs):
    """Decisione dell'équipe: inserita in lista o non inserita (con il motivo)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"decision": "listed", "caregiver": "overloaded", "lives_alone": False,
         "temporary_plan_id": "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b", "listing_date": "2026-03-01"},
        {"decision": "not_listed", "reason": "Bisogno assistenziale gestibile al domicilio con SAD e ADI."}]})

    decision: Literal["listed", "not_listed"] = Field(title="Decisione", description="listed o not_listed.")
    reason: str | None = Field(default=None, max_length=1000, title="Motivo",
                               description="Obbligatorio se la persona non è inserita in lista.")
    temporary_plan_id: uuid.UUID | None = Field(default=None, title="Progetto temporaneo",
                                                description="Il progetto temporaneo o alternativo, almeno "
                                                            "condiviso e sottoscritto (obbligatorio per "
                                                            "l'inserimento).")
    listing_date: date | None = Field(default=None, title="Data di inserimento",
                                      description="Predefinita: oggi; non nel futuro, non prima della domanda.")
    unit_ids: list[uuid.UUID] | None = Field(default=None, max_length=20, title="Unità scelte",
                                             description="Sostituisce le preferenze (in ordine).")


class AssessmentUpdateIn(_ScoreInputs):
    """Aggiornamento della valutazione di una domanda in lista (nuova VMD o nuova situazione del caregiver)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"vmd_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "caregiver": "none", "lives_alone": True}]})


class UrgencyIn(_In):
    """Segnalazione di urgenza dell'assistente sociale."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"reason": "loss_of_home", "note": "Sfratto esecutivo fissato per il 30 giugno, nessuna rete familiare."}]})

    reason: str | None = Field(default=None, max_length=40, title="Motivo",
                               description="loss_of_home (perdita del domicilio), loss_of_sole_caregiver (perdita "
                                           "del caregiver unico), other (altro).")
    note: str | None = Field(default=None, max_length=2000, title="Nota", description="La situazione che la motiva.")
    version: int | None = VERSION


class UrgencyDecisionIn(_In):
    """Decisione del coordinatore di sub-ambito sull'urgenza."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"confirm": True, "note": "Sfratto documentato."}]})

    confirm: bool = Field(title="Conferma", description="true: confermata; false: respinta.")
    note: str | None = Field(default=None, max_length=2000, title="Nota", description="Motivazione.")
    version: int | None = VERSION


class ConfirmIn(_In):
    """La persona conferma di restare in lista dopo il secondo rifiuto."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"version": 5}]})

    version: int | None = VERSION


class ExitIn(_In):
    """Uscita dalla lista: ritiro della domanda o ingresso altrove (la persona esce da ogni lista)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"action": "withdraw", "note": "La famiglia ha scelto l'assistenza privata a domicilio."}]})

    action: str = Field(max_length=30, title="Uscita", description="withdraw (ritiro) o admit_elsewhere.")
    note: str | None = Field(default=None, max_length=1000, title="Nota", description="Motivazione.")
    version: int | None = VERSION


class BedCreate(_In):
    """Un posto dichiarato libero dall'ente gestore."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"label": "Nucleo 2, camera 14"}]})

    label: str | None = Field(default=None, max_length=60, title="Posto", description="Come l'ente chiama il posto.")


class OfferCreate(_In):
    """Offerta di un posto libero alla domanda meglio collocata tra quelle idonee."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"unit_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7"}]})

    unit_id: uuid.UUID = Field(title="Unità d'offerta", description="L'unità dell'ente con un posto libero.")
    bed_id: uuid.UUID | None = Field(default=None, title="Posto",
                                     description="Il posto da offrire (predefinito: il primo dichiarato libero).")


class ReceiptIn(_In):
    """Ricezione dell'offerta da parte della persona (o di chi la rappresenta)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"received_at": "2026-03-02T09:00:00+01:00"}]})

    received_at: AwareDatetime | None = Field(default=None, title="Ricevuta il",
                                              description="Predefinita: adesso; da qui il termine di risposta.")
    received_by_relation_id: uuid.UUID | None = Field(
        default=None, title="Ricevuta dal rappresentante",
        description="La relazione del tutore o dell'amministratore di sostegno (per la cura) che l'ha ricevuta; "
                    "assente: la persona.")


class ReplyIn(_In):
    """Risposta della persona all'offerta."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"replied_at": "2026-03-02T09:00:00+01:00"}]})

    replied_at: AwareDatetime | None = Field(default=None, title="Risposta il", description="Predefinita: adesso.")


class RefusalIn(ReplyIn):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"reason": "La famiglia preferisce attendere una RSA più vicina."}]})

    reason: str | None = Field(default=None, max_length=1000, title="Motivo", description="Motivo del rifiuto.")


# ---------------------------------------------------------------- outputs
class ScoreBreakdown(BaseModel):
    barthel: float = Field(title="Barthel", description="Peso × (100 − Barthel) / 100.")
    caregiver: float = Field(title="Caregiver", description="Punti per caregiver assente o sovraccarico.")
    lives_alone: float = Field(title="Vive sola", description="Punti se la persona vive sola.")
    waiting: float = Field(title="Attesa", description="Punti per ogni periodo intero in lista (con un massimo).")
    periods: int = Field(title="Periodi in lista", description="Periodi interi trascorsi dall'inserimento.")
    total: float = Field(title="Punteggio", description="La somma.")
    urgent: bool = Field(title="Urgente", description="Urgenza confermata: precede ogni domanda ordinaria.")

    @classmethod
    def of(cls, b) -> ScoreBreakdown | None:
        return None if b is None else cls(barthel=b.barthel, caregiver=b.caregiver, lives_alone=b.lives_alone,
                                          waiting=b.waiting, periods=b.periods, total=b.total, urgent=b.urgent)


class OfferPublic(BaseModel):
    id: uuid.UUID = Field(title="Offerta", description=_ID + "dell'offerta.")
    entry_id: uuid.UUID = Field(title="Domanda", description=_ID + "della domanda.")
    person_id: uuid.UUID = Field(title="Persona", description="La persona a cui è offerto il posto.")
    unit_id: uuid.UUID = Field(title="Unità d'offerta", description="L'unità del posto.")
    bed_id: uuid.UUID = Field(title="Posto", description="Il posto offerto.")
    state: str = Field(title="Stato", description="open, accepted, refused, expired, withdrawn.")
    state_label: str = Field(title="Stato (etichetta)", description="In italiano.")
    position: int = Field(title="Posizione", description="La posizione in lista al momento dell'offerta.")
    score: float = Field(title="Punteggio", description="Il punteggio al momento dell'offerta.")
    urgent: bool = Field(title="Urgente", description="Urgenza confermata al momento dell'offerta.")
    proposed_at: datetime = Field(title="Proposta il", description="Data e ora dell'offerta.")
    received_at: datetime | None = Field(default=None, title="Ricevuta il", description="Ricezione registrata.")
    received_by: str | None = Field(default=None, title="Ricevuta da",
                                    description="person (la persona) o il tipo di rappresentante (ads, tutore...).")
    reply_due_at: datetime | None = Field(default=None, title="Termine di risposta",
                                          description="Giorni lavorativi dalla ricezione.")
    replied_at: datetime | None = Field(default=None, title="Risposta il", description="Data e ora della risposta.")
    refusal_reason: str | None = Field(default=None, title="Motivo del rifiuto", description="Se rifiutata.")

    @classmethod
    def of(cls, o: Any) -> OfferPublic:
        return cls(**{f: getattr(o, f) for f in (
            "id", "entry_id", "person_id", "unit_id", "bed_id", "position", "score", "urgent", "proposed_at",
            "received_at", "received_by", "reply_due_at", "replied_at", "refusal_reason")}, state=str(o.state),
            state_label=OFFER_STATE_LABELS[str(o.state)])


class EntryPublic(BaseModel):
    id: uuid.UUID = Field(title="Domanda", description=_ID + "della domanda.")
    view: Literal["full", "minimal"] = Field(title="Vista", description="full (completa) o minimal (ente gestore).")
    person_id: uuid.UUID = Field(title="Persona", description="La persona.")
    udo_type: str = Field(title="Tipologia", description="Tipologia di unità d'offerta.")
    state: str = Field(title="Stato", description="Stato della domanda.")
    state_label: str = Field(title="Stato (etichetta)", description="In italiano.")
    allowed_actions: list[str] = Field(default_factory=list, title="Azioni possibili", description="Dallo stato.")
    application_date: date = Field(title="Data della domanda", description="Inizio dei 30 giorni.")
    listing_date: date | None = Field(default=None, title="Inserita in lista il", description="Data.")
    urgency: str = Field(title="Urgenza", description="none, raised, confirmed, rejected.")
    urgency_label: str = Field(title="Urgenza (etichetta)", description="In italiano.")
    unit_ids: list[uuid.UUID] = Field(default_factory=list, title="Unità scelte", description="In ordine.")
    positions: dict[str, int | None] = Field(default_factory=dict, title="Posizioni",
                                             description="Posizione in ciascuna lista scelta, calcolata ora.")
    score: ScoreBreakdown | None = Field(default=None, title="Punteggio", description="Il dettaglio del punteggio.")
    offers: list[OfferPublic] = Field(default_factory=list, title="Offerte", description="Le offerte ricevute.")
    version: int = Field(title="Versione", description="Per le modifiche concorrenti.")
    # the VMD summary: full view, or a UDO operator with the person's consent
    barthel: int | None = Field(default=None, title="Barthel", description="Punteggio di Barthel della VMD.")
    caregiver: str | None = Field(default=None, title="Caregiver", description="none, present, overloaded.")
    caregiver_label: str | None = Field(default=None, title="Caregiver (etichetta)", description="In italiano.")
    lives_alone: bool | None = Field(default=None, title="Vive sola", description="Vive sola.")
    # full view only
    comune_id: uuid.UUID | None = Field(default=None, title="Comune", description="Comune di residenza.")
    applicant: str | None = Field(default=None, title="Richiedente", description="Chi ha presentato la domanda.")
    applicant_label: str | None = Field(default=None, title="Richiedente (etichetta)", description="In italiano.")
    applicant_name: str | None = Field(default=None, title="Nome del richiedente", description="Se non la persona.")
    applied_at: datetime | None = Field(default=None, title="Registrata il", description="Data e ora.")
    discharge_id: uuid.UUID | None = Field(default=None, title="Dimissione protetta",
                                           description="La dimissione protetta che l'ha aperta.")
    vmd_id: uuid.UUID | None = Field(default=None, title="VMD", description="La VMD congiunta.")
    assessment_requested_at: datetime | None = Field(default=None, title="Valutazione richiesta il",
                                                     description="Data e ora.")
    assessment_due_at: datetime | None = Field(default=None, title="Scadenza della valutazione",
                                               description="Fine del trentesimo giorno dalla domanda.")
    assessed_at: datetime | None = Field(default=None, title="Valutata il", description="Conclusione della VMD.")
    at_risk_at: datetime | None = Field(default=None, title="A rischio dal", description="Segnata a rischio.")
    overdue_at: datetime | None = Field(default=None, title="Scaduta dal", description="Oltre i 30 giorni.")
    decided_at: datetime | None = Field(default=None, title="Decisa il", description="Decisione dell'équipe.")
    not_listed_reason: str | None = Field(default=None, title="Motivo del non inserimento", description="Testo.")
    listed_at: datetime | None = Field(default=None, title="Inserita il (data e ora)", description="Registrazione.")
    temporary_plan_id: uuid.UUID | None = Field(default=None, title="Progetto temporaneo", description="Il progetto.")
    urgency_reason: str | None = Field(default=None, title="Motivo dell'urgenza", description="Codice.")
    urgency_reason_label: str | None = Field(default=None, title="Motivo dell'urgenza (etichetta)",
                                             description="In italiano.")
    urgency_note: str | None = Field(default=None, title="Nota dell'urgenza", description="Testo.")
    urgency_raised_at: datetime | None = Field(default=None, title="Urgenza segnalata il", description="Data e ora.")
    urgency_decided_at: datetime | None = Field(default=None, title="Urgenza decisa il", description="Data e ora.")
    refusals: int | None = Field(default=None, title="Rifiuti", description="Offerte rifiutate o scadute.")
    suspended_at: datetime | None = Field(default=None, title="Sospesa il", description="Dopo il secondo rifiuto.")
    admitted_at: datetime | None = Field(default=None, title="Ammessa il", description="Ingresso.")
    admitted_unit_id: uuid.UUID | None = Field(default=None, title="Unità di ingresso", description="Dove.")
    exit_reason: str | None = Field(default=None, title="Uscita",
                                    description="withdrawn, deceased, admitted_elsewhere.")
    exited_at: datetime | None = Field(default=None, title="Uscita il", description="Data e ora.")

    @classmethod
    def of(cls, v: Any) -> EntryPublic:
        e = v.entry
        out: dict[str, Any] = {
            "id": e.id, "view": v.view, "person_id": e.person_id, "udo_type": e.udo_type, "state": str(e.state),
            "state_label": ENTRY_STATE_LABELS[str(e.state)], "allowed_actions": v.allowed,
            "application_date": e.application_date, "listing_date": e.listing_date, "urgency": str(e.urgency),
            "urgency_label": URGENCY_STATE_LABELS[str(e.urgency)], "unit_ids": v.choices,
            "positions": {str(k): p for k, p in v.positions.items()}, "score": ScoreBreakdown.of(v.score),
            "offers": [OfferPublic.of(o) for o in v.offers], "version": e.version}
        if v.summary:
            out.update(barthel=e.barthel, caregiver=str(e.caregiver) if e.caregiver else None,
                       caregiver_label=CAREGIVER_LABELS.get(str(e.caregiver)) if e.caregiver else None,
                       lives_alone=e.lives_alone)
        elif v.score is not None:
            out["score"] = None  # the breakdown would tell the Barthel score back
        if v.view == "full":
            out.update({f: getattr(e, f) for f in (
                "comune_id", "applicant_name", "applied_at", "discharge_id", "vmd_id", "assessment_requested_at",
                "assessment_due_at", "assessed_at", "at_risk_at", "overdue_at", "decided_at", "not_listed_reason",
                "listed_at", "temporary_plan_id", "urgency_note", "urgency_raised_at", "urgency_decided_at",
                "refusals", "suspended_at", "admitted_at", "admitted_unit_id", "exited_at")})
            out.update(applicant=str(e.applicant), applicant_label=APPLICANT_LABELS[str(e.applicant)],
                       urgency_reason=str(e.urgency_reason) if e.urgency_reason else None,
                       urgency_reason_label=URGENCY_REASON_LABELS.get(str(e.urgency_reason))
                       if e.urgency_reason else None,
                       exit_reason=str(e.exit_reason) if e.exit_reason else None)
        return cls(**out)


class EntryEvent(BaseModel):
    version: int = Field(title="Versione", description="La versione della domanda dopo l'evento.")
    action: str = Field(title="Evento", description="Codice dell'evento (listed, urgency_raised, refused...).")
    action_label: str = Field(title="Evento (etichetta)", description="L'evento, in italiano.")
    at: datetime = Field(title="Quando", description="Data e ora dell'evento.")
    actor_id: uuid.UUID | None = Field(default=None, title="Autore", description="Chi l'ha registrato (assente per "
                                                                                 "i passi automatici).")
    state: str | None = Field(default=None, title="Stato", description="Lo stato della domanda dopo l'evento.")
    state_label: str | None = Field(default=None, title="Stato (etichetta)", description="Lo stato, in italiano.")
    cause: dict[str, Any] = Field(default_factory=dict, title="Causa",
                                  description="Il motivo registrato con l'evento (es. motivo dell'urgenza, offerta).")

    @classmethod
    def of(cls, h: Any) -> EntryEvent:
        state = ((h.data or {}).get("entry") or {}).get("state")
        return cls(version=h.version, action=h.action, action_label=HISTORY_ACTION_LABELS.get(h.action, h.action),
                   at=h.at, actor_id=h.actor_id, state=state, state_label=ENTRY_STATE_LABELS.get(state or ""),
                   cause=(h.data or {}).get("detail") or {})


class EntryHistory(BaseModel):
    items: list[EntryEvent] = Field(title="Eventi", description="Gli eventi della domanda, dal primo.")


class EntryPage(BaseModel):
    items: list[EntryPublic] = Field(title="Domande", description="Le domande visibili.")
    next_cursor: str | None = Field(default=None, title="Cursore successivo", description="Assente all'ultima pagina.")


class ListRowPublic(BaseModel):
    position: int = Field(title="Posizione", description="Calcolata alla lettura, mai memorizzata.")
    entry_id: uuid.UUID | None = Field(default=None, title="Domanda",
                                       description="Assente per le domande che il lettore non raggiunge.")
    person_id: uuid.UUID | None = Field(default=None, title="Persona",
                                        description="Assente per le domande che il lettore non raggiunge.")
    urgent: bool = Field(title="Urgente", description="Urgenza confermata.")
    total: float = Field(title="Punteggio", description="Il punteggio.")
    score: ScoreBreakdown | None = Field(default=None, title="Dettaglio del punteggio",
                                         description="Per chi vede la sintesi della VMD.")
    listing_date: date | None = Field(default=None, title="Inserita il", description="Data di inserimento.")
    application_date: date = Field(title="Data della domanda", description="Data.")

    @classmethod
    def of(cls, row: Any) -> ListRowPublic:
        r, e = row.ranked, row.ranked.entry
        return cls(position=r.position, entry_id=e.id if row.visible else None,
                   person_id=e.person_id if row.visible else None, urgent=r.score.urgent, total=r.score.total,
                   score=ScoreBreakdown.of(r.score) if row.visible and row.summary else None,
                   listing_date=e.listing_date, application_date=e.application_date)


class BedPublic(BaseModel):
    id: uuid.UUID = Field(title="Posto", description=_ID + "del posto.")
    unit_id: uuid.UUID = Field(title="Unità d'offerta", description="L'unità.")
    label: str | None = Field(default=None, title="Etichetta", description="Come l'ente chiama il posto.")
    state: str = Field(title="Stato", description="free o occupied.")
    declared_at: datetime = Field(title="Dichiarato libero il", description="Data e ora.")

    @classmethod
    def of(cls, b: Any) -> BedPublic:
        return cls(id=b.id, unit_id=b.unit_id, label=b.label, state=str(b.state), declared_at=b.declared_at)


class UnitListPublic(BaseModel):
    unit_id: uuid.UUID = Field(title="Unità d'offerta", description="L'unità.")
    unit_name: str = Field(title="Nome", description="Nome dell'unità.")
    udo_type: str = Field(title="Tipologia", description="Tipologia di unità d'offerta.")
    items: list[ListRowPublic] = Field(title="Lista", description="Le domande in lista, in ordine.")
    suspended: list[ListRowPublic] = Field(default_factory=list, title="Sospese",
                                           description="In attesa di conferma dopo il secondo rifiuto (nessuna "
                                                       "offerta finché non confermano).")
    free_beds: list[BedPublic] = Field(default_factory=list, title="Posti liberi", description="Dichiarati liberi.")
    open_offers: list[OfferPublic] = Field(default_factory=list, title="Offerte aperte",
                                           description="In attesa di risposta.")


class RankingPublic(BaseModel):
    udo_type: str = Field(title="Tipologia", description="Tipologia di unità d'offerta.")
    items: list[ListRowPublic] = Field(title="Graduatoria d'Ambito", description="Urgenti prima, poi ordinarie.")
