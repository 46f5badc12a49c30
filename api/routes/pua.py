"""PUA - Punto Unico di Accesso: registrazione delle richieste, accoglienza, valutazione di primo livello,
orientamento o invio a VMD / COT, ritiro e annullamento; coda delle richieste da valutare."""
from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, status

from api.deps import Authorized, Principal, Session
from domain.kernel import clock
from domain.kernel.errors import Forbidden
from domain.pua import flows, queries, service
from domain.pua.models import AccessState, Channel
from domain.security.permissions import Permission, permissions_of
from domain.security.principal import Principal as PrincipalT
from schemas.pua import (
    AccessRequestCreate,
    AccessRequestCreated,
    AccessRequestPage,
    AccessRequestPublic,
    CloseIn,
    OrientIn,
    ReceptionIn,
    ReferCotIn,
    ReferVmdIn,
    TriageIn,
)
from schemas.work_items import WorkItemPage

router = APIRouter(prefix="/pua", tags=["pua"])

# Reading needs pua.read, or pua.register (who registers sees what they registered); the row filter
# (domain/pua/policy.py) then decides which requests and how much of each.
READ_PERMISSIONS = (Permission.pua_read, Permission.pua_register)


async def _reader(principal: Principal) -> PrincipalT:
    held = permissions_of(principal.roles)
    if not any(p in held for p in READ_PERMISSIONS):
        raise Forbidden("Permesso mancante: pua.read o pua.register", missing=[str(p) for p in READ_PERMISSIONS])
    return principal


Reader = Annotated[PrincipalT, Depends(_reader)]
Registrar = Authorized(Permission.pua_register)
Triager = Authorized(Permission.pua_triage)
Queue = Authorized(Permission.pua_triage, Permission.work_queue)


@router.post("/requests", response_model=AccessRequestCreated, status_code=status.HTTP_201_CREATED,
             summary="Registra una richiesta di accesso",
             description="Accoglienza: registra la richiesta (canale, richiedente, inviante, bisogno riferito, sede "
                         "PUA) per una persona già registrata o nuova (con controllo dei duplicati: codice fiscale "
                         "già presente → 409 con `existing_id`). Crea l'attività 'richiesta da valutare' per "
                         "l'équipe PUA con scadenza in giorni lavorativi. Non apre la cartella sociale.")
async def register(body: AccessRequestCreate, session: Session, principal: Registrar) -> AccessRequestCreated:
    reg = await service.register_request(session, principal=principal, data=body)
    visible, _ = await queries.get_request(session, principal=principal, request_id=reg.request.id)
    base = AccessRequestPublic.of(visible.request, visible.view)
    return AccessRequestCreated(**base.model_dump(), person_created=reg.person_created,
                                possible_duplicates=reg.possible_duplicates,
                                triage_work_item_id=reg.work_item.id if reg.work_item else None)


@router.get("/requests", response_model=AccessRequestPage, summary="Elenco delle richieste di accesso",
            description="Richieste visibili all'utente (operatori PUA: tutte quelle dell'Ambito; sportello: quelle "
                        "registrate; MMG: quelle inviate, in sintesi; assistente sociale comunale: quelle delle "
                        "persone con cartella del proprio comune), dalla più recente, paginate per cursore. Filtri: "
                        "stato, canale, date di registrazione (comprese), persona. `total=true` aggiunge il totale.")
async def list_requests(session: Session, principal: Reader,
                        state: list[AccessState] | None = Query(default=None, max_length=10),
                        channel: list[Channel] | None = Query(default=None, max_length=10),
                        registered_from: date | None = None, registered_to: date | None = None,
                        person_id: uuid.UUID | None = None, limit: int = Query(default=50, ge=1, le=200),
                        cursor: str | None = Query(default=None, max_length=300),
                        total: bool = False) -> AccessRequestPage:
    items, nxt, count = await queries.list_requests(
        session, principal=principal, states=state, channels=channel, registered_from=registered_from,
        registered_to=registered_to, person_id=person_id, limit=limit, cursor=cursor, total=total)
    return AccessRequestPage(items=[AccessRequestPublic.of(v.request, v.view) for v in items], next_cursor=nxt,
                             total=count)


@router.get("/queue", response_model=WorkItemPage, summary="Richieste da valutare",
            description="Le attività 'richiesta da valutare' (pua.triage) aperte assegnate a me, alla mia équipe "
                        "PUA o alla mia sede, ordinate per scadenza; paginate per cursore.")
async def triage_queue(session: Session, principal: Queue, limit: int = Query(default=50, ge=1, le=200),
                       cursor: str | None = Query(default=None, max_length=300)) -> WorkItemPage:
    items, nxt = await queries.triage_queue(session, principal=principal, limit=limit, cursor=cursor)
    now = clock.now()
    return WorkItemPage.of(items, nxt, principal=principal, now=now)


@router.get("/requests/{request_id}", response_model=AccessRequestPublic, summary="Dettaglio di una richiesta",
            description="La richiesta nella vista consentita all'utente; nella vista completa anche la valutazione "
                        "di primo livello (risposte, punteggi, regole soddisfatte).")
async def get_request(request_id: uuid.UUID, session: Session, principal: Reader) -> AccessRequestPublic:
    visible, triage = await queries.get_request(session, principal=principal, request_id=request_id)
    return AccessRequestPublic.of(visible.request, visible.view, triage=triage)


async def _detail(session, principal, request_id: uuid.UUID) -> AccessRequestPublic:
    visible, triage = await queries.get_request(session, principal=principal, request_id=request_id)
    return AccessRequestPublic.of(visible.request, visible.view, triage=triage)


@router.post("/requests/{request_id}/reception", response_model=AccessRequestPublic,
             summary="Prendi in accoglienza", description="Registrata → in accoglienza.")
async def reception(request_id: uuid.UUID, session: Session, principal: Triager,
                    body: ReceptionIn | None = None) -> AccessRequestPublic:
    await service.take_in_reception(session, principal=principal, request_id=request_id,
                                    expected_version=body.version if body else None)
    return await _detail(session, principal, request_id)


@router.post("/requests/{request_id}/triage", response_model=AccessRequestPublic,
             summary="Valutazione di primo livello",
             description="Risposte allo strumento `pua_triage` attivo: il server calcola punteggi ed esito (bisogno "
                         "semplice/complesso) e suggerisce il percorso (orientamento, VMD, COT). In accoglienza → "
                         "valutazione di primo livello svolta. Risposte non valide → 422 con `answers.<voce>`.")
async def triage(request_id: uuid.UUID, body: TriageIn, session: Session, principal: Triager) -> AccessRequestPublic:
    await service.record_triage(session, principal=principal, request_id=request_id, answers=body.answers,
                                instrument_version=body.instrument_version, expected_version=body.version)
    return await _detail(session, principal, request_id)


@router.post("/requests/{request_id}/orient", response_model=AccessRequestPublic,
             summary="Orienta (bisogno semplice)",
             description="Informazioni date e/o servizio o ente suggerito; chiude la richiesta (orientata). Se il "
                         "triage suggeriva un altro percorso serve `override_reason`.")
async def orient(request_id: uuid.UUID, body: OrientIn, session: Session, principal: Triager) -> AccessRequestPublic:
    await service.orient(session, principal=principal, request_id=request_id, data=body)
    return await _detail(session, principal, request_id)


@router.post("/requests/{request_id}/refer-vmd", response_model=AccessRequestPublic,
             summary="Invia a valutazione multidimensionale (VMD)",
             description="Bisogno complesso: apre (o riusa) la cartella dell'area, richiede la VMD all'équipe "
                         "indicata o a quella dell'Ambito (trigger PUA), registra le assegnazioni della cartella "
                         "(équipe PUA, MMG inviante) e chiude la richiesta (inviata a VMD). Il corpo si può omettere.")
async def refer_vmd(request_id: uuid.UUID, session: Session, principal: Triager,
                    body: ReferVmdIn = Body(default_factory=ReferVmdIn)) -> AccessRequestPublic:
    await flows.refer_vmd(session, principal=principal, request_id=request_id, data=body)
    return await _detail(session, principal, request_id)


@router.post("/requests/{request_id}/refer-cot", response_model=AccessRequestPublic,
             summary="Invia alla Centrale Operativa Territoriale (COT)",
             description="Bisogno complesso con continuità ospedale-territorio: attività di valutazione per la COT "
                         "del domicilio (entro 48 ore), assegnazione della cartella alla COT; chiude la richiesta "
                         "(inviata alla COT). Il corpo si può omettere.")
async def refer_cot(request_id: uuid.UUID, session: Session, principal: Triager,
                    body: ReferCotIn = Body(default_factory=ReferCotIn)) -> AccessRequestPublic:
    await flows.refer_cot(session, principal=principal, request_id=request_id, data=body)
    return await _detail(session, principal, request_id)


@router.post("/requests/{request_id}/withdraw", response_model=AccessRequestPublic, summary="Ritira la richiesta",
             description="La persona o il richiedente ritira la richiesta (solo prima della chiusura).")
async def withdraw(request_id: uuid.UUID, body: CloseIn, session: Session, principal: Triager) -> AccessRequestPublic:
    await service.withdraw(session, principal=principal, request_id=request_id, reason=body.reason,
                           expected_version=body.version)
    return await _detail(session, principal, request_id)


@router.post("/requests/{request_id}/cancel", response_model=AccessRequestPublic, summary="Annulla la richiesta",
             description="Registrazione errata o doppia (solo prima della chiusura): esce dagli indicatori.")
async def cancel(request_id: uuid.UUID, body: CloseIn, session: Session, principal: Triager) -> AccessRequestPublic:
    await service.cancel(session, principal=principal, request_id=request_id, reason=body.reason,
                         expected_version=body.version)
    return await _detail(session, principal, request_id)
