"""Ricerca regionale: in quale Ambito è conosciuta una persona (Regione / ATS)."""
from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Query

from api.deps import Authorized, Session
from domain.registry import access_log, queries
from domain.registry.queries import RegionalPurpose
from domain.security.permissions import Permission
from schemas.access import RegionalSearchPage
from schemas.regional import AmbitoRef, RegionalPerson, RegionalPersonPage, RegionalSearch

router = APIRouter(tags=["persone"])

RegionalSearcher = Authorized(Permission.person_regional_search)
_PROBLEM = {"content": {"application/problem+json": {}}}
_RESPONSES = {403: {"description": "Ruolo non regionale", **_PROBLEM},
              422: {"description": "Dati non validi: `errors` indica i campi", **_PROBLEM},
              429: {"description": "Troppe ricerche nell'ultimo minuto", **_PROBLEM}}


@router.get(
    "/regional/persons", response_model=RegionalPersonPage, summary="Cerca una persona in tutti gli Ambiti",
    description="Per l'operatore regionale (Regione / ATS): in quale Ambito è registrata una persona (trasferimento "
                "tra Ambiti, possibile duplicato, richiesta della Regione). Per cognome e nome (ricerca "
                "approssimata, prima le corrispondenze più strette; il solo cognome soltanto con la data di "
                "nascita) o per codice fiscale esatto, con la data di nascita facoltativa. Risponde solo cognome, "
                "nome, sesso, data di nascita, l'Ambito che ha la persona e il comune di residenza; il codice "
                "fiscale solo a chi lo ha cercato. Finalità e motivo sono obbligatori e restano nel registro degli "
                "accessi con il numero dei risultati.",
    responses=_RESPONSES)
async def search(session: Session, principal: RegionalSearcher,
                 purpose: RegionalPurpose = Query(title="Finalità", description="Finalità della ricerca: "
                                                  "cambio_ambito, duplicato, richiesta_regione"),
                 reason: str = Query(title="Motivo", min_length=10, max_length=200,
                                     description="Motivo: la richiesta o la pratica a cui risponde (protocollo, "
                                                 "segnalazione)"),
                 q: str | None = Query(default=None, max_length=120, description="Cognome e nome"),
                 codice_fiscale: str | None = Query(default=None, max_length=24,
                                                    description="Codice fiscale esatto"),
                 birth_date: date | None = Query(default=None, description="Data di nascita"),
                 limit: int = Query(default=20, ge=1, le=queries.MAX_LIMIT),
                 cursor: str | None = Query(default=None, max_length=1000,
                                            description="Cursore opaco della pagina precedente")
                 ) -> RegionalPersonPage:
    return await _search(session, principal, purpose=purpose, reason=reason, q=q, codice_fiscale=codice_fiscale,
                         birth_date=birth_date, limit=limit, cursor=cursor)


@router.post(
    "/regional/persons/search", response_model=RegionalPersonPage,
    summary="Cerca una persona in tutti gli Ambiti (criteri nel corpo)",
    description="Come `GET /api/regional/persons`, con i criteri nel corpo JSON: il codice fiscale e il nome cercati "
                "non compaiono nell'URL, nei log del server né in quelli dei proxy.",
    responses=_RESPONSES)
async def search_by_body(body: RegionalSearch, session: Session, principal: RegionalSearcher) -> RegionalPersonPage:
    return await _search(session, principal, **body.model_dump())


async def _search(session, principal, *, reason: str, **criteria) -> RegionalPersonPage:
    res = await queries.regional_search(session, principal=principal, reason=reason.strip(), **criteria)
    return RegionalPersonPage(next_cursor=res.next_cursor, items=[RegionalPerson(
        surname=r.surname, given_name=r.given_name, sex=r.sex, birth_date=r.birth_date,
        ambito=AmbitoRef(id=r.ambito_id, name=res.org_names.get(r.ambito_id, "")),
        residence_comune_name=res.org_names.get(r.residence_comune_id), codice_fiscale=res.codice_fiscale)
        for r in res.items])


@router.get(
    "/regional/searches", response_model=RegionalSearchPage, summary="Ricerche regionali (DPO)",
    description="Le ricerche dell'operatore regionale, dalla più recente: chi ha cercato, quando, con quale finalità "
                "e motivo, quante persone ha trovato (non quali: ogni persona trovata le vede nel proprio registro "
                "degli accessi). Il DPO della Regione le vede tutte; il DPO di un Ambito quelle che hanno trovato "
                "persone del suo Ambito. Paginazione a cursore.",
    responses={403: {"description": "Non DPO", **_PROBLEM}})
async def searches(session: Session, principal: Authorized(Permission.access_log_read),
                   limit: int = Query(default=100, ge=1, le=1000),
                   cursor: str | None = Query(default=None, max_length=1000)) -> RegionalSearchPage:
    items, nxt = await access_log.regional_searches(session, principal=principal, limit=limit, cursor=cursor)
    return RegionalSearchPage(items=items, next_cursor=nxt)
