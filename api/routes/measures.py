"""Misure (B1, B2, Dopo di Noi, Pro.Vi, voucher): il catalogo come dati, i bandi con il budget, le domande dalla
presentazione alla conclusione, con l'attesa di fondi in graduatoria quando il budget è impegnato."""
from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from api.deps import Authorized, Principal, Session
from domain.measures import queries, service
from domain.measures.models import ApplicationState
from domain.security.permissions import Permission
from schemas.measures import (
    ActivationIn,
    ApplicationCreate,
    ApplicationPage,
    ApplicationPublic,
    AssessmentIn,
    CallCreate,
    CallList,
    CallPublic,
    CallUpdate,
    EligibilityIn,
    EndApplicationIn,
    MeasureList,
    MeasurePublic,
    MeasureUpdate,
    ProjectIn,
    WaitingList,
    WaitingRow,
)

router = APIRouter(tags=["misure"])

Reader = Authorized(Permission.measures_read)
Manager = Authorized(Permission.measures_manage)
Reporter = Authorized(Permission.measures_report)
Admin = Authorized(Permission.measures_admin)
ApplicationId = Annotated[uuid.UUID, Path(title="Domanda di misura",
                                          description="Identificativo (UUID) della domanda di misura.")]
CallId = Annotated[uuid.UUID, Path(title="Bando", description="Identificativo (UUID) del bando della misura.")]
MeasureCode = Annotated[str, Path(max_length=40, title="Misura", description="Codice della misura (b1, pro_vi...).")]
M = "/measures/applications"


async def _detail(session, principal, application_id: uuid.UUID) -> ApplicationPublic:
    a, rank = await queries.get_application(session, principal=principal, application_id=application_id,
                                            audited=False)
    return ApplicationPublic.of(a, rank)


# ---------------------------------------------------------------------------------------------------- catalogue
@router.get("/catalogue/measures", response_model=MeasureList, summary="Catalogo delle misure",
            description="Le misure con le loro regole come dati: fonte, VMD richiesta, regola del periodo (Pro.Vi "
                        "maggio-aprile), importo massimo, budget annuo, note di ammissibilità; per ciascuna, "
                        "nell'Ambito di chi legge, le domande per stato, l'impegnato e l'importo in attesa di fondi "
                        "su tutti i bandi (solo numeri).")
async def list_measures(session: Session, principal: Principal) -> MeasureList:
    return MeasureList(items=[MeasurePublic.of(m, figures) for m, figures in
                              await queries.list_measures(session, principal=principal)])


@router.patch("/catalogue/measures/{code}", response_model=MeasurePublic, summary="Modifica le regole di una misura",
              description="Importo massimo, budget annuo, regola e durata del periodo, note: sono dati, non codice.")
async def update_measure(code: MeasureCode, body: MeasureUpdate, session: Session, principal: Admin) -> MeasurePublic:
    return MeasurePublic.of(await service.update_measure(session, principal=principal, code=code, data=body))


@router.get("/catalogue/measure-calls", response_model=CallList, summary="Bandi delle misure",
            description="I bandi dell'Ambito con le date, il budget, l'impegnato, il disponibile, l'importo in "
                        "attesa di fondi e i conteggi per stato (solo numeri).")
async def list_calls(session: Session, principal: Principal,
                     measure_code: str | None = Query(default=None, max_length=40, title="Misura",
                                                      description="Solo i bandi di questa misura.")) -> CallList:
    return CallList(items=[CallPublic(**c) for c in await queries.list_calls(session, principal=principal,
                                                                             measure_code=measure_code)])


@router.post("/catalogue/measure-calls", response_model=CallPublic, status_code=status.HTTP_201_CREATED,
             summary="Apri un bando", description="Un bando di una misura: apertura, chiusura, budget.")
async def create_call(body: CallCreate, session: Session, principal: Admin) -> CallPublic:
    call = await service.create_call(session, principal=principal, data=body)
    return CallPublic(**queries.call_view(call, {"status_counts": {}, "committed": 0, "waiting_amount": 0}))


@router.patch("/catalogue/measure-calls/{call_id}", response_model=CallPublic, summary="Modifica un bando",
              description="Titolo, chiusura o budget; un budget maggiore attiva le domande in attesa di fondi "
                          "nell'ordine della graduatoria.")
async def update_call(call_id: CallId, body: CallUpdate, session: Session, principal: Admin) -> CallPublic:
    await service.update_call(session, principal=principal, call_id=call_id, data=body)
    return CallPublic(**await queries.get_call(session, principal=principal, call_id=call_id, checked=False))


@router.get("/measures/calls/{call_id}", response_model=CallPublic, summary="Budget e domande di un bando",
            description="Budget, impegnato, disponibile, in attesa di fondi e domande per stato (solo numeri).")
async def get_call(call_id: CallId, session: Session, principal: Reporter) -> CallPublic:
    return CallPublic(**await queries.get_call(session, principal=principal, call_id=call_id))


@router.get("/measures/calls/{call_id}/waiting", response_model=WaitingList, summary="Graduatoria in attesa di fondi",
            description="Le domande in attesa di fondi nell'ordine in cui saranno finanziate (data della domanda, "
                        "poi punteggio di bisogno della VMD; configurabile). La persona è indicata solo nelle righe "
                        "che il lettore raggiunge.")
async def waiting(call_id: CallId, session: Session, principal: Reader) -> WaitingList:
    w = await queries.waiting(session, principal=principal, call_id=call_id)
    return WaitingList(call_id=w["call_id"], rank_by=w["rank_by"], items=[WaitingRow(**r) for r in w["items"]])


# ---------------------------------------------------------------------------------------------------- applications
@router.post(M, response_model=ApplicationPublic, status_code=status.HTTP_201_CREATED,
             summary="Presenta una domanda di misura",
             description="Su un bando aperto nel giorno della domanda, per una persona dei propri casi; l'importo "
                         "richiesto non supera il tetto della misura.")
async def submit(body: ApplicationCreate, session: Session, principal: Manager) -> ApplicationPublic:
    a = await service.submit(session, principal=principal, data=body)
    return await _detail(session, principal, a.id)


@router.get(M, response_model=ApplicationPage, summary="Elenco delle domande di misura",
            description="Le domande visibili: il comune quelle dei residenti, il coordinatore del sub-ambito, "
                        "AS d'Ambito e CSC tutte. Dalla più recente, paginate per cursore.")
async def list_applications(session: Session, principal: Reader,
                            call_id: uuid.UUID | None = Query(default=None, title="Bando",
                                                              description="Solo le domande di questo bando."),
                            state: list[ApplicationState] | None = Query(default=None, max_length=10),
                            person_id: uuid.UUID | None = None, limit: int = Query(default=50, ge=1, le=200),
                            cursor: str | None = Query(default=None, max_length=300)) -> ApplicationPage:
    rows, nxt = await queries.list_applications(session, principal=principal, call_id=call_id,
                                                states=[str(s) for s in state] if state else None,
                                                person_id=person_id, limit=limit, cursor_token=cursor)
    return ApplicationPage(items=[ApplicationPublic.of(a) for a in rows], next_cursor=nxt)


@router.get(M + "/{application_id}", response_model=ApplicationPublic, summary="Dettaglio di una domanda di misura",
            description="La domanda con lo stato, le azioni possibili e, se in attesa di fondi, la posizione.")
async def get_application(application_id: ApplicationId, session: Session, principal: Reader) -> ApplicationPublic:
    a, rank = await queries.get_application(session, principal=principal, application_id=application_id)
    return ApplicationPublic.of(a, rank)


@router.post(M + "/{application_id}/assessment", response_model=ApplicationPublic, summary="Avvia la valutazione",
             description="La VMD su cui si fonda l'idoneità: una VMD della persona già aperta, o una nuova con il "
                         "motivo della misura sulla cartella per l'équipe.")
async def assessment(application_id: ApplicationId, body: AssessmentIn, session: Session,
                     principal: Manager) -> ApplicationPublic:
    await service.request_assessment(session, principal=principal, application_id=application_id, data=body)
    return await _detail(session, principal, application_id)


@router.post(M + "/{application_id}/eligibility", response_model=ApplicationPublic, summary="Registra l'idoneità",
             description="Idonea (la VMD deve essere conclusa; il suo Barthel dà il punteggio di bisogno) o non "
                         "idonea con il motivo.")
async def eligibility(application_id: ApplicationId, body: EligibilityIn, session: Session,
                      principal: Manager) -> ApplicationPublic:
    await service.decide(session, principal=principal, application_id=application_id, eligible=body.eligible,
                         reason=body.reason)
    return await _detail(session, principal, application_id)


@router.post(M + "/{application_id}/project", response_model=ApplicationPublic, summary="Collega il progetto",
             description="Il progetto individualizzato che la VMD propone per la misura.")
async def project(application_id: ApplicationId, body: ProjectIn, session: Session,
                  principal: Manager) -> ApplicationPublic:
    await service.define_project(session, principal=principal, application_id=application_id, plan_id=body.plan_id)
    return await _detail(session, principal, application_id)


@router.post(M + "/{application_id}/activation", response_model=ApplicationPublic, summary="Attiva la misura",
             description="Importo (entro il tetto) e periodo (dalla regola della misura se non indicato). Se il "
                         "budget del bando è impegnato la domanda non è respinta: attende i fondi in graduatoria.")
async def activation(application_id: ApplicationId, body: ActivationIn, session: Session,
                     principal: Manager) -> ApplicationPublic:
    await service.activate(session, principal=principal, application_id=application_id, data=body)
    return await _detail(session, principal, application_id)


@router.post(M + "/{application_id}/monitoring", response_model=ApplicationPublic, summary="Avvia il monitoraggio",
             description="La misura attiva entra in monitoraggio; si conclude da sola alla fine del periodo.")
async def monitoring(application_id: ApplicationId, session: Session, principal: Manager,
                     body: EndApplicationIn | None = None) -> ApplicationPublic:
    await service.monitor(session, principal=principal, application_id=application_id)
    return await _detail(session, principal, application_id)


@router.post(M + "/{application_id}/end", response_model=ApplicationPublic, summary="Concludi prima del termine",
             description="La misura si conclude prima della fine del periodo (l'importo resta impegnato).")
async def end(application_id: ApplicationId, session: Session, principal: Manager,
              body: EndApplicationIn | None = None) -> ApplicationPublic:
    await service.end(session, principal=principal, application_id=application_id, note=body.note if body else None)
    return await _detail(session, principal, application_id)


@router.post(M + "/{application_id}/withdraw", response_model=ApplicationPublic, summary="Ritira la domanda",
             description="La domanda è ritirata; l'importo di una misura attiva torna disponibile e le domande in "
                         "attesa di fondi sono attivate in ordine di graduatoria.")
async def withdraw(application_id: ApplicationId, session: Session, principal: Manager,
                   body: EndApplicationIn | None = None) -> ApplicationPublic:
    await service.withdraw(session, principal=principal, application_id=application_id,
                           note=body.note if body else None)
    return await _detail(session, principal, application_id)
