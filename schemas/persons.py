"""Public contracts of the person registry: persons, related persons, duplicates and merges."""
from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain.registry.models import RELATION_LABELS, DecreeScope, IdentifierType, MatchStatus, RelationKind, Sex

SEX_LABELS = {"M": "Maschio", "F": "Femmina"}
IDENTIFIER_LABELS = {
    "codice_fiscale": "Codice fiscale", "stp": "STP (Straniero Temporaneamente Presente)",
    "eni": "ENI (Europeo Non Iscritto)", "passport": "Passaporto", "provisional": "Identificativo provvisorio",
}
MATCH_STATUS_LABELS = {
    "pending": "Da verificare", "merged": "Unite", "not_duplicate": "Persone diverse",
    "superseded": "Superata da un'altra unione",
}
HISTORY_ACTION_LABELS = {
    "create": "Registrazione", "update": "Modifica", "death": "Registrazione del decesso",
    "merge_kept": "Unione: persona mantenuta", "merged": "Unione: persona assorbita in un'altra",
}

_PHONE = re.compile(r"^\+?[0-9][0-9 ./\-]{4,24}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
OtherIdentifierType = Literal["stp", "eni", "passport", "provisional"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Contacts(_In):
    """Recapiti. Tutti facoltativi."""

    phone: str | None = Field(default=None, max_length=30, description="Telefono fisso")
    mobile: str | None = Field(default=None, max_length=30, description="Cellulare")
    email: str | None = Field(default=None, max_length=200, description="Posta elettronica")
    pec: str | None = Field(default=None, max_length=200, description="Posta elettronica certificata")
    notes: str | None = Field(default=None, max_length=500, description="Note sui recapiti (orari, referenti)")

    @field_validator("phone", "mobile")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        if v and not _PHONE.match(v):
            raise ValueError("numero di telefono non valido")
        return v or None

    @field_validator("email", "pec")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        if v and not _EMAIL.match(v):
            raise ValueError("indirizzo di posta non valido")
        return v.lower() if v else None


class _PersonFields(_In):
    codice_fiscale: str | None = Field(default=None, max_length=24, description=(
        "Codice fiscale (16 caratteri). Controllati: carattere di controllo, omocodia, coerenza con data e "
        "luogo di nascita e sesso."), examples=["BNCNNA42C55D142T"])
    other_identifier_type: OtherIdentifierType | None = Field(default=None, description=(
        "Identificativo alternativo per chi non ha codice fiscale: STP, ENI, passaporto o provvisorio."))
    other_identifier: str | None = Field(default=None, max_length=40, description=(
        "Valore dell'identificativo alternativo. STP/ENI: 16 caratteri (prefisso + 13 cifre). Per 'provisional' "
        "si può omettere: lo assegna il sistema."))
    surname: str | None = Field(default=None, min_length=1, max_length=120, description="Cognome")
    given_name: str | None = Field(default=None, min_length=1, max_length=120, description="Nome")
    sex: Sex | None = Field(default=None, description="Sesso anagrafico (M/F)")
    birth_date: date | None = Field(default=None, description="Data di nascita")
    birth_place_code: str | None = Field(default=None, pattern=r"^[A-Za-z][0-9]{3}$", description=(
        "Codice catastale (Belfiore) del comune o dello stato estero di nascita"))
    birth_place_name: str | None = Field(default=None, max_length=120, description="Luogo di nascita")
    citizenship: str | None = Field(default=None, max_length=60, description="Cittadinanza")
    residence_comune_id: uuid.UUID | None = Field(default=None, description="Comune di residenza (dell'Ambito)")
    residence_address: str | None = Field(default=None, max_length=200, description="Indirizzo di residenza")
    domicile_comune_id: uuid.UUID | None = Field(default=None, description="Comune di domicilio (dell'Ambito)")
    domicile_address: str | None = Field(default=None, max_length=200, description="Indirizzo di domicilio")
    fictitious_residence: bool | None = Field(default=None, description=(
        "Residenza fittizia (persona senza dimora iscritta in una via fittizia del comune)"))
    homeless: bool | None = Field(default=None, description="Persona senza dimora")
    lives_alone: bool | None = Field(default=None, description="Vive solo/a")
    contacts: Contacts | None = Field(default=None, description="Recapiti")


class PersonCreate(_PersonFields):
    """Registrazione di una persona. Serve il codice fiscale oppure un identificativo alternativo."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"codice_fiscale": "BNCNNA42C55D142T", "surname": "Bianchi", "given_name": "Anna", "sex": "F",
         "birth_date": "1942-03-15", "birth_place_code": "D142", "citizenship": "italiana",
         "lives_alone": True,
         "contacts": {"phone": "0373 256789", "notes": "Chiamare la figlia dopo le 18"}},
        {"other_identifier_type": "stp", "other_identifier": "STP0303210000123", "surname": "Popescu",
         "given_name": "Ioana", "sex": "F", "birth_date": "1990-06-01", "citizenship": "rumena"}]})

    surname: str = Field(min_length=1, max_length=120, description="Cognome")
    given_name: str = Field(min_length=1, max_length=120, description="Nome")


class PersonUpdate(_PersonFields):
    """Modifica parziale (PATCH): solo i campi presenti cambiano; `null` svuota un campo facoltativo."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"lives_alone": False,
         "contacts": {"mobile": "+39 333 1234567"}, "version": 2}]})

    version: int | None = Field(default=None, ge=1, description="Versione attesa (controllo di concorrenza)")


class DuplicatesCheck(_In):
    """Dati per cercare possibili duplicati senza registrare."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"codice_fiscale": "BNCNNA42C55D142T", "surname": "Bianchi", "given_name": "Anna", "sex": "F",
         "birth_date": "1942-03-15", "birth_place_code": "D142"},
        {"surname": "Bianchi", "given_name": "Anna", "birth_date": "1942-03-15"}]})

    codice_fiscale: str | None = Field(default=None, max_length=24, description="Codice fiscale, se noto")
    surname: str = Field(min_length=1, max_length=120, description="Cognome")
    given_name: str = Field(min_length=1, max_length=120, description="Nome")
    sex: Sex | None = Field(default=None, description="Sesso anagrafico (M/F)")
    birth_date: date | None = Field(default=None, description="Data di nascita")
    birth_place_code: str | None = Field(default=None, pattern=r"^[A-Za-z][0-9]{3}$", description=(
        "Codice catastale (Belfiore) del comune o dello stato estero di nascita"))


class DeathRecord(_In):
    """Registrazione del decesso."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"date_of_death": "2026-02-27"}]})

    date_of_death: date = Field(description="Data del decesso: non prima della nascita, non nel futuro")


class PersonSummary(BaseModel):
    """Dati identificativi essenziali (liste, candidati duplicati)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    codice_fiscale: str | None
    other_identifier_type: str | None = None
    other_identifier: str | None = None
    surname: str
    given_name: str
    sex: Sex | None
    birth_date: date | None
    birth_place_name: str | None
    residence_comune_id: uuid.UUID | None
    residence_comune_name: str | None = Field(
        default=None, description="Nome del comune di residenza (nelle ricerche; presente quando lo è l'id).")
    date_of_death: date | None = None


class PersonPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    codice_fiscale: str | None
    other_identifier_type: IdentifierType | None
    other_identifier: str | None
    surname: str
    given_name: str
    sex: Sex | None
    birth_date: date | None
    birth_place_code: str | None
    birth_place_name: str | None
    citizenship: str | None
    residence_comune_id: uuid.UUID | None
    residence_address: str | None
    domicile_comune_id: uuid.UUID | None
    domicile_address: str | None
    fictitious_residence: bool
    homeless: bool
    lives_alone: bool | None
    contacts: dict[str, Any]
    date_of_death: date | None
    status: str
    needs_review: bool
    source: str
    version: int
    created_at: datetime
    updated_at: datetime


class DuplicateCandidate(BaseModel):
    person: PersonSummary
    score: float = Field(description="Punteggio di somiglianza tra 0 e 1")
    reasons: dict[str, Any] = Field(description="Componenti del punteggio (nome, data, sesso, luogo)")
    match_id: uuid.UUID | None = Field(default=None, description="Coppia da verificare creata per i data steward")


class PersonCreated(PersonPublic):
    possible_duplicates: list[DuplicateCandidate] = Field(
        default_factory=list, description="Persone già registrate che potrebbero essere la stessa")


class DuplicatesCheckResult(BaseModel):
    existing_id: uuid.UUID | None = Field(description="Persona con lo stesso codice fiscale, se già registrata")
    candidates: list[DuplicateCandidate]


class PersonSearch(_In):
    """Criteri di ricerca nel corpo della richiesta: il codice fiscale non finisce negli URL (né nei log dei proxy)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={
        "examples": [{"q": "bonizzi teresa", "limit": 20}, {"codice_fiscale": "BNZTRS43L54G004X"}]})

    codice_fiscale: str | None = Field(default=None, max_length=24, description="Codice fiscale esatto")
    q: str | None = Field(default=None, max_length=120, description="Cognome e nome (ricerca approssimata)")
    birth_date: date | None = Field(default=None, description="Data di nascita (AAAA-MM-GG)")
    comune_id: uuid.UUID | None = Field(default=None, description="Comune di residenza")
    limit: int = Field(default=20, ge=1, le=100, description="Risultati per pagina")
    cursor: str | None = Field(default=None, max_length=1000, description="Cursore opaco della pagina precedente")
    total: bool = Field(default=False, description="Calcola anche il totale")


class PersonPage(BaseModel):
    items: list[PersonSummary]
    next_cursor: str | None = Field(description="Cursore opaco per la pagina successiva")
    total: int | None = Field(default=None, description="Totale (solo con ?total=true)")


class HistoryEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    action: str
    action_label: str
    at: datetime
    actor_id: uuid.UUID | None
    request_id: str | None
    data: dict[str, Any]


class HistoryPage(BaseModel):
    items: list[HistoryEntry]
    next_cursor: str | None


# ---------------------------------------------------------------- relations
class RelationCreate(_In):
    """Persona di riferimento: registrata (`related_person_id`) oppure solo nome e recapiti."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"kind": "caregiver", "surname": "Bianchi", "given_name": "Laura", "sole_caregiver": True, "cohabiting": False,
         "contacts": {"mobile": "+39 333 7654321"}},
        {"kind": "ads", "surname": "Ferrari", "given_name": "Paolo", "decree_reference": "R.G. 1234/2025",
         "court": "Tribunale di Cremona", "decree_scope": ["care_health"], "valid_from": "2025-11-03"}]})

    kind: RelationKind = Field(description="Tipo di relazione")
    related_person_id: uuid.UUID | None = Field(default=None, description="Persona registrata nell'Ambito")
    surname: str | None = Field(default=None, min_length=1, max_length=120, description=(
        "Cognome (se la persona di riferimento non è registrata)"))
    given_name: str | None = Field(default=None, min_length=1, max_length=120, description=(
        "Nome (se la persona di riferimento non è registrata)"))
    contacts: Contacts | None = Field(default=None, description="Recapiti")
    sole_caregiver: bool = Field(default=False, description="Caregiver unico (solo per kind=caregiver)")
    cohabiting: bool | None = Field(default=None, description="Convivente")
    decree_reference: str | None = Field(default=None, min_length=1, max_length=120, description=(
        "Estremi del decreto di nomina (obbligatorio per tutore e amministratore di sostegno)"))
    decree_scope: list[DecreeScope] = Field(default_factory=list, max_length=3, description=(
        "Solo per l'amministratore di sostegno: cosa prevede il decreto — `care_health` (rappresentanza per cura "
        "e salute: presta il consenso), `assets` (patrimoniale), `assistance` (sola assistenza: la persona "
        "decide da sé)"))
    court: str | None = Field(default=None, max_length=120, description="Tribunale")
    valid_from: date | None = Field(default=None, description="Primo giorno di validità (predefinito: oggi)")
    valid_to: date | None = Field(default=None, description=(
        "Fine della validità, esclusa: dal giorno indicato la relazione non è più in corso"))


class RelationEnd(_In):
    """Fine della relazione; il corpo si può omettere (fine: oggi)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"valid_to": "2026-06-30"}]})

    valid_to: date | None = Field(default=None, description=(
        "Fine della validità, esclusa: dal giorno indicato la relazione non è più in corso (predefinito: oggi)"))


class RelationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    person_id: uuid.UUID
    kind: RelationKind
    kind_label: str
    related_person_id: uuid.UUID | None
    surname: str | None
    given_name: str | None
    contacts: dict[str, Any]
    sole_caregiver: bool
    cohabiting: bool | None
    decree_reference: str | None
    decree_scope: list[str] = Field(default_factory=list)
    court: str | None
    valid_from: date | None
    valid_to: date | None
    active: bool
    legal_representative: bool
    created_at: datetime


class RelationList(BaseModel):
    items: list[RelationPublic]


# ---------------------------------------------------------------- matches
class MatchPublic(BaseModel):
    id: uuid.UUID
    person_a: PersonSummary
    person_b: PersonSummary
    score: float
    reasons: dict[str, Any]
    status: str
    status_label: str
    source: str
    created_at: datetime
    decided_by: uuid.UUID | None
    decided_at: datetime | None
    decision_reason: str | None


class MatchPage(BaseModel):
    items: list[MatchPublic]
    next_cursor: str | None


class MatchDecision(_In):
    """Decisione su una coppia di possibili duplicati."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"decision": "merge", "keep_id": "5b0c7a52-2f0e-4d4b-9a8e-6f1f3c2d9e01",
         "reason": "Stessa persona: codice fiscale confermato dalla carta d'identità"},
        {"decision": "not_duplicate", "reason": "Omonimi: date di nascita diverse"}]})

    decision: Literal["merge", "not_duplicate"] = Field(description="Unire le due persone o dichiararle diverse")
    keep_id: uuid.UUID | None = Field(default=None, description="Per 'merge': quale delle due persone mantenere")
    reason: str = Field(min_length=3, max_length=1000, description="Motivazione della decisione")


class MatchDecisionResult(BaseModel):
    match: MatchPublic
    kept_id: uuid.UUID | None = None
    merged_id: uuid.UUID | None = None
    repointed: dict[str, int] = Field(default_factory=dict, description="Riferimenti spostati per tabella.colonna")


RELATION_KIND_LABELS = RELATION_LABELS
MATCH_STATUSES = [s.value for s in MatchStatus]
