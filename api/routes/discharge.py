"""Dimissioni protette: la segnalazione del reparto con la richiesta alla COT, l'elenco e il dettaglio nella vista
consentita (reparto: solo lo stato; COT e comune di residenza: completa); la valutazione (VMD), il progetto, la
dimissione, la chiusura e le uscite, lavorate dalla COT e dal comune."""
from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from api.deps import Authorized, Principal, Session
from domain.discharge import flows, queries, service
from domain.discharge.models import DischargeState
from domain.security.permissions import Permission
from schemas.discharge import (
    CancelIn,
    CloseIn,
    DischargeIn,
    DischargePage,
    DischargePublic,
    DischargeSignalCreate,
    EvaluationIn,
    EvaluationRequestIn,
    ExitIn,
    MonitoringIn,
    ProjectIn,
    SettingIn,
)

router = APIRouter(prefix="/discharges", tags=["dimissioni protette"])

Signaller = Authorized(Permission.discharge_signal)
# The ward withdraws its own signal, a worker any case of theirs: either permission will do, so the service checks.
Canceller = Principal
Reader = Authorized(Permission.discharge_read)
Worker = Authorized(Permission.discharge_manage)
DischargeId = Annotated[uuid.UUID, Path(title="Dimissione protetta",
                                        description="Identificativo (UUID) della dimissione protetta.")]


def _public(v: queries.Visible) -> DischargePublic:
    return DischargePublic.of(v.case, v.view, v.allowed)


@router.post("", response_model=DischargePublic, status_code=status.HTTP_201_CREATED,
             summary="Segnala una dimissione protetta",
             description="Il reparto (o il Pronto Soccorso, le cure intermedie) segnala la persona — registrata, o "
                         "nuova: l'anagrafe la ritrova dal codice fiscale — con ricovero, dimissione prevista, "
                         "criteri di eleggibilità (almeno uno), rischio sociale e sintesi dei bisogni. Nello stesso "
                         "passo la richiesta va alla COT del domicilio (o della residenza; fuori Ambito: la COT "
                         "della sede segnalante) e parte il termine di 48 ore; il comune di residenza è avvisato.")
async def signal(body: DischargeSignalCreate, session: Session, principal: Signaller) -> DischargePublic:
    case = await service.open_signal(session, principal=principal, data=body)
    return _public(await queries.get_case(session, principal=principal, discharge_id=case.id))


@router.get("", response_model=DischargePage, summary="Elenco delle dimissioni protette",
            description="Reparto: le segnalazioni dei propri reparti (solo lo stato); COT: i percorsi della propria "
                        "COT; assistente sociale comunale: i percorsi dei residenti. Dalla segnalazione più recente, "
                        "paginate per cursore.")
async def list_discharges(session: Session, principal: Reader,
                          state: list[DischargeState] | None = Query(default=None, max_length=10),
                          person_id: uuid.UUID | None = None, limit: int = Query(default=50, ge=1, le=200),
                          cursor: str | None = Query(default=None, max_length=300)) -> DischargePage:
    items, nxt = await queries.list_cases(session, principal=principal, states=state, person_id=person_id,
                                          limit=limit, cursor=cursor)
    return DischargePage(items=[_public(v) for v in items], next_cursor=nxt)


@router.get("/cot-queue", response_model=DischargePage, summary="Coda delle valutazioni della COT",
            description="Le richieste di valutazione in attesa presso la propria COT, dalla scadenza delle 48 ore più "
                        "vicina (a rischio e scadute per prime). Solo per gli operatori della COT.")
async def cot_queue(session: Session, principal: Worker,
                    limit: int = Query(default=50, ge=1, le=200)) -> DischargePage:
    cases = await queries.cot_queue(session, principal=principal, limit=limit)
    return DischargePage(items=[_public(queries.Visible(c, "full")) for c in cases])


@router.get("/{discharge_id}", response_model=DischargePublic, summary="Dettaglio di una dimissione protetta",
            description="Il percorso nella vista consentita: solo lo stato per il reparto segnalante; completa "
                        "(criteri, sintesi, valutazione, setting, progetto, servizi) per la COT e il comune.")
async def get_discharge(discharge_id: DischargeId, session: Session, principal: Reader) -> DischargePublic:
    return _public(await queries.get_case(session, principal=principal, discharge_id=discharge_id))


async def _detail(session, principal, discharge_id: uuid.UUID) -> DischargePublic:
    return _public(await queries.get_case(session, principal=principal, discharge_id=discharge_id))


@router.post("/{discharge_id}/evaluation-request", response_model=DischargePublic,
             summary="Richiedi la VMD di dimissione protetta",
             description="Il comune di residenza chiede all'équipe la VMD (motivo `protected_discharge`) sulla "
                         "cartella della persona; il termine resta quello delle 48 ore dalla richiesta alla COT.")
async def request_evaluation(discharge_id: DischargeId, body: EvaluationRequestIn, session: Session,
                             principal: Worker) -> DischargePublic:
    await flows.request_evaluation(session, principal=principal, discharge_id=discharge_id,
                                   cartella_id=body.cartella_id, team_id=body.team_id, notes=body.notes,
                                   expected_version=body.version)
    return await _detail(session, principal, discharge_id)


@router.post("/{discharge_id}/setting", response_model=DischargePublic, summary="Registra il setting scelto",
             description="Il setting di dimissione scelto dall'équipe (domicilio con SAD/ADI, cure intermedie, RSA, "
                         "altra struttura, bassa soglia), registrato mentre la valutazione è in corso — la "
                         "conclusione della VMD la completa con questo setting — o dopo, prima del progetto. RSA: "
                         "si avvia la domanda urgente di lista d'attesa.")
async def setting(discharge_id: DischargeId, body: SettingIn, session: Session, principal: Worker) -> DischargePublic:
    await flows.choose_setting(session, principal=principal, discharge_id=discharge_id, setting=body.setting,
                               expected_version=body.version)
    return await _detail(session, principal, discharge_id)


@router.post("/{discharge_id}/evaluation", response_model=DischargePublic, summary="Registra la valutazione",
             description="Di norma la valutazione si completa da sé alla conclusione della VMD richiesta dal "
                         "percorso. Per una VMD conclusa della persona richiesta altrove: richiesta alla COT → "
                         "valutata, all'ora della conclusione della VMD (ore trascorse dalla richiesta alla COT), "
                         "con il setting scelto. Chiude le attività della COT sul termine.")
async def evaluation(discharge_id: DischargeId, body: EvaluationIn, session: Session,
                     principal: Worker) -> DischargePublic:
    await flows.complete_evaluation(session, principal=principal, discharge_id=discharge_id, vmd_id=body.vmd_id,
                                    setting=body.setting, expected_version=body.version)
    return await _detail(session, principal, discharge_id)


@router.post("/{discharge_id}/project", response_model=DischargePublic, summary="Formula il progetto di dimissione",
             description="Valutata → progetto formulato: apre in bozza un progetto individualizzato di tipo "
                         "`discharge` sulla cartella della persona (collegato alla VMD se ne ha proposto uno).")
async def project(discharge_id: DischargeId, body: ProjectIn, session: Session, principal: Worker) -> DischargePublic:
    await flows.formulate_project(session, principal=principal, discharge_id=discharge_id,
                                  cartella_id=body.cartella_id, case_manager_id=body.case_manager_id,
                                  title=body.title, summary=body.summary, expected_version=body.version)
    return await _detail(session, principal, discharge_id)


@router.post("/{discharge_id}/discharge", response_model=DischargePublic, summary="Registra la dimissione",
             description="Progetto formulato → dimessa, con i servizi attivati (SAD, ADI, RSA aperta, cure "
                         "palliative, ausili).")
async def discharge(discharge_id: DischargeId, body: DischargeIn, session: Session,
                    principal: Worker) -> DischargePublic:
    await service.discharge(session, principal=principal, discharge_id=discharge_id,
                            services=list(body.services), expected_version=body.version)
    return await _detail(session, principal, discharge_id)


@router.post("/{discharge_id}/monitoring", response_model=DischargePublic,
             summary="Avvia il monitoraggio dopo la dimissione",
             description="Dimessa → in monitoraggio: il comune di residenza (o la COT) riceve la verifica a 30 giorni "
                         "dalla dimissione.")
async def monitoring(discharge_id: DischargeId, session: Session, principal: Worker,
                     body: MonitoringIn | None = None) -> DischargePublic:
    await service.start_monitoring(session, principal=principal, discharge_id=discharge_id,
                                   expected_version=body.version if body else None)
    return await _detail(session, principal, discharge_id)


@router.post("/{discharge_id}/cancel", response_model=DischargePublic, summary="Annulla la segnalazione",
             description="Una segnalazione inserita per errore o due volte, prima della valutazione, con il motivo: "
                         "dal reparto che l'ha inviata o dalla COT e dal comune del percorso. Esce da ogni "
                         "indicatore.")
async def cancel(discharge_id: DischargeId, body: CancelIn, session: Session, principal: Canceller
                 ) -> DischargePublic:
    await service.cancel_signal(session, principal=principal, discharge_id=discharge_id, reason=body.reason,
                                expected_version=body.version)
    return await _detail(session, principal, discharge_id)


@router.post("/{discharge_id}/close", response_model=DischargePublic, summary="Chiudi il percorso",
             description="In monitoraggio → chiusa, al termine del monitoraggio.")
async def close(discharge_id: DischargeId, session: Session, principal: Worker,
                body: CloseIn | None = None) -> DischargePublic:
    await service.close(session, principal=principal, discharge_id=discharge_id,
                        expected_version=body.version if body else None)
    return await _detail(session, principal, discharge_id)


@router.post("/{discharge_id}/exit", response_model=DischargePublic, summary="Uscita dal percorso",
             description="Non eleggibile (prima del progetto) oppure dimessa senza progetto (dopo la richiesta "
                         "alla COT), con il motivo.")
async def exit_case(discharge_id: DischargeId, body: ExitIn, session: Session, principal: Worker) -> DischargePublic:
    await service.exit_case(session, principal=principal, discharge_id=discharge_id, action=body.action,
                            reason=body.reason, expected_version=body.version)
    return await _detail(session, principal, discharge_id)
