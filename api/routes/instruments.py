"""Strumenti di valutazione: catalogo versionato (file di dati in schemas/instruments/), definizioni e calcolo del
punteggio senza salvataggio (per i moduli)."""
from __future__ import annotations

from fastapi import APIRouter, Path

from api.deps import Authorized
from domain.assessment import instruments as engine
from domain.security.permissions import Permission
from schemas.assessment import InstrumentList, InstrumentSummary, InstrumentVersionInfo, ScorePreview, ScoreRequest
from schemas.instruments import CODE_PATTERN, InstrumentDefinition, InstrumentStatus

router = APIRouter(prefix="/instruments", tags=["strumenti di valutazione"])

Reader = Authorized(Permission.instrument_read)
Code = Path(pattern=CODE_PATTERN, max_length=60, description="Codice dello strumento (es. barthel).")


def _summary(code: str) -> InstrumentSummary:
    versions = engine.registry().versions(code)
    active = [d for d in versions if d.status is InstrumentStatus.active]
    shown = active[-1] if active else versions[-1]
    return InstrumentSummary(
        code=code, title=shown.title, domains=list(shown.domains),
        latest_active_version=active[-1].version if active else None, retired=not active,
        versions=[InstrumentVersionInfo(version=d.version, status=d.status, retired=not d.is_active, title=d.title)
                  for d in versions])


@router.get("", response_model=InstrumentList, summary="Elenco degli strumenti di valutazione",
            description="Ogni strumento con le sue versioni (attive e ritirate) e l'ultima versione attiva.")
async def list_instruments(principal: Reader) -> InstrumentList:
    return InstrumentList(items=[_summary(c) for c in engine.registry().codes()])


@router.get("/{code}", response_model=InstrumentDefinition, response_model_by_alias=True,
            response_model_exclude_none=True, summary="Definizione dell'ultima versione attiva",
            description="Voci, opzioni, punteggi, fasce ed esiti dell'ultima versione attiva dello strumento.")
async def get_instrument(principal: Reader, code: str = Code) -> InstrumentDefinition:
    return engine.latest_active(code)


@router.get("/{code}/versions/{version}", response_model=InstrumentDefinition, response_model_by_alias=True,
            response_model_exclude_none=True, summary="Definizione di una versione",
            description="La versione indicata, attiva o ritirata (le versioni ritirate restano leggibili).")
async def get_instrument_version(principal: Reader, code: str = Code,
                                 version: int = Path(ge=1, description="Numero di versione.")) -> InstrumentDefinition:
    return engine.get(code, version)


@router.post("/{code}/score", response_model=ScorePreview, summary="Calcola il punteggio senza salvare",
             description="Valida le risposte e calcola punteggi, fasce ed esiti con la versione indicata (o l'ultima "
                         "attiva); nulla viene salvato. Utile ai moduli di compilazione. Le risposte non valide "
                         "rispondono 422 con la voce (`answers.<voce>`).")
async def score(body: ScoreRequest, principal: Reader, code: str = Code) -> ScorePreview:
    definition = engine.get(code, body.version)
    result = engine.score(definition, body.answers)
    return ScorePreview(**result.model_dump(), status=definition.status)
