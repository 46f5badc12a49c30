"""Cartelle sociali: apertura, case manager, chiusura, trasferimento, assegnazioni, storico."""
from __future__ import annotations

import uuid

from fastapi import APIRouter, Body, Query, status

from api.deps import Authorized, Session
from domain.kernel import clock
from domain.kernel.errors import Invalid
from domain.registry import assignments
from domain.registry import cartelle as svc
from domain.registry.models import AssignmentReason, CartellaStatus
from domain.security.permissions import Permission
from schemas.cartelle import (
    AssignmentCreate,
    AssignmentPage,
    AssignmentPublic,
    CartellaClose,
    CartellaCreate,
    CartellaDetail,
    CartellaHistoryEntry,
    CartellaPage,
    CartellaPublic,
    CartellaTransferCreate,
    CartellaTransferPublic,
    CartellaUpdate,
)

router = APIRouter(tags=["cartelle"])

Reader = Authorized(Permission.cartella_read)
Writer = Authorized(Permission.cartella_write)


async def _detail(session, principal, c) -> CartellaDetail:
    transfers = await svc.transfers_of(session, c)
    return CartellaDetail(**CartellaPublic.of(c).model_dump(),
                          transfers=[CartellaTransferPublic.model_validate(t) for t in transfers])


@router.get("/persons/{person_id}/cartelle", response_model=CartellaPage,
            summary="Cartelle sociali di una persona",
            description="Elenco delle cartelle (aperte e chiuse) della persona, paginato per cursore.")
async def list_person_cartelle(person_id: uuid.UUID, session: Session, principal: Reader,
                               status_: CartellaStatus | None = Query(default=None, alias="status"),
                               limit: int = Query(default=50, ge=1, le=200),
                               cursor: uuid.UUID | None = None) -> CartellaPage:
    items, nxt = await svc.list_for_person(session, principal=principal, person_id=person_id, status=status_,
                                           limit=limit, cursor=cursor)
    return CartellaPage(items=[CartellaPublic.of(c) for c in items], next_cursor=nxt)


@router.post("/persons/{person_id}/cartelle", response_model=CartellaPublic, status_code=status.HTTP_201_CREATED,
             summary="Apri una cartella sociale",
             description="Apre una cartella nell'area indicata. Il comune titolare è quello di residenza, altrimenti "
                         "di domicilio, altrimenti il comune dell'operatore; una sola cartella aperta per area.")
async def open_cartella(person_id: uuid.UUID, body: CartellaCreate, session: Session,
                        principal: Writer) -> CartellaPublic:
    c = await svc.open_cartella(session, principal=principal, person_id=person_id, area=body.area,
                                owning_comune_id=body.owning_comune_id, case_manager_id=body.case_manager_id,
                                require_case=True)
    return CartellaPublic.of(c)


@router.get("/cartelle/{cartella_id}", response_model=CartellaDetail, summary="Dettaglio di una cartella",
            description="La cartella con i trasferimenti tra comuni.")
async def get_cartella(cartella_id: uuid.UUID, session: Session, principal: Reader) -> CartellaDetail:
    c = await svc.get_cartella(session, principal=principal, cartella_id=cartella_id)
    return await _detail(session, principal, c)


@router.patch("/cartelle/{cartella_id}", response_model=CartellaPublic, summary="Cambia il case manager",
              description="Imposta, cambia o rimuove (null) il case manager; l'assegnazione precedente termina.")
async def update_cartella(cartella_id: uuid.UUID, body: CartellaUpdate, session: Session,
                          principal: Writer) -> CartellaPublic:
    c = await svc.set_case_manager(session, principal=principal, cartella_id=cartella_id,
                                   user_id=body.case_manager_id, expected_version=body.version)
    return CartellaPublic.of(c)


@router.post("/cartelle/{cartella_id}/close", response_model=CartellaPublic, summary="Chiudi la cartella",
             description="Chiude la cartella con motivo e data; le assegnazioni attive terminano.")
async def close_cartella(cartella_id: uuid.UUID, body: CartellaClose, session: Session,
                         principal: Writer) -> CartellaPublic:
    c = await svc.close_cartella(session, principal=principal, cartella_id=cartella_id, reason=body.reason,
                                 closed_on=body.closed_on, expected_version=body.version)
    return CartellaPublic.of(c)


@router.post("/cartelle/{cartella_id}/transfer", response_model=CartellaDetail,
             summary="Trasferisci la cartella a un altro comune",
             description="La persona ha cambiato comune: la cartella passa al nuovo comune titolare; il "
                         "trasferimento resta nello storico. Senza corpo (o senza `to_comune_id`) il nuovo comune è "
                         "quello di residenza (o domicilio) attuale della persona.")
async def transfer_cartella(cartella_id: uuid.UUID, session: Session, principal: Writer,
                            body: CartellaTransferCreate = Body(default_factory=CartellaTransferCreate)
                            ) -> CartellaDetail:
    c, _ = await svc.transfer_cartella(session, principal=principal, cartella_id=cartella_id,
                                       to_comune_id=body.to_comune_id, reason=body.reason,
                                       expected_version=body.version)
    return await _detail(session, principal, c)


@router.get("/cartelle/{cartella_id}/assignments", response_model=AssignmentPage,
            summary="Assegnazioni della cartella",
            description="Chi lavora sulla cartella e perché; `active=true` solo quelle in corso.")
async def list_assignments(cartella_id: uuid.UUID, session: Session, principal: Reader,
                           active: bool | None = None, limit: int = Query(default=50, ge=1, le=200),
                           cursor: uuid.UUID | None = None) -> AssignmentPage:
    items, nxt = await assignments.list_assignments(session, principal=principal, cartella_id=cartella_id,
                                                    active=active, limit=limit, cursor=cursor)
    now = clock.now()
    return AssignmentPage(items=[AssignmentPublic.of(a, active=svc.is_active(a, now)) for a in items],
                          next_cursor=nxt)


@router.post("/cartelle/{cartella_id}/assignments", response_model=AssignmentPublic,
             status_code=status.HTTP_201_CREATED, summary="Aggiungi un'assegnazione",
             description="Assegna la cartella a un operatore, un'équipe o un'organizzazione, con motivo e "
                         "validità. Un'assegnazione identica già attiva viene restituita senza duplicarla.")
async def add_assignment(cartella_id: uuid.UUID, body: AssignmentCreate, session: Session,
                         principal: Writer) -> AssignmentPublic:
    if body.reason == AssignmentReason.break_glass:
        raise Invalid("reason", "l'accesso di emergenza si richiede con la procedura dedicata")
    a = await assignments.add_assignment(session, principal=principal, cartella_id=cartella_id, reason=body.reason,
                                 user_id=body.user_id, team_id=body.team_id, organisation_id=body.organisation_id,
                                 source_type=body.source_type, source_id=body.source_id, valid_to=body.valid_to)
    return AssignmentPublic.of(a, active=svc.is_active(a))


@router.post("/cartelle/{cartella_id}/assignments/{assignment_id}/end", response_model=AssignmentPublic,
             summary="Termina un'assegnazione", description="Termina ora un'assegnazione attiva.")
async def end_assignment(cartella_id: uuid.UUID, assignment_id: uuid.UUID, session: Session,
                         principal: Writer) -> AssignmentPublic:
    a = await assignments.end_assignment_of(session, principal=principal, cartella_id=cartella_id,
                                    assignment_id=assignment_id)
    return AssignmentPublic.of(a, active=svc.is_active(a))


@router.get("/cartelle/{cartella_id}/history", response_model=list[CartellaHistoryEntry],
            summary="Storico della cartella",
            description="Tutte le versioni della cartella: apertura, case manager, assegnazioni, trasferimenti, "
                        "chiusura.")
async def cartella_history(cartella_id: uuid.UUID, session: Session, principal: Reader) -> list[CartellaHistoryEntry]:
    rows = await svc.cartella_history(session, principal=principal, cartella_id=cartella_id)
    return [CartellaHistoryEntry.of(h) for h in rows]
