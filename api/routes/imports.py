"""Imports from the Ambito's older platform, for the data stewards: upload and dry run, report, confirm."""
from __future__ import annotations

import uuid

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import Response

from api.deps import Authorized, Session
from api.downloads import content_disposition
from domain.imports import queries, service
from domain.imports.mapping import FIELDS, parse_mapping, template_dict
from domain.kernel.settings import get_settings
from domain.security import audit
from domain.security.permissions import Permission
from integrations.tabular import reader, writer
from schemas.imports import ImportPage, ImportPublic

router = APIRouter(tags=["importazioni"])

_FORMATS = {"csv": writer.CSV_MEDIA_TYPE, "xlsx": writer.XLSX_MEDIA_TYPE}
_FILE_RESPONSE = {200: {"content": {writer.CSV_MEDIA_TYPE: {"schema": {"type": "string"}},
                                    writer.XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
                        "description": "Il file (CSV separato da punto e virgola, UTF-8, oppure XLSX)"}}
# One example row of the template: what a steward copies the layout from.
_EXAMPLE = {"id_origine": "GC-000123", "codice_fiscale": "BNCNNA42C55D142T", "cognome": "Bianchi", "nome": "Anna",
            "sesso": "F", "data_nascita": "15/03/1942", "luogo_nascita": "D142", "cittadinanza": "italiana",
            "comune_residenza": "Crema", "indirizzo_residenza": "Via Roma 1", "senza_dimora": "no",
            "telefono": "0373 256789", "area": "anziani", "codice_cartella": "C-2019-0042",
            "case_manager": "mrossi", "data_apertura": "02/05/2019"}


def _file(data: bytes, fmt: str, name: str) -> Response:
    return Response(data, media_type=_FORMATS[fmt], headers={"Content-Disposition": content_disposition(name)})


@router.get("/imports/template", summary="Tracciato di riferimento (CSV o XLSX)", response_class=Response,
            responses=_FILE_RESPONSE,
            description="Le intestazioni delle colonne del tracciato di riferimento con una riga d'esempio. La "
                        "mappatura predefinita (`template.yaml`) le legge senza altre indicazioni; un'altra "
                        "esportazione si legge scrivendo la propria mappatura (docs/readme/import.md).")
async def template(p: Authorized(Permission.import_run),
                   format: str = Query("csv", pattern="^(csv|xlsx)$", description="csv oppure xlsx")):
    headers = [template_dict()["columns"][f] for f in FIELDS]
    rows = [[_EXAMPLE.get(h, "") for h in headers]]
    data = writer.to_csv(headers, rows) if format == "csv" else writer.to_xlsx(headers, rows, title="Tracciato")
    return _file(data, format, f"tracciato-importazione.{format}")


@router.post("/imports", response_model=ImportPublic, status_code=202,
             summary="Carica un file da importare (prima una prova)",
             description="`multipart/form-data` con il file (CSV UTF-8 o Windows-1252, separato da `,` o `;`, "
                         "oppure XLSX) e, se serve, la mappatura YAML delle sue colonne (predefinita: il tracciato "
                         "di riferimento, di cui bastano le colonne presenti; `id_origine`, `cognome` e `nome` "
                         "sono obbligatorie). Le righe sono messe da parte e il lavoro parte nel worker: con "
                         "`dry_run=true` (predefinito) nulla è scritto se non il resoconto riga per riga; si "
                         "conferma poi con `POST /imports/{id}/confirm`. File vuoto, non CSV/XLSX, mappatura che "
                         "nomina colonne assenti: 422 su `file` o sul campo della mappatura, nulla è scritto. "
                         "File oltre IMPORT_MAX_BYTES: 413.")
async def upload(session: Session, p: Authorized(Permission.import_run),
                 file: UploadFile = File(..., description="Il file esportato (CSV o XLSX)."),
                 mapping: UploadFile | None = File(None, description="La mappatura YAML (facoltativa)."),
                 dry_run: bool = Form(True, description="Prova (predefinito): solo il resoconto")):
    s = get_settings()
    data = await file.read(s.import_max_bytes + 1)  # one byte more than allowed tells "too large"
    m = parse_mapping(await mapping.read(256 * 1024) if mapping is not None else template_dict())
    table = reader.read_table(data, encoding=m.encoding, delimiter=m.delimiter, sheet=m.sheet,
                              max_bytes=s.import_max_bytes, max_rows=s.import_max_rows)
    if mapping is None:
        m = m.narrowed(table.headers)
    job = await service.create_import(session, principal=p, file_name=file.filename or "importazione",
                                      file_format=table.file_format, sha256=table.sha256, headers=table.headers,
                                      rows=table.rows, mapping=m, dry_run=dry_run)
    return ImportPublic.of(job)


@router.get("/imports", response_model=ImportPage, summary="Importazioni dell'Ambito",
            description="Le importazioni dalla più recente, con il loro avanzamento.")
async def list_imports(session: Session, p: Authorized(Permission.import_run),
                       limit: int = Query(20, ge=1, le=100), cursor: str | None = Query(None, max_length=1000)):
    items, nxt = await queries.list_imports(session, principal=p, limit=limit, token=cursor)
    audit.record(action="list", object_type="import_job", object_ids=[j.id for j in items], result_count=len(items))
    return ImportPage(items=[ImportPublic.of(j) for j in items], next_cursor=nxt)


@router.get("/imports/{import_id}", response_model=ImportPublic, summary="Avanzamento di un'importazione",
            description="Stato, righe elaborate sul totale, righe al secondo e righe per esito.")
async def get_import(import_id: uuid.UUID, session: Session, p: Authorized(Permission.import_run)):
    job = await service.get_import(session, principal=p, import_id=import_id)
    audit.record(action="read", object_type="import_job", object_ids=[job.id])
    return ImportPublic.of(job)


@router.get("/imports/{import_id}/report", summary="Resoconto riga per riga (CSV o XLSX)", response_class=Response,
            responses=_FILE_RESPONSE,
            description="Per ogni riga: esito (nuova persona, già registrata e quale, possibile duplicato con i "
                        "candidati, scartata con campo e motivo, già importata), persona e cartella.")
async def report(import_id: uuid.UUID, session: Session, p: Authorized(Permission.import_run),
                 format: str = Query("csv", pattern="^(csv|xlsx)$", description="csv oppure xlsx")):
    job = await service.get_import(session, principal=p, import_id=import_id)
    lines = [line async for line in queries.report_lines(session, job.id)]
    audit.record(action="export", object_type="import_job", object_ids=[job.id], result_count=len(lines))
    data = (writer.to_csv(queries.REPORT_HEADERS, lines) if format == "csv"
            else writer.to_xlsx(queries.REPORT_HEADERS, lines, title="Resoconto"))
    return _file(data, format, f"resoconto-{job.id}.{format}")


@router.post("/imports/{import_id}/confirm", response_model=ImportPublic, status_code=202,
             summary="Conferma una prova: l'importazione vera e propria",
             description="Importa le stesse righe con la stessa mappatura della prova terminata. Una volta sola "
                         "per prova (409 altrimenti, con `existing_id`); 409 se la prova non è terminata.")
async def confirm(import_id: uuid.UUID, session: Session, p: Authorized(Permission.import_run)):
    return ImportPublic.of(await service.confirm_import(session, principal=p, import_id=import_id))
