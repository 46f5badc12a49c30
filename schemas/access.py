"""Contracts of consent, break-glass and the access log."""
from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from domain.registry.models import ConsentPurpose, GrantorKind


class ConsentCreate(BaseModel):
    """Consenso prestato dalla persona o da chi la rappresenta."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"purpose": "care", "grantor_kind": "self", "valid_from": "2026-03-02",
         "document_ref": "Modulo consenso prot. 2026/145"},
        {"purpose": "share_asst", "grantor_kind": "ads", "grantor_relation_id": "6e7f8091-a2b3-4c4d-8e5f-60718293a4b5",
         "valid_from": "2026-03-02", "valid_to": "2027-03-01", "scope_note": "Solo valutazioni per la VMD"}]})

    purpose: ConsentPurpose = Field(description="Finalità: cura, condivisione con ASST / RSA / ETS / CVI")
    grantor_kind: GrantorKind = Field(description="Chi presta il consenso: la persona, il genitore, il tutore, l'AdS")
    grantor_relation_id: uuid.UUID | None = Field(
        default=None, description="Relazione (genitore, tutore, AdS) di chi presta il consenso per conto della persona")
    valid_from: date = Field(description="Primo giorno di validità (non prima della nascita, al più tra un anno).")
    valid_to: date | None = Field(default=None, description=(
        "Primo giorno in cui il consenso non vale più (facoltativo; il periodo è [valid_from, valid_to))."))
    scope_note: str | None = Field(default=None, max_length=500, description="Limiti o precisazioni del consenso.")
    document_ref: str | None = Field(default=None, max_length=200, description="Estremi del modulo firmato.")


class ConsentRevoke(BaseModel):
    """Revoca di un consenso (effetto immediato)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"reason": "Revocato dalla persona con dichiarazione scritta"}]})

    reason: str = Field(min_length=3, max_length=500, description="Motivo della revoca.")


class ConsentPublic(BaseModel):
    id: uuid.UUID
    person_id: uuid.UUID
    purpose: str
    purpose_label: str
    grantor_kind: str
    grantor_relation_id: uuid.UUID | None
    valid_from: date
    valid_to: date | None
    scope_note: str | None
    document_ref: str | None
    recorded_by: uuid.UUID
    recorded_at: datetime
    revoked_at: datetime | None
    revocation_reason: str | None
    active: bool


class BreakGlassCreate(BaseModel):
    """Richiesta di accesso straordinario a una persona fuori dal proprio ambito di competenza."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"person_id": "5b0c7a52-2f0e-4d4b-9a8e-6f1f3c2d9e01",
         "reason": "Segnalazione urgente dei Carabinieri: persona sola non raggiungibile", "hours": 2}]})

    person_id: uuid.UUID = Field(description="Persona a cui accedere.")
    reason: str = Field(min_length=15, max_length=1000, description="Motivo obbligatorio dell'accesso straordinario")
    hours: float | None = Field(default=None, ge=0.25, description="Durata in ore, da 0,25 (predefinita 4)")


class BreakGlassPublic(BaseModel):
    id: uuid.UUID
    person_id: uuid.UUID
    reason: str
    started_at: datetime
    expires_at: datetime
    ended_at: datetime | None
    active: bool


class AccessLogEntry(BaseModel):
    """Un accesso ai dati della persona. I codici restano stabili; ogni `*_label` è la dicitura in italiano
    mostrata alla persona (il CSV e la pagina stampabile usano solo le diciture, con l'ora italiana)."""

    at: datetime
    actor_username: str | None = Field(description="Nullo se la richiesta non aveva un token valido.")
    actor_label: str = Field(description="Il nome utente, o «Tentativo senza autenticazione».")
    roles: list[str]
    role_labels: list[str]
    organisations: list[str]
    action: str
    action_label: str
    object_type: str | None
    object_type_label: str | None
    route: str | None
    purpose: str | None
    purpose_label: str | None
    legal_basis: str | None
    outcome: str
    outcome_label: str
    break_glass: bool


class RegionalSearchEntry(AccessLogEntry):
    """Una ricerca dell'operatore regionale: chi, quando, con quale finalità e motivo (`legal_basis`), quante
    persone ha trovato; non quali."""

    result_count: int | None


class RegionalSearchPage(BaseModel):
    items: list[RegionalSearchEntry]
    next_cursor: str | None = None


class AccessLogPage(BaseModel):
    person_id: uuid.UUID
    items: list[AccessLogEntry]
    next_cursor: str | None = None


# ---------------------------------------------------------------- a person, as the caller may see them
class AssignedIntervention(BaseModel):
    """An intervention of a plan of the person assigned to the caller's organisation (minimal projection)."""

    id: uuid.UUID
    plan_id: uuid.UUID
    service_type: str
    service_label: str | None
    provider_org_id: uuid.UUID
    provider_name: str | None
    intensity_value: float | None
    intensity_unit: str | None
    start_date: date | None
    end_date: date | None
    status: str


class PersonView(BaseModel):
    """A person in the projection the caller is entitled to (`projection`): `full` (who has the person in charge),
    `identity` (registering roles of the Ambito: identifiers, name, birth, comune of residence, status) or
    `minimal` (ETS, RSA, MMG: name, birth date, comune of residence, contacts and the interventions assigned to
    their organisation). Fields outside the projection are absent, not null. Rules:
    `GET /api/admin/permissions` → `access.projections`."""

    projection: str = Field(description="full | identity | minimal")
    id: uuid.UUID
    codice_fiscale: str | None = None
    other_identifier_type: str | None = None
    other_identifier: str | None = None
    surname: str | None = None
    given_name: str | None = None
    sex: str | None = None
    birth_date: date | None = None
    birth_place_code: str | None = None
    birth_place_name: str | None = None
    citizenship: str | None = None
    residence_comune_id: uuid.UUID | None = None
    residence_address: str | None = None
    domicile_comune_id: uuid.UUID | None = None
    domicile_address: str | None = None
    fictitious_residence: bool | None = None
    homeless: bool | None = None
    lives_alone: bool | None = None
    contacts: dict | None = None
    date_of_death: date | None = None
    status: str | None = None
    needs_review: bool | None = None
    source: str | None = None
    version: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    interventions: list[AssignedIntervention] | None = Field(
        default=None, description="Solo nella proiezione minima: gli interventi affidati alla propria organizzazione")
