"""Amministrazione: utenti, client di sistema, assegnazioni di ruolo, équipe e membri."""
from __future__ import annotations

import uuid

from fastapi import APIRouter, Body, Query, status

from api.deps import Authorized, Session
from domain.security import service as svc
from domain.security.models import Role, TeamType, UserKind
from domain.security.permissions import Permission
from schemas.security import (
    PeriodEnd,
    RoleAssignmentCreate,
    RoleAssignmentPublic,
    TeamCreate,
    TeamDetail,
    TeamMemberCreate,
    TeamMemberPublic,
    TeamPage,
    UserCreate,
    UserDetail,
    UserPage,
    UserPublic,
    UserUpdate,
)

router = APIRouter(prefix="/admin", tags=["amministrazione"])

UserAdmin = Authorized(Permission.user_admin)
TeamAdmin = Authorized(Permission.team_admin)


@router.post("/users", response_model=UserDetail, status_code=status.HTTP_201_CREATED,
             summary="Crea un utente o un client di sistema",
             description="Crea un operatore (`kind=person`) o un client di sistema (`kind=system`, con gli scope "
                         "concessi) nell'Ambito dell'amministratore, con eventuali ruoli iniziali.")
async def create_user(body: UserCreate, session: Session, principal: UserAdmin) -> UserDetail:
    return await svc.create_user(session=session, principal=principal, data=body)


@router.get("/users", response_model=UserPage, summary="Elenco utenti",
            description="Utenti dell'Ambito in ordine di username, paginati per cursore. Filtri facoltativi per "
                        "tipo, stato, testo (inizio dello username o parte del nome), ruolo e organizzazione.")
async def list_users(session: Session, principal: UserAdmin, kind: UserKind | None = None,
                     active: bool | None = None, q: str | None = Query(default=None, max_length=100),
                     role: Role | None = None, organisation_id: uuid.UUID | None = None,
                     limit: int = Query(default=50, ge=1, le=200),
                     cursor: str | None = Query(default=None, max_length=120)) -> UserPage:
    items, nxt = await svc.list_users(session=session, principal=principal, kind=kind, q=q, role=role,
                                      organisation_id=organisation_id, active=active, limit=limit, cursor=cursor)
    return UserPage(items=[UserPublic.of(u) for u in items], next_cursor=nxt)


@router.get("/users/{user_id}", response_model=UserDetail, summary="Dettaglio utente",
            description="L'utente con tutte le assegnazioni di ruolo (anche passate) e le équipe.")
async def get_user(user_id: uuid.UUID, session: Session, principal: UserAdmin) -> UserDetail:
    return await svc.get_user(session=session, principal=principal, user_id=user_id)


@router.patch("/users/{user_id}", response_model=UserDetail, summary="Modifica un utente",
              description="Nome, profilo, email, attivazione; per i client di sistema gli scope concessi.")
async def update_user(user_id: uuid.UUID, body: UserUpdate, session: Session, principal: UserAdmin) -> UserDetail:
    return await svc.update_user(session=session, principal=principal, user_id=user_id, data=body)


@router.post("/users/{user_id}/roles", response_model=RoleAssignmentPublic, status_code=status.HTTP_201_CREATED,
             summary="Assegna un ruolo",
             description="Assegna un ruolo in un'organizzazione dell'Ambito per un periodo (`valid_to` è il primo "
                         "giorno in cui non vale più). Un amministratore non modifica i propri ruoli (403); un ruolo "
                         "che dà accesso a dati personali resta `pending` finché un secondo amministratore non lo "
                         "approva.")
async def add_role(user_id: uuid.UUID, body: RoleAssignmentCreate, session: Session,
                   principal: UserAdmin) -> RoleAssignmentPublic:
    return await svc.add_role(session=session, principal=principal, user_id=user_id, data=body)


@router.post("/role-assignments/{assignment_id}/end", response_model=RoleAssignmentPublic,
             summary="Termina un'assegnazione di ruolo",
             description="Senza data termina subito (`valid_to` = oggi); con `valid_to` vale fino al giorno "
                         "precedente.")
async def end_role(assignment_id: uuid.UUID, session: Session, principal: UserAdmin,
                   body: PeriodEnd | None = Body(default=None)) -> RoleAssignmentPublic:
    return await svc.end_role(session=session, principal=principal, assignment_id=assignment_id, data=body)


@router.post("/role-assignments/{assignment_id}/approve", response_model=RoleAssignmentPublic,
             summary="Approva un'assegnazione di ruolo",
             description="Un secondo amministratore approva un ruolo che dà accesso a dati personali: non chi lo ha "
                         "assegnato né chi lo riceve (403). Dall'approvazione il ruolo vale.")
async def approve_role(assignment_id: uuid.UUID, session: Session, principal: UserAdmin) -> RoleAssignmentPublic:
    return await svc.approve_role(session, principal=principal, assignment_id=assignment_id)


@router.post("/teams", response_model=TeamDetail, status_code=status.HTTP_201_CREATED, summary="Crea un'équipe",
             description="Crea un'équipe (PUA, VMD, sub-ambito...) dell'Ambito, eventualmente legata a "
                         "un'organizzazione.")
async def create_team(body: TeamCreate, session: Session, principal: TeamAdmin) -> TeamDetail:
    return await svc.create_team(session=session, principal=principal, data=body)


@router.get("/teams", response_model=TeamPage, summary="Elenco équipe",
            description="Équipe dell'Ambito in ordine di codice, paginate per cursore.")
async def list_teams(session: Session, principal: TeamAdmin, type: TeamType | None = None,
                     limit: int = Query(default=50, ge=1, le=200),
                     cursor: str | None = Query(default=None, max_length=80)) -> TeamPage:
    items, nxt = await svc.list_teams(session=session, principal=principal, type=type, limit=limit, cursor=cursor)
    return TeamPage(items=items, next_cursor=nxt)


@router.get("/teams/{team_id}", response_model=TeamDetail, summary="Dettaglio équipe",
            description="L'équipe con i membri (anche passati), l'organizzazione e il lato che ciascuno porta.")
async def get_team(team_id: uuid.UUID, session: Session, principal: TeamAdmin) -> TeamDetail:
    return await svc.get_team(session=session, principal=principal, team_id=team_id)


@router.post("/teams/{team_id}/members", response_model=TeamMemberPublic, status_code=status.HTTP_201_CREATED,
             summary="Aggiungi un membro all'équipe",
             description="Il membro rappresenta un'organizzazione in cui ha un ruolo alla data di inizio "
                         "(obbligatoria se ne ha più d'una): ne determina il lato (ASST, Comune, Ambito...).")
async def add_member(team_id: uuid.UUID, body: TeamMemberCreate, session: Session,
                     principal: TeamAdmin) -> TeamMemberPublic:
    return await svc.add_member(session=session, principal=principal, team_id=team_id, data=body)


@router.post("/team-members/{member_id}/end", response_model=TeamMemberPublic, summary="Termina un'appartenenza",
             description="Senza data termina subito (ultimo giorno: ieri); con `valid_to` fino a quel giorno.")
async def end_member(member_id: uuid.UUID, session: Session, principal: TeamAdmin,
                     body: PeriodEnd | None = Body(default=None)) -> TeamMemberPublic:
    return await svc.end_member(session=session, principal=principal, member_id=member_id, data=body)
