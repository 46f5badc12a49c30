"""Indicatori LEPS e del Piano di Zona: conteggi calcolati dai dati registrati, per anno, per sub-ambito, comune o
area, con le celle piccole protette; in JSON, CSV o XLSX."""
from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse, Response

from api.deps import Authorized, Session
from api.downloads import content_disposition
from domain.kernel import clock
from domain.reporting import service
from domain.security.permissions import Permission
from integrations.tabular import writer
from schemas.reports import (
    CSV_HEADERS,
    LEPS_HEADERS,
    IndicatorReport,
    LepsReportPublic,
    PersonsBehindPublic,
    leps_html,
    leps_rows,
    table_rows,
    to_html,
)

router = APIRouter(tags=["indicatori"])
Reader = Authorized(Permission.report_read)


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
    name = f"indicatori-{rep.year}-{rep.by}"
    if format == "csv":
        return Response(writer.to_csv(CSV_HEADERS, table_rows(rep)), media_type=writer.CSV_MEDIA_TYPE,
                        headers={"Content-Disposition": content_disposition(f"{name}.csv")})
    if format == "xlsx":
        return Response(writer.to_xlsx(CSV_HEADERS, table_rows(rep, native=True), title=f"Indicatori {rep.year}"),
                        media_type=writer.XLSX_MEDIA_TYPE,
                        headers={"Content-Disposition": content_disposition(f"{name}.xlsx")})
    if format == "html":
        return HTMLResponse(to_html(rep))
    return IndicatorReport.of(rep)


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
    if format == "html":
        return HTMLResponse(leps_html(rep))
    if format == "xlsx":
        return Response(writer.to_xlsx(LEPS_HEADERS, leps_rows(rep), title=f"LEPS {rep.year}"),
                        media_type=writer.XLSX_MEDIA_TYPE,
                        headers={"Content-Disposition": content_disposition(f"rendiconto-leps-{rep.year}.xlsx")})
    return LepsReportPublic.of(rep)


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
