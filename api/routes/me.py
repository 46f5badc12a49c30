"""Il profilo di chi chiama: ruoli, organizzazioni, équipe, permessi."""
from __future__ import annotations

from fastapi import APIRouter

from api.deps import Principal, Session
from domain.security import service as svc
from schemas.security import MePublic

router = APIRouter(tags=["amministrazione"])


@router.get("/me", response_model=MePublic, summary="Il mio profilo",
            description="Username, ruoli attivi con le organizzazioni (nome e codice), équipe e permessi "
                        "dell'utente del token; per un client di sistema anche scope e professionista rappresentato.")
async def get_me(session: Session, principal: Principal) -> MePublic:
    return await svc.me(session=session, principal=principal)
