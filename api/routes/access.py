"""Consent, break-glass, the access log of a person, and the permission table."""
from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, PlainTextResponse

from api.deps import Authorized, Session
from domain.registry import access_log, breakglass, consent
from domain.registry.models import Person
from domain.security import scopes
from domain.security.permissions import Permission, role_permissions
from schemas.access import (
    AccessLogPage,
    BreakGlassCreate,
    BreakGlassPublic,
    ConsentCreate,
    ConsentPublic,
    ConsentRevoke,
)

router = APIRouter(tags=["accessi e consenso"])


@router.get("/persons/{person_id}/consents", response_model=list[ConsentPublic], summary="Consensi della persona",
            description="Tutti i consensi della persona, attivi, scaduti e revocati, con finalità (cura, "
                        "condivisione con ASST, RSA, ETS, CVI), chi li ha prestati e il periodo di validità.")
async def list_consents(person_id: uuid.UUID, session: Session, p: Authorized(Permission.consent_read)):
    return [consent.to_public(c) for c in await consent.list_for_person(session, principal=p, person_id=person_id)]


@router.post("/persons/{person_id}/consents", response_model=ConsentPublic, status_code=201,
             summary="Registra un consenso (persona, genitore, tutore o amministratore di sostegno)",
             description="Registra il consenso per una finalità. Se lo presta un genitore, il tutore o "
                         "l'amministratore di sostegno, `grantor_relation_id` indica la sua relazione con la "
                         "persona (in corso, del tipo giusto). Ha effetto dal giorno `valid_from`.")
async def grant_consent(person_id: uuid.UUID, body: ConsentCreate, session: Session,
                        p: Authorized(Permission.consent_write)):
    return consent.to_public(await consent.grant(session, principal=p, person_id=person_id, data=body))


@router.post("/persons/{person_id}/consents/{consent_id}/revoke", response_model=ConsentPublic,
             summary="Revoca un consenso: ha effetto immediato",
             description="Il consenso smette di valere subito: gli accessi e le condivisioni che richiedeva "
                         "vengono negati da quel momento. Un consenso già revocato risponde 409.")
async def revoke_consent(person_id: uuid.UUID, consent_id: uuid.UUID, body: ConsentRevoke, session: Session,
                         p: Authorized(Permission.consent_write)):
    return consent.to_public(await consent.revoke(session, principal=p, person_id=person_id,
                                                  consent_id=consent_id, reason=body.reason))


def _bg_public(g) -> dict:
    return {**g.model_dump(), "active": breakglass.is_active(g)}


@router.post("/break-glass", response_model=BreakGlassPublic, status_code=201,
             summary="Accesso straordinario a una persona fuori dal proprio ambito di competenza",
             description="Break-glass: apre per poche ore (predefinite 4) l'accesso ai dati di una persona che non "
                         "si ha in carico, con un motivo obbligatorio (almeno 15 caratteri). L'accesso resta nel "
                         "registro degli accessi e i comuni titolari delle cartelle aperte della persona ricevono "
                         "un avviso nella coda di lavoro. Un accesso già attivo alla stessa persona: 409.")
async def open_break_glass(body: BreakGlassCreate, session: Session, p: Authorized(Permission.break_glass)):
    return _bg_public(await breakglass.open_grant(session, principal=p, person_id=body.person_id,
                                                  reason=body.reason, hours=body.hours))


@router.get("/break-glass/mine", response_model=list[BreakGlassPublic], summary="I miei accessi straordinari",
            description="Gli accessi straordinari aperti dall'utente, attivi e passati, con scadenza.")
async def my_break_glass(session: Session, p: Authorized(Permission.break_glass)):
    return [_bg_public(g) for g in await breakglass.my_grants(session, principal=p)]


@router.post("/break-glass/{grant_id}/end", response_model=BreakGlassPublic,
             summary="Chiude in anticipo un accesso straordinario",
             description="Termina subito un proprio accesso straordinario ancora attivo.")
async def end_break_glass(grant_id: uuid.UUID, session: Session, p: Authorized(Permission.break_glass)):
    return _bg_public(await breakglass.end_grant(session, principal=p, grant_id=grant_id))


@router.get("/persons/{person_id}/access-log", response_model=AccessLogPage,
            summary="Registro degli accessi ai dati della persona (DPO, assistente sociale titolare)",
            description="Chi ha letto o modificato i dati della persona, quando, con quale ruolo e "
                        "organizzazione, per quale finalità e base giuridica, con l'esito e gli accessi "
                        "straordinari evidenziati; dal più recente, paginato per cursore. Il JSON dà i codici e, "
                        "accanto, le diciture in italiano (`*_label`); un tentativo senza token valido non ha "
                        "operatore (`actor_label`: «Tentativo senza autenticazione»). `format=csv` o `html` per "
                        "scaricarlo o stamparlo: solo diciture in italiano, date e ore nell'ora italiana.",
            responses={200: {"content": {"text/csv": {}, "text/html": {}}}})
async def person_access_log(person_id: uuid.UUID, session: Session, p: Authorized(Permission.access_log_read),
                            format: Literal["json", "csv", "html"] = "json",
                            limit: int = Query(100, ge=1, le=1000), cursor: str | None = None):
    items, nxt = await access_log.access_log(session, principal=p, person_id=person_id, limit=limit, cursor=cursor)
    if format == "csv":
        return PlainTextResponse(access_log.to_csv(items), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": f'attachment; filename="accessi-{person_id}.csv"'})
    if format == "html":
        person = await session.get(Person, person_id)
        if person.merged_into_id is not None:
            person = await session.get(Person, person.merged_into_id)
        return HTMLResponse(access_log.to_html({"name": f"{person.given_name} {person.surname}"}, items))
    return {"person_id": person_id, "items": items, "next_cursor": nxt}


@router.get("/admin/permissions", summary="Tabella dei permessi, degli ambiti di visibilità e delle proiezioni",
            description="Per ogni ruolo i permessi che concede; per ogni ruolo le regole di visibilità delle "
                        "righe (ambito di competenza) e la proiezione dei dati della persona che riceve.")
async def permissions_table(p: Authorized(Permission.permissions_read)) -> dict:
    return {
        "permissions": {str(r): sorted(str(x) for x in perms) for r, perms in role_permissions().items()},
        "access": scopes.access_config(),
    }
