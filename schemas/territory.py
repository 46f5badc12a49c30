"""Public contracts of the territory API: Ambito, sub-ambiti, comuni, organisations, service units, catalogue."""
from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from domain.territory.models import OrgKind

KIND_LABELS = {
    "ambito": "Ambito territoriale", "sub_ambito": "Sub-ambito", "comune": "Comune",
    "ufficio_di_piano": "Ufficio di Piano", "asst": "ASST", "asst_unit": "Unità organizzativa ASST",
    "ats": "ATS", "csc": "Azienda consortile (CSC)", "ets": "Ente del Terzo Settore",
    "udo_operator": "Ente gestore di unità d'offerta", "mmg_practice": "Medicina generale (MMG/PLS)",
}
SIDE_LABELS = {
    "asst": "ASST", "comune": "Comune", "ambito": "Ambito", "csc": "CSC", "third_sector": "Terzo Settore",
    "provider": "Ente gestore", "ats": "ATS", "primary_care": "Cure primarie",
}
CODE_PATTERN = r"^[a-z0-9][a-z0-9_-]{1,79}$"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# ---------------------------------------------------------------- organisations
class OrganisationPublic(_Out):
    id: uuid.UUID
    code: str
    name: str
    kind: str
    kind_label: str
    side: str
    side_label: str
    unit_type: str | None = None
    ambito_id: uuid.UUID | None = None
    part_of_id: uuid.UUID | None = None
    ancestor_ids: list[uuid.UUID] = []
    istat_code: str | None = None
    belfiore_code: str | None = None
    population_estimate: int | None = None
    provisional: bool = False
    attributes: dict[str, Any] = {}
    active: bool = True

    @classmethod
    def of(cls, o) -> OrganisationPublic:
        return cls(id=o.id, code=o.code, name=o.name, kind=str(o.kind),
                   kind_label=KIND_LABELS.get(str(o.kind), str(o.kind)),
                   side=str(o.side), side_label=SIDE_LABELS.get(str(o.side), str(o.side)), unit_type=o.unit_type,
                   ambito_id=o.ambito_id, part_of_id=o.part_of_id, ancestor_ids=list(o.ancestor_ids or []),
                   istat_code=o.istat_code, belfiore_code=o.belfiore_code, population_estimate=o.population_estimate,
                   provisional=o.provisional, attributes=dict(o.attributes or {}), active=o.active)


class OrganisationPage(BaseModel):
    items: list[OrganisationPublic]
    next_cursor: str | None = Field(default=None, description="Da passare come `cursor` per la pagina successiva.")


class OrganisationCreate(_In):
    """Nuovo ente dell'Ambito."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"code": "ets-coop-il-girasole", "name": "Cooperativa sociale Il Girasole", "kind": "ets",
         "attributes": {"codice_fiscale_ente": "01234560199", "indirizzo": "Via Treviglio 5, Crema"}}]})

    code: str = Field(pattern=CODE_PATTERN, description="Codice stabile, minuscolo (es. `ets-nuova-coop`).")
    name: str = Field(min_length=1, max_length=200, description="Denominazione.")
    kind: OrgKind = Field(description="Tipo; Ambiti e comuni si caricano solo dai dati di riferimento.")
    part_of_id: uuid.UUID | None = Field(default=None, description="Organizzazione di appartenenza (predefinita: "
                                                                   "l'Ambito).")
    unit_type: str | None = Field(default=None, max_length=40, description="Tipo di unità (per le unità ASST).")
    provisional: bool = Field(default=False, description="Dato da confermare.")
    attributes: dict[str, Any] = Field(default_factory=dict, description="Altri dati (indirizzo, recapiti...).")


class OrganisationUpdate(_In):
    """Modifica parziale di un'organizzazione: solo i campi presenti cambiano."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"name": "Cooperativa sociale Il Girasole ONLUS", "active": True}]})

    name: str | None = Field(default=None, min_length=1, max_length=200, description="Denominazione.")
    part_of_id: uuid.UUID | None = Field(default=None, description="Nuova organizzazione di appartenenza; il "
                                                                   "sottoalbero viene aggiornato.")
    unit_type: str | None = Field(default=None, max_length=40, description="Tipo di unità (per le unità ASST).")
    provisional: bool | None = Field(default=None, description="Dato da confermare.")
    attributes: dict[str, Any] | None = Field(default=None, description="Altri dati (sostituiscono i precedenti).")
    active: bool | None = Field(default=None, description="false disattiva l'organizzazione.")


# ---------------------------------------------------------------- Ambito, sub-ambiti, comuni
class AmbitoPublic(BaseModel):
    ambito: OrganisationPublic
    population: int | None = Field(default=None, description="Residenti (ISTAT).")
    sub_ambiti: int
    comuni: int


class SubAmbitoPublic(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    capital: str | None = None
    comuni: int = Field(description="Numero di comuni assegnati.")
    population_estimate: int = Field(description="Somma delle stime di popolazione dei comuni.")


class ComunePublic(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    istat_code: str | None
    belfiore_code: str | None
    population_estimate: int | None
    population_is_estimate: bool = True
    sub_ambito_id: uuid.UUID | None
    sub_ambito_code: str | None
    sub_ambito_name: str | None
    provisional: bool = Field(description="Vero se l'assegnazione al sub-ambito è provvisoria.")
    active: bool = True

    @classmethod
    def of(cls, c, sub) -> ComunePublic:
        return cls(id=c.id, code=c.code, name=c.name, istat_code=c.istat_code, belfiore_code=c.belfiore_code,
                   population_estimate=c.population_estimate,
                   population_is_estimate=bool((c.attributes or {}).get("population_is_estimate", True)),
                   sub_ambito_id=sub.id if sub else None, sub_ambito_code=sub.code if sub else None,
                   sub_ambito_name=sub.name if sub else None, provisional=c.provisional, active=c.active)


class ComuneList(BaseModel):
    """I comuni dell'Ambito: elenco completo, non paginato (come ogni elenco, dentro `items`)."""

    items: list[ComunePublic]


class ComuneUpdate(_In):
    """Spostamento di un comune in un altro sub-ambito."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"sub_ambito_id": "8d3c2b1a-4e5f-4a6b-9c7d-1e2f3a4b5c6d", "provisional": False}]})

    sub_ambito_id: uuid.UUID = Field(description="Sub-ambito di destinazione.")
    provisional: bool | None = Field(default=None, description="Se indicato, conferma (false) o lascia provvisoria "
                                                               "(true) l'assegnazione; altrimenti resta com'è.")


# ---------------------------------------------------------------- service units
class ServiceUnitPublic(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    udo_type: str
    udo_type_label: str | None = None
    operator_id: uuid.UUID
    sub_ambito_id: uuid.UUID | None = None
    comune_id: uuid.UUID | None = None
    places_authorised: int | None = Field(default=None, description="Posti autorizzati.")
    places_accredited: int | None = Field(default=None, description="Posti accreditati.")
    places_contracted: int | None = Field(default=None, description="Posti a contratto.")
    measures: list[str] = []
    provisional: bool = False
    active: bool = True

    @classmethod
    def of(cls, u, label: str | None = None) -> ServiceUnitPublic:
        return cls(id=u.id, code=u.code, name=u.name, udo_type=u.udo_type, udo_type_label=label,
                   operator_id=u.operator_id, sub_ambito_id=u.sub_ambito_id, comune_id=u.comune_id,
                   places_authorised=u.places_authorised, places_accredited=u.places_accredited,
                   places_contracted=u.places_contracted, measures=list(u.measures or []),
                   provisional=u.provisional, active=u.active)


class ServiceUnitPage(BaseModel):
    items: list[ServiceUnitPublic]
    next_cursor: str | None = None


class ServiceUnitUpdate(_In):
    """Modifica parziale di un'unità d'offerta: solo i campi presenti cambiano."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"places_authorised": 120, "places_accredited": 110, "places_contracted": 100}]})

    name: str | None = Field(default=None, min_length=1, max_length=200, description="Denominazione.")
    places_authorised: int | None = Field(default=None, ge=0, description="Posti autorizzati.")
    places_accredited: int | None = Field(default=None, ge=0, description="Posti accreditati (≤ autorizzati).")
    places_contracted: int | None = Field(default=None, ge=0, description="Posti a contratto (≤ accreditati).")
    measures: list[str] | None = Field(default=None, description="Misure erogate (codici, es. rsa_aperta).")
    provisional: bool | None = Field(default=None, description="Dato da confermare.")
    active: bool | None = Field(default=None, description="false disattiva l'unità.")


# ---------------------------------------------------------------- catalogue
class ServiceTypePublic(_Out):
    code: str
    label: str
    category: str
    leps: bool
    active: bool


class ServiceTypeCreate(_In):
    """Nuovo tipo di servizio del catalogo."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"code": "pasti_domicilio", "label": "Pasti a domicilio", "category": "domiciliare", "leps": False,
         "active": True}]})

    code: str = Field(pattern=r"^[a-z0-9_]{2,40}$", description="Codice stabile (minuscole, cifre, '_').")
    label: str = Field(min_length=1, max_length=200, description="Denominazione.")
    category: str = Field(min_length=1, max_length=40, description="Categoria (es. domiciliare, economico).")
    leps: bool = Field(default=False, description="Livello Essenziale delle Prestazioni Sociali.")
    active: bool = Field(default=True, description="Disponibile per nuovi interventi.")


class ServiceTypeUpdate(_In):
    """Modifica parziale di un tipo di servizio."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"label": "Pasti caldi a domicilio", "active": True}]})

    label: str | None = Field(default=None, min_length=1, max_length=200, description="Denominazione.")
    category: str | None = Field(default=None, min_length=1, max_length=40, description="Categoria.")
    leps: bool | None = Field(default=None, description="Livello Essenziale delle Prestazioni Sociali.")
    active: bool | None = Field(default=None, description="Disponibile per nuovi interventi.")


class UdoTypePublic(BaseModel):
    code: str
    label: str
    network: str = Field(description="sociosanitaria | sociale | sanitaria")
    residential: bool = Field(description="Vero se l'unità ha posti letto (residenziale).")


class FundingSourcePublic(_Out):
    code: str
    label: str
    active: bool


class FundingSourceCreate(_In):
    """Nuova fonte di finanziamento."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"code": "fondo_comunale_crema", "label": "Fondo sociale del Comune di Crema", "active": True}]})

    code: str = Field(pattern=r"^[a-z0-9_]{2,40}$", description="Codice stabile (minuscole, cifre, '_').")
    label: str = Field(min_length=1, max_length=200, description="Denominazione.")
    active: bool = Field(default=True, description="Disponibile per nuovi interventi.")


class FundingSourceUpdate(_In):
    """Modifica parziale di una fonte di finanziamento."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"active": False}]})

    label: str | None = Field(default=None, min_length=1, max_length=200, description="Denominazione.")
    active: bool | None = Field(default=None, description="Disponibile per nuovi interventi.")
