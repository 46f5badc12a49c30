"""Related persons: caregivers, family, parents, and the legal appointments (tutore, curatore, amministratore di
sostegno) with their decree — what each one may do for the person (`represents`). Periods are half-open
(domain.kernel.validity); at most one tutore or AdS at a time (the database's exclusion constraint holds it too)."""
from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import sqlalchemy as sa

from domain.kernel import clock, history
from domain.kernel.errors import Conflict, Invalid, NotFound
from domain.kernel.validity import overlaps, row_active_on
from domain.registry import persons, policy
from domain.registry.models import (
    DECREE_REQUIRED_KINDS,
    EXCLUSIVE_LEGAL_KINDS,
    LEGAL_REPRESENTATIVE_KINDS,
    RELATION_LABELS,
    DecreeScope,
    Person,
    PersonRelation,
    RelationKind,
)
from domain.security.principal import Principal


def relation_is_active(rel: PersonRelation, today: date | None = None) -> bool:
    return row_active_on(rel, today or clock.today_rome())


def represents(rel: PersonRelation, scope: DecreeScope | None = None) -> bool:
    """Whether the relation makes its holder the person's legal representative (in `scope`, when given): a
    parent or a tutore always; an amministratore di sostegno for what the decree covers; a curatore never."""
    if rel.kind not in LEGAL_REPRESENTATIVE_KINDS:
        return False
    if rel.kind != RelationKind.ads.value:
        return True
    covered = set(rel.decree_scope or ()) - {DecreeScope.assistance.value}
    return scope.value in covered if scope is not None else bool(covered)


async def list_relations(session, *, principal: Principal, person_id: uuid.UUID,
                         active_only: bool = False) -> list[PersonRelation]:
    person, access = await persons.load(session, principal, person_id)
    persons.require_case(access)
    stmt = (sa.select(PersonRelation).where(PersonRelation.person_id == person.id)
            .order_by(PersonRelation.created_at, PersonRelation.id).limit(500))
    rows = list((await session.execute(stmt)).scalars())
    if active_only:
        today = clock.today_rome()
        rows = [r for r in rows if relation_is_active(r, today)]
    persons.audit_person("read", person, access, object_type="person_relation", object_ids=[r.id for r in rows],
           result_count=len(rows))
    return rows


async def add_relation(session, *, principal: Principal, person_id: uuid.UUID, data) -> PersonRelation:
    person = await persons.lock_for_update(session, principal, person_id)  # the row lock serialises legal appointments
    persons.audit_person("create", person, object_type="person_relation")
    return await insert_relation(session, principal=principal, person=person, data=data)


async def insert_relation(session, *, principal: Principal, person: Person, data,
                          provenance: dict[str, Any] | None = None) -> PersonRelation:
    """Validate and write a relation of a person the caller has already locked and may change (add_relation for the
    API; an import for the persons it registers). `provenance` goes into the history row."""
    kind = RelationKind(data.kind).value
    errors: list[tuple[str, str]] = []
    surname, given_name = persons.clean_name(data.surname), persons.clean_name(data.given_name)
    if data.related_person_id is not None:
        if surname or given_name:
            errors.append(("related_person_id", "indicare la persona registrata oppure nome e cognome, non entrambi"))
        elif data.related_person_id == person.id:
            errors.append(("related_person_id", "una persona non può essere in relazione con sé stessa"))
        else:
            other = (await session.execute(
                sa.select(Person.id).where(Person.id == data.related_person_id, policy.active(principal))
            )).scalar_one_or_none()
            if other is None:
                errors.append(("related_person_id", "persona sconosciuta nell'Ambito"))
    else:
        if not surname:
            errors.append(("surname", "obbligatorio se la persona non è registrata"))
        if not given_name:
            errors.append(("given_name", "obbligatorio se la persona non è registrata"))
    if data.sole_caregiver and kind != RelationKind.caregiver.value:
        errors.append(("sole_caregiver", "solo per la relazione di tipo caregiver"))
    if kind in DECREE_REQUIRED_KINDS and not data.decree_reference:
        errors.append(("decree_reference", "obbligatorio per il tutore e l'amministratore di sostegno (decreto di "
                                           "nomina)"))
    scope = sorted({str(x) for x in (data.decree_scope or [])})
    if kind == RelationKind.ads.value and not scope:
        errors.append(("decree_scope", "indicare cosa prevede il decreto: rappresentanza per cura e salute "
                                       "(care_health), patrimoniale (assets) o sola assistenza (assistance)"))
    elif kind != RelationKind.ads.value and scope:
        errors.append(("decree_scope", "solo per l'amministratore di sostegno"))
    elif DecreeScope.assistance.value in scope and len(scope) > 1:
        errors.append(("decree_scope", "la sola assistenza esclude la rappresentanza"))
    valid_from = data.valid_from or clock.today_rome()
    if data.valid_to is not None and data.valid_to <= valid_from:
        errors.append(("valid_to", "deve essere successiva all'inizio della validità"))
    if errors:
        raise Invalid.many(errors)

    if kind in EXCLUSIVE_LEGAL_KINDS:
        current = (await session.execute(
            sa.select(PersonRelation).where(PersonRelation.person_id == person.id,
                                            PersonRelation.kind.in_(EXCLUSIVE_LEGAL_KINDS))
        )).scalars()
        for rel in current:
            if overlaps(rel.valid_from, rel.valid_to, valid_from, data.valid_to):
                raise Conflict(f"La persona ha già un {RELATION_LABELS[rel.kind].lower()} nel periodo indicato: "
                               "chiudere la nomina in corso prima di registrarne una nuova.",
                               existing_relation_id=str(rel.id))
    if kind == RelationKind.caregiver.value and data.sole_caregiver:
        sole = (await session.execute(
            sa.select(PersonRelation).where(PersonRelation.person_id == person.id,
                                            PersonRelation.kind == RelationKind.caregiver.value,
                                            PersonRelation.sole_caregiver.is_(True))
        )).scalars()
        for rel in sole:
            if overlaps(rel.valid_from, rel.valid_to, valid_from, data.valid_to):
                raise Conflict("È già registrato un caregiver unico nel periodo: chiudere la relazione in corso prima.",
                               existing_relation_id=str(rel.id))

    contacts = data.contacts.model_dump(exclude_none=True) if data.contacts is not None else {}
    rel = PersonRelation(person_id=person.id, related_person_id=data.related_person_id, kind=kind, surname=surname,
                         given_name=given_name, contacts=contacts, sole_caregiver=data.sole_caregiver,
                         cohabiting=data.cohabiting, decree_reference=persons.clean_name(data.decree_reference),
                         decree_scope=scope,
                         court=persons.clean_name(data.court), valid_from=valid_from, valid_to=data.valid_to,
                         created_at=clock.now())
    session.add(rel)
    await session.flush()
    await history.record(session, entity_type="person_relation", entity_id=rel.id, version=1, action="create",
                         data={"state": history.snapshot(rel), **({"provenance": provenance} if provenance else {})},
                         actor_id=principal.user_id)
    return rel


async def end_relation(session, *, principal: Principal, person_id: uuid.UUID, relation_id: uuid.UUID,
                       valid_to: date | None = None) -> PersonRelation:
    person = await persons.lock_for_update(session, principal, person_id)
    rel = (await session.execute(
        sa.select(PersonRelation).where(PersonRelation.id == relation_id, PersonRelation.person_id == person.id)
        .with_for_update()
    )).scalar_one_or_none()
    if rel is None:
        raise NotFound("Relazione non trovata.")
    persons.audit_person("update", person, object_type="person_relation", object_ids=[rel.id])
    today = clock.today_rome()
    end = valid_to or today
    if rel.valid_to is not None and rel.valid_to <= today:
        raise Conflict("La relazione è già terminata.")
    if rel.valid_from is not None and end < rel.valid_from:
        raise Invalid("valid_to", "non può precedere l'inizio della validità")
    rel.valid_to = end
    await session.flush()
    versions = await history.versions(session, entity_type="person_relation", entity_id=rel.id)
    await history.record(session, entity_type="person_relation", entity_id=rel.id,
                         version=(versions[-1].version + 1) if versions else 1, action="end",
                         data={"state": history.snapshot(rel)}, actor_id=principal.user_id)
    return rel


def relation_view(rel: PersonRelation) -> dict[str, Any]:
    out = history.snapshot(rel)
    out.update(kind_label=RELATION_LABELS.get(rel.kind, rel.kind), active=relation_is_active(rel),
               legal_representative=represents(rel),
               contacts=rel.contacts or {}, created_at=rel.created_at)
    return out


async def legal_representatives(session, person_id: uuid.UUID,
                                scope: DecreeScope = DecreeScope.care_health) -> list[PersonRelation]:
    """The person's active legal representatives in `scope` (a parent, a tutore, an AdS whose decree covers it),
    with no access check: for services that already hold the person's case (an offer of a place to notify)."""
    rows = (await session.execute(sa.select(PersonRelation).where(
        PersonRelation.person_id == person_id, PersonRelation.kind.in_(sorted(LEGAL_REPRESENTATIVE_KINDS)))
        .order_by(PersonRelation.id))).scalars()
    return [r for r in rows if relation_is_active(r) and represents(r, scope)]


async def relation_record(session, relation_id: uuid.UUID) -> PersonRelation | None:
    """A relation row, with no access check: for services that already hold the person's case (the legal
    representative who signs a care plan)."""
    return await session.get(PersonRelation, relation_id)
