"""Imports of persons, related persons and open cartelle from an older platform, run by a data steward.

- `create_import` checks the mapping against the file's header and stages every row (raw values by header) with
  the job, so nothing is read from the file again; the worker (or the command line) then runs it in chunks.
- A **dry run** processes every row exactly as the real run would, inside a savepoint that is rolled back at the
  end: later rows see what earlier rows would have created (the same person twice in one file is a match, not two
  persons), and only the report is kept. `confirm_import` then starts the real run on the same staged rows.
- The **real run** commits `import_chunk_rows` rows at a time, each chunk in the transaction of one durable job
  together with its outcomes and the job's progress: a worker killed mid-chunk loses that chunk, and the retry
  starts again from the first row without an outcome. Each row runs in its own savepoint: a bad row writes
  nothing and does not stop the others.
- **Idempotent**: every row that wrote something leaves an `import_record` keyed by (Ambito, source system,
  source key); the same row in a later file is `unchanged`.
- Persons go through the registry's one create path (`persons.register`): an identical codice fiscale or other
  identifier is a match; look-alikes are registered, flagged and queued for the stewards (never merged here).
"""
from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from domain.imports import mapping as mapmod
from domain.imports.mapping import Mapping
from domain.imports.models import ImportJob, ImportRecord, ImportRow, ImportState, RowOutcome
from domain.kernel import clock, db, jobs
from domain.kernel.errors import Conflict, DomainError, Invalid, NotFound
from domain.kernel.settings import get_settings
from domain.registry import cartelle, dedup, persons, relations
from domain.registry import codice_fiscale as cfmod
from domain.registry.dedup import swapped_date as dedup_swapped
from domain.registry.models import Area
from domain.security import audit, directory
from domain.security.permissions import Permission
from domain.security.principal import Principal, load_principal
from domain.territory import queries as territory

log = logging.getLogger("imports")

JOB_KIND = "imports.run"
SOURCE = "import"
STAGE_BATCH = 2_000
PHASE_PERSON, PHASE_RELATED = 1, 2
# How far below the similarity the score needs two names of one batch still count as possibly alike (_Earlier):
# room for the differences between _trigrams and pg_trgm.
UNCODED_NAME_MARGIN = 0.1

# Registry field names (as its errors name them) → mapping field, so a refusal names the file's column.
REGISTRY_FIELDS = {
    "residence_comune_id": "residence_comune", "domicile_comune_id": "domicile_comune",
    "owning_comune_id": "owning_comune", "case_manager_id": "case_manager", "related_person_id": "related_to",
    "kind": "relation_kind", "opened_at": "opened_on", "valid_from": "related_to", "valid_to": "related_to",
    "area": "area",
}


# ---------------------------------------------------------------------------------------------------- create
async def create_import(session: AsyncSession, *, principal: Principal, file_name: str, file_format: str,
                        sha256: str, headers: list[str], rows: list[dict[str, str]], mapping: Mapping,
                        dry_run: bool = True, enqueue: bool = True) -> ImportJob:
    """Stage a file's rows as a new job (nothing else is written). The mapping must name existing columns."""
    mapping.check_headers(headers)
    if not rows:
        raise Invalid("file", "il file contiene solo l'intestazione: nessuna riga da importare")
    job = ImportJob(ambito_id=principal.ambito_id, created_by=principal.user_id, dry_run=dry_run,
                    source_system=mapping.source_system, file_name=file_name[:255], file_sha256=sha256,
                    file_format=file_format, mapping=mapping.as_dict(), state=ImportState.pending,
                    total_rows=len(rows), counts={}, created_at=clock.now())
    session.add(job)
    await session.flush()
    key_header, related_header = mapping.columns["source_key"], mapping.columns.get("related_to")
    staged = [{"job_id": job.id, "row_number": n, "raw": raw,
               "source_key": (raw.get(key_header) or "").strip()[:120] or None,
               "phase": PHASE_RELATED if related_header and (raw.get(related_header) or "").strip() else PHASE_PERSON}
              for n, raw in enumerate(rows, start=1)]
    for i in range(0, len(staged), STAGE_BATCH):
        await session.execute(sa.insert(ImportRow.__table__), staged[i:i + STAGE_BATCH])
    if enqueue:
        await _enqueue(session, job)
    audit.record(action="create", object_type="import_job", object_ids=[job.id], result_count=len(rows))
    return job


async def confirm_import(session: AsyncSession, *, principal: Principal, import_id: uuid.UUID,
                         enqueue: bool = True) -> ImportJob:
    """The real run of a finished dry run: the same staged rows, the same mapping. Once per dry run."""
    dry = await get_import(session, principal=principal, import_id=import_id, for_update=True)
    if not dry.dry_run:
        raise Conflict("L'importazione è già un'esecuzione reale.", state=dry.state)
    if dry.state != ImportState.done:
        raise Conflict("La prova non è ancora terminata: confermare quando il resoconto è completo.",
                       state=dry.state)
    already = (await session.execute(sa.select(ImportJob.id).where(ImportJob.dry_run_of == dry.id))).scalar()
    if already is not None:
        raise Conflict("Questa prova è già stata confermata.", existing_id=str(already))
    job = ImportJob(ambito_id=dry.ambito_id, created_by=principal.user_id, dry_run=False, dry_run_of=dry.id,
                    source_system=dry.source_system, file_name=dry.file_name, file_sha256=dry.file_sha256,
                    file_format=dry.file_format, mapping=dry.mapping, state=ImportState.pending,
                    total_rows=dry.total_rows, counts={}, created_at=clock.now())
    session.add(job)
    await session.flush()
    cols = ("row_number", "phase", "source_key", "raw")
    await session.execute(sa.insert(ImportRow.__table__).from_select(
        ["job_id", *cols], sa.select(sa.literal(job.id, sa.Uuid()), *(ImportRow.__table__.c[c] for c in cols))
        .where(ImportRow.job_id == dry.id)))
    if enqueue:
        await _enqueue(session, job)
    audit.record(action="create", object_type="import_job", object_ids=[job.id, dry.id])
    return job


async def _enqueue(session: AsyncSession, job: ImportJob) -> None:
    await jobs.enqueue(session, kind=JOB_KIND, payload={"import_id": str(job.id)},
                       dedup_key=f"import:{job.id}:{job.rows_done}")


# ---------------------------------------------------------------------------------------------------- read
async def get_import(session: AsyncSession, *, principal: Principal, import_id: uuid.UUID,
                     for_update: bool = False) -> ImportJob:
    """An import of the principal's Ambito (any data steward of the Ambito may follow and confirm it)."""
    q = sa.select(ImportJob).where(ImportJob.id == import_id, ImportJob.ambito_id == principal.ambito_id)
    if for_update:
        q = q.with_for_update().execution_options(populate_existing=True)
    job = (await session.execute(q)).scalar_one_or_none()
    if job is None:
        raise NotFound("Importazione non trovata.")
    return job


# ---------------------------------------------------------------------------------------------------- run
@dataclass
class RowResult:
    outcome: RowOutcome
    person_id: uuid.UUID | None = None
    matched_row: int | None = None
    reason: str | None = None
    candidate_person_ids: list[uuid.UUID] = field(default_factory=list)
    candidate_rows: list[int] = field(default_factory=list)
    cartella_id: uuid.UUID | None = None
    relation_id: uuid.UUID | None = None
    errors: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seen_person_ids: list[uuid.UUID] = field(default_factory=list)


class RowRejected(Exception):
    def __init__(self, errors: list[tuple[str, str]]):
        super().__init__(errors)
        self.errors = errors


@dataclass
class _Run:
    job: ImportJob
    mapping: Mapping
    principal: Principal
    comuni: dict[str, uuid.UUID]
    users: dict[str, uuid.UUID] = field(default_factory=dict)
    created_rows: dict[uuid.UUID, int] = field(default_factory=dict)  # person → the row of this job that made it
    # source key → its provenance record (None: none yet), read for a whole batch of rows in one query
    records: dict[str, ImportRecord | None] = field(default_factory=dict)
    written: ImportRecord | None = None  # the record of the row being processed, kept once the row commits

    def header(self, name: str) -> str:
        return self.mapping.header_of(REGISTRY_FIELDS.get(name, name))


async def run_chunk(session: AsyncSession, *, import_id: uuid.UUID, max_rows: int | None = None,
                    on_progress=None) -> ImportJob:
    """Process the next rows of an import in the caller's transaction (the caller commits): the whole file for a
    dry run, `import_chunk_rows` rows for a real run. Returns the job; `state` is `done` after the last row."""
    job = (await session.execute(sa.select(ImportJob).where(ImportJob.id == import_id)
                                 .execution_options(populate_existing=True))).scalar_one_or_none()
    if job is not None and not job.dry_run:  # a chunk at a time (a dry run publishes its progress: not locked)
        job = (await session.execute(sa.select(ImportJob).where(ImportJob.id == import_id).with_for_update()
                                     .execution_options(populate_existing=True))).scalar_one()
    if job is None or job.state in (ImportState.done, ImportState.failed):
        return job
    started = time.perf_counter()
    try:
        principal = await load_principal(session, str(job.created_by))
    except DomainError:
        return _fail(job, "l'utente che ha avviato l'importazione non è più attivo")
    if Permission.import_run not in principal.permissions:
        return _fail(job, "l'utente che ha avviato l'importazione non è più data steward")
    started_at = job.started_at or clock.now()
    if not job.dry_run:  # a dry run leaves the row to its progress until the end (see _dry_run)
        job.state, job.started_at = ImportState.running, started_at
    own_audit = audit.current() is None
    if own_audit:  # the worker and the command line: the job is the audited "request"
        audit.begin(route=f"{JOB_KIND} {job.id}", method="JOB", request_id=None)
    audit.set_principal(principal)
    run = _Run(job=job, mapping=mapmod.parse_mapping(job.mapping), principal=principal,
               comuni=_comuni_index(await territory.comuni_codes(session, job.ambito_id)))
    if job.dry_run:
        done = await _dry_run(session, run, on_progress, started_at)
        job.started_at = started_at
    else:
        done = await _real_chunk(session, run, max_rows or get_settings().import_chunk_rows, on_progress)
    job.busy_seconds = float(job.busy_seconds) + (time.perf_counter() - started)
    if done:
        job.state, job.finished_at = ImportState.done, clock.now()
    elif not job.dry_run:
        await _enqueue(session, job)  # the next chunk, in the transaction that commits this one
    await session.flush()
    await audit.flush(session)
    if own_audit:
        audit.begin(route=None, method=None, request_id=None)
    return job


def _fail(job: ImportJob, reason: str) -> ImportJob:
    job.state, job.error, job.finished_at = ImportState.failed, reason[:500], clock.now()
    return job


async def _todo(session: AsyncSession, job: ImportJob, limit: int | None) -> list[ImportRow]:
    q = (sa.select(ImportRow).where(ImportRow.job_id == job.id, ImportRow.outcome.is_(None))
         .order_by(ImportRow.phase, ImportRow.row_number))
    if limit is not None:
        q = q.limit(limit)
    return list((await session.execute(q)).scalars())


async def _prefetch(session: AsyncSession, run: _Run, rows: list[ImportRow]) -> None:
    """The provenance records of the rows' keys and of the persons they relate to, in one query per batch."""
    related = run.mapping.columns.get("related_to")
    keys = {k for r in rows for k in (r.source_key, (r.raw.get(related) or "").strip() if related else None) if k}
    keys = sorted(keys - set(run.records))
    for i in range(0, len(keys), STAGE_BATCH):
        await _prefetch_keys(session, run, set(keys[i:i + STAGE_BATCH]))


async def _dry_run(session: AsyncSession, run: _Run, on_progress, started_at) -> bool:
    """Every row in one transaction rolled back at the end. Its progress, which that transaction cannot show, is
    published batch by batch on a connection of its own (GET /api/imports/{id} reads it meanwhile); the main
    transaction writes the job's row only at the end, so the two never wait for each other."""
    rows = await _todo(session, run.job, None)
    results: list[tuple[ImportRow, RowResult]] = []
    bind = session.get_bind()
    side = create_async_engine(getattr(bind, "url", None) or bind.engine.url, poolclass=NullPool)
    await _publish_progress(side, run.job.id, 0, state=ImportState.running, started_at=started_at)
    preview = await session.begin_nested()
    try:
        size = get_settings().import_chunk_rows
        for i in range(0, len(rows), size):  # the same batches as the real run, for the same fast rows
            results.extend(await _batch(session, run, rows[i:i + size]))
            await _publish_progress(side, run.job.id, len(results))
            if on_progress is not None:
                on_progress(len(results), run.job.total_rows)
    finally:
        await preview.rollback()  # a dry run writes nothing but its report
        await side.dispose()
    await _store(session, run.job, results)
    return True


async def _publish_progress(engine, job_id: uuid.UUID, rows_done: int, **more: Any) -> None:
    """Best effort: a progress that cannot be written at once (the row is locked) is skipped, never waited for."""
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("set local lock_timeout = '1s'"))
            await conn.execute(sa.update(ImportJob).where(ImportJob.id == job_id)
                               .values(rows_done=rows_done, **more))
    except DBAPIError:
        log.info("import progress not published", extra={"job_id": str(job_id)})


async def _real_chunk(session: AsyncSession, run: _Run, limit: int, on_progress) -> bool:
    rows = await _todo(session, run.job, limit)
    results = await _batch(session, run, rows)
    if on_progress is not None:
        on_progress(run.job.rows_done + len(results), run.job.total_rows)
    await _store(session, run.job, results)
    return len(rows) < limit or run.job.rows_done >= run.job.total_rows


async def _batch(session: AsyncSession, run: _Run, rows: list[ImportRow]) -> list[tuple[ImportRow, RowResult]]:
    """Rows in file order: those that need only a new person and their cartella are written together (`_fast`),
    then the others one by one, each in its savepoint. Same outcome as one by one (see `_fast`)."""
    await _prefetch(session, run, rows)
    fast = await _fast(session, run, rows) if get_settings().import_fast_path else {}
    return [(row, fast[row.row_number] if row.row_number in fast else await _process(session, run, row))
            for row in rows]


def _trigrams(text: str) -> frozenset[str]:
    """Close to pg_trgm's trigrams of a name (words padded with two blanks before and one after)."""
    out: set[str] = set()
    for word in re.split(r"[\W_]+", text.lower()):
        if word:
            padded = f"  {word} "
            out.update(padded[i:i + 3] for i in range(len(padded) - 2))
    return frozenset(out)


class _Earlier:
    """The persons of a batch's earlier rows, kept the way de-duplication would find them, to tell whether a later
    coded row could be one of them or look like one (dedup.score): then it goes one by one, in order. A person with
    another code can reach the threshold only from the same birth date or with day and month swapped; one without
    a code from any date, with a name similarity that depends on how close the dates are. The names are compared
    with `_trigrams`, UNCODED_NAME_MARGIN below what the score needs, so that the approximation errs towards
    'could be' (one by one), never towards a batch that would hide a look-alike."""

    def __init__(self) -> None:
        self.codes: set[str] = set()
        self.coded_by_date: dict[Any, list[frozenset[str]]] = {}
        self.uncoded: list[tuple[Any, frozenset[str]]] = []

    def add(self, code: str, born, name: frozenset[str]) -> None:
        if code:
            self.codes.add(code)
        if code and born is not None:
            self.coded_by_date.setdefault(born, []).append(name)
        else:
            self.uncoded.append((born, name))

    def may_match(self, code: str, born, name: frozenset[str]) -> bool:
        if code in self.codes:
            return True
        for day, birth in ((born, 1.0), (dedup_swapped(born), 0.8)):
            if any(_resembles(other, name, _needed(birth, coded=True)) for other in self.coded_by_date.get(day, ())):
                return True
        return any(_resembles(other, name, _needed(dedup.birth_component(other_born, born)[0], coded=False))
                   for other_born, other in self.uncoded)


def _needed(birth: float, *, coded: bool) -> float:
    """The name similarity a pair needs to reach the threshold with this birth component and sex and birthplace
    equal (above 1: it cannot); `coded`: both have codici fiscali, different ones."""
    s = get_settings()
    threshold = s.dedup_candidate_threshold / (dedup.CF_DIFFERENT_FACTOR if coded else 1.0)
    return max(s.dedup_name_similarity_floor,
               (threshold - dedup.W_BIRTH * birth - dedup.W_SEX - dedup.W_PLACE) / dedup.W_NAME)


def _resembles(a: frozenset[str], b: frozenset[str], needed: float) -> bool:
    if needed > 1.0:
        return False
    union = len(a | b)
    return not union or len(a & b) / union >= needed - UNCODED_NAME_MARGIN


@dataclass
class _Fast:
    row: ImportRow
    values: dict[str, Any]
    person_values: dict[str, Any]
    person: Any = None
    owner: tuple[uuid.UUID, str] | None = None


async def _fast(session: AsyncSession, run: _Run, rows: list[ImportRow]) -> dict[int, RowResult]:
    """New persons with a codice fiscale and their cartella, written together: the rows that, processed one by one
    in file order, would be `create` with nothing else to decide. A row qualifies only when no earlier row of the
    batch could be the same person or a look-alike of it (`_Earlier`); the registry then has neither its code nor
    a look-alike (one query each for the batch). Everything else — matches, look-alikes, rejects, related
    persons — goes one by one."""
    m, job = run.mapping, run.job
    earlier = _Earlier()
    picks: list[_Fast] = []
    keys_seen: set[str] = set()
    for row in rows:
        values, errors = m.apply(row.raw)
        key, code = values["source_key"], cfmod.normalize(values["codice_fiscale"] or "")
        born = values["birth_date"]
        if born is None and code:
            try:
                born = cfmod.decode(code).birth_date
            except Invalid:
                born = None
        name = _trigrams(f"{values['surname'] or ''} {values['given_name'] or ''}")
        eligible = (row.phase == PHASE_PERSON and not errors and key and key not in keys_seen
                    and run.records.get(key) is None and code and not values["other_identifier_type"]
                    and not values["other_identifier"] and born is not None
                    and not earlier.may_match(code, born, name))
        if key:
            keys_seen.add(key)
        if row.phase == PHASE_PERSON:
            earlier.add(code, born, name)
        if eligible:
            picks.append(_Fast(row=row, values=values, person_values={}))
    ready: list[_Fast] = []
    for f in picks:
        if await _resolve(session, run, f.values, related=False) or _opened_at(f.values) and \
                _opened_at(f.values) > clock.now():
            continue
        try:
            f.person_values = await persons.validate_person(session, principal=run.principal,
                                                            values=_person_data(f.values))
            f.person = persons.build_person(run.principal, f.person_values, source=SOURCE)
            f.owner = cartelle.choose_owner(f.person, await persons.ambito_comuni(session, job.ambito_id),
                                            explicit=f.values["owning_comune_id"],
                                            offices=run.principal.orgs_for())
        except Invalid:
            continue
        ready.append(f)
    if not ready:
        return {}
    taken = await persons.registered_codes(session, ambito_id=job.ambito_id,
                                           codes=[f.person.codice_fiscale for f in ready])
    ready = [f for f in ready if f.person.codice_fiscale not in taken]
    found = await dedup.candidates_many(session, ambito_id=job.ambito_id,
                                        probes=[dedup.Probe.of(f.person) for f in ready])
    if found is None:
        return {}
    ready = [f for f, candidates in zip(ready, found, strict=True) if not candidates]
    out: dict[int, RowResult] = {}
    await session.flush()  # whatever the session held before: only this batch's rows go through insert_pending
    for f in ready:
        key = f.values["source_key"]
        session.add(f.person)
        await persons.record_registered(session, f.person, principal=run.principal, source=SOURCE,
                                        provenance=_provenance(job, key, f.row))
        area = f.values["area"] or Area.non_noto.value
        c = cartelle.build_cartella(f.person, area, f.owner[0], principal=run.principal,
                                    legacy_code=_legacy_code(job, f.values), opened_at=_opened_at(f.values))
        assignment = await cartelle.record_opening(session, c, actor_id=run.principal.user_id, rule=f.owner[1],
                                                   case_manager_id=f.values["case_manager_id"])
        session.add_all([c, *([assignment] if assignment is not None else [])])
        cartelle.audit_cartella("create", c)
        result = RowResult(outcome=RowOutcome.create, person_id=f.person.id, cartella_id=c.id,
                           seen_person_ids=[f.person.id], notes=[] if f.values["area"] else [NO_AREA_NOTE])
        record = _record_of(job, key, f.row, result)
        session.add(record)
        run.records[key] = record
        run.created_rows[f.person.id] = f.row.row_number
        out[f.row.row_number] = result
    await db.insert_pending(session, ["person", "entity_history", "cartella", "cartella_assignment",
                                      "import_record"])
    return out


_STORE = (sa.update(ImportRow.__table__)
          .where(ImportRow.__table__.c.job_id == sa.bindparam("b_job"),
                 ImportRow.__table__.c.row_number == sa.bindparam("b_row")))


async def _store(session: AsyncSession, job: ImportJob, results: list[tuple[ImportRow, RowResult]]) -> None:
    if not results:
        return
    params = [{"b_job": job.id, "b_row": row.row_number, "outcome": r.outcome.value, "person_id": r.person_id,
               "matched_row": r.matched_row, "reason": r.reason, "candidate_person_ids": r.candidate_person_ids,
               "candidate_rows": r.candidate_rows, "cartella_id": r.cartella_id, "relation_id": r.relation_id,
               "errors": r.errors, "notes": r.notes} for row, r in results]
    await session.execute(_STORE, params)
    counts = dict(job.counts or {})
    for _, r in results:
        counts[r.outcome.value] = counts.get(r.outcome.value, 0) + 1
    job.counts = counts
    job.rows_done += len(results)
    verb = "preview" if job.dry_run else "import"
    for _, r in results:
        if r.seen_person_ids:
            audit.record(action=verb, object_type="person", object_ids=[r.person_id, r.cartella_id, r.relation_id],
                         person_ids=r.seen_person_ids)


# ---------------------------------------------------------------------------------------------------- one row
async def _process(session: AsyncSession, run: _Run, row: ImportRow) -> RowResult:
    """One row in its own savepoint: all of it or nothing of it."""
    sp = await session.begin_nested()
    run.written = None
    try:
        result = await _row(session, run, row)
    except RowRejected as e:
        await sp.rollback()
        return _rejected(e.errors)
    except Invalid as e:
        await sp.rollback()
        return _rejected([(run.header(x["field"]), x["reason"]) for x in e.errors])
    except (Conflict, NotFound) as e:
        await sp.rollback()
        return _rejected([(run.header(_conflict_field(row)), e.detail)])
    except (IntegrityError, DataError) as e:
        await sp.rollback()
        log.warning("import row refused by the database", extra={"job_id": str(run.job.id),
                                                                 "row": row.row_number, "error": type(e).__name__})
        return _rejected([(run.header("source_key"), "riga rifiutata dal database: verificare i valori")])
    await sp.commit()
    if run.written is not None:
        run.records[run.written.source_key] = run.written
    return result


def _conflict_field(row: ImportRow) -> str:
    return "relation_kind" if row.phase == PHASE_RELATED else "area"


def _rejected(errors: list[tuple[str, str]]) -> RowResult:
    return RowResult(outcome=RowOutcome.reject, errors=[{"field": f, "reason": r} for f, r in errors])


async def _row(session: AsyncSession, run: _Run, row: ImportRow) -> RowResult:
    m, job = run.mapping, run.job
    values, errors = m.apply(row.raw)
    key = values["source_key"]
    if not key:
        raise RowRejected([(m.header_of("source_key"), "obbligatorio: il codice della riga nel sistema di origine")])
    known = await _record(session, run, key)
    if known is not None:
        return RowResult(outcome=RowOutcome.unchanged, person_id=known.person_id, cartella_id=known.cartella_id,
                         relation_id=known.relation_id, reason=f"riga {known.row_number} di {known.file_name}")
    related = row.phase == PHASE_RELATED
    errors.extend(await _resolve(session, run, values, related))
    target = None
    if related:
        target = await _record(session, run, values["related_to"])
        if target is None or target.person_id is None:
            errors.append((m.header_of("related_to"), f"nessuna persona importata con {m.header_of('source_key')} "
                                                      f"'{values['related_to']}'"))
    if errors:
        raise RowRejected(errors)
    provenance = _provenance(job, key, row)
    has_identifier = bool(values["codice_fiscale"] or values["other_identifier"] or values["other_identifier_type"])
    result = RowResult(outcome=RowOutcome.create)
    if related and not has_identifier:
        pass  # a related person known by name only: the relation row holds them, no person is registered
    else:
        result = await _person(session, run, row, values, provenance)
    if related:
        person = await persons.lock_registered(session, principal=run.principal, person_id=target.person_id)
        rel = await relations.insert_relation(session, principal=run.principal, person=person,
                                              data=_RelationData.of(values, result.person_id), provenance=provenance)
        result.relation_id = rel.id
        result.seen_person_ids.append(person.id)
    else:
        await _cartella(session, run, values, result)
    run.written = _record_of(job, key, row, result)
    session.add(run.written)
    await session.flush()
    return result


def _person_data(values: dict[str, Any]) -> dict[str, Any]:
    """The row's values as the registry's person fields."""
    return {"codice_fiscale": values["codice_fiscale"], "other_identifier_type": values["other_identifier_type"],
            "other_identifier": values["other_identifier"], "surname": values["surname"],
            "given_name": values["given_name"], "sex": values["sex"], "birth_date": values["birth_date"],
            "birth_place_code": values["birth_place_code"], "citizenship": values["citizenship"],
            "residence_comune_id": values["residence_comune_id"], "residence_address": values["residence_address"],
            "domicile_comune_id": values["domicile_comune_id"], "domicile_address": values["domicile_address"],
            "homeless": bool(values["homeless"]),
            "contacts": {k: v for k, v in (("phone", values["phone"]), ("email", values["email"])) if v}}


def _provenance(job: ImportJob, key: str, row: ImportRow) -> dict[str, Any]:
    return {"source_system": job.source_system, "source_key": key, "file": job.file_name, "row": row.row_number,
            "import_id": str(job.id)}


def _record_of(job: ImportJob, key: str, row: ImportRow, result: RowResult) -> ImportRecord:
    return ImportRecord(ambito_id=job.ambito_id, source_system=job.source_system, source_key=key,
                        person_id=result.person_id, cartella_id=result.cartella_id, relation_id=result.relation_id,
                        job_id=job.id, file_name=job.file_name, row_number=row.row_number, created_at=clock.now())


async def _person(session: AsyncSession, run: _Run, row: ImportRow, values: dict[str, Any],
                  provenance: dict[str, Any]) -> RowResult:
    created, existing = await persons.register(session, principal=run.principal, data=_person_data(values),
                                               source=SOURCE, interactive=False, provenance=provenance)
    if existing is not None:
        pid, why = existing
        return RowResult(outcome=RowOutcome.match, person_id=pid, reason=why,
                         matched_row=await _row_of(session, run, pid), seen_person_ids=[pid])
    person = created.person
    run.created_rows[person.id] = row.row_number
    candidates = [c.person.id for c in created.possible_duplicates]
    if not candidates:
        return RowResult(outcome=RowOutcome.create, person_id=person.id, seen_person_ids=[person.id])
    rows = [r for r in [await _row_of(session, run, c) for c in candidates] if r is not None]
    return RowResult(outcome=RowOutcome.possible_match, person_id=person.id, candidate_person_ids=candidates,
                     candidate_rows=rows, reason="look_alike", seen_person_ids=[person.id, *candidates])


async def _cartella(session: AsyncSession, run: _Run, values: dict[str, Any], result: RowResult) -> None:
    """The row's open cartella. Without an area it is filed 'Non noto', unless the person already has an open
    cartella (a second row of somebody already in charge adds nothing). The owner is the registry's rule; for a
    person registered without a residence in the Ambito, the comune the row names takes the place of the
    explicit choice."""
    area = values["area"]
    if area is None:
        already = await cartelle.open_cartelle_of(session, result.person_id)
        if already:
            result.cartella_id = already[0][0]
            result.notes.append("area non indicata: collegata alla cartella già aperta")
            return
        area = Area.non_noto.value
        result.notes.append(NO_AREA_NOTE)
    opened_at = _opened_at(values)
    explicit = values["owning_comune_id"]
    fallback = values["residence_comune_id"] or values["domicile_comune_id"]

    async def _open(owner):
        return await cartelle.open_cartella(
            session, principal=run.principal, person_id=result.person_id, area=area, owning_comune_id=owner,
            legacy_code=_legacy_code(run.job, values),
            case_manager_id=values["case_manager_id"], opened_at=opened_at)

    # The registry's owner rule decides; the row's comune_titolare is its explicit choice. When the two disagree
    # (the older platform filed the person elsewhere) the rule wins and the report says so; with no residence in
    # the Ambito, the comune the row names stands in. Each refusal comes before anything is written.
    attempts = list(dict.fromkeys([explicit, None, fallback]))
    try:
        for i, owner in enumerate(attempts):
            try:
                c = await _open(owner)
                break
            except Invalid as e:
                if e.field != "owning_comune_id" or i == len(attempts) - 1:
                    raise
        if explicit is not None and c.owning_comune_id != explicit:
            result.notes.append("comune titolare indicato diverso da quello della regola dell'anagrafe: titolare "
                                "il comune di residenza o domicilio")
    except Conflict as e:
        existing = e.extra.get("existing_id")
        if existing is None:
            raise
        result.cartella_id = uuid.UUID(existing)
        result.notes.append("cartella già aperta in quest'area: collegata, non duplicata")
        return
    result.cartella_id = c.id


NO_AREA_NOTE = "area non indicata: cartella in area 'Non noto'"


def _opened_at(values: dict[str, Any]) -> datetime | None:
    d = values["opened_on"]
    return None if d is None else datetime(d.year, d.month, d.day, 12, tzinfo=clock.ROME)


def _legacy_code(job: ImportJob, values: dict[str, Any]) -> str:
    return (values["legacy_code"] or f"{job.source_system}:{values['source_key']}")[:60]


async def _row_of(session: AsyncSession, run: _Run, person_id: uuid.UUID) -> int | None:
    """The row of this job that registered the person (None for a person registered before)."""
    if person_id in run.created_rows:
        return run.created_rows[person_id]
    found = (await session.execute(sa.select(ImportRow.row_number).where(
        ImportRow.job_id == run.job.id, ImportRow.person_id == person_id,
        ImportRow.outcome.in_([RowOutcome.create.value, RowOutcome.possible_match.value])).limit(1))).scalar()
    if found is not None:
        run.created_rows[person_id] = found
    return found


async def _record(session: AsyncSession, run: _Run, key: str) -> ImportRecord | None:
    if key not in run.records:
        await _prefetch_keys(session, run, {key})
    return run.records[key]


async def _prefetch_keys(session: AsyncSession, run: _Run, keys: set[str]) -> None:
    found = (await session.execute(sa.select(ImportRecord).where(
        ImportRecord.ambito_id == run.job.ambito_id, ImportRecord.source_system == run.job.source_system,
        ImportRecord.source_key.in_(sorted(keys))))).scalars()
    run.records.update(dict.fromkeys(keys))
    run.records.update({r.source_key: r for r in found})


def _comuni_index(rows) -> dict[str, uuid.UUID]:
    index: dict[str, uuid.UUID] = {}
    for org_id, istat, belfiore, name in rows:
        for k in (istat, belfiore, name):
            if k:
                index[mapmod.fold(k)] = org_id
        if istat:
            index[istat.lstrip("0")] = org_id  # "19035" typed in a spreadsheet that dropped the zero
    return index


async def _resolve(session: AsyncSession, run: _Run, values: dict[str, Any], related: bool) -> list[tuple[str, str]]:
    """Comuni by ISTAT code, Belfiore code or name; case managers by username. Unknown values are errors."""
    m, errors = run.mapping, []
    for name in ("residence_comune", "domicile_comune", "owning_comune"):
        text = values[name]
        values[f"{name}_id"] = None
        if text:
            org = run.comuni.get(mapmod.fold(text)) or run.comuni.get(text.strip().lstrip("0"))
            if org is None:
                errors.append((m.header_of(name), f"comune sconosciuto nell'Ambito: '{text}'"))
            values[f"{name}_id"] = org
    values["case_manager_id"] = None
    if values["case_manager"]:
        name = values["case_manager"]
        if name not in run.users:
            run.users.update(await directory.user_ids_by_username(session, [name], run.job.ambito_id))
        values["case_manager_id"] = run.users.get(name)
        if values["case_manager_id"] is None:
            errors.append((m.header_of("case_manager"), f"nessun operatore con nome utente '{name}' nell'Ambito"))
    if related and not values["relation_kind"]:
        errors.append((m.header_of("relation_kind"), "obbligatorio per una persona di riferimento"))
    if not related and values["relation_kind"]:
        errors.append((m.header_of("related_to"), "indicare di quale persona è la persona di riferimento"))
    return errors


@dataclass
class _RelationData:
    """What relations.insert_relation reads (the API passes its schema object)."""

    kind: str
    related_person_id: uuid.UUID | None
    surname: str | None
    given_name: str | None
    contacts: Any
    sole_caregiver: bool
    cohabiting: bool | None
    decree_reference: str | None
    decree_scope: list[str]
    court: str | None
    valid_from: Any = None
    valid_to: Any = None

    @classmethod
    def of(cls, values: dict[str, Any], person_id: uuid.UUID | None) -> _RelationData:
        named = person_id is None
        return cls(kind=values["relation_kind"], related_person_id=person_id,
                   surname=values["surname"] if named else None, given_name=values["given_name"] if named else None,
                   contacts=_Contacts({k: values[k] for k in ("phone", "email") if values[k]}) if named else None,
                   sole_caregiver=bool(values["sole_caregiver"]), cohabiting=values["cohabiting"],
                   decree_reference=values["decree_reference"], decree_scope=values["decree_scope"] or [],
                   court=values["court"])


@dataclass
class _Contacts:
    values: dict[str, str]

    def model_dump(self, exclude_none: bool = True) -> dict[str, str]:
        return dict(self.values)
