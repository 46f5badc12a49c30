"""The error contract of every /api answer: RFC 9457 `application/problem+json`, built by api/errors.py and declared
on every operation by api/openapi.py."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ProblemFieldError(BaseModel):
    """Un campo che non ha superato la validazione."""

    model_config = ConfigDict(populate_by_name=True, json_schema_extra={
        "examples": [{"field": "birth_date", "reason": "data non valida: usare il formato AAAA-MM-GG (es. "
                                                      "1985-12-10)", "in": "body"}]})

    field: str = Field(description=(
        "Percorso del campo con i punti (`contacts.email`, `answers.q1`, `participants.0.name`); il nome del "
        "parametro per query e path (`limit`, `person_id`); `body` per il corpo intero."))
    reason: str = Field(description="Che cosa non va e come correggerlo, in italiano.")
    in_: Literal["body", "query", "path", "header", "cookie"] | None = Field(
        default=None, alias="in", description="Dove si trova il campo (assente negli errori delle regole di dominio).")


class Problem(BaseModel):
    """Errore nel formato RFC 9457 (`application/problem+json`). A `type` corrisponde sempre lo stesso `title`.
    Oltre ai membri standard possono comparire membri di estensione che aiutano a rimediare: `existing_id`
    (persona già registrata), `state`, `action` e `allowed_actions` (transizione non ammessa), `missing`
    (permessi mancanti), `consent_id`."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "type": "https://pua.ambito-crema.example/problems/invalid", "title": "Dati non validi", "status": 422,
        "detail": "birth_date: data non valida: usare il formato AAAA-MM-GG (es. 1985-12-10)",
        "errors": [{"field": "birth_date", "reason": "data non valida: usare il formato AAAA-MM-GG (es. 1985-12-10)",
                    "in": "body"}]}]})

    type: str = Field(description=(
        "URI che identifica il tipo di problema (es. `…/problems/invalid`, `…/problems/not_found`, "
        "`…/problems/conflict`, `…/problems/consent_required`)."))
    title: str = Field(description="Titolo breve del tipo di problema, in italiano; uguale per ogni `type`.")
    status: int = Field(description="Codice di stato HTTP della risposta.")
    detail: str | None = Field(default=None, description="Spiegazione di questo caso, in italiano.")
    instance: str | None = Field(default=None, description=(
        "URI di questa occorrenza del problema (membro facoltativo di RFC 9457, oggi non valorizzato)."))
    errors: list[ProblemFieldError] | None = Field(default=None, description=(
        "I campi non validi, tutti insieme (non solo il primo)."))
