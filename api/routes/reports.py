"""Indicatori LEPS e del Piano di Zona: conteggi calcolati dai dati registrati, per anno, per sub-ambito, comune o
area, con le celle piccole protette; in JSON, CSV o XLSX."""
from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse, Response

from api.deps import Authorized, Session
from api.downloads import content_disposition
from domain.kernel import clock
from domain.reporting import exports, service
from domain.reporting.exports import ExportFile
from domain.security import audit
from domain.security.permissions import Permission
from integrations.tabular import report_files, writer
from schemas.report_exports import ExportCreate, ExportPage, ExportPublic
from schemas.reports import IndicatorReport, LepsReportPublic, PersonsBehindPublic

router = APIRouter(tags=["indicatori"])
Reader = Authorized(Permission.report_read)
ExportId = Annotated[uuid.UUID, Path(title="Esportazione", description="Identificativo (UUID) dell'esportazione.")]


@router.get("/reports/indicators", response_model=IndicatorReport,
            summary="Indicatori LEPS e del Piano di Zona",
            description="Per ogni indicatore (definizioni in schemas/reference/indicators, regole di conteggio in "
                        "docs/indicators.md): numeratore, denominatore, valore (4 decimali, nullo con denominatore "
                        "0), obiettivo dell'anno ed esito, per l'Ambito o per sub-ambito, comune di residenza, "
                        "area, tipo di servizio richiesto, tipologia di unità d'offerta o urgenza. Solo aggregati: i "
                        "conteggi da 1 a 4 si leggono «<5» e altre celle «n.d.» perché "
                        "nessuna si possa ricavare dalle altre; valore ed esito di una riga con una cella nascosta "
                        "sono nascosti. Il comune vede i propri numeri e i totali d'Ambito, il coordinatore il "
                        "proprio sub-ambito. `format=csv` o `xlsx` per scaricarlo, `html` per stamparlo.",
            responses={200: {"content": {"text/csv": {}, writer.XLSX_MEDIA_TYPE: {}, "text/html": {}}}})
async def indicators(session: Session, principal: Reader,
                     year: int | None = Query(default=None, title="Anno",
                                              description="Anno solare (predefinito: l'anno in corso)."),
                     by: str = Query(default="ambito", max_length=20, title="Raggruppamento",
                                     description="ambito, sub_ambito, comune (di residenza), area (della "
                                                 "cartella), trigger (tipo di servizio richiesto alla VMD), "
                                                 "udo_type o urgency (tempi di attesa)."),
                     reading: str | None = Query(default=None, max_length=20, title="Lettura",
                                                 description="same_period (predefinita), cohort (con data "
                                                             "limite) o event_date; gli indicatori di durata (D6, "
                                                             "R2) leggono per coorte fino alla fine del periodo "
                                                             "più il loro limite."),
                     cutoff: date | None = Query(default=None, title="Data limite",
                                                 description="Con reading=cohort: ultimo giorno in cui un evento "
                                                             "conclusivo conta (compreso)."),
                     indicator: str | None = Query(default=None, max_length=200, title="Indicatori",
                                                   description="Codici separati da virgola (P1,P4,D6); "
                                                               "predefinito: tutti."),
                     format: Literal["json", "csv", "xlsx", "html"] = Query(
                         default="json", title="Formato",
                         description="json, csv (separatore «;», intestazioni in italiano), xlsx o html "
                                     "(pagina stampabile).")):
    rep = await service.indicator_report(session, principal=principal, year=year or clock.today_rome().year,
                                         by=by, reading=reading, cutoff=cutoff, indicator=indicator)
    if format == "json":
        return IndicatorReport.of(rep)
    return _file(report_files.indicator_file(rep, format))


def _file(f: ExportFile) -> Response:
    """A report as a file: CSV and XLSX to download, HTML to print in the browser."""
    if f.media_type == report_files.HTML_MEDIA_TYPE:
        return HTMLResponse(f.data)
    return Response(f.data, media_type=f.media_type, headers={"Content-Disposition": content_disposition(f.name)})


@router.get("/reports/leps", response_model=LepsReportPublic,
            summary="Rendiconto annuale LEPS e Piano di Zona",
            description="Per l'Ambito di chi chiede: ogni indicatore nell'anno e nei due precedenti (dal 2020), "
                        "con numeratore, denominatore, valore, obiettivo ed esito di ogni anno; gli stessi numeri e "
                        "le stesse celle protette del rapporto per anno. `format=html` per la pagina stampabile "
                        "con un grafico per indicatore (SVG disegnato dal server), `xlsx` per il foglio di calcolo.",
            responses={200: {"content": {"text/html": {}, writer.XLSX_MEDIA_TYPE: {}}}})
async def leps(session: Session, principal: Reader,
               year: int | None = Query(default=None, title="Anno",
                                        description="Anno del rendiconto (predefinito: l'anno in corso)."),
               format: Literal["json", "html", "xlsx"] = Query(default="json", title="Formato",
                                                               description="json, html (stampabile) o xlsx.")):
    rep = await service.leps_report(session, principal=principal, year=year or clock.today_rome().year)
    if format == "json":
        return LepsReportPublic.of(rep)
    return _file(report_files.leps_file(rep, format))


@router.get("/reports/indicators/{code}/persons", response_model=PersonsBehindPublic,
            summary="Persone dietro un numero di un indicatore",
            description="Solo per chi raggiunge le persone caso per caso (il comune, il coordinatore di "
                        "sub-ambito, l'AS d'Ambito, la CSC): le persone contate nel numeratore o nel denominatore "
                        "di una cella (anno, raggruppamento, gruppo) che le proprie regole di visibilità "
                        "raggiungono, per identificativo; l'elenco può quindi essere più corto del conteggio. Ogni "
                        "persona elencata entra nel suo registro degli accessi.")
async def persons_behind(code: Annotated[str, Path(max_length=40, title="Indicatore",
                                                   description="Codice dell'indicatore (P1, D6...).")],
                         session: Session, principal: Authorized(Permission.report_drilldown),
                         year: int | None = Query(default=None, title="Anno",
                                                  description="Anno solare (predefinito: l'anno in corso)."),
                         part: str = Query(default="numerator", max_length=20, title="Parte",
                                           description="numerator o denominator."),
                         by: str = Query(default="ambito", max_length=20, title="Raggruppamento",
                                         description="Come nel rapporto: ambito, sub_ambito, comune, area..."),
                         key: str | None = Query(default=None, max_length=60, title="Gruppo",
                                                 description="Identificativo del sub-ambito o del comune, o codice "
                                                             "dell'area, del tipo di servizio..."),
                         reading: str | None = Query(default=None, max_length=20, title="Lettura",
                                                     description="Come nel rapporto."),
                         cutoff: date | None = Query(default=None, title="Data limite",
                                                     description="Come nel rapporto (reading=cohort)."),
                         limit: int = Query(default=200, ge=1, le=service.MAX_PERSONS, title="Limite",
                                            description="Quante persone al massimo.")) -> PersonsBehindPublic:
    return PersonsBehindPublic.of(await service.persons_behind(
        session, principal=principal, code=code, year=year or clock.today_rome().year, part=part, by=by, key=key,
        reading=reading, cutoff=cutoff, limit=limit))


# ---------------------------------------------------------------------------------------------------- export jobs
@router.post("/reports/exports", response_model=ExportPublic, status_code=202,
             summary="Chiedi un'esportazione (in lavorazione nel worker)",
             description="La tabella degli indicatori di un anno (`what=indicators`, con gli stessi parametri di GET "
                         "/reports/indicators) o il rendiconto annuale (`what=leps`), come file CSV, XLSX o HTML. "
                         "Il lavoro procede per passi (un indicatore, o un indicatore in un anno) nel worker: "
                         "`done`/`total` su GET /reports/exports/{id} (indicato in `Location`); il file, uguale a "
                         "quello delle rotte sincrone, con le stesse celle protette, si scarica da "
                         "/reports/exports/{id}/file fino alla scadenza (REPORT_EXPORT_TTL_HOURS). Solo chi l'ha "
                         "chiesto la vede. Parametro sconosciuto o fuori intervallo: 422 che lo nomina, nulla è "
                         "scritto.")
async def create_export(body: ExportCreate, response: Response, session: Session, principal: Reader):
    export = await exports.create_export(session, principal=principal, what=body.what, format=body.format,
                                         year=body.year, by=body.by, reading=body.reading, cutoff=body.cutoff,
                                         indicator=body.indicator)
    response.headers["Location"] = f"/api/reports/exports/{export.id}"
    return ExportPublic.of(export)


@router.get("/reports/exports", response_model=ExportPage, summary="Le proprie esportazioni",
            description="Le esportazioni chieste da chi chiama, dalla più recente, con il loro avanzamento.")
async def list_exports(session: Session, principal: Reader,
                       limit: int = Query(20, ge=1, le=100, title="Limite", description="Quante al massimo."),
                       cursor: str | None = Query(None, max_length=1000, title="Cursore",
                                                  description="Il `next_cursor` della pagina precedente.")):
    items, nxt = await exports.list_exports(session, principal=principal, limit=limit, token=cursor)
    return ExportPage(items=[ExportPublic.of(e) for e in items], next_cursor=nxt)


@router.get("/reports/exports/{export_id}", response_model=ExportPublic, summary="Avanzamento di un'esportazione",
            description="Stato (in coda, in corso, pronta, non riuscita, annullata, scaduta), passi completati sul "
                        "totale, date di richiesta, avvio, fine e scadenza, errore.")
async def get_export(export_id: ExportId, session: Session, principal: Reader):
    export = await exports.get_export(session, principal=principal, export_id=export_id)
    audit.record(action="read", object_type=exports.ENTITY, object_ids=[export.id])
    return ExportPublic.of(export)


@router.get("/reports/exports/{export_id}/file", summary="Il file di un'esportazione pronta",
            response_class=Response,
            responses={200: {"content": {"text/csv": {}, writer.XLSX_MEDIA_TYPE: {}, "text/html": {}},
                             "description": "Il file"}},
            description="409 finché non è pronto (o se non è riuscito), 410 dopo la scadenza o l'annullamento, 507 "
                        "se non è stato salvato per mancanza di spazio.")
async def export_file(export_id: ExportId, session: Session, principal: Reader):
    export, data = await exports.file_of(session, principal=principal, export_id=export_id)
    return Response(data, media_type=export.media_type,
                    headers={"Content-Disposition": content_disposition(export.file_name)})


@router.delete("/reports/exports/{export_id}", response_model=ExportPublic, summary="Annulla un'esportazione",
               description="Ferma un'esportazione non conclusa, o scarta il file pronto prima della scadenza. "
                           "409 se è già non riuscita, annullata o scaduta.")
async def cancel_export(export_id: ExportId, session: Session, principal: Reader):
    return ExportPublic.of(await exports.cancel_export(session, principal=principal, export_id=export_id))
