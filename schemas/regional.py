"""The regional helpdesk's search across the Ambiti: a minimal identity projection
(docs/decisions/regional-search.md)."""
from __future__ import annotations

import uuid
from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from domain.registry.models import Sex
from domain.registry.queries import MAX_LIMIT, RegionalPurpose


class RegionalSearch(BaseModel):
    """Criteri della ricerca regionale nel corpo della richiesta: il codice fiscale e il nome cercati non compaiono
    negli URL (né nei log dei proxy)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={"examples": [
        {"q": "bonizzi teresa", "purpose": "cambio_ambito", "reason": "Richiesta del comune di Lodi, prot. 1234"},
        {"codice_fiscale": "BNZTRS43L54G004X", "purpose": "duplicato", "reason": "Segnalazione dell'Ambito di Crema"}]})

    purpose: RegionalPurpose = Field(description="Finalità della ricerca: cambio_ambito, duplicato, richiesta_regione")
    reason: str = Field(min_length=10, max_length=200,
                        description="Motivo: la richiesta o la pratica a cui risponde (protocollo, segnalazione)")
    q: str | None = Field(default=None, max_length=120, description="Cognome e nome")
    codice_fiscale: str | None = Field(default=None, max_length=24, description="Codice fiscale esatto")
    birth_date: date | None = Field(default=None, description="Data di nascita (AAAA-MM-GG)")
    limit: int = Field(default=20, ge=1, le=MAX_LIMIT, description="Risultati per pagina")
    cursor: str | None = Field(default=None, max_length=1000, description="Cursore opaco della pagina precedente")


class AmbitoRef(BaseModel):
    id: uuid.UUID
    name: str


class RegionalPerson(BaseModel):
    """Una persona trovata: chi è, in quale Ambito è registrata, dove risiede. Nessun recapito, indirizzo o cartella."""

    surname: str
    given_name: str
    sex: Sex | None
    birth_date: date | None
    ambito: AmbitoRef = Field(description="L'Ambito che ha registrato la persona: chiedere a lui il resto")
    residence_comune_name: str | None = Field(default=None, description="Comune di residenza")
    codice_fiscale: str | None = Field(
        default=None, description="Solo nella ricerca per codice fiscale: quello cercato, che la persona ha")


class RegionalPersonPage(BaseModel):
    items: list[RegionalPerson]
    next_cursor: str | None = Field(description="Cursore opaco per la pagina successiva")
