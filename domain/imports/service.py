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
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from domain.imports import mapping as mapmod
from domain.imports import one_row
from domain.imports.mapping import Mapping
from domain.imports.models import ImportJob, ImportRow, ImportState, RowOutcome
from domain.kernel import clock, db, jobs
from domain.kernel.errors import Conflict, DomainError, Invalid, NotFound
from domain.kernel.settings import get_settings
from domain.registry import cartelle, dedup, persons
from domain.registry import codice_fiscale as cfmod
from domain.registry.dedup import swapped_date as dedup_swapped
from domain.registry.models import Area
from domain.security import audit
from domain.security.permissions import Permission
from domain.security.principal import Principal, load_principal
from domain.territory import queries as territory

log = logging.getLogger("imports")

JOB_KIND = "imports.run"
STAGE_BATCH = 2_000
# How far below the similarity the score needs two names of one batch still count as possibly alike (_Earlier):
# room for the differences between _trigrams and pg_trgm.
UNCODED_NAME_MARGIN = 0.1



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
               "phase": (one_row.PHASE_RELATED if related_header and (raw.get(related_header) or "").strip()
                         else one_row.PHASE_PERSON)}
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
    run = one_row.Run(job=job, mapping=mapmod.parse_mapping(job.mapping), principal=principal,
               comuni=one_row.comuni_index(await territory.comuni_codes(session, job.ambito_id)))
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


async def _prefetch(session: AsyncSession, run: one_row.Run, rows: list[ImportRow]) -> None:
    """The provenance records of the rows' keys and of the persons they relate to, in one query per batch."""
    related = run.mapping.columns.get("related_to")
    keys = {k for r in rows for k in (r.source_key, (r.raw.get(related) or "").strip() if related else None) if k}
    keys = sorted(keys - set(run.records))
    for i in range(0, len(keys), STAGE_BATCH):
        await one_row.prefetch_keys(session, run, set(keys[i:i + STAGE_BATCH]))


async def _dry_run(session: AsyncSession, run: one_row.Run, on_progress, started_at) -> bool:
    """Every row in one transaction rolled back at the end. Its progress, which that transaction cannot show, is
    published batch by batch on a connection of its own (GET /api/imports/{id} reads it meanwhile); the main
    transaction writes the job's row only at the end, so the two never wait for each other."""
    rows = await _todo(session, run.job, None)
    results: list[tuple[ImportRow, one_row.RowResult]] = []
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


async def _real_chunk(session: AsyncSession, run: one_row.Run, limit: int, on_progress) -> bool:
    rows = await _todo(session, run.job, limit)
    results = await _batch(session, run, rows)
    if on_progress is not None:
        on_progress(run.job.rows_done + len(results), run.job.total_rows)
    await _store(session, run.job, results)
    return len(rows) < limit or run.job.rows_done >= run.job.total_rows


async def _batch(session: AsyncSession, run: one_row.Run,
                 rows: list[ImportRow]) -> list[tuple[ImportRow, one_row.RowResult]]:
    """Rows in file order: those that need only a new person and their cartella are written together (`_fast`),
    then the others one by one, each in its savepoint. Same outcome as one by one (see `_fast`)."""
    await _prefetch(session, run, rows)
    fast = await _fast(session, run, rows) if get_settings().import_fast_path else {}
    return [(row, fast[row.row_number] if row.row_number in fast else await one_row.process(session, run, row))
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


async def _fast(session: AsyncSession, run: one_row.Run, rows: list[ImportRow]) -> dict[int, one_row.RowResult]:
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
        eligible = (row.phase == one_row.PHASE_PERSON and not errors and key and key not in keys_seen
                    and run.records.get(key) is None and code and not values["other_identifier_type"]
                    and not values["other_identifier"] and born is not None
                    and not earlier.may_match(code, born, name))
        if key:
            keys_seen.add(key)
        if row.phase == one_row.PHASE_PERSON:
            earlier.add(code, born, name)
        if eligible:
            picks.append(_Fast(row=row, values=values, person_values={}))
    ready: list[_Fast] = []
    for f in picks:
        if await one_row.resolve(session, run, f.values, related=False) or one_row.opened_on(f.values) and \
                one_row.opened_on(f.values) > clock.now():
            continue
        try:
            f.person_values = await persons.validate_person(session, principal=run.principal,
                                                            values=one_row.person_data(f.values))
            f.person = persons.build_person(run.principal, f.person_values, source=one_row.SOURCE)
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
    out: dict[int, one_row.RowResult] = {}
    await session.flush()  # whatever the session held before: only this batch's rows go through insert_pending
    for f in ready:
        key = f.values["source_key"]
        session.add(f.person)
        await persons.record_registered(session, f.person, principal=run.principal, source=one_row.SOURCE,
                                        provenance=one_row.provenance_of(job, key, f.row))
        area = f.values["area"] or Area.non_noto.value
        c = cartelle.build_cartella(f.person, area, f.owner[0], principal=run.principal,
                                    legacy_code=one_row.legacy_code(job, f.values),
                                    opened_at=one_row.opened_on(f.values))
        assignment = await cartelle.record_opening(session, c, actor_id=run.principal.user_id, rule=f.owner[1],
                                                   case_manager_id=f.values["case_manager_id"])
        session.add_all([c, *([assignment] if assignment is not None else [])])
        cartelle.audit_cartella("create", c)
        result = one_row.RowResult(outcome=RowOutcome.create, person_id=f.person.id, cartella_id=c.id,
                           seen_person_ids=[f.person.id], notes=[] if f.values["area"] else [one_row.NO_AREA_NOTE])
        record = one_row.record_of(job, key, f.row, result)
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


async def _store(session: AsyncSession, job: ImportJob, results: list[tuple[ImportRow, one_row.RowResult]]) -> None:
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
