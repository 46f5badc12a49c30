"""Valutazione multidimensionale (VMD): richiesta, programmazione, valutatori, strumenti, firme, riunione
d'équipe, esito, annullamento, rivalutazione."""
from __future__ import annotations

import uuid

from fastapi import APIRouter, Body, Query, status

from api.deps import Authorized, Session
from domain.assessment import equipe, queries, service
from domain.kernel import clock
from domain.pua import flows as pua_flows
from domain.security.permissions import Permission
from schemas.assessment import (
    AssessorCreate,
    AssessorPublic,
    CaseManagerPublic,
    MeetingCreate,
    MeetingPublic,
    ReassessmentCreate,
    ResponseCreate,
    ResponsePublic,
    VmdCancel,
    VmdConclude,
    VmdCreate,
    VmdDetail,
    VmdPage,
    VmdPublic,
    VmdSchedule,
)
from schemas.work_items import WorkItemPage

router = APIRouter(tags=["vmd"])

Reader = Authorized(Permission.vmd_read)
Requester = Authorized(Permission.vmd_request)
Manager = Authorized(Permission.vmd_manage)
Assessor = Authorized(Permission.vmd_assess)


def _public(v, view: str = "full") -> VmdPublic:
    return VmdPublic.of(v, now=clock.now(), view=view)


async def _detail(session, principal, vmd_id: uuid.UUID) -> VmdDetail:
    view = await queries.get_vmd(session, principal=principal, vmd_id=vmd_id)
    signed = sorted({a.side for a in view.assessors if a.signed_at is not None})
    manager = view.case_manager
    return VmdDetail(**_public(view.vmd, view.view).model_dump(),
                     case_manager=CaseManagerPublic(user_id=manager.id, display_name=manager.display_name,
                                                    profession=manager.profession) if manager else None,
                     assessors=[AssessorPublic.of(a) for a in view.assessors],
                     responses=[ResponsePublic(**queries.response_payload(r)) for r in view.responses],
                     meetings=[MeetingPublic.model_validate(m) for m in view.meetings], signed_sides=signed)


@router.get("/vmd/mine", response_model=WorkItemPage, summary="Le mie valutazioni",
            description="Le valutazioni multidimensionali assegnate a me come valutatore e non ancora firmate "
                        "(attività di tipo `vmd.assessment`), ordinate per scadenza, paginate per cursore.")
async def my_assessments(session: Session, principal: Assessor, limit: int = Query(default=50, ge=1, le=200),
                         cursor: str | None = Query(default=None, max_length=300)) -> WorkItemPage:
    items, nxt = await queries.my_assessments(session, principal=principal, limit=limit, cursor=cursor)
    now = clock.now()
    return WorkItemPage.of(items, nxt, principal=principal, now=now)


@router.post("/vmd", response_model=VmdPublic, status_code=status.HTTP_201_CREATED, summary="Richiedi una VMD",
             description="Apre una valutazione multidimensionale per la persona: l'ora della richiesta avvia il "
                         "conteggio dei giorni (scadenza per motivo di attivazione, 30 giorni per la domanda di RSA). "
                         "Assegna la cartella all'équipe (e al MMG inviante) e crea l'attività dell'équipe.")
async def request_vmd(body: VmdCreate, session: Session, principal: Requester) -> VmdPublic:
    grant = None
    if body.access_request_id is not None:
        grant = await pua_flows.vmd_referral_grant(session, principal=principal,
                                                   access_request_id=body.access_request_id, person_id=body.person_id)
    v = await service.request_vmd(session, principal=principal, person_id=body.person_id,
                                  cartella_id=body.cartella_id, trigger=body.trigger,
                                  requested_service_type=body.requested_service_type, team_id=body.team_id,
                                  grant=grant, referring_user_id=body.referring_user_id, notes=body.notes,
                                  application_date=body.application_date)
    return _public(v)


@router.get("/vmd/{vmd_id}", response_model=VmdDetail, summary="Dettaglio di una VMD",
            description="La VMD con valutatori, strumenti compilati e riunioni d'équipe. Le risposte sanitarie dei "
                        "valutatori ASST sono visibili a comune e Ambito solo con il consenso 'Condivisione con "
                        "ASST'; altrimenti si vedono solo punteggi e fasce.")
async def get_vmd(vmd_id: uuid.UUID, session: Session, principal: Reader) -> VmdDetail:
    return await _detail(session, principal, vmd_id)


@router.get("/cartelle/{cartella_id}/vmd", response_model=VmdPage, summary="VMD di una cartella",
            description="Le valutazioni multidimensionali della cartella, dalla più recente, paginate per cursore.")
async def list_cartella_vmd(cartella_id: uuid.UUID, session: Session, principal: Reader,
                            limit: int = Query(default=50, ge=1, le=200),
                            cursor: uuid.UUID | None = None) -> VmdPage:
    items, nxt, view = await queries.list_for_cartella(session, principal=principal, cartella_id=cartella_id,
                                                       limit=limit, cursor=cursor)
    return VmdPage(items=[_public(v, view) for v in items], next_cursor=nxt)


@router.get("/persons/{person_id}/vmd", response_model=VmdPage, summary="VMD di una persona",
            description="Le valutazioni multidimensionali della persona sulle cartelle accessibili, dalla più "
                        "recente, paginate per cursore.")
async def list_person_vmd(person_id: uuid.UUID, session: Session, principal: Reader,
                          limit: int = Query(default=50, ge=1, le=200),
                          cursor: uuid.UUID | None = None) -> VmdPage:
    items, nxt, view = await queries.list_for_person(session, principal=principal, person_id=person_id,
                                                     limit=limit, cursor=cursor)
    return VmdPage(items=[_public(v, view) for v in items], next_cursor=nxt)


@router.post("/vmd/{vmd_id}/schedule", response_model=VmdPublic, summary="Programma la VMD",
             description="Data, ora e luogo della valutazione (anche per riprogrammarla). Solo i membri "
                         "dell'équipe.")
async def schedule(vmd_id: uuid.UUID, body: VmdSchedule, session: Session, principal: Manager) -> VmdPublic:
    v = await service.schedule(session, principal=principal, vmd_id=vmd_id, scheduled_for=body.scheduled_for,
                               location=body.location)
    return _public(v)


@router.post("/vmd/{vmd_id}/assessors", response_model=AssessorPublic, status_code=status.HTTP_201_CREATED,
             summary="Aggiungi un valutatore",
             description="Un membro attivo dell'équipe diventa valutatore: il lato (ASST, comune, Ambito...) è "
                         "quello dell'organizzazione che rappresenta nell'équipe. Crea l'assegnazione della "
                         "cartella e l'attività 'Le mie valutazioni'.")
async def add_assessor(vmd_id: uuid.UUID, body: AssessorCreate, session: Session,
                       principal: Manager) -> AssessorPublic:
    a = await equipe.add_assessor(session, principal=principal, vmd_id=vmd_id, user_id=body.user_id,
                                  domains=body.domains)
    return AssessorPublic.of(a)


@router.post("/vmd/{vmd_id}/responses", response_model=ResponsePublic, status_code=status.HTTP_201_CREATED,
             summary="Registra uno strumento di valutazione",
             description="Il valutatore compila uno strumento dei propri domini (ultima versione attiva se non è "
                         "indicata la versione): le risposte sono validate e il punteggio è calcolato dal server. "
                         "Versione ritirata: 409; strumento sconosciuto o risposta non valida: 422 con la voce.")
async def record_response(vmd_id: uuid.UUID, body: ResponseCreate, session: Session,
                          principal: Assessor) -> ResponsePublic:
    r = await equipe.record_response(session, principal=principal, vmd_id=vmd_id,
                                     instrument_code=body.instrument_code,
                                     instrument_version=body.instrument_version, answers=body.answers)
    return ResponsePublic(**queries.response_payload(await queries.own_response_view(session, r)))


@router.post("/vmd/{vmd_id}/sign", response_model=AssessorPublic, summary="Firma la valutazione",
             description="Il valutatore firma la propria parte. Rifiutata (403) a chi non è membro attivo "
                         "dell'équipe o non è valutatore di questa VMD.")
async def sign(vmd_id: uuid.UUID, session: Session, principal: Assessor) -> AssessorPublic:
    a = await equipe.sign(session, principal=principal, vmd_id=vmd_id)
    return AssessorPublic.of(a)


@router.post("/vmd/{vmd_id}/meetings", response_model=MeetingPublic, status_code=status.HTTP_201_CREATED,
             summary="Registra la riunione d'équipe",
             description="Partecipanti (operatori ed esterni), verbale e decisione; la VMD passa in riunione "
                         "d'équipe.")
async def hold_meeting(vmd_id: uuid.UUID, body: MeetingCreate, session: Session,
                       principal: Manager) -> MeetingPublic:
    m = await equipe.hold_meeting(session, principal=principal, vmd_id=vmd_id, held_at=body.held_at,
                                  participants=[p.model_dump(exclude_none=True) for p in body.participants],
                                  minutes=body.minutes, decision=body.decision)
    return MeetingPublic.model_validate(m)


@router.post("/vmd/{vmd_id}/conclude", response_model=VmdPublic, summary="Concludi la VMD",
             description="Esito (progetto proposto, lista d'attesa, idoneità alla misura, nessun bisogno), note e "
                         "data di rivalutazione. Richiede almeno una firma e la riunione d'équipe.")
async def conclude(vmd_id: uuid.UUID, body: VmdConclude, session: Session, principal: Manager) -> VmdPublic:
    v = await service.conclude(session, principal=principal, vmd_id=vmd_id, outcome=body.outcome,
                               outcomes=body.outcomes, notes=body.notes, reassessment_due=body.reassessment_due)
    return _public(v)


@router.post("/vmd/{vmd_id}/cancel", response_model=VmdPublic, summary="Annulla la VMD",
             description="Annulla una VMD non conclusa, con motivo (rinuncia, decesso, ricovero altrove): può farlo "
                         "un membro dell'équipe o chi l'ha richiesta. Chiude le attività collegate e termina le "
                         "assegnazioni della cartella scritte dalla VMD.")
async def cancel(vmd_id: uuid.UUID, body: VmdCancel, session: Session, principal: Requester) -> VmdPublic:
    v = await service.cancel(session, principal=principal, vmd_id=vmd_id, reason=body.reason)
    return _public(v)


@router.post("/vmd/{vmd_id}/reassessment", response_model=VmdPublic, status_code=status.HTTP_201_CREATED,
             summary="Avvia la rivalutazione",
             description="Da una VMD conclusa con data di rivalutazione apre una nuova VMD per la stessa persona e "
                         "cartella, collegata alla precedente. Il corpo si può omettere (stessa équipe, stesso "
                         "motivo).")
async def reassess(vmd_id: uuid.UUID, session: Session, principal: Requester,
                   body: ReassessmentCreate = Body(default_factory=ReassessmentCreate)) -> VmdPublic:
    v = await service.request_reassessment(session, principal=principal, vmd_id=vmd_id, team_id=body.team_id,
                                           trigger=body.trigger, notes=body.notes)
    return _public(v)
