"""One row of an import: from its mapped values to the registry's person (or the relation to an earlier row's
person) and the open cartella, with the row's outcome and its provenance record. The run (`service.py`) stages the
rows, batches them, keeps the savepoints and the progress; each row goes through `process` here, and the batch path
builds on the same pieces (`person_data`, `provenance_of`, `record_of`, `resolve`)."""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from domain.imports import mapping as mapmod
from domain.imports.mapping import Mapping
from domain.imports.models import ImportJob, ImportRecord, ImportRow, RowOutcome
from domain.kernel import clock
from domain.kernel.errors import Conflict, Invalid, NotFound
from domain.registry import cartelle, persons, relations
from domain.registry.models import Area
from domain.security import directory
from domain.security.principal import Principal

log = logging.getLogger("imports")

SOURCE = "import"
PHASE_PERSON, PHASE_RELATED = 1, 2

# Registry field names (as its errors name them) → mapping field, so a refusal names the file's column.
REGISTRY_FIELDS = {
    "residence_comune_id": "residence_comune", "domicile_comune_id": "domicile_comune",
    "owning_comune_id": "owning_comune", "case_manager_id": "case_manager", "related_person_id": "related_to",
    "kind": "relation_kind", "opened_at": "opened_on", "valid_from": "related_to", "valid_to": "related_to",
    "area": "area",
}


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
class Run:
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


async def process(session: AsyncSession, run: Run, row: ImportRow) -> RowResult:
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


async def _row(session: AsyncSession, run: Run, row: ImportRow) -> RowResult:
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
    errors.extend(await resolve(session, run, values, related))
    target = None
    if related:
        target = await _record(session, run, values["related_to"])
        if target is None or target.person_id is None:
            errors.append((m.header_of("related_to"), f"nessuna persona importata con {m.header_of('source_key')} "
                                                      f"'{values['related_to']}'"))
    if errors:
        raise RowRejected(errors)
    provenance = provenance_of(job, key, row)
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
    run.written = record_of(job, key, row, result)
    session.add(run.written)
    await session.flush()
    return result


def person_data(values: dict[str, Any]) -> dict[str, Any]:
    """The row's values as the registry's person fields."""
    return {"codice_fiscale": values["codice_fiscale"], "other_identifier_type": values["other_identifier_type"],
            "other_identifier": values["other_identifier"], "surname": values["surname"],
            "given_name": values["given_name"], "sex": values["sex"], "birth_date": values["birth_date"],
            "birth_place_code": values["birth_place_code"], "citizenship": values["citizenship"],
            "residence_comune_id": values["residence_comune_id"], "residence_address": values["residence_address"],
            "domicile_comune_id": values["domicile_comune_id"], "domicile_address": values["domicile_address"],
            "homeless": bool(values["homeless"]),
            "contacts": {k: v for k, v in (("phone", values["phone"]), ("email", values["email"])) if v}}


def provenance_of(job: ImportJob, key: str, row: ImportRow) -> dict[str, Any]:
    return {"source_system": job.source_system, "source_key": key, "file": job.file_name, "row": row.row_number,
            "import_id": str(job.id)}


def record_of(job: ImportJob, key: str, row: ImportRow, result: RowResult) -> ImportRecord:
    return ImportRecord(ambito_id=job.ambito_id, source_system=job.source_system, source_key=key,
                        person_id=result.person_id, cartella_id=result.cartella_id, relation_id=result.relation_id,
                        job_id=job.id, file_name=job.file_name, row_number=row.row_number, created_at=clock.now())


async def _person(session: AsyncSession, run: Run, row: ImportRow, values: dict[str, Any],
                  provenance: dict[str, Any]) -> RowResult:
    created, existing = await persons.register(session, principal=run.principal, data=person_data(values),
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


async def _cartella(session: AsyncSession, run: Run, values: dict[str, Any], result: RowResult) -> None:
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
    opened_at = opened_on(values)
    explicit = values["owning_comune_id"]
    fallback = values["residence_comune_id"] or values["domicile_comune_id"]

    async def _open(owner):
        return await cartelle.open_cartella(
            session, principal=run.principal, person_id=result.person_id, area=area, owning_comune_id=owner,
            legacy_code=legacy_code(run.job, values),
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


def opened_on(values: dict[str, Any]) -> datetime | None:
    d = values["opened_on"]
    return None if d is None else datetime(d.year, d.month, d.day, 12, tzinfo=clock.ROME)


def legacy_code(job: ImportJob, values: dict[str, Any]) -> str:
    return (values["legacy_code"] or f"{job.source_system}:{values['source_key']}")[:60]


async def _row_of(session: AsyncSession, run: Run, person_id: uuid.UUID) -> int | None:
    """The row of this job that registered the person (None for a person registered before)."""
    if person_id in run.created_rows:
        return run.created_rows[person_id]
    found = (await session.execute(sa.select(ImportRow.row_number).where(
        ImportRow.job_id == run.job.id, ImportRow.person_id == person_id,
        ImportRow.outcome.in_([RowOutcome.create.value, RowOutcome.possible_match.value])).limit(1))).scalar()
    if found is not None:
        run.created_rows[person_id] = found
    return found


async def _record(session: AsyncSession, run: Run, key: str) -> ImportRecord | None:
    if key not in run.records:
        await prefetch_keys(session, run, {key})
    return run.records[key]


async def prefetch_keys(session: AsyncSession, run: Run, keys: set[str]) -> None:
    found = (await session.execute(sa.select(ImportRecord).where(
        ImportRecord.ambito_id == run.job.ambito_id, ImportRecord.source_system == run.job.source_system,
        ImportRecord.source_key.in_(sorted(keys))))).scalars()
    run.records.update(dict.fromkeys(keys))
    run.records.update({r.source_key: r for r in found})


def comuni_index(rows) -> dict[str, uuid.UUID]:
    index: dict[str, uuid.UUID] = {}
    for org_id, istat, belfiore, name in rows:
        for k in (istat, belfiore, name):
            if k:
                index[mapmod.fold(k)] = org_id
        if istat:
            index[istat.lstrip("0")] = org_id  # "19035" typed in a spreadsheet that dropped the zero
    return index


async def resolve(session: AsyncSession, run: Run, values: dict[str, Any], related: bool) -> list[tuple[str, str]]:
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
