"""Anagrafica delle persone: registrazione, ricerca, correzioni, decesso, storico, persone di riferimento,
possibili duplicati e unioni."""
from __future__ import annotations

import uuid
from datetime import date

from fastapi import APIRouter, Query, Response, status

from api.deps import Authorized, Session
from domain.kernel import cursor as cursor_codec
from domain.registry import dedup, persons, queries, relations
from domain.security import audit, scopes
from domain.security.permissions import Permission
from schemas.access import PersonView
from schemas.persons import (
    HISTORY_ACTION_LABELS,
    MATCH_STATUS_LABELS,
    DeathRecord,
    DuplicateCandidate,
    DuplicatesCheck,
    DuplicatesCheckResult,
    HistoryEntry,
    HistoryPage,
    MatchDecision,
    MatchDecisionResult,
    MatchPage,
    MatchPublic,
    PersonCreate,
    PersonCreated,
    PersonPage,
    PersonPublic,
    PersonSearch,
    PersonSummary,
    PersonUpdate,
    RelationCreate,
    RelationEnd,
    RelationList,
    RelationPublic,
)

MATCH_CURSOR = "persons.matches"

router = APIRouter(tags=["persone"])

Reader = Authorized(Permission.person_read)
Searcher = Authorized(Permission.person_search)
Creator = Authorized(Permission.person_create)
Updater = Authorized(Permission.person_update)
RelationWriter = Authorized(Permission.relation_write)
Steward = Authorized(Permission.person_merge)

_PROBLEM = {"content": {"application/problem+json": {}}}
R404 = {404: {"description": "Persona non trovata (o di un altro Ambito)", **_PROBLEM}}
R409 = {409: {"description": "Conflitto con lo stato attuale", **_PROBLEM}}
R422 = {422: {"description": "Dati non validi: `errors` indica i campi", **_PROBLEM}}
R429 = {429: {"description": "Troppe ricerche nell'ultimo minuto (PERSON_SEARCH_PER_MINUTE): riprovare dopo i secondi "
                             "indicati in `Retry-After`", **_PROBLEM,
              "headers": {"Retry-After": {"description": "Secondi da attendere.", "schema": {"type": "integer"}}}}}


def _audit_matches(action: str, object_type: str, object_ids, person_ids, count: int | None) -> None:
    # The de-duplication service (identity data of the Ambito, data stewards) leaves its auditing to the route.
    audit.record(action=action, object_type=object_type, object_ids=object_ids, person_ids=person_ids,
                 result_count=count)


def _candidate(c: dedup.Candidate) -> DuplicateCandidate:
    return DuplicateCandidate(person=PersonSummary.model_validate(c.person), score=c.score, reasons=c.reasons,
                              match_id=c.match_id)


def _match(row) -> MatchPublic:
    m, a, b = row
    return MatchPublic(id=m.id, person_a=PersonSummary.model_validate(a), person_b=PersonSummary.model_validate(b),
                       score=m.score, reasons=m.reasons or {}, status=m.status,
                       status_label=MATCH_STATUS_LABELS.get(m.status, m.status), source=m.source,
                       created_at=m.created_at, decided_by=m.decided_by, decided_at=m.decided_at,
                       decision_reason=m.decision_reason)


# ---------------------------------------------------------------- persons
@router.post("/persons/duplicates-check", response_model=DuplicatesCheckResult,
             summary="Verifica possibili duplicati",
             description="Cerca la persona con lo stesso codice fiscale e le persone simili (nome, data e luogo di "
                         "nascita, sesso) senza registrare nulla.", responses={**R422})
async def duplicates_check(body: DuplicatesCheck, session: Session, principal: Searcher) -> DuplicatesCheckResult:
    existing, candidates = await dedup.check(session, principal=principal, data=body)
    _audit_matches("search", "person", [], [existing, *(c.person.id for c in candidates)], len(candidates))
    return DuplicatesCheckResult(existing_id=existing, candidates=[_candidate(c) for c in candidates])


@router.post("/persons", response_model=PersonCreated, status_code=status.HTTP_201_CREATED,
             summary="Registra una persona",
             description="Registra una persona con codice fiscale (verificato e confrontato con data, luogo di "
                         "nascita e sesso) o con un identificativo alternativo (STP, ENI, passaporto, provvisorio). "
                         "Se il codice fiscale è già registrato nell'Ambito risponde 409 con `existing_id`. Le "
                         "persone simili sono restituite in `possible_duplicates` e segnalate ai data steward.",
             responses={**R409, **R422})
async def create_person(body: PersonCreate, session: Session, principal: Creator) -> PersonCreated:
    result = await persons.create_person(session, principal=principal, data=body, source="api")
    return PersonCreated(**PersonPublic.model_validate(result.person).model_dump(),
                         possible_duplicates=[_candidate(c) for c in result.possible_duplicates])


@router.get("/persons", response_model=PersonPage, summary="Cerca persone",
            description="Ricerca per codice fiscale (esatto), nome e cognome (ricerca approssimata, in ordine di "
                        "somiglianza), data di nascita e comune di residenza. Paginazione a cursore; il totale solo "
                        "con `total=true`. Nella ricerca per nome la prima pagina contiene le corrispondenze più "
                        "strette e può essere più corta di `limit`: i risultati meno simili arrivano seguendo "
                        "`next_cursor` (null quando non ce ne sono altri).", responses={**R422, **R429})
async def search_persons(session: Session, principal: Searcher,
                         codice_fiscale: str | None = Query(default=None, max_length=24,
                                                            description="Codice fiscale esatto"),
                         q: str | None = Query(default=None, max_length=120, description="Cognome e nome"),
                         birth_date: date | None = Query(default=None, description="Data di nascita"),
                         comune_id: uuid.UUID | None = Query(default=None, description="Comune di residenza"),
                         limit: int = Query(default=20, ge=1, le=queries.MAX_LIMIT),
                         cursor: str | None = Query(default=None, max_length=1000,
                                                    description="Cursore opaco della pagina precedente"),
                         total: bool = Query(default=False, description="Calcola anche il totale")) -> PersonPage:
    return await _search(session, principal, PersonSearch(codice_fiscale=codice_fiscale, q=q, birth_date=birth_date,
                                                          comune_id=comune_id, limit=limit, cursor=cursor,
                                                          total=total))


@router.post("/persons/search", response_model=PersonPage, summary="Cerca persone (criteri nel corpo)",
             description="Come `GET /api/persons`, con i criteri nel corpo JSON: il codice fiscale e il nome "
                         "cercati non compaiono nell'URL, nei log del server né in quelli dei proxy.",
             responses={**R422, **R429})
async def search_persons_by_body(body: PersonSearch, session: Session, principal: Searcher) -> PersonPage:
    return await _search(session, principal, body)


async def _search(session, principal, c: PersonSearch) -> PersonPage:
    res = await queries.search_persons(session, principal=principal, codice_fiscale=c.codice_fiscale, q=c.q,
                                       birth_date=c.birth_date, comune_id=c.comune_id, limit=c.limit,
                                       cursor=c.cursor, with_total=c.total)
    items = [PersonSummary.model_validate(r).model_copy(
        update={"residence_comune_name": res.comune_names.get(r.residence_comune_id)}) for r in res.items]
    if res.projection != "identity":  # a principal without an identity role: only its projection's fields
        fields = set(PersonSummary.model_fields)
        items = [PersonSummary.model_validate({f: None for f in fields} | scopes.mask(i.model_dump(), res.projection))
                 for i in items]
    return PersonPage(items=items, next_cursor=res.next_cursor, total=res.total)


@router.get("/persons/{person_id}", response_model=PersonView,
            summary="Dettaglio di una persona",
            description="La persona nella proiezione a cui si ha diritto (`projection`): `full` per chi ha in carico "
                        "la persona, `identity` (dati identificativi) per i ruoli che registrano persone, `minimal` "
                        "(nome, data di nascita, comune di residenza, recapiti, interventi affidati alla propria "
                        "organizzazione) per ETS, RSA e MMG. I campi fuori dalla proiezione non compaiono. Un "
                        "identificativo unito a un'altra persona restituisce la persona mantenuta. 403 "
                        "`consent_required` se l'accesso richiede un consenso assente o revocato.",
            responses={**R404, 403: {"description": "Permesso mancante o consenso necessario", **_PROBLEM}})
async def get_person(person_id: uuid.UUID, session: Session, principal: Reader) -> Response:
    read = await persons.read_person(session, principal=principal, person_id=person_id)
    # Validated once and serialised by pydantic (the hot path): only the projection's fields appear.
    return Response(PersonView(**persons.person_view(read)).model_dump_json(exclude_unset=True),
                    media_type="application/json")


@router.patch("/persons/{person_id}", response_model=PersonPublic, summary="Modifica i dati di una persona",
              description="Modifica parziale; la versione aumenta di uno e la modifica resta nello storico. "
                          "`version` (facoltativo) evita di sovrascrivere modifiche altrui.",
              responses={**R404, **R409, **R422})
async def update_person(person_id: uuid.UUID, body: PersonUpdate, session: Session,
                        principal: Updater) -> PersonPublic:
    p = await persons.update_person(session, principal=principal, person_id=person_id, data=body)
    return PersonPublic.model_validate(p)


@router.post("/persons/{person_id}/death", response_model=PersonPublic, summary="Registra il decesso",
             description="Data del decesso non precedente alla nascita e non futura; notifica l'evento "
                         "`person.died` ai servizi interessati.", responses={**R404, **R409, **R422})
async def record_death(person_id: uuid.UUID, body: DeathRecord, session: Session,
                       principal: Updater) -> PersonPublic:
    p = await persons.record_death(session, principal=principal, person_id=person_id,
                                   date_of_death=body.date_of_death)
    return PersonPublic.model_validate(p)


@router.get("/persons/{person_id}/history", response_model=HistoryPage, summary="Storico delle versioni",
            description="Una voce per versione: azione, autore, momento e dati.", responses={**R404, **R422})
async def person_history(person_id: uuid.UUID, session: Session, principal: Reader,
                         limit: int = Query(default=50, ge=1, le=100),
                         cursor: int | None = Query(default=None, ge=0, description="Ultima versione ricevuta")
                         ) -> HistoryPage:
    rows, nxt = await persons.person_history(session, principal=principal, person_id=person_id, limit=limit,
                                             after_version=cursor)
    return HistoryPage(items=[HistoryEntry(version=r.version, action=r.action,
                                           action_label=HISTORY_ACTION_LABELS.get(r.action, r.action), at=r.at,
                                           actor_id=r.actor_id, request_id=r.request_id, data=r.data or {})
                              for r in rows],
                       next_cursor=str(nxt) if nxt is not None else None)


# ---------------------------------------------------------------- related persons
def _relation(rel) -> RelationPublic:
    return RelationPublic.model_validate(relations.relation_view(rel))


@router.get("/persons/{person_id}/relations", response_model=RelationList, summary="Persone di riferimento",
            description="Caregiver, familiari, genitori, tutore, curatore, amministratore di sostegno, famiglia "
                        "affidataria; anche quelle terminate, salvo `active=true`.", responses={**R404})
async def list_relations(person_id: uuid.UUID, session: Session, principal: Reader,
                         active: bool = Query(default=False, description="Solo le relazioni in corso")
                         ) -> RelationList:
    rows = await relations.list_relations(session, principal=principal, person_id=person_id, active_only=active)
    return RelationList(items=[_relation(r) for r in rows])


@router.post("/persons/{person_id}/relations", response_model=RelationPublic, status_code=status.HTTP_201_CREATED,
             summary="Aggiungi una persona di riferimento",
             description="Persona registrata o solo nome e recapiti. L'amministratore di sostegno richiede gli "
                         "estremi del decreto; un solo tutore o amministratore di sostegno alla volta (409).",
             responses={**R404, **R409, **R422})
async def add_relation(person_id: uuid.UUID, body: RelationCreate, session: Session,
                       principal: RelationWriter) -> RelationPublic:
    rel = await relations.add_relation(session, principal=principal, person_id=person_id, data=body)
    return _relation(rel)


@router.post("/persons/{person_id}/relations/{relation_id}/end", response_model=RelationPublic,
             summary="Termina una relazione",
             description="Imposta la fine della validità (esclusa; predefinita: oggi): da quel giorno la relazione "
                         "non è più in corso.",
             responses={**R404, **R409, **R422})
async def end_relation(person_id: uuid.UUID, relation_id: uuid.UUID, session: Session,
                       principal: RelationWriter, body: RelationEnd | None = None) -> RelationPublic:
    rel = await relations.end_relation(session, principal=principal, person_id=person_id, relation_id=relation_id,
                                     valid_to=body.valid_to if body else None)
    return _relation(rel)


# ---------------------------------------------------------------- duplicates
@router.get("/person-matches", response_model=MatchPage, summary="Coda dei possibili duplicati",
            description="Coppie da verificare dell'Ambito, dal punteggio più alto.", responses={**R422})
async def list_matches(session: Session, principal: Steward, limit: int = Query(default=50, ge=1, le=100),
                       cursor: str | None = Query(default=None, max_length=500)) -> MatchPage:
    after = None
    if cursor:
        score, id_ = cursor_codec.decode(MATCH_CURSOR, cursor)
        after = (float(score), uuid.UUID(id_))
    rows, nxt = await dedup.pending_queue(session, principal=principal, limit=limit, after=after)
    _audit_matches("list", "possible_match", [m.id for m, _, _ in rows],
                   [x.id for _, a, b in rows for x in (a, b)], len(rows))
    return MatchPage(items=[_match(r) for r in rows],
                     next_cursor=cursor_codec.encode(MATCH_CURSOR, list(nxt)) if nxt else None)


@router.get("/person-matches/{match_id}", response_model=MatchPublic, summary="Dettaglio di una coppia",
            description="Le due persone della coppia con il punteggio di somiglianza e le sue componenti, lo "
                        "stato e, se già decisa, chi l'ha decisa, quando e perché.",
            responses={404: {"description": "Coppia non trovata", **_PROBLEM}})
async def get_match(match_id: uuid.UUID, session: Session, principal: Steward) -> MatchPublic:
    row = await dedup.get_match(session, principal=principal, match_id=match_id)
    _audit_matches("read", "possible_match", [row[0].id], [row[1].id, row[2].id], 1)
    return _match(row)


@router.post("/person-matches/{match_id}/decision", response_model=MatchDecisionResult,
             summary="Decidi su una coppia",
             description="`merge`: unisce le due persone mantenendo `keep_id` (tutti i riferimenti passano alla "
                         "persona mantenuta; il vecchio identificativo continua a risolversi). `not_duplicate`: "
                         "sono persone diverse. Una coppia già decisa risponde 409.",
             responses={404: {"description": "Coppia non trovata", **_PROBLEM}, **R409, **R422})
async def decide_match(match_id: uuid.UUID, body: MatchDecision, session: Session,
                       principal: Steward) -> MatchDecisionResult:
    outcome = await dedup.decide(session, principal=principal, match_id=match_id, data=body)
    row = await dedup.get_match(session, principal=principal, match_id=match_id)
    _audit_matches(body.decision, "possible_match", [row[0].id], [row[1].id, row[2].id], None)
    return MatchDecisionResult(match=_match(row), kept_id=outcome.kept_id, merged_id=outcome.merged_id,
                               repointed=outcome.repointed)
