"""`python -m api import FILE --mapping M --as USERNAME [--dry-run] [--report OUT.csv|OUT.xlsx]`

Imports persons, related persons and open cartelle from an older platform's export, as the data steward USERNAME
(the system administrator may not: importing is a steward's task). With --dry-run nothing is written but the
report: what each row would do. The same import through the API runs in the worker; here it runs in this process,
one chunk per transaction, with a progress bar on stderr. Interrupted (Ctrl-C, a killed process), it is resumed
with --resume IMPORT_ID.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from deploy.composition import compose
from domain.imports import queries, service
from domain.imports.mapping import parse_mapping, template_dict
from domain.imports.models import ImportJob, ImportState
from domain.kernel.errors import DomainError, TooLarge
from domain.kernel.settings import get_settings
from domain.security.models import AppUser
from domain.security.permissions import Permission
from domain.security.principal import load_principal
from integrations.tabular import reader, writer


@dataclass
class Outcome:
    import_id: uuid.UUID
    state: str
    total_rows: int
    rows_done: int
    counts: dict[str, int]
    seconds: float

    @property
    def rate(self) -> float:
        return self.rows_done / self.seconds if self.seconds else 0.0


def read_file(path: Path, mapping) -> reader.Table:
    """The file as a table, refusing before reading it when it is over the configured size."""
    s = get_settings()
    if not path.is_file():
        raise DomainError(f"file non trovato: {path}")
    size = path.stat().st_size
    if size > s.import_max_bytes:  # refused before reading it
        raise TooLarge("file", f"{size} byte, oltre il massimo consentito di {s.import_max_bytes} byte "
                               "(IMPORT_MAX_BYTES)")
    return reader.read_table(path.read_bytes(), encoding=mapping.encoding, delimiter=mapping.delimiter,
                             sheet=mapping.sheet, max_bytes=s.import_max_bytes, max_rows=s.import_max_rows)


class Progress:
    """A one-line bar on stderr: rows done / total and rows per second."""

    def __init__(self, stream=sys.stderr, enabled: bool = True):
        self.stream, self.enabled, self.started, self.last = stream, enabled, time.perf_counter(), 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if not self.enabled or (now - self.last < 0.2 and done < total):
            return
        self.last = now
        width = 30
        filled = int(width * done / total) if total else width
        rate = done / (now - self.started) if now > self.started else 0.0
        self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} righe · {rate:,.0f} righe/s ")
        self.stream.flush()

    def end(self) -> None:
        if self.enabled:
            self.stream.write("\n")


async def run_file(path: Path, *, username: str, mapping_text: str | None = None, dry_run: bool = False,
                   resume: uuid.UUID | None = None, database_url: str | None = None,
                   progress: Progress | None = None, report: Path | None = None) -> Outcome:
    """Stage the file (or resume an import) and run it to the end, committing chunk by chunk."""
    compose()
    mapping = parse_mapping(mapping_text) if mapping_text is not None else parse_mapping(template_dict())
    engine = create_async_engine(database_url or get_settings().database_url, poolclass=NullPool)
    factory = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
    started = time.perf_counter()
    try:
        async with factory() as session:
            user_id = (await session.execute(sa.select(AppUser.id).where(AppUser.username == username))).scalar()
            if user_id is None:
                raise DomainError(f"--as: nessun utente '{username}'")
            principal = await load_principal(session, str(user_id))
            if Permission.import_run not in principal.permissions:
                raise DomainError(f"--as: '{username}' non è un data steward (permesso import.run)")
            if resume is None:
                table = read_file(path, mapping)
                if mapping_text is None:
                    mapping = mapping.narrowed(table.headers)
                job = await service.create_import(session, principal=principal, file_name=path.name,
                                                  file_format=table.file_format, sha256=table.sha256,
                                                  headers=table.headers, rows=table.rows, mapping=mapping,
                                                  dry_run=dry_run, enqueue=False)
                await session.commit()
                import_id = job.id
            else:
                import_id = (await service.get_import(session, principal=principal, import_id=resume)).id
        while True:
            async with factory() as session:
                job = await service.run_chunk(session, import_id=import_id, on_progress=progress)
                await session.commit()
                if progress is not None:
                    progress(job.rows_done, job.total_rows)
                if job.state in (ImportState.done, ImportState.failed):
                    break
        if progress is not None:
            progress.end()
        if report is not None:
            async with factory() as session:
                await write_report(session, job, report)
        return Outcome(job.id, job.state, job.total_rows, job.rows_done, dict(job.counts),
                       time.perf_counter() - started)
    finally:
        await engine.dispose()


async def write_report(session, job: ImportJob, path: Path) -> None:
    lines = [line async for line in queries.report_lines(session, job.id)]
    data = (writer.to_xlsx(queries.REPORT_HEADERS, lines, title="Resoconto") if path.suffix.lower() == ".xlsx"
            else writer.to_csv(queries.REPORT_HEADERS, lines))
    path.write_bytes(data)


def summary(o: Outcome, dry_run: bool) -> str:
    head = "prova (nulla è stato scritto)" if dry_run else "importazione"
    parts = ", ".join(f"{k}: {v}" for k, v in sorted(o.counts.items()))
    return (f"{head} {o.import_id}: {o.state}, {o.rows_done}/{o.total_rows} righe in {o.seconds:.1f} s "
            f"({o.rate:,.0f} righe/s) — {parts}")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m api import", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", type=Path, help="il file esportato (CSV o XLSX)")
    p.add_argument("--mapping", type=Path, help="la mappatura YAML (predefinita: il tracciato di riferimento)")
    p.add_argument("--as", dest="username", required=True, help="nome utente del data steward")
    p.add_argument("--dry-run", action="store_true", help="prova: solo il resoconto, nulla è scritto")
    p.add_argument("--report", type=Path, help="scrive il resoconto riga per riga (.csv oppure .xlsx)")
    p.add_argument("--resume", type=uuid.UUID, help="riprende l'importazione indicata (interrotta)")
    p.add_argument("--quiet", action="store_true", help="senza barra di avanzamento")
    args = p.parse_args(argv)
    try:
        mapping_text = args.mapping.read_text(encoding="utf-8") if args.mapping else None
    except OSError as e:
        print(f"--mapping: {e.strerror}: {args.mapping}", file=sys.stderr)
        return 2
    progress = Progress(enabled=not args.quiet)
    try:
        outcome = asyncio.run(run_file(args.file, username=args.username, mapping_text=mapping_text,
                                       dry_run=args.dry_run, resume=args.resume, progress=progress,
                                       report=args.report))
    except DomainError as e:
        progress.end()
        detail = "; ".join(f"{x['field']}: {x['reason']}" for x in e.errors) if e.errors else e.detail
        print(f"importazione non avviata: {detail}", file=sys.stderr)
        return 2
    print(summary(outcome, args.dry_run))
    return 0 if outcome.state == ImportState.done else 1
