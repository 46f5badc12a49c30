"""Servizi: accreditamento degli enti, ordini di attivazione dagli interventi del progetto, risposta dell'ente,
avvio, sospensione e conclusione, registro delle prestazioni, riepiloghi settimanali e mensili, costo del progetto
(budget di salute) e indicatore SAD per la rendicontazione."""
from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from api.deps import Authorized, Principal, Session
from domain.kernel import clock
from domain.security.permissions import Permission
from domain.services import queries, service
from domain.services.models import ActivationState
from domain.territory import queries as territory
from schemas.services import (
    AccreditationCreate,
    AccreditationList,
    AccreditationPublic,
    ActivationCreate,
    ActivationPage,
    ActivationPublic,
    DeclineIn,
    DeliveryCreate,
    DeliveryPage,
    DeliveryPublic,
    EmptyIn,
    EndIn,
    PeriodRow,
    PlanCostPublic,
    SadIndicatorPublic,
    StartIn,
    SummaryPublic,
    SuspendIn,
)

router = APIRouter(tags=["servizi"])

Reader = Authorized(Permission.services_read)
Orderer = Authorized(Permission.services_order)
Provider = Authorized(Permission.services_provide)
CostReader = Authorized(Permission.services_cost_read)
Reporter = Authorized(Permission.services_report)
Accreditor = Authorized(Permission.services_accredit)
# Start, suspend, resume and end are acts of the case side or of the provider: the service checks which.
Either = Principal
ActivationId = Annotated[uuid.UUID, Path(title="Attivazione", description="Identificativo (UUID) dell'ordine di "
                                                                          "attivazione del servizio.")]
PlanId = Annotated[uuid.UUID, Path(title="Progetto", description="Identificativo (UUID) del progetto "
                                                                 "individualizzato.")]
A = "/services/activations"


async def _detail(session, principal, activation_id: uuid.UUID) -> ActivationPublic:
    return ActivationPublic.of(await queries.get_activation(session, principal=principal, activation_id=activation_id,
                                                            audited=False))


# ---------------------------------------------------------------------------------------------------- accreditations
@router.get("/catalogue/accreditations", response_model=AccreditationList, summary="Accreditamenti degli enti",
            description="Gli enti accreditati dell'Ambito per tipologia di servizio, con il periodo e il costo "
                        "unitario; `on` limita a quelli validi in un giorno.")
async def list_accreditations(session: Session, principal: Principal,
                              organisation_id: uuid.UUID | None = Query(default=None, title="Ente",
                                                                        description="Solo questo ente."),
                              service_type: str | None = Query(default=None, max_length=40,
                                                               title="Tipologia di servizio",
                                                               description="Solo questa tipologia."),
                              on: date | None = Query(default=None, title="Valido il",
                                                      description="Solo gli accreditamenti validi in questo giorno.")
                              ) -> AccreditationList:
    rows = await queries.list_accreditations(session, principal=principal, organisation_id=organisation_id,
                                             service_type=service_type, on=on)
    names = await territory.org_names(session, [r.organisation_id for r in rows])
    return AccreditationList(items=[AccreditationPublic.of(r, names) for r in rows])


@router.post("/catalogue/accreditations", response_model=AccreditationPublic, status_code=status.HTTP_201_CREATED,
             summary="Registra un accreditamento",
             description="L'amministratore registra che un ente è accreditato per una tipologia di servizio da un "
                         "giorno (fino a un giorno, escluso), con il costo unitario proposto negli ordini.")
async def accredit(body: AccreditationCreate, session: Session, principal: Accreditor) -> AccreditationPublic:
    a = await service.accredit(session, principal=principal, data=body)
    return AccreditationPublic.of(a, await territory.org_names(session, [a.organisation_id]))


# ---------------------------------------------------------------------------------------------------- orders
@router.post(A, response_model=ActivationPublic, status_code=status.HTTP_201_CREATED,
             summary="Ordina l'attivazione di un intervento",
             description="Dall'intervento di un progetto sottoscritto, a un ente accreditato per la tipologia di "
                         "servizio nel giorno di inizio: intensità, inizio, fine, fonte di finanziamento e costo "
                         "unitario (dall'accreditamento se non indicato). L'ente trova la richiesta in coda.")
async def order(body: ActivationCreate, session: Session, principal: Orderer) -> ActivationPublic:
    a = await service.order(session, principal=principal, data=body)
    return await _detail(session, principal, a.id)


@router.get(A, response_model=ActivationPage, summary="Elenco delle attivazioni",
            description="Le attivazioni visibili: il comune quelle dei residenti, il coordinatore quelle del "
                        "sub-ambito, AS d'Ambito e CSC tutte, l'ente erogatore quelle indirizzate a lui (vista "
                        "minima). Dalla più recente, paginate per cursore.")
async def list_activations(session: Session, principal: Reader,
                           state: list[ActivationState] | None = Query(default=None, max_length=10),
                           person_id: uuid.UUID | None = None,
                           plan_id: uuid.UUID | None = Query(default=None, title="Progetto",
                                                             description="Solo le attivazioni di questo progetto."),
                           service_type: str | None = Query(default=None, max_length=40,
                                                            title="Tipologia di servizio",
                                                            description="Solo questa tipologia (sad...)."),
                           limit: int = Query(default=50, ge=1, le=200),
                           cursor: str | None = Query(default=None, max_length=300)) -> ActivationPage:
    items, nxt = await queries.list_activations(
        session, principal=principal, states=[str(s) for s in state] if state else None, person_id=person_id,
        plan_id=plan_id, service_type=service_type, limit=limit, cursor_token=cursor)
    return ActivationPage(items=[ActivationPublic.of(v) for v in items], next_cursor=nxt)


@router.get(A + "/{activation_id}", response_model=ActivationPublic, summary="Dettaglio di un'attivazione",
            description="L'ordine con lo stato e le azioni possibili; la vista completa dice anche se il caso SAD "
                        "è stato gestito interamente nel sistema.")
async def get_activation(activation_id: ActivationId, session: Session, principal: Reader) -> ActivationPublic:
    return ActivationPublic.of(await queries.get_activation(session, principal=principal,
                                                            activation_id=activation_id))


@router.post(A + "/{activation_id}/accept", response_model=ActivationPublic, summary="L'ente accetta",
             description="L'ente erogatore accetta l'ordine.")
async def accept(activation_id: ActivationId, session: Session, principal: Provider,
                 body: EmptyIn | None = None) -> ActivationPublic:
    await service.accept(session, principal=principal, activation_id=activation_id)
    return await _detail(session, principal, activation_id)


@router.post(A + "/{activation_id}/decline", response_model=ActivationPublic, summary="L'ente rifiuta",
             description="L'ente erogatore rifiuta l'ordine con un motivo; il case manager trova in coda l'attività "
                         "di scegliere un altro ente.")
async def decline(activation_id: ActivationId, body: DeclineIn, session: Session,
                  principal: Provider) -> ActivationPublic:
    await service.decline(session, principal=principal, activation_id=activation_id, reason=body.reason)
    return await _detail(session, principal, activation_id)


@router.post(A + "/{activation_id}/start", response_model=ActivationPublic, summary="Avvia il servizio",
             description="Il primo giorno di servizio (oggi se non indicato, mai nel futuro): l'intervento del "
                         "progetto si avvia e l'ente raggiunge il caso con la vista minima.")
async def start(activation_id: ActivationId, session: Session, principal: Either,
                body: StartIn | None = None) -> ActivationPublic:
    await service.start(session, principal=principal, activation_id=activation_id,
                        start_date=body.start_date if body else None)
    return await _detail(session, principal, activation_id)


@router.post(A + "/{activation_id}/suspend", response_model=ActivationPublic, summary="Sospendi il servizio",
             description="Sospensione con un motivo (ricovero, assenza), da oggi o da un giorno indicato: i giorni "
                         "sospesi non sono previsti, quindi non contano né sono segnalati.")
async def suspend(activation_id: ActivationId, body: SuspendIn, session: Session,
                  principal: Either) -> ActivationPublic:
    await service.suspend(session, principal=principal, activation_id=activation_id, reason=body.reason,
                          from_date=body.from_date)
    return await _detail(session, principal, activation_id)


@router.post(A + "/{activation_id}/resume", response_model=ActivationPublic, summary="Riprendi il servizio",
             description="Il servizio sospeso riprende.")
async def resume(activation_id: ActivationId, session: Session, principal: Either,
                 body: EmptyIn | None = None) -> ActivationPublic:
    await service.resume(session, principal=principal, activation_id=activation_id)
    return await _detail(session, principal, activation_id)


@router.post(A + "/{activation_id}/end", response_model=ActivationPublic, summary="Concludi il servizio",
             description="Conclusione con un motivo; la fine è il primo giorno senza servizio (oggi se non "
                         "indicata). L'intervento del progetto si conclude e l'accesso dell'ente termina.")
async def end(activation_id: ActivationId, body: EndIn, session: Session, principal: Either) -> ActivationPublic:
    await service.end(session, principal=principal, activation_id=activation_id, reason=body.reason,
                      end_date=body.end_date, note=body.note)
    return await _detail(session, principal, activation_id)


# ---------------------------------------------------------------------------------------------------- delivery log
@router.post(A + "/{activation_id}/deliveries", response_model=DeliveryPublic, status_code=status.HTTP_201_CREATED,
             summary="Registra una prestazione",
             description="L'operatore dell'ente registra un giorno di servizio: ore (o accessi), operatore, breve "
                         "nota. Mai prima dell'avvio, mai dal giorno di fine in poi, mai nel futuro, mai negativo.")
async def deliver(activation_id: ActivationId, body: DeliveryCreate, session: Session,
                  principal: Provider) -> DeliveryPublic:
    return DeliveryPublic.of(await service.record_delivery(session, principal=principal,
                                                           activation_id=activation_id, data=body))


@router.get(A + "/{activation_id}/deliveries", response_model=DeliveryPage, summary="Registro delle prestazioni",
            description="Le prestazioni registrate, per giorno, paginate per cursore.")
async def deliveries(activation_id: ActivationId, session: Session, principal: Reader,
                     limit: int = Query(default=100, ge=1, le=200),
                     cursor: str | None = Query(default=None, max_length=300)) -> DeliveryPage:
    rows, nxt = await queries.list_deliveries(session, principal=principal, activation_id=activation_id,
                                              limit=limit, cursor_token=cursor)
    return DeliveryPage(items=[DeliveryPublic.of(d) for d in rows], next_cursor=nxt)


def _rows(periods) -> list[PeriodRow]:
    return [PeriodRow(start=p.start, end=p.end, planned=queries.money(p.planned), delivered=queries.money(p.delivered),
                      percent=p.percent, below_threshold=p.below, flagged=p.flagged) for p in periods]


@router.get(A + "/{activation_id}/summary", response_model=SummaryPublic, summary="Previsto ed erogato",
            description="Per settimana (da lunedì) e per mese: ore o accessi previsti nei giorni di servizio ed "
                        "erogati, con la percentuale; una settimana conclusa sotto la soglia (80 % predefinito) è "
                        "segnalata una sola volta al case manager.")
async def summary(activation_id: ActivationId, session: Session, principal: Reader) -> SummaryPublic:
    s = await queries.summary(session, principal=principal, activation_id=activation_id)
    return SummaryPublic(activation_id=s["activation_id"], unit=s["unit"], threshold_percent=s["threshold_percent"],
                         weeks=_rows(s["weeks"]), months=_rows(s["months"]),
                         planned_total=queries.money(s["planned_total"]),
                         delivered_total=queries.money(s["delivered_total"]))


@router.get("/services/plans/{plan_id}/costs", response_model=PlanCostPublic,
            summary="Costo del progetto (budget di salute)",
            description="Costo previsto ed erogato per intervento e per fonte di finanziamento (ore o accessi × "
                        "costo unitario) e la compartecipazione della persona secondo le regole del comune.")
async def plan_costs(plan_id: PlanId, session: Session, principal: CostReader) -> PlanCostPublic:
    return PlanCostPublic(**await queries.plan_costs(session, principal=principal, plan_id=plan_id))


@router.get("/services/indicators/sad", response_model=SadIndicatorPublic,
            summary="Indicatore SAD gestiti interamente nel sistema",
            description="Solo conteggi: i SAD conclusi nel periodo e quanti hanno richiesta, valutazione, progetto, "
                        "attivazione, erogazioni e chiusura registrati nel sistema (tabella LEPS).")
async def sad_indicator(session: Session, principal: Reporter,
                        period_from: date | None = Query(default=None, title="Dal",
                                                         description="Primo giorno del periodo (predefinito: il "
                                                                     "1° gennaio dell'anno in corso)."),
                        period_to: date | None = Query(default=None, title="Al (escluso)",
                                                       description="Primo giorno dopo il periodo (predefinito: "
                                                                   "domani).")) -> SadIndicatorPublic:
    today = clock.today_rome()
    return SadIndicatorPublic(**await queries.sad_indicator(
        session, principal=principal, period_from=period_from or today.replace(month=1, day=1),
        period_to=period_to or today + timedelta(days=1)))
