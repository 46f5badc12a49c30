"""Code di lavoro: le attività assegnate a me, alle mie équipe e alle mie organizzazioni."""
from __future__ import annotations

import uuid

from fastapi import APIRouter, Query

from api.deps import Authorized, Session
from domain.kernel import clock
from domain.kernel import work_items as svc
from domain.security.permissions import Permission
from schemas.work_items import WorkItemPage, WorkItemPublic

router = APIRouter(prefix="/work-items", tags=["lavoro"])

Worker = Authorized(Permission.work_queue)


@router.get("/mine", response_model=WorkItemPage, summary="La mia coda di lavoro",
            description="Attività da fare o in lavorazione assegnate a me, a un'équipe di cui sono membro o a "
                        "un'organizzazione in cui ho un ruolo; ordinate per scadenza (senza scadenza in fondo) e "
                        "poi per data di creazione, paginate per cursore. Filtro facoltativo per tipo (`kind`, "
                        "ripetibile).")
async def my_queue(session: Session, principal: Worker,
                   kind: list[str] | None = Query(default=None, max_length=20),
                   limit: int = Query(default=50, ge=1, le=200),
                   cursor: str | None = Query(default=None, max_length=300)) -> WorkItemPage:
    items, nxt = await svc.my_queue(session, principal=principal, kinds=kind, limit=limit, cursor=cursor)
    now = clock.now()
    return WorkItemPage.of(items, nxt, principal=principal, now=now)


@router.post("/{item_id}/complete", response_model=WorkItemPublic, summary="Completa un'attività",
             description="Solo chi ha l'attività assegnata (direttamente, tramite équipe o organizzazione) può "
                         "completarla; un'attività già chiusa risponde 409.")
async def complete(item_id: uuid.UUID, session: Session, principal: Worker) -> WorkItemPublic:
    item = await svc.complete(session, item_id=item_id, principal=principal)
    return WorkItemPublic.of(item, now=clock.now(), principal=principal)
