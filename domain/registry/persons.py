"""Person registry: register, correct, read, record a death, related persons.

Identity data is shared within one Ambito, never across two (policy.visible). Within the Ambito the registry's
policy decides what a principal sees of a person: the identity projection for registering roles, case data (full
projection: history, relations, corrections) only where the row filter reaches one of the person's cartelle (or
nobody has the person in charge yet), the minimal projection for ETS / RSA / MMG users with an assignment. The check
is part of the query that loads the person (one round trip). Reads and writes are audited. Codice fiscale is unique
per Ambito among active persons; a person without one is registered with another identifier (STP, ENI, passport,
provisional). Every change bumps `version` and writes an `entity_history` row. On every create path the
de-duplication workflow (dedup.py) looks for look-alikes and queues them for the data stewards.
"""
from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from domain.kernel import clock, events, history, session_memo
from domain.kernel.errors import Conflict, Forbidden, Invalid, NotFound
from domain.registry import codice_fiscale as cfmod
from domain.registry import dedup, policy
from domain.registry.models import (
    IdentifierType,
    Person,
    PersonStatus,
)
from domain.registry.policy import ConsentRequired
from domain.security import audit, scopes
from domain.security.principal import Principal
from domain.territory import queries as territory

ENTITY = "person"
MAX_AGE_YEARS = 130
# At most one of these at a time for a person (a tutore and an AdS exclude each other too).

# The fields a caller may set on create/update, in the order they are validated.
PERSON_FIELDS = (
    "codice_fiscale", "other_identifier_type", "other_identifier", "surname", "given_name", "sex", "birth_date",
    "birth_place_code", "birth_place_name", "citizenship", "residence_comune_id", "residence_address",
    "domicile_comune_id", "domicile_address", "fictitious_residence", "homeless", "lives_alone", "contacts",
)


# What GET /persons/{id} shows before the projection's mask is applied.
VIEW_FIELDS = ("id", *PERSON_FIELDS, "date_of_death", "status", "needs_review", "source", "version", "created_at",
               "updated_at")


@dataclass
class PersonRead:
    person: Person
    access: policy.PersonAccess
    interventions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class PersonCreateResult:
    person: Person
    possible_duplicates: list[Any] = field(default_factory=list)  # list[dedup.Candidate]


# ---------------------------------------------------------------- validation
def clean_name(value: str | None) -> str | None:
    if value is None:
        return None
    return re.sub(r"\s+", " ", value).strip() or None


def _new_provisional_id() -> str:
    return "PRV-" + uuid.uuid4().hex[:12].upper()


async def ambito_comuni(session, ambito_id: uuid.UUID) -> frozenset[uuid.UUID]:
    """The comuni of the Ambito, read once per session (an import asks for every row; a flush of an organisation
    in the session forgets them)."""
    async def load() -> frozenset[uuid.UUID]:
        return frozenset(c[0] for c in await territory.comuni_codes(session, ambito_id))

    return await session_memo.get(session, ("registry.comuni", ambito_id), load)


session_memo.watch("organisation", "registry.comuni")


async def _comuni_errors(session, principal: Principal, values: dict[str, Any]) -> list[tuple[str, str]]:
    wanted = {f: values.get(f) for f in ("residence_comune_id", "domicile_comune_id") if values.get(f)}
    if not wanted:
        return []
    known = await ambito_comuni(session, principal.ambito_id)
    return [(f, "comune sconosciuto nell'Ambito") for f, v in wanted.items() if v not in known]


async def validate_person(session, *, principal: Principal, values: dict[str, Any]) -> dict[str, Any]:
    """The complete desired state of a person → normalised values, or Invalid naming every bad field.

    Fills sex, birth date and birthplace from the codice fiscale when they are missing."""
    v = dict(values)
    errors: list[tuple[str, str]] = []
    today = clock.today_rome()

    for name in ("surname", "given_name"):
        v[name] = clean_name(v.get(name))
        if not v[name]:
            errors.append((name, "obbligatorio"))
    for name in ("birth_place_name", "citizenship", "residence_address", "domicile_address"):
        v[name] = clean_name(v.get(name))

    bd = v.get("birth_date")
    if bd is not None:
        if bd > today:
            errors.append(("birth_date", "non può essere nel futuro"))
        elif bd.year < today.year - MAX_AGE_YEARS:
            errors.append(("birth_date", f"più di {MAX_AGE_YEARS} anni fa: verificare"))
    if v.get("birth_place_code"):
        v["birth_place_code"] = v["birth_place_code"].strip().upper()

    # identifiers
    cf = v.get("codice_fiscale")
    if cf is not None and not cfmod.normalize(cf):
        cf = None
    v["codice_fiscale"] = None
    if cf is not None:
        try:
            decoded = cfmod.check(cf, birth_date=bd if bd and bd <= today else None, sex=v.get("sex"),
                                  birth_place_code=v.get("birth_place_code"),
                                  birth_place_name=v.get("birth_place_name"), today=today)
        except Invalid as e:
            errors.extend((x["field"], x["reason"]) for x in e.errors)
        else:
            v["codice_fiscale"] = decoded.code
            v["sex"] = v.get("sex") or decoded.sex
            v["birth_date"] = bd or decoded.birth_date
            v["birth_place_code"] = v.get("birth_place_code") or decoded.birth_place_code
            v["birth_place_name"] = v.get("birth_place_name") or decoded.birth_place_name
    elif v.get("birth_place_code"):
        name = cfmod.place_name_for_code(v["birth_place_code"], bd)
        if name is None:
            errors.append(("birth_place_code", "codice catastale (Belfiore) sconosciuto"))
        else:
            v["birth_place_name"] = v.get("birth_place_name") or name

    kind, other = v.get("other_identifier_type"), v.get("other_identifier")
    kind = getattr(kind, "value", kind)
    if kind is None and other:
        errors.append(("other_identifier_type", "obbligatorio quando si indica un identificativo alternativo"))
    elif kind is not None:
        if not other and kind == IdentifierType.provisional.value:
            other = _new_provisional_id()
        if not other:
            errors.append(("other_identifier", "obbligatorio per il tipo indicato"))
        else:
            try:
                other = cfmod.check_other_identifier(kind, other)
            except Invalid as e:
                errors.append((e.field, e.reason))
    v["other_identifier_type"], v["other_identifier"] = kind, other
    if not cf and not kind:
        errors.append(("codice_fiscale", "obbligatorio: indicare il codice fiscale oppure un identificativo "
                                         "alternativo (STP, ENI, passaporto o provvisorio)"))

    # residence, homelessness
    fictitious = bool(v.get("fictitious_residence"))
    homeless = v.get("homeless")
    if fictitious and not v.get("residence_comune_id"):
        errors.append(("residence_comune_id", "obbligatorio con la residenza fittizia"))
    if fictitious and homeless is False:
        errors.append(("homeless", "la residenza fittizia è riservata alle persone senza dimora"))
    v["fictitious_residence"] = fictitious
    v["homeless"] = bool(homeless) or fictitious
    if v.get("residence_address") and not v.get("residence_comune_id"):
        errors.append(("residence_comune_id", "obbligatorio quando si indica l'indirizzo di residenza"))
    if v.get("domicile_address") and not v.get("domicile_comune_id"):
        errors.append(("domicile_comune_id", "obbligatorio quando si indica l'indirizzo di domicilio"))
    errors.extend(await _comuni_errors(session, principal, v))

    contacts = v.get("contacts")
    if contacts is None:
        v["contacts"] = {}
    elif hasattr(contacts, "model_dump"):
        v["contacts"] = contacts.model_dump(exclude_none=True)
    else:
        v["contacts"] = {k: x for k, x in dict(contacts).items() if x is not None}

    if errors:
        raise Invalid.many(errors)
    return v


_identifier_select = (sa.select(Person.id, Person.codice_fiscale)
                      .where(Person.status == PersonStatus.active.value).limit(2))
_BY_CF = _identifier_select.where(Person.ambito_id == sa.bindparam("ambito_id"),
                                  Person.codice_fiscale == sa.bindparam("cf"))


async def _existing_by_identifier(session, *, ambito_id: uuid.UUID, cf: str | None, kind: str | None,
                                  other: str | None,
                                  exclude_id: uuid.UUID | None = None) -> tuple[uuid.UUID, str] | None:
    conds = []
    if cf:
        conds.append(Person.codice_fiscale == cf)
    if kind and other:
        conds.append(sa.and_(Person.other_identifier_type == kind, Person.other_identifier == other))
    if not conds:
        return None
    if len(conds) == 1 and cf and exclude_id is None:  # the usual question (every FHIR Patient): built once
        rows = (await session.execute(_BY_CF, {"ambito_id": ambito_id, "cf": cf})).all()
    else:
        stmt = _identifier_select.where(Person.ambito_id == ambito_id, sa.or_(*conds))
        if exclude_id is not None:
            stmt = stmt.where(Person.id != exclude_id)
        rows = (await session.execute(stmt)).all()
    if not rows:
        return None
    row = next((r for r in rows if cf and r.codice_fiscale == cf), rows[0])
    return row.id, ("codice_fiscale" if cf and row.codice_fiscale == cf else "other_identifier")


async def find_by_identifier(session, *, principal: Principal, codice_fiscale: str | None = None,
                             other_identifier: tuple[str, str] | None = None) -> uuid.UUID | None:
    """The active person of the principal's Ambito with this codice fiscale or alternative identifier (exact, as the
    registry normalises them), or None: the match of a conditional create (FHIR `ifNoneExist`), which then goes on
    as `find_or_create_person`. Only the id: reading the person goes through `read_person`."""
    cf = cfmod.normalize(codice_fiscale) if codice_fiscale else None
    kind, other = other_identifier or (None, None)
    if kind and other:
        other = cfmod.check_other_identifier(kind, other)
    found = await _existing_by_identifier(session, ambito_id=principal.ambito_id, cf=cf, kind=kind, other=other)
    return found[0] if found else None


async def registered_codes(session, *, ambito_id: uuid.UUID, codes: list[str]) -> set[str]:
    """Those of `codes` (normalised codici fiscali) that an active person of the Ambito already has."""
    if not codes:
        return set()
    return set((await session.execute(sa.select(Person.codice_fiscale).where(
        Person.ambito_id == ambito_id, Person.status == PersonStatus.active.value,
        Person.codice_fiscale.in_(sorted(set(codes)))))).scalars())


def _conflict(existing: tuple[uuid.UUID, str]) -> Conflict:
    pid, field_name = existing
    what = "Codice fiscale" if field_name == "codice_fiscale" else "Identificativo"
    return Conflict(f"{what} già registrato nell'Ambito.", existing_id=str(pid))


# ---------------------------------------------------------------- create
async def _insert(session, person: Person) -> None:
    """Insert in a savepoint, so a clash on the unique identifier indexes (a concurrent registration) leaves the
    transaction usable for reporting the existing person."""
    async with session.begin_nested():
        session.add(person)
        await session.flush()


def build_person(principal: Principal, values: dict[str, Any], *, source: str) -> Person:
    """A new person from values `validate_person` returned (not yet added to the session)."""
    now = clock.now()
    return Person(ambito_id=principal.ambito_id, source=source, created_at=now, updated_at=now, version=1,
                  **{k: values.get(k) for k in PERSON_FIELDS})


async def record_registered(session, person: Person, *, principal: Principal, source: str,
                            provenance: dict[str, Any] | None = None) -> None:
    """The first history row of a person, which says how they came (`source`, an import's `provenance`)."""
    await history.record(session, entity_type=ENTITY, entity_id=person.id, version=1, action="create",
                         data={"state": history.snapshot(person), "source": source,
                               **({"provenance": provenance} if provenance else {})},
                         actor_id=principal.user_id)


async def register(session, *, principal: Principal, data, source: str, interactive: bool,
                   provenance: dict[str, Any] | None = None
                   ) -> tuple[PersonCreateResult | None, tuple[uuid.UUID, str] | None]:
    """The one create path: validate, look for the same identifier (returned as `existing`, nothing written), else
    register the person, flag look-alikes for the stewards. `data` is a schema object or a dict of PERSON_FIELDS;
    `provenance` (an import's source, file and row) goes into the history row that shows how the person came."""
    given = data if isinstance(data, dict) else data.model_dump(include=set(PERSON_FIELDS))
    values = await validate_person(session, principal=principal, values={k: given.get(k) for k in PERSON_FIELDS})
    existing = await _existing_by_identifier(session, ambito_id=principal.ambito_id, cf=values["codice_fiscale"],
                                             kind=values["other_identifier_type"], other=values["other_identifier"])
    if existing is not None:
        return None, existing
    person = build_person(principal, values, source=source)
    candidates = await dedup.find_candidates(session, ambito_id=principal.ambito_id,
                                             probe=dedup.Probe.of(person), exclude_ids=(person.id,))
    if candidates and not interactive:
        person.needs_review = True
    try:
        await _insert(session, person)
    except IntegrityError:
        existing = await _existing_by_identifier(
            session, ambito_id=principal.ambito_id, cf=values["codice_fiscale"],
            kind=values["other_identifier_type"], other=values["other_identifier"])
        if existing is None:
            raise
        return None, existing
    await record_registered(session, person, principal=principal, source=source, provenance=provenance)
    if candidates:
        await dedup.flag(session, ambito_id=principal.ambito_id, person_id=person.id, candidates=candidates,
                         source=source)
    return PersonCreateResult(person=person, possible_duplicates=candidates), None


async def create_person(session, *, principal: Principal, data, source: str = "api") -> PersonCreateResult:
    """Interactive registration: an identical codice fiscale (or other identifier) in the Ambito is a Conflict
    carrying `existing_id`; look-alikes are registered anyway, returned and queued for the stewards."""
    result, existing = await register(session, principal=principal, data=data, source=source, interactive=True)
    if existing is not None:
        raise _conflict(existing)
    audit.record(action="create", object_type="person", object_ids=[result.person.id],
                 person_ids=[result.person.id, *(c.person.id for c in result.possible_duplicates)])
    return result


async def find_or_create_person(session, *, principal: Principal, data, source: str) -> Person:
    """Automated paths (imports, hospital signals): the person with the same identifier is returned as is;
    otherwise it is registered, and flagged `needs_review` when it looks like someone already registered."""
    result, existing = await register(session, principal=principal, data=data, source=source, interactive=False)
    if existing is not None:
        return await get_person(session, principal=principal, person_id=existing[0])
    return result.person


# ---------------------------------------------------------------- read
async def get_person(session, *, principal: Principal, person_id: uuid.UUID) -> Person:
    """Resolve a reference to a person of the principal's Ambito (other contexts linking a record to a person, e.g.
    a PUA referral); returns no data to the caller by itself. One query; a merged id resolves to the person it was
    merged into. Reading the person's data goes through `read_person`, which applies the projection."""
    stmt = scopes.memo(principal, "person_get", None, lambda: sa.select(Person).where(
        Person.id == _merged_target(), policy.visible(principal)))
    person = (await session.execute(stmt, {policy.PERSON_ID.key: person_id})).scalar_one_or_none()
    if person is None:
        raise NotFound("Persona non trovata.")
    return person


def _load_statement(principal: Principal, resolve_merged: bool) -> sa.Select:
    """The person (a merged id resolving to the kept one) with the access columns; the id is a parameter, so the
    statement is built once per principal (scopes.memo)."""
    target = _merged_target() if resolve_merged else policy.PERSON_ID
    return sa.select(Person, *policy.access_columns(principal, Person.id)).where(
        Person.id == target, policy.visible(principal))


def _merged_target() -> sa.ColumnElement:
    """The id parameter, or the person it was merged into."""
    return sa.func.coalesce(
        sa.select(Person.merged_into_id).where(Person.id == policy.PERSON_ID).correlate(None).scalar_subquery(),
        policy.PERSON_ID)


async def load(session, principal: Principal, person_id: uuid.UUID, *, resolve_merged: bool = True,
                for_update: bool = False) -> tuple[Person, policy.PersonAccess]:
    """The person with what the principal may see of them, in one query (the access check rides along as
    correlated sub-queries). 404 when the principal may see nothing of them."""
    stmt = scopes.memo(principal, "person_load_merged" if resolve_merged else "person_load", None,
                       lambda: _load_statement(principal, resolve_merged))
    if for_update:
        stmt = stmt.with_for_update(of=Person)
    row = (await session.execute(stmt, {"access_person_id": person_id})).one_or_none()
    if row is None:
        raise NotFound("Persona non trovata.")
    access = policy.decide(principal, tuple(row)[1:])
    if access.consent_missing:
        raise ConsentRequired("Consenso della persona assente o revocato per questa finalità.")
    if not access.allowed:
        raise NotFound("Persona non trovata.")
    return row[0], access


def require_case(access: policy.PersonAccess) -> None:
    """Case data (history, relations, corrections) needs the full projection. Outside the scope (identity only)
    the answer is 404; in scope with the minimal projection (ETS, RSA, MMG) it is 403: the caller knows the
    person, but this is not theirs to see."""
    if access.projection == "full":
        return
    if access.in_scope:
        raise Forbidden("Dati non compresi nella visione minima concessa al proprio ruolo.")
    raise NotFound("Persona non trovata.")


def audit_person(action: str, person: Person, access: policy.PersonAccess | None = None, *, object_type: str = "person",
           object_ids=None, result_count: int | None = None) -> None:
    glass = bool(access and access.break_glass)
    audit.record(action=action, object_type=object_type,
                 object_ids=[person.id] if object_ids is None else object_ids, person_ids=[person.id],
                 result_count=result_count, purpose=access.purpose if access else None,
                 legal_basis=policy.BREAK_GLASS_BASIS if glass else None, break_glass=glass)


# What a principal with the minimal projection (a provider) sees of a person beside the identity: the contexts
# above the registry contribute it (the care plan's interventions assigned to the provider), wired by the
# composition root.
MinimalView = Callable[..., Awaitable[list[dict[str, Any]]]]
_minimal_views: list[MinimalView] = []


def register_minimal_view(view: MinimalView) -> None:
    if view not in _minimal_views:
        _minimal_views.append(view)


async def read_person(session, *, principal: Principal, person_id: uuid.UUID) -> PersonRead:
    """A person as the principal may see them (`person_view` applies the mask); audited. One query for the person
    and the access check, one more only for the minimal projection (the assigned interventions)."""
    person, access = await load(session, principal, person_id)
    interventions = []
    if access.projection == "minimal":
        for view in _minimal_views:
            interventions.extend(await view(session, principal=principal, person_id=person.id))
    audit_person("read", person, access)
    return PersonRead(person=person, access=access, interventions=interventions)


def person_view(read: PersonRead) -> dict[str, Any]:
    """The fields of the projection, and nothing else (the projections are data: access.yaml)."""
    p = read.person
    data: dict[str, Any] = {k: getattr(p, k) for k in VIEW_FIELDS}
    data["contacts"] = p.contacts or {}
    data["projection"] = read.access.projection
    data["interventions"] = read.interventions
    data["merged_into_id"] = p.merged_into_id
    if read.access.projection == "full":
        data.pop("interventions")
        data.pop("merged_into_id")
    return scopes.mask(data, read.access.projection)


async def lock_registered(session, *, principal: Principal, person_id: uuid.UUID) -> Person:
    """Lock an active person of the principal's Ambito for a change that needs no case access: an import adding the
    related persons of someone it registered itself. Shows the caller nothing (the caller audits)."""
    person = (await session.execute(
        sa.select(Person).where(Person.id == person_id, Person.status == PersonStatus.active.value,
                                policy.visible(principal))
        .with_for_update().execution_options(populate_existing=True))).scalar_one_or_none()
    if person is None:
        raise NotFound("Persona non trovata.")
    return person


async def lock_for_update(session, principal: Principal, person_id: uuid.UUID) -> Person:
    person, access = await load(session, principal, person_id, resolve_merged=False, for_update=True)
    require_case(access)
    if person.status == PersonStatus.merged.value:
        raise Conflict("La persona è stata unita a un'altra: usare l'identificativo della persona mantenuta.",
                       merged_into_id=str(person.merged_into_id))
    return person


async def _bump(session, principal: Principal, person: Person, action: str, extra: dict[str, Any]) -> None:
    person.version += 1
    person.updated_at = clock.now()
    await session.flush()
    await history.record(session, entity_type=ENTITY, entity_id=person.id, version=person.version, action=action,
                         data={"state": history.snapshot(person), **extra}, actor_id=principal.user_id)


# ---------------------------------------------------------------- update
async def update_person(session, *, principal: Principal, person_id: uuid.UUID, data) -> Person:
    person = await lock_for_update(session, principal, person_id)
    changes = data.model_dump(exclude_unset=True, include=set(PERSON_FIELDS) | {"version"})
    expected = changes.pop("version", None)
    for name in ("surname", "given_name", "fictitious_residence", "homeless"):
        if name in changes and changes[name] is None:
            raise Invalid(name, "non può essere nullo")
    if expected is not None and expected != person.version:
        raise Conflict("La persona è stata modificata da un altro utente: ricaricare i dati.",
                       current_version=person.version)
    if "contacts" in changes and hasattr(data.contacts, "model_dump"):
        changes["contacts"] = data.contacts
    current = {k: getattr(person, k) for k in PERSON_FIELDS}
    desired = {**current, **changes}
    if ("codice_fiscale" in changes and "birth_date" not in changes and current["codice_fiscale"]
            and changes["codice_fiscale"]):
        # A corrected code re-derives what it encodes unless the caller states it.
        for k in ("sex", "birth_date", "birth_place_code", "birth_place_name"):
            desired[k] = changes.get(k)
    values = await validate_person(session, principal=principal, values=desired)
    changed = {k: {"from": history.snapshot({k: current[k]})[k], "to": history.snapshot({k: values[k]})[k]}
               for k in PERSON_FIELDS if values[k] != current[k]}
    audit_person("update", person)
    if not changed:
        return person
    identifiers_changed = bool({"codice_fiscale", "other_identifier", "other_identifier_type"} & set(changed))
    if identifiers_changed:
        existing = await _existing_by_identifier(
            session, ambito_id=principal.ambito_id,
            cf=values["codice_fiscale"] if "codice_fiscale" in changed else None,
            kind=values["other_identifier_type"], other=values["other_identifier"]
            if ("other_identifier" in changed or "other_identifier_type" in changed) else None,
            exclude_id=person.id)
        if existing is not None:
            raise _conflict(existing)
    for k in changed:
        setattr(person, k, values[k])
    if not identifiers_changed:
        await _bump(session, principal, person, "update", {"changed": changed})
        return person
    try:  # in a savepoint: a concurrent registration of the same identifier is reported as a Conflict
        async with session.begin_nested():
            await _bump(session, principal, person, "update", {"changed": changed})
    except IntegrityError:
        existing = await _existing_by_identifier(session, ambito_id=principal.ambito_id,
                                                 cf=values["codice_fiscale"], kind=values["other_identifier_type"],
                                                 other=values["other_identifier"], exclude_id=person.id)
        if existing is None:
            raise
        raise _conflict(existing) from None
    return person


# ---------------------------------------------------------------- death
async def record_death(session, *, principal: Principal, person_id: uuid.UUID, date_of_death: date) -> Person:
    person = await lock_for_update(session, principal, person_id)
    audit_person("death", person)
    if person.date_of_death is not None:
        raise Conflict("Il decesso è già stato registrato.")
    if date_of_death > clock.today_rome():
        raise Invalid("date_of_death", "non può essere nel futuro")
    if person.birth_date is not None and date_of_death < person.birth_date:
        raise Invalid("date_of_death", "non può precedere la data di nascita")
    person.date_of_death = date_of_death
    await _bump(session, principal, person, "death", {"changed": {"date_of_death": {
        "from": None, "to": date_of_death.isoformat()}}})
    await events.publish(session, "person.died", {
        "person_id": str(person.id), "ambito_id": str(person.ambito_id), "date_of_death": date_of_death.isoformat(),
    })
    return person


# ---------------------------------------------------------------- history
async def person_history(session, *, principal: Principal, person_id: uuid.UUID, limit: int = 50,
                         after_version: int | None = None):
    """The versions of this id (a merged id keeps its own history, ending with the merge)."""
    person, access = await load(session, principal, person_id, resolve_merged=False)
    require_case(access)
    rows = await history.versions(session, entity_type=ENTITY, entity_id=person_id, after_version=after_version,
                                  limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    audit_person("read", person, access, object_type="person_history", result_count=len(rows))
    return rows, (rows[-1].version if more and rows else None)


# ---------------------------------------------------------------- readers for the contexts above (added with the
# PUA/VMD reshape): rows without an access check, for services that already hold the case or a grant to it.
async def person_record(session, person_id: uuid.UUID) -> Person | None:
    """The row as stored (a merged person keeps `merged_into_id`), with no access check."""
    return await session.get(Person, person_id)
