"""Export jobs of the reports: the indicator table of a year or the yearly LEPS report as a file, computed in the
worker step by step, with progress, for the user who asked and nobody else.

- `create_export` checks what is asked exactly as the synchronous routes do (nothing is written on bad input) and
  lists the steps: one per indicator for the table, one per indicator × year for the yearly report.
- Each step runs in the transaction of one durable job (domain.kernel.jobs, like the imports' chunks): the step's
  rows, the progress and the job of the next step commit together, so a worker killed mid-step loses that step
  only, and the retry starts from it. The last step assembles the report from the steps' rows, renders the file,
  stores it (the `report_exports` blob store area) and marks the export done with its expiry.
- The numbers are computed by the same code as the synchronous report (`service.definition_rows`), with the
  principal of the user who asked, as that user is when the step runs: same rows, same suppressed cells.
- Files expire `report_export_ttl_hours` after they are ready; a daily job marks them expired and removes the bytes
  no ready export shares.
"""
from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.kernel import clock, cursor, jobs, storage
from domain.kernel.errors import DomainError, Forbidden, Gone, InsufficientStorage, Invalid, NotFound, Unauthenticated
from domain.kernel.settings import get_settings
from domain.reporting import definitions, indicators, service
from domain.reporting.models import ExportState, ReportExport, ReportExportPart
from domain.reporting.service import LepsReport, Report, Row, Trend
from domain.reporting.states import MACHINE
from domain.security import audit
from domain.security.principal import Principal, load_principal

JOB_KIND = "reporting.export"
EXPIRY_KIND = "reporting.export_expiry"
STORE_AREA = "report_exports"
ENTITY = "report_export"
LIST_KIND = "report_exports"
# What may be exported, and in which formats (those the synchronous routes offer as files).
FORMATS = {"indicators": ("csv", "xlsx", "html"), "leps": ("html", "xlsx")}
WHAT_LABELS = {"indicators": "Indicatori dell'anno", "leps": "Rendiconto annuale LEPS"}
DEAD_STEP = "errore interno durante il calcolo, ripetuto a ogni tentativo: chiedere una nuova esportazione"
FULL_REASON = ("spazio di archiviazione esaurito sul server: il file non è stato salvato, chiedere di nuovo "
               "l'esportazione più tardi")


@dataclass(frozen=True)
class ExportFile:
    data: bytes
    media_type: str
    name: str


# How a report becomes a file: (what, report, format) -> file; given by the caller (the worker's handler), since
# the writers live in integrations/.
Render = Callable[[str, Report | LepsReport, str], ExportFile]


# ---------------------------------------------------------------------------------------------------- create
async def create_export(session: AsyncSession, *, principal: Principal, what: str, format: str,
                        year: int | None = None, by: str = "ambito", reading: str | None = None,
                        cutoff: date | None = None, indicator: str | None = None,
                        enqueue: bool = True) -> ReportExport:
    """A new export of the principal's Ambito, checked like the synchronous report; its first step enqueued."""
    service.require_reader(principal)
    if what not in FORMATS:
        raise Invalid("what", f"esportazione sconosciuta: usare {', '.join(FORMATS)}")
    if format not in FORMATS[what]:
        raise Invalid("format", f"formato non disponibile: usare {', '.join(FORMATS[what])}")
    year = indicators.check_year(clock.today_rome().year if year is None else year)
    if what == "indicators":
        defs = service.resolve(indicator, by)
        for d in defs:
            indicators.reading_for(d, year, reading, cutoff)  # an unknown reading or a bad cut-off: 422 now
        steps = [[d.code, year] for d in defs]
        params = {"year": year, "by": by, "reading": reading, "cutoff": cutoff.isoformat() if cutoff else None,
                  "indicator": indicator}
    else:
        for field, value, default in (("by", by, "ambito"), ("reading", reading, None), ("cutoff", cutoff, None),
                                      ("indicator", indicator, None)):
            if value != default:
                raise Invalid(field, "non previsto per il rendiconto annuale (totali d'Ambito, ogni indicatore)")
        steps = [[d.code, y] for d in definitions.registry().values() for y in service.trend_years(year)]
        params = {"year": year}
    export = ReportExport(ambito_id=principal.ambito_id, created_by=principal.user_id, kind=what, format=format,
                          params=params, steps=steps, state=ExportState.pending, created_at=clock.now())
    session.add(export)
    await session.flush()
    if enqueue:
        await _enqueue(session, export)
    audit.record(action="create", object_type=ENTITY, object_ids=[export.id], result_count=len(steps))
    return export


async def _enqueue(session: AsyncSession, export: ReportExport) -> None:
    await jobs.enqueue(session, kind=JOB_KIND, payload={"export_id": str(export.id)},
                       dedup_key=f"report_export:{export.id}:{export.steps_done}")


# ---------------------------------------------------------------------------------------------------- read
async def get_export(session: AsyncSession, *, principal: Principal, export_id: uuid.UUID,
                     for_update: bool = False) -> ReportExport:
    """An export the principal asked for, in the Ambito it works for now (another user's is not found)."""
    service.require_reader(principal)
    q = sa.select(ReportExport).where(ReportExport.id == export_id, ReportExport.created_by == principal.user_id,
                                      ReportExport.ambito_id == principal.ambito_id)
    if for_update:
        q = q.with_for_update().execution_options(populate_existing=True)
    export = (await session.execute(q)).scalar_one_or_none()
    if export is None:
        raise NotFound("Esportazione non trovata.")
    return export


async def list_exports(session: AsyncSession, *, principal: Principal, limit: int = 20,
                       token: str | None = None) -> tuple[list[ReportExport], str | None]:
    """The principal's own exports, newest first."""
    service.require_reader(principal)
    stmt = cursor.newest_first(
        sa.select(ReportExport).where(ReportExport.created_by == principal.user_id,
                                      ReportExport.ambito_id == principal.ambito_id),
        ReportExport.created_at, ReportExport.id, LIST_KIND, token, limit)
    rows = list((await session.execute(stmt)).scalars())
    audit.record(action="list", object_type=ENTITY, object_ids=[e.id for e in rows[:limit]],
                 result_count=len(rows[:limit]))
    return rows[:limit], cursor.next_token(LIST_KIND, rows, limit, lambda e: (e.created_at, e.id))


def is_expired(export: ReportExport) -> bool:
    """Past its expiry, even before the daily job has marked it."""
    return export.state == ExportState.expired or (
        export.state == ExportState.done and export.expires_at is not None and export.expires_at <= clock.now())


async def file_of(session: AsyncSession, *, principal: Principal, export_id: uuid.UUID
                  ) -> tuple[ReportExport, bytes]:
    """The file of a ready export: 409 before it is ready, 410 once expired or cancelled, 507 when it could not be
    stored for lack of space."""
    export = await get_export(session, principal=principal, export_id=export_id)
    if is_expired(export):
        raise Gone(f"Il file dell'esportazione è scaduto ({_rome(export.expires_at)}): chiederne una nuova.",
                   state=ExportState.expired.value, expires_at=export.expires_at.isoformat())
    if export.state == ExportState.cancelled:
        raise Gone("L'esportazione è stata annullata: chiederne una nuova.", state=str(export.state))
    if export.state == ExportState.failed and export.error_code == InsufficientStorage.code:
        raise InsufficientStorage("file", export.error or FULL_REASON)
    MACHINE.require(export.state, [ExportState.done], "download")
    try:
        data = storage.blob_store(STORE_AREA).get(export.file_key)
    except (OSError, ValueError):  # removed by hand, or by an expiry that ran early
        raise Gone("Il file dell'esportazione non è più disponibile: chiederne una nuova.",
                   state=str(export.state)) from None
    audit.record(action="export", object_type=ENTITY, object_ids=[export.id], result_count=len(data))
    return export, data


def _rome(at: datetime | None) -> str:
    return at.astimezone(clock.ROME).strftime("%d/%m/%Y %H:%M") if at else ""


async def cancel_export(session: AsyncSession, *, principal: Principal, export_id: uuid.UUID) -> ReportExport:
    """Stop an export that is not finished, or discard a ready file before it expires (its bytes go with the next
    expiry run, once no ready export shares them). 409 from a final state."""
    export = await get_export(session, principal=principal, export_id=export_id, for_update=True)
    export.state = MACHINE.next_state(export.state, "cancel")
    export.finished_at = export.finished_at or clock.now()
    await session.execute(sa.delete(ReportExportPart).where(ReportExportPart.export_id == export.id))
    audit.record(action="update", object_type=ENTITY, object_ids=[export.id])
    await session.flush()
    return export


# ---------------------------------------------------------------------------------------------------- run
async def run_step(session: AsyncSession, *, export_id: uuid.UUID, render: Render) -> ReportExport | None:
    """The next step of an export in the caller's transaction (the job's): its rows, the progress, and either the
    next step's job or, after the last step, the file. A finished, failed or cancelled export is left alone."""
    export = (await session.execute(sa.select(ReportExport).where(ReportExport.id == export_id).with_for_update()
                                    .execution_options(populate_existing=True))).scalar_one_or_none()
    if export is None or export.state not in (ExportState.pending, ExportState.running):
        return export
    # The step is the audited "request", in the name of the user who asked, whatever ran before it in this task.
    audit.begin(route=f"{JOB_KIND} {export.id}", method="JOB", request_id=None)
    try:
        await _step(session, export, render)
    except DomainError as e:  # the user lost the right, the disk is full...: the export ends, with the reason
        _fail(export, e)
        await session.execute(sa.delete(ReportExportPart).where(ReportExportPart.export_id == export.id))
    await session.flush()
    await audit.flush(session)
    audit.begin(route=None, method=None, request_id=None)
    return export


async def _step(session: AsyncSession, export: ReportExport, render: Render) -> None:
    try:
        principal = await load_principal(session, str(export.created_by))
    except Unauthenticated:  # its message is for the logs; the user reads this one
        raise Forbidden("l'utente che ha chiesto l'esportazione non è più attivo") from None
    service.require_reader(principal)
    if principal.ambito_id != export.ambito_id:
        raise NotFound("l'utente che ha chiesto l'esportazione non lavora più per questo Ambito")
    audit.set_principal(principal)
    if export.state == ExportState.pending:
        export.state, export.started_at = MACHINE.next_state(export.state, "start"), clock.now()
    scope = await service.scope_of(session, principal)
    i = export.steps_done
    if i < len(export.steps):
        code, year = export.steps[i]
        rows = await _compute(session, export, principal, scope, code, year)
        session.add(ReportExportPart(export_id=export.id, step=i, rows=[encode_row(r) for r in rows]))
        export.steps_done = i + 1
        audit.record(action="read", object_type=service.ENTITY, result_count=len(rows))
    if export.steps_done < len(export.steps):
        await _enqueue(session, export)
        return
    await session.flush()
    report = await _assemble(session, export, scope)
    await _store(session, export, render(export.kind, report, export.format))
    await session.execute(sa.delete(ReportExportPart).where(ReportExportPart.export_id == export.id))


async def _compute(session: AsyncSession, export: ReportExport, principal: Principal, scope: service.Scope,
                   code: str, year: int) -> list[Row]:
    d = definitions.registry().get(code)
    if d is None:
        raise Invalid("indicator", f"l'indicatore {code} non è più definito")
    p = export.params
    if export.kind == "indicators":
        cutoff = date.fromisoformat(p["cutoff"]) if p.get("cutoff") else None
        r, by = indicators.reading_for(d, year, p.get("reading"), cutoff), p["by"]
    else:
        r, by = indicators.reading_for(d, year), "ambito"
    return await service.definition_rows(session, d, ambito_id=principal.ambito_id, year=year, by=by, r=r,
                                         scope=scope)


async def _assemble(session: AsyncSession, export: ReportExport, scope: service.Scope) -> Report | LepsReport:
    parts = (await session.execute(sa.select(ReportExportPart.step, ReportExportPart.rows)
                                   .where(ReportExportPart.export_id == export.id)
                                   .order_by(ReportExportPart.step))).all()
    rows_of = {step: [decode_row(r) for r in rows] for step, rows in parts}
    reg = definitions.registry()
    year = export.params["year"]
    if export.kind == "indicators":
        codes = [code for code, _y in export.steps]
        return Report(year=year, by=export.params["by"], ambito_id=export.ambito_id, ambito_name=scope.ambito_name,
                      rows=[r for i in range(len(export.steps)) for r in rows_of[i]],
                      definitions=[reg[c] for c in codes])
    points: dict[str, list[tuple[int, Row]]] = {}
    for i, (code, y) in enumerate(export.steps):
        points.setdefault(code, []).append((y, rows_of[i][0]))  # by Ambito: one row per indicator and year
    return LepsReport(year=year, years=service.trend_years(year), ambito_name=scope.ambito_name,
                      trends=[Trend(reg[code], pts) for code, pts in points.items()])


async def _store(session: AsyncSession, export: ReportExport, file: ExportFile) -> None:
    await _lock_key(session, _key_of(file.data))  # against an expiry run removing the same bytes meanwhile
    try:
        key = storage.blob_store(STORE_AREA).put(file.data)
    except InsufficientStorage:
        raise InsufficientStorage("file", FULL_REASON) from None
    now = clock.now()
    export.file_key, export.file_name, export.media_type = key, file.name[:255], file.media_type
    export.file_bytes = len(file.data)
    export.state, export.finished_at = MACHINE.next_state(export.state, "finish"), now
    export.expires_at = now + timedelta(hours=get_settings().report_export_ttl_hours)


def _key_of(data: bytes) -> str:
    """The store's key of these bytes (it is content-addressed), to lock before they are written."""
    return hashlib.sha256(data).hexdigest()


async def _lock_key(session: AsyncSession, key: str) -> None:
    await session.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(key, 0))))


def _fail(export: ReportExport, e: DomainError) -> None:
    export.state = MACHINE.next_state(export.state, "fail")
    export.error, export.error_code, export.finished_at = e.detail[:500], e.code, clock.now()


# ---------------------------------------------------------------------------------------------------- rows as JSON
def encode_row(r: Row) -> dict[str, Any]:
    out = dataclasses.asdict(r)
    out["value"] = None if r.value is None else str(r.value)
    out["cutoff"] = None if r.cutoff is None else r.cutoff.isoformat()
    return out


def decode_row(d: dict[str, Any]) -> Row:
    return Row(**{**d, "value": None if d["value"] is None else Decimal(d["value"]),
                  "cutoff": None if d["cutoff"] is None else datetime.fromisoformat(d["cutoff"])})


# ---------------------------------------------------------------------------------------------------- expiry
async def expire(session: AsyncSession) -> int:
    """Mark ready exports past their expiry as expired, and remove the bytes of every expired, cancelled or failed
    export that no ready export shares (the store is content-addressed). An export whose step's job is dead (it
    failed every attempt) is marked failed, so it does not stay "in corso" for ever. The caller commits. Returns
    how many exports expired."""
    now = clock.now()
    step_key = sa.func.concat("report_export:", ReportExport.id, ":", ReportExport.steps_done)
    await session.execute(
        sa.update(ReportExport)
        .where(ReportExport.state.in_((ExportState.pending.value, ExportState.running.value)),
               jobs.dead_with_key(step_key))
        .values(state=ExportState.failed.value, error=DEAD_STEP, error_code="dead_step", finished_at=now)
        .execution_options(synchronize_session=False))
    expired = (await session.execute(
        sa.update(ReportExport).where(ReportExport.state == ExportState.done, ReportExport.expires_at <= now)
        .values(state=ExportState.expired.value).returning(ReportExport.id)
        .execution_options(synchronize_session=False))).scalars().all()
    gone = (ExportState.expired.value, ExportState.cancelled.value, ExportState.failed.value)
    keys = (await session.execute(sa.select(ReportExport.file_key).distinct().where(
        ReportExport.state.in_(gone), ReportExport.file_key.is_not(None)))).scalars().all()
    store = storage.blob_store(STORE_AREA)
    for key in sorted(keys):
        await _lock_key(session, key)
        shared = (await session.execute(sa.select(sa.exists().where(
            ReportExport.file_key == key, ReportExport.state == ExportState.done.value)))).scalar()
        if not shared:
            store.delete(key)
    await session.execute(sa.update(ReportExport).where(ReportExport.state.in_(gone),
                                                        ReportExport.file_key.is_not(None))
                          .values(file_key=None).execution_options(synchronize_session=False))
    await session.execute(sa.delete(ReportExportPart).where(ReportExportPart.export_id.in_(
        sa.select(ReportExport.id).where(ReportExport.state.in_(gone)))))
    return len(expired)


async def enqueue_expiry(session: AsyncSession) -> None:
    """With the periodic jobs (beat runs them every DAILY_JOBS_SECONDS, hourly): one expiry run per hour, so an
    expired file's bytes leave the disk within the hour (it answers 410 from its expiry on)."""
    await jobs.enqueue_periodic(session, kind=EXPIRY_KIND, every="hour")
