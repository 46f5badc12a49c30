"""Liste d'attesa RSA e delle altre unità d'offerta sociosanitarie: la domanda (con la VMD congiunta e i 30 giorni),
la decisione dell'équipe, l'urgenza, le liste per unità con le posizioni calcolate alla lettura, i posti liberi
dichiarati dagli enti gestori, le offerte e le risposte."""
from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from api.deps import Authorized, Principal, Session
from domain.security.permissions import Permission
from domain.waiting_list import offers, queries, service
from domain.waiting_list.models import EntryState
from schemas.waiting_list import (
    ApplicationCreate,
    AssessmentUpdateIn,
    BedCreate,
    BedPublic,
    ConfirmIn,
    DecisionIn,
    EntryEvent,
    EntryHistory,
    EntryPage,
    EntryPublic,
    ExitIn,
    ListRowPublic,
    OfferCreate,
    OfferPublic,
    RankingPublic,
    ReceiptIn,
    RefusalIn,
    ReplyIn,
    UnitListPublic,
    UrgencyDecisionIn,
    UrgencyIn,
)

router = APIRouter(prefix="/waiting-lists", tags=["liste d'attesa"])

Reader = Authorized(Permission.waiting_list_read)
Applicant = Authorized(Permission.waiting_list_apply)
Decider = Authorized(Permission.waiting_list_decide)
Manager = Authorized(Permission.waiting_list_manage)
Coordinator = Authorized(Permission.waiting_list_urgency_decide)
Operator = Authorized(Permission.waiting_list_offer)
# A reply to an offer is recorded by the UDO operator or by the comune of the person: the service checks which.
Replier = Principal
ApplicationId = Annotated[uuid.UUID, Path(title="Domanda", description="Identificativo (UUID) della domanda di "
                                                                       "lista d'attesa.")]
OfferId = Annotated[uuid.UUID, Path(title="Offerta", description="Identificativo (UUID) dell'offerta di posto.")]
UnitId = Annotated[uuid.UUID, Path(title="Unità d'offerta", description="Identificativo (UUID) dell'unità "
                                                                        "d'offerta.")]


async def _detail(session, principal, application_id: uuid.UUID) -> EntryPublic:
    return EntryPublic.of(await queries.get_entry(session, principal=principal, entry_id=application_id))


@router.post("/applications", response_model=EntryPublic, status_code=status.HTTP_201_CREATED,
             summary="Presenta una domanda di lista d'attesa",
             description="Domanda di ingresso in una o più unità d'offerta della stessa tipologia (RSA, CDI...), in "
                         "ordine di preferenza, presentata dalla persona, da un familiare, dall'amministratore di "
                         "sostegno o dall'assistente sociale, con la sua data. Avvia i 30 giorni della valutazione "
                         "congiunta: la VMD (motivo rsa_application o udo_access) è richiesta sulla cartella con la "
                         "data della domanda, salvo indicare una VMD già aperta.")
async def apply(body: ApplicationCreate, session: Session, principal: Applicant) -> EntryPublic:
    entry = await service.apply(session, principal=principal, data=body)
    return await _detail(session, principal, entry.id)


@router.get("/applications", response_model=EntryPage, summary="Elenco delle domande",
            description="Le domande visibili: il comune quelle dei residenti, il coordinatore quelle del "
                        "sub-ambito, i servizi d'Ambito tutte, l'ente gestore quelle che hanno scelto le sue unità "
                        "(vista minima). Dalla più recente, paginate per cursore.")
async def list_applications(session: Session, principal: Reader,
                            state: list[EntryState] | None = Query(default=None, max_length=10),
                            udo_type: str | None = Query(default=None, max_length=40),
                            person_id: uuid.UUID | None = None, limit: int = Query(default=50, ge=1, le=200),
                            cursor: str | None = Query(default=None, max_length=300)) -> EntryPage:
    items, nxt = await queries.list_entries(session, principal=principal, states=state, udo_type=udo_type,
                                            person_id=person_id, limit=limit, cursor=cursor)
    return EntryPage(items=[EntryPublic.of(v) for v in items], next_cursor=nxt)


@router.get("/applications/{application_id}", response_model=EntryPublic, summary="Dettaglio di una domanda",
            description="La domanda con il dettaglio del punteggio e la posizione in ciascuna lista scelta, "
                        "calcolati ora. L'ente gestore vede la vista minima e la sintesi della VMD solo con il "
                        "consenso della persona.")
async def get_application(application_id: ApplicationId, session: Session, principal: Reader) -> EntryPublic:
    return await _detail(session, principal, application_id)


@router.get("/applications/{application_id}/history", response_model=EntryHistory, summary="Storia di una domanda",
            description="Ogni evento della domanda, dal primo, con lo stato che ne è seguito e la causa registrata "
                        "(inserimento, urgenza, offerte, rifiuti, aggiornamenti della VMD). Per chi vede la domanda "
                        "per intero; l'ente gestore no.")
async def application_history(application_id: ApplicationId, session: Session, principal: Reader) -> EntryHistory:
    rows = await queries.entry_history(session, principal=principal, entry_id=application_id)
    return EntryHistory(items=[EntryEvent.of(h) for h in rows])


@router.post("/applications/{application_id}/decision", response_model=EntryPublic,
             summary="Registra la decisione dell'équipe",
             description="Inserita in lista: servono la VMD firmata con il punteggio di Barthel, la presenza del "
                         "caregiver, se la persona vive sola e il progetto temporaneo o alternativo almeno condiviso "
                         "e sottoscritto. Non inserita: con il motivo.")
async def decide(application_id: ApplicationId, body: DecisionIn, session: Session,
                 principal: Decider) -> EntryPublic:
    await service.decide(session, principal=principal, entry_id=application_id, data=body)
    return await _detail(session, principal, application_id)


@router.post("/applications/{application_id}/assessment", response_model=EntryPublic,
             summary="Aggiorna la valutazione di una domanda in lista",
             description="Una nuova VMD firmata o una nuova situazione del caregiver: il punteggio segue alla "
                         "lettura successiva; l'aggiornamento è registrato con la sua causa.")
async def update_assessment(application_id: ApplicationId, body: AssessmentUpdateIn, session: Session,
                            principal: Decider) -> EntryPublic:
    await service.update_assessment(session, principal=principal, entry_id=application_id, data=body)
    return await _detail(session, principal, application_id)


@router.post("/applications/{application_id}/urgency", response_model=EntryPublic, summary="Segnala l'urgenza",
             description="L'assistente sociale segnala l'urgenza (perdita del domicilio, del caregiver unico, "
                         "altro) con una nota; il coordinatore di sub-ambito la conferma o la respinge.")
async def raise_urgency(application_id: ApplicationId, body: UrgencyIn, session: Session,
                        principal: Manager) -> EntryPublic:
    await service.raise_urgency(session, principal=principal, entry_id=application_id, reason=body.reason,
                                note=body.note, expected_version=body.version)
    return await _detail(session, principal, application_id)


@router.post("/applications/{application_id}/urgency/decision", response_model=EntryPublic,
             summary="Conferma o respingi l'urgenza",
             description="Il coordinatore del sub-ambito: confermata, la domanda precede ogni domanda ordinaria.")
async def decide_urgency(application_id: ApplicationId, body: UrgencyDecisionIn, session: Session,
                         principal: Coordinator) -> EntryPublic:
    await service.decide_urgency(session, principal=principal, entry_id=application_id, confirm=body.confirm,
                                 note=body.note, expected_version=body.version)
    return await _detail(session, principal, application_id)


@router.post("/applications/{application_id}/confirm", response_model=EntryPublic,
             summary="Conferma la permanenza in lista",
             description="Dopo il secondo rifiuto la domanda è sospesa: la persona conferma di restare in lista.")
async def confirm(application_id: ApplicationId, session: Session, principal: Manager,
                  body: ConfirmIn | None = None) -> EntryPublic:
    await service.confirm(session, principal=principal, entry_id=application_id,
                          expected_version=body.version if body else None)
    return await _detail(session, principal, application_id)


@router.post("/applications/{application_id}/exit", response_model=EntryPublic, summary="Uscita dalle liste",
             description="Ritiro della domanda o ingresso altrove: la persona esce da ogni lista, le offerte aperte "
                         "sono ritirate e i progetti temporanei si chiudono.")
async def exit_lists(application_id: ApplicationId, body: ExitIn, session: Session,
                     principal: Manager) -> EntryPublic:
    await service.exit_entry(session, principal=principal, entry_id=application_id, action=body.action,
                             note=body.note, expected_version=body.version)
    return await _detail(session, principal, application_id)


@router.get("/units/{unit_id}", response_model=UnitListPublic, summary="Lista d'attesa di un'unità d'offerta",
            description="Le domande in lista per l'unità, in ordine (urgenti prima), con posizione e punteggio "
                        "calcolati ora; le sospese a parte. La persona è indicata solo nelle righe che il lettore "
                        "raggiunge. L'ente gestore legge le liste delle proprie unità con posti liberi e offerte.")
async def unit_list(unit_id: UnitId, session: Session, principal: Reader) -> UnitListPublic:
    out = await queries.unit_list(session, principal=principal, unit_id=unit_id)
    return UnitListPublic(unit_id=out.unit.id, unit_name=out.unit.name, udo_type=out.unit.udo_type,
                          items=[ListRowPublic.of(r) for r in out.rows],
                          suspended=[ListRowPublic.of(r) for r in out.suspended],
                          free_beds=[BedPublic.of(b) for b in out.beds],
                          open_offers=[OfferPublic.of(o) for o in out.offers])


@router.get("/ranking", response_model=RankingPublic, summary="Graduatoria d'Ambito",
            description="Tutte le domande in lista di una tipologia di unità d'offerta nell'Ambito: urgenti "
                        "confermate prima, poi per punteggio; posizioni calcolate ora.")
async def ranking(session: Session, principal: Reader,
                  udo_type: str = Query(default="rsa", max_length=40)) -> RankingPublic:
    rows = await queries.ambito_ranking(session, principal=principal, udo_type=udo_type)
    return RankingPublic(udo_type=udo_type, items=[ListRowPublic.of(r) for r in rows])


@router.post("/units/{unit_id}/beds", response_model=BedPublic, status_code=status.HTTP_201_CREATED,
             summary="Dichiara un posto libero",
             description="L'ente gestore dichiara libero un posto di una propria unità d'offerta.")
async def declare_bed(unit_id: UnitId, body: BedCreate, session: Session, principal: Operator) -> BedPublic:
    return BedPublic.of(await offers.declare_bed(session, principal=principal, unit_id=unit_id, label=body.label))


@router.post("/offers", response_model=OfferPublic, status_code=status.HTTP_201_CREATED,
             summary="Offri un posto libero",
             description="Il posto (indicato, o il primo dichiarato libero) è offerto alla domanda meglio collocata "
                         "tra quelle idonee che hanno scelto l'unità; chi ha già rifiutato quel posto è escluso. "
                         "Un posto ha al massimo un'offerta aperta, una persona al massimo un'offerta aperta.")
async def make_offer(body: OfferCreate, session: Session, principal: Operator) -> OfferPublic:
    return OfferPublic.of(await offers.offer(session, principal=principal, unit_id=body.unit_id,
                                             bed_id=body.bed_id))


@router.post("/offers/{offer_id}/receipt", response_model=OfferPublic, summary="Registra la ricezione dell'offerta",
             description="La persona, o il suo rappresentante legale (tutore, amministratore di sostegno per la "
                         "cura), ha ricevuto l'offerta: da qui il termine di risposta (2 giorni lavorativi, "
                         "predefinito).")
async def receipt(offer_id: OfferId, session: Session, principal: Replier,
                  body: ReceiptIn | None = None) -> OfferPublic:
    return OfferPublic.of(await offers.record_receipt(
        session, principal=principal, offer_id=offer_id, received_at=body.received_at if body else None,
        received_by_relation_id=body.received_by_relation_id if body else None))


@router.post("/offers/{offer_id}/accept", response_model=OfferPublic, summary="Registra l'accettazione",
             description="Accettata entro il termine: è l'ingresso. Il posto è occupato, la persona esce da ogni "
                         "altra lista e il progetto temporaneo si chiude.")
async def accept(offer_id: OfferId, session: Session, principal: Replier,
                 body: ReplyIn | None = None) -> OfferPublic:
    return OfferPublic.of(await offers.accept(session, principal=principal, offer_id=offer_id,
                                              replied_at=body.replied_at if body else None))


@router.post("/offers/{offer_id}/refuse", response_model=OfferPublic, summary="Registra il rifiuto",
             description="Al primo rifiuto la domanda mantiene la posizione; al secondo è sospesa finché la "
                         "persona non conferma di restare in lista. Il posto resta libero per la domanda successiva.")
async def refuse(offer_id: OfferId, session: Session, principal: Replier,
                 body: RefusalIn | None = None) -> OfferPublic:
    return OfferPublic.of(await offers.refuse(session, principal=principal, offer_id=offer_id,
                                              reason=body.reason if body else None,
                                              replied_at=body.replied_at if body else None))
