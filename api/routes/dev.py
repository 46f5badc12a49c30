"""Sviluppo: l'orologio di prova (solo con DEV_MODE=true; altrimenti queste rotte non esistono: 404)."""
from __future__ import annotations

from fastapi import APIRouter, Depends

from api.deps import Authorized, Session
from deploy import demo_clock
from domain.kernel.errors import NotFound
from domain.kernel.jobs import ENQUEUED_FLAG
from domain.kernel.settings import get_settings
from domain.security.permissions import Permission
from schemas.dev import ClockMove, ClockPublic


async def _development_only(session: Session) -> None:
    # Through the session, so the refusal is audited like any other request.
    if not get_settings().dev_mode:
        raise NotFound("Risorsa non trovata.")


router = APIRouter(prefix="/dev", tags=["sviluppo"], dependencies=[Depends(_development_only)])

ClockAdmin = Authorized(Permission.clock_admin)


@router.get("/clock", response_model=ClockPublic, summary="Orologio di prova",
            description="Il tempo di lavoro del servizio di sviluppo, il tempo reale e lo scarto tra i due.")
async def get_clock(session: Session, principal: ClockAdmin) -> ClockPublic:
    return ClockPublic(**demo_clock.describe(await demo_clock.show(session)))


@router.put("/clock", response_model=ClockPublic, summary="Sposta l'orologio di prova",
            description="Imposta, fa avanzare o riporta al tempo reale l'orologio di prova. Non torna prima "
                        "dell'ultimo dato registrato senza `force` (409). Accoda i lavori giornalieri di ogni "
                        "giorno attraversato e sveglia il worker. Ogni spostamento è registrato nel registro degli "
                        "accessi.")
async def put_clock(body: ClockMove, session: Session, principal: ClockAdmin) -> ClockPublic:
    if body.set is not None:
        state = await demo_clock.move(session, to=body.set, force=body.force, actor_id=principal.user_id)
    elif body.advance is not None:
        state = await demo_clock.move(session, by=demo_clock.parse_duration(body.advance), force=body.force,
                                      actor_id=principal.user_id)
    else:
        state = await demo_clock.move(session, reset=True, force=body.force, actor_id=principal.user_id)
    session.info[ENQUEUED_FLAG] = True  # the daily jobs it enqueued: wake a worker once committed
    return ClockPublic(**demo_clock.describe(state))
