"""Progetti individualizzati: bozza, obiettivi, interventi, proposta, sottoscrizione con consenso, attivazione,
verifiche, chiusura, versioni e stampa."""
from __future__ import annotations

import uuid

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, Response

from api.deps import Authorized, Session
from api.downloads import content_disposition, preferred
from domain.care_plan import interventions, policy, printing, queries, reviews
from domain.care_plan import service as svc
from domain.care_plan.models import PlanState
from domain.kernel import clock
from domain.security.permissions import Permission
from schemas.care_plan import (
    HISTORY_ACTION_LABELS,
    ActivateIn,
    AgreeIn,
    CarePlanCreate,
    CarePlanDetail,
    CarePlanMinimal,
    CarePlanPage,
    CarePlanSummary,
    CarePlanUpdate,
    CarePlanVersion,
    CarePlanVersionSummary,
    GoalCreate,
    GoalUpdate,
    InterventionCreate,
    InterventionUpdate,
    OptionalReasonIn,
    ReasonIn,
    ReviewRecord,
)
from schemas.work_items import WorkItemPage

router = APIRouter(tags=["progetti individualizzati"])

Reader = Authorized(Permission.care_plan_read)
Writer = Authorized(Permission.care_plan_write)
PRINT_FORMATS = {"html": "text/html", "pdf": "application/pdf"}
UPDATED = "Risponde con il progetto aggiornato (nuova versione, conservata nello storico)."


async def _detail(session, principal, plan_id: uuid.UUID) -> CarePlanDetail:
    bundle = await queries.get_plan(session=session, principal=principal, plan_id=plan_id, audited=False)
    return CarePlanDetail.model_validate(policy.plan_view_for(principal, bundle))


def _version_summary(h) -> dict:
    return {"version": h.version, "action": h.action, "action_label": HISTORY_ACTION_LABELS.get(h.action, h.action),
            "state": ((h.data or {}).get("plan") or {}).get("state"), "at": h.at, "actor_id": h.actor_id}


# ---------------------------------------------------------------------------------------------------- reads
@router.get("/care-plans/due-reviews", response_model=WorkItemPage, summary="I miei progetti da verificare",
            description="Le attività di verifica (tipo `care_plan.review`) nella mia coda, in scadenza o scadute, "
                        "ordinate per scadenza; paginate per cursore.")
async def due_reviews(session: Session, principal: Reader, limit: int = Query(default=50, ge=1, le=200),
                      cursor: str | None = Query(default=None, max_length=300)) -> WorkItemPage:
    items, nxt = await queries.due_reviews(session=session, principal=principal, limit=limit, cursor=cursor)
    now = clock.now()
    return WorkItemPage.of(items, nxt, principal=principal, now=now)


@router.get("/care-plans/{plan_id}", response_model=CarePlanDetail | CarePlanMinimal,
            summary="Dettaglio del progetto",
            description="Progetto con obiettivi, interventi e verifiche. Enti erogatori (ETS, RSA) e MMG ricevono la "
                        "vista minima: solo gli interventi affidati alla propria organizzazione, senza obiettivi né "
                        "sintesi.")
async def get_plan(plan_id: uuid.UUID, session: Session, principal: Reader) -> CarePlanDetail | CarePlanMinimal:
    bundle = await queries.get_plan(session=session, principal=principal, plan_id=plan_id)
    view = policy.plan_view_for(principal, bundle)
    if view["view"] == "minimal":
        return CarePlanMinimal.model_validate(view)
    return CarePlanDetail.model_validate(view)


@router.get("/cartelle/{cartella_id}/care-plans", response_model=CarePlanPage, summary="Progetti della cartella",
            description="Progetti della cartella (dal più vecchio), filtrabili per stato, paginati per cursore.")
async def list_plans(cartella_id: uuid.UUID, session: Session, principal: Reader,
                     state: PlanState | None = None, limit: int = Query(default=50, ge=1, le=200),
                     cursor: uuid.UUID | None = None) -> CarePlanPage:
    items, nxt = await queries.list_for_cartella(session=session, principal=principal, cartella_id=cartella_id,
                                             state=state, limit=limit, cursor=cursor)
    return CarePlanPage(items=[CarePlanSummary.model_validate(policy.summary_view(b)) for b in items], next_cursor=nxt)


@router.get("/care-plans/{plan_id}/versions", response_model=list[CarePlanVersionSummary],
            summary="Versioni del progetto", description="Tutte le versioni conservate, dalla prima.")
async def list_versions(plan_id: uuid.UUID, session: Session, principal: Reader) -> list[CarePlanVersionSummary]:
    rows = await queries.list_versions(session=session, principal=principal, plan_id=plan_id)
    return [CarePlanVersionSummary.model_validate(_version_summary(h)) for h in rows]


@router.get("/care-plans/{plan_id}/versions/{version}", response_model=CarePlanVersion,
            summary="Una versione del progetto",
            description="L'istantanea completa (progetto, obiettivi, interventi, verifiche) di quella versione.")
async def get_version(plan_id: uuid.UUID, version: int, session: Session, principal: Reader) -> CarePlanVersion:
    h = await queries.get_version(session=session, principal=principal, plan_id=plan_id, version=version)
    return CarePlanVersion.model_validate({**_version_summary(h), "data": h.data or {}})


@router.get("/care-plans/{plan_id}/print", response_class=HTMLResponse, summary="Stampa del progetto",
            description="Il progetto in HTML stampabile su A4 (etichette in italiano, righe per le firme) o in PDF "
                        "A4 (`format=pdf` o `Accept: application/pdf`). `version` stampa una versione conservata.",
            responses={200: {"content": {"text/html": {}, "application/pdf": {}}},
                       406: {"description": "Formato di stampa non disponibile: html o pdf.",
                             "content": {"application/problem+json": {}}}})
async def print_plan(plan_id: uuid.UUID, session: Session, principal: Reader, request: Request,
                     version: int | None = Query(default=None, ge=1),
                     format: str | None = Query(default=None, max_length=20,
                                                description="html (predefinito) o pdf; senza, decide "
                                                            "l'intestazione Accept (text/html, application/pdf).")
                     ) -> Response:
    media = (PRINT_FORMATS.get(format.strip().lower()) if format
             else preferred(request.headers.get("accept"), list(PRINT_FORMATS.values())))
    if media is None:
        raise HTTPException(status.HTTP_406_NOT_ACCEPTABLE,
                            detail="Formati di stampa disponibili: html (text/html) e pdf (application/pdf).")
    if media == "application/pdf":
        pdf = await printing.print_plan_pdf(session, principal=principal, plan_id=plan_id, version=version)
        return Response(pdf, media_type=media, headers={"Cache-Control": "no-store", "Content-Disposition":
                                                        content_disposition(f"progetto-{plan_id}.pdf", "inline")})
    html = await printing.print_plan(session=session, principal=principal, plan_id=plan_id, version=version)
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


# ---------------------------------------------------------------------------------------------------- writes
@router.post("/care-plans", response_model=CarePlanDetail, status_code=status.HTTP_201_CREATED,
             summary="Nuovo progetto (bozza)",
             description="Apre un progetto in bozza sulla cartella, eventualmente da una VMD conclusa; il case "
                         "manager diventa il case manager della cartella.")
async def create_plan(body: CarePlanCreate, session: Session, principal: Writer) -> CarePlanDetail:
    plan = await svc.create_plan(session=session, principal=principal, data=body)
    return await _detail(session, principal, plan.id)


@router.patch("/care-plans/{plan_id}", response_model=CarePlanDetail, summary="Modifica il progetto",
              description="Titolo e sintesi in bozza, proposto o in verifica; case manager e intervallo delle "
                          "verifiche finché il progetto non è chiuso. " + UPDATED)
async def update_plan(plan_id: uuid.UUID, body: CarePlanUpdate, session: Session,
                      principal: Writer) -> CarePlanDetail:
    await svc.update_plan(session=session, principal=principal, plan_id=plan_id, data=body)
    return await _detail(session, principal, plan_id)


@router.post("/care-plans/{plan_id}/goals", response_model=CarePlanDetail, status_code=status.HTTP_201_CREATED,
             summary="Aggiungi un obiettivo",
             description="Obiettivo con indicatore e risultato atteso misurabile; solo in bozza, proposto o in "
                         "verifica. " + UPDATED)
async def add_goal(plan_id: uuid.UUID, body: GoalCreate, session: Session, principal: Writer) -> CarePlanDetail:
    await interventions.add_goal(session=session, principal=principal, plan_id=plan_id, data=body)
    return await _detail(session, principal, plan_id)


@router.patch("/care-plans/{plan_id}/goals/{goal_id}", response_model=CarePlanDetail,
              summary="Modifica un obiettivo", description="Solo in bozza, proposto o in verifica. " + UPDATED)
async def update_goal(plan_id: uuid.UUID, goal_id: uuid.UUID, body: GoalUpdate, session: Session,
                      principal: Writer) -> CarePlanDetail:
    await interventions.update_goal(session=session, principal=principal, plan_id=plan_id, goal_id=goal_id, data=body)
    return await _detail(session, principal, plan_id)


@router.post("/care-plans/{plan_id}/interventions", response_model=CarePlanDetail,
             status_code=status.HTTP_201_CREATED, summary="Aggiungi un intervento",
             description="Servizio del catalogo, ente erogatore dell'Ambito, intensità (es. 6 ore/settimana), "
                         "periodo e fonte di finanziamento; solo in bozza, proposto o in verifica. " + UPDATED)
async def add_intervention(plan_id: uuid.UUID, body: InterventionCreate, session: Session,
                           principal: Writer) -> CarePlanDetail:
    await interventions.add_intervention(session=session, principal=principal, plan_id=plan_id, data=body)
    return await _detail(session, principal, plan_id)


@router.patch("/care-plans/{plan_id}/interventions/{intervention_id}", response_model=CarePlanDetail,
              summary="Modifica un intervento",
              description="Solo in bozza, proposto o in verifica; di un intervento in corso non si cambiano "
                          "servizio, ente e inizio. " + UPDATED)
async def update_intervention(plan_id: uuid.UUID, intervention_id: uuid.UUID, body: InterventionUpdate,
                              session: Session, principal: Writer) -> CarePlanDetail:
    await interventions.update_intervention(session=session, principal=principal, plan_id=plan_id,
                                  intervention_id=intervention_id, data=body)
    return await _detail(session, principal, plan_id)


@router.post("/care-plans/{plan_id}/interventions/{intervention_id}/start", response_model=CarePlanDetail,
             summary="Avvia un intervento",
             description="A progetto attivo o in verifica; l'ente erogatore riceve l'accesso al caso. " + UPDATED)
async def start_intervention(plan_id: uuid.UUID, intervention_id: uuid.UUID, session: Session,
                             principal: Writer) -> CarePlanDetail:
    await interventions.start_intervention(session=session, principal=principal, plan_id=plan_id,
                                 intervention_id=intervention_id)
    return await _detail(session, principal, plan_id)


@router.post("/care-plans/{plan_id}/interventions/{intervention_id}/end", response_model=CarePlanDetail,
             summary="Concludi un intervento",
             description="L'intervento in corso termina e l'accesso dell'ente erogatore al caso cessa. " + UPDATED)
async def end_intervention(plan_id: uuid.UUID, intervention_id: uuid.UUID, session: Session,
                           principal: Writer) -> CarePlanDetail:
    await interventions.end_intervention(session=session, principal=principal, plan_id=plan_id,
                               intervention_id=intervention_id)
    return await _detail(session, principal, plan_id)


@router.post("/care-plans/{plan_id}/interventions/{intervention_id}/cancel", response_model=CarePlanDetail,
             summary="Annulla un intervento",
             description="Un intervento previsto o in corso viene annullato; l'accesso dell'ente cessa. " + UPDATED)
async def cancel_intervention(plan_id: uuid.UUID, intervention_id: uuid.UUID, session: Session,
                              principal: Writer) -> CarePlanDetail:
    await interventions.cancel_intervention(session=session, principal=principal, plan_id=plan_id,
                                  intervention_id=intervention_id)
    return await _detail(session, principal, plan_id)


@router.post("/care-plans/{plan_id}/propose", response_model=CarePlanDetail, summary="Proponi il progetto",
             description="Bozza → proposto (servono almeno un obiettivo e un intervento). " + UPDATED)
async def propose(plan_id: uuid.UUID, session: Session, principal: Writer) -> CarePlanDetail:
    await svc.propose(session=session, principal=principal, plan_id=plan_id)
    return await _detail(session, principal, plan_id)


@router.post("/care-plans/{plan_id}/back-to-draft", response_model=CarePlanDetail,
             summary="Riporta il progetto in bozza", description="Proposto → bozza. " + UPDATED)
async def back_to_draft(plan_id: uuid.UUID, session: Session, principal: Writer) -> CarePlanDetail:
    await svc.back_to_draft(session=session, principal=principal, plan_id=plan_id)
    return await _detail(session, principal, plan_id)


@router.post("/care-plans/{plan_id}/agree", response_model=CarePlanDetail,
             summary="Sottoscrivi il progetto (compilato)",
             description="Proposto → sottoscritto: serve il consenso attivo (finalità 'care') della persona o del "
                         "genitore / tutore / amministratore di sostegno, collegato a questa versione. Senza "
                         "corpo (o senza `consent_id`) vale l'unico consenso alla cura in vigore della persona; se "
                         "non ce n'è nessuno o ce n'è più d'uno risponde 422 su `consent_id`. " + UPDATED)
async def agree(plan_id: uuid.UUID, session: Session, principal: Writer,
                body: AgreeIn | None = None) -> CarePlanDetail:
    await svc.agree(session=session, principal=principal, plan_id=plan_id, data=body)
    return await _detail(session, principal, plan_id)


@router.post("/care-plans/{plan_id}/activate", response_model=CarePlanDetail, summary="Attiva il progetto",
             description="Sottoscritto → attivo: avvia il primo intervento (o quelli indicati) e fissa la prossima "
                         "verifica. Senza consenso valido risponde 409 indicando consent_id. " + UPDATED)
async def activate(plan_id: uuid.UUID, session: Session, principal: Writer,
                   body: ActivateIn | None = None) -> CarePlanDetail:
    await svc.activate(session=session, principal=principal, plan_id=plan_id, data=body)
    return await _detail(session, principal, plan_id)


@router.post("/care-plans/{plan_id}/reviews/start", response_model=CarePlanDetail, summary="Avvia la verifica",
             description="Attivato → in verifica: obiettivi e interventi tornano modificabili. " + UPDATED)
async def start_review(plan_id: uuid.UUID, session: Session, principal: Writer) -> CarePlanDetail:
    await reviews.start_review(session=session, principal=principal, plan_id=plan_id)
    return await _detail(session, principal, plan_id)


@router.post("/care-plans/{plan_id}/reviews", response_model=CarePlanDetail, summary="Registra la verifica",
             description="Esito continue / modify (torna attivo, prossima verifica tra l'intervallo previsto), "
                         "complete (concluso) o suspend (sospeso). " + UPDATED)
async def record_review(plan_id: uuid.UUID, body: ReviewRecord, session: Session,
                        principal: Writer) -> CarePlanDetail:
    await reviews.record_review(session=session, principal=principal, plan_id=plan_id, data=body)
    return await _detail(session, principal, plan_id)


@router.post("/care-plans/{plan_id}/complete", response_model=CarePlanDetail, summary="Concludi il progetto",
             description="Attivato o in verifica → concluso, con motivo; gli interventi terminano. " + UPDATED)
async def complete(plan_id: uuid.UUID, body: ReasonIn, session: Session, principal: Writer) -> CarePlanDetail:
    await svc.complete(session=session, principal=principal, plan_id=plan_id, reason=body.reason)
    return await _detail(session, principal, plan_id)


@router.post("/care-plans/{plan_id}/suspend", response_model=CarePlanDetail, summary="Sospendi il progetto",
             description="Attivato o in verifica → sospeso, con motivo. " + UPDATED)
async def suspend(plan_id: uuid.UUID, body: ReasonIn, session: Session, principal: Writer) -> CarePlanDetail:
    await svc.suspend(session=session, principal=principal, plan_id=plan_id, reason=body.reason)
    return await _detail(session, principal, plan_id)


@router.post("/care-plans/{plan_id}/resume", response_model=CarePlanDetail, summary="Riprendi il progetto",
             description="Sospeso → attivo (il consenso deve essere ancora valido). " + UPDATED)
async def resume(plan_id: uuid.UUID, session: Session, principal: Writer,
                 body: OptionalReasonIn | None = None) -> CarePlanDetail:
    await svc.resume(session=session, principal=principal, plan_id=plan_id, reason=body.reason if body else None)
    return await _detail(session, principal, plan_id)


@router.post("/care-plans/{plan_id}/revoke", response_model=CarePlanDetail, summary="Revoca il progetto",
             description="Da qualsiasi stato non concluso → revocato, con motivo; gli interventi terminano e "
                         "l'accesso degli enti erogatori cessa. " + UPDATED)
async def revoke(plan_id: uuid.UUID, body: ReasonIn, session: Session, principal: Writer) -> CarePlanDetail:
    await svc.revoke(session=session, principal=principal, plan_id=plan_id, reason=body.reason)
    return await _detail(session, principal, plan_id)
