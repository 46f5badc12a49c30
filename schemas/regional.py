"""The regional helpdesk's search across the Ambiti: a minimal identity projection
(docs/decisions/regional-search.md)."""
from __future__ import annotations

import uuid
from datetime import date

from pydantic import BaseModel, Field

from domain.registry.models import Sex


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
