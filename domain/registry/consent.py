"""Consent to care and to sharing, given by the person or their legal representative."""
from __future__ import annotations

import uuid
from datetime import date, timedelta

import sqlalchemy as sa

from domain.kernel import calendar, clock, events
from domain.kernel.errors import Conflict, Invalid, NotFound
from domain.kernel.validity import active_sql, row_active_on
from domain.registry import policy, relations
from domain.registry.models import (
    CONSENT_PURPOSE_LABELS,
    AssignmentReason,
    Cartella,
    CartellaAssignment,
    Consent,
    DecreeScope,
    GrantorKind,
    Person,
    PersonRelation,
    RelationKind,
)
from domain.security import audit
from schemas.access import ConsentCreate

EARLIEST_CONSENT = date(1900, 1, 1)
GRANTOR_RELATION = {
    GrantorKind.parent_responsibility: RelationKind.parent_responsibility,
    GrantorKind.tutore: RelationKind.tutore,
    GrantorKind.ads: RelationKind.ads,
}


def representative_problem(rel: PersonRelation | None, *, person_id: uuid.UUID, grantor_kind: GrantorKind | str,
                           on: date) -> str | None:
    """Why `rel` cannot carry a consent given by a representative of this kind on `on` (None when it can).
    Relations are valid on the half-open period [valid_from, valid_to): on valid_to they no longer apply."""
    expected = GRANTOR_RELATION[GrantorKind(grantor_kind)]
    if rel is None or rel.person_id != person_id or rel.kind != expected:
        return f"nessuna relazione di tipo {expected.value} per questa persona"
    if not row_active_on(rel, on):
        return "la relazione non è in vigore"
    if not relations.represents(rel, DecreeScope.care_health):
        return "il decreto dell'amministratore di sostegno non prevede la rappresentanza per cura e salute"
    return None


async def person_in_full_scope(session, principal, person_id: uuid.UUID) -> Person:
    """The person, if the principal may work on their case (full projection); else 404/403."""
    person = await session.get(Person, person_id)
    if person is None:
        raise NotFound("Persona non trovata.")
    access = await policy.person_access(session, principal, person.id, person.ambito_id)
    if access.consent_missing:
        raise policy.ConsentRequired("Consenso della persona assente o revocato per questa finalità.")
    if access.projection != "full":
        raise NotFound("Persona non trovata.")
    return person


def is_active(c: Consent, today: date | None = None) -> bool:
    """Not revoked and within its period (its basis is checked by `in_force`)."""
    today = today or clock.today_rome()
    return c.revoked_at is None and row_active_on(c, today)


async def in_force(session, consent_id: uuid.UUID) -> bool:
    """The consent is in force today, its basis included (policy.consent_in_force): the check plan activation
    and agreement make, the same one reads make."""
    return bool((await session.execute(sa.select(sa.exists().where(
        Consent.id == consent_id, policy.consent_in_force())))).scalar())


async def _representation_problem(session, person: Person, today: date) -> str | None:
    """Why an adult cannot consent alone: an active tutore, or an AdS whose decree covers care and health."""
    rels = (await session.execute(sa.select(PersonRelation).where(
        PersonRelation.person_id == person.id,
        PersonRelation.kind.in_([RelationKind.tutore.value, RelationKind.ads.value])))).scalars().all()
    for rel in rels:
        if row_active_on(rel, today) and relations.represents(rel, DecreeScope.care_health):
            who = "un tutore" if rel.kind == RelationKind.tutore.value else "un amministratore di sostegno"
            return (f"la persona ha {who} che la rappresenta per cura e salute: il consenso lo presta il "
                    "rappresentante")
    return None


async def grant(session, *, principal, person_id: uuid.UUID, data: ConsentCreate) -> Consent:
    person = await person_in_full_scope(session, principal, person_id)
    today = clock.today_rome()
    if data.valid_to is not None and data.valid_to <= data.valid_from:
        raise Invalid("valid_to", "deve seguire l'inizio della validità (è il primo giorno in cui il consenso "
                                  "non vale più)")
    if person.date_of_death is not None:
        raise Invalid("person_id", "la persona risulta deceduta")
    earliest = max(person.birth_date or EARLIEST_CONSENT, EARLIEST_CONSENT)
    if not earliest <= data.valid_from <= today + timedelta(days=366):
        raise Invalid("valid_from", f"deve cadere tra il {earliest:%d/%m/%Y} e un anno da oggi")
    age = calendar.age_on(person.birth_date, today)
    if data.grantor_kind == GrantorKind.self:
        if data.grantor_relation_id is not None:
            raise Invalid("grantor_relation_id", "non previsto quando il consenso è prestato dalla persona")
        if age is not None and age < 18:
            raise Invalid("grantor_kind", "una persona minorenne non può prestare il consenso da sola")
        problem = await _representation_problem(session, person, today)
        if problem:
            raise Invalid("grantor_kind", problem)
    else:
        if data.grantor_relation_id is None:
            raise Invalid("grantor_relation_id", "indicare la relazione di chi presta il consenso")
        rel = await session.get(PersonRelation, data.grantor_relation_id)
        problem = representative_problem(rel, person_id=person.id, grantor_kind=data.grantor_kind, on=today)
        if problem:
            raise Invalid("grantor_relation_id", problem)
        if data.grantor_kind == GrantorKind.parent_responsibility and age is not None and age >= 18:
            raise Invalid("grantor_kind", "la persona è maggiorenne: il genitore non può prestare il consenso")
    consent = Consent(person_id=person.id, purpose=data.purpose, grantor_kind=data.grantor_kind,
                      grantor_relation_id=data.grantor_relation_id, valid_from=data.valid_from,
                      valid_to=data.valid_to, scope_note=data.scope_note, document_ref=data.document_ref,
                      recorded_by=principal.user_id, recorded_at=clock.now())
    session.add(consent)
    await session.flush()
    audit.record(action="create", object_type="consent", object_ids=[consent.id], person_ids=[person.id],
                 purpose=str(data.purpose))
    await _changed(session, consent, "granted")
    return consent


async def _changed(session, consent: Consent, change: str) -> None:
    await events.publish(session, "consent.changed", {
        "consent_id": str(consent.id), "person_id": str(consent.person_id), "purpose": str(consent.purpose),
        "change": change}, dedup_key=f"consent.changed:{consent.id}:{change}")


async def revoke(session, *, principal, person_id: uuid.UUID, consent_id: uuid.UUID, reason: str) -> Consent:
    person = await person_in_full_scope(session, principal, person_id)
    consent = await session.get(Consent, consent_id, with_for_update=True)
    if consent is None or consent.person_id != person.id:
        raise NotFound("Consenso non trovato.")
    if consent.revoked_at is not None:
        raise Conflict("Il consenso è già stato revocato.")
    consent.revoked_at = clock.now()
    consent.revoked_by = principal.user_id
    consent.revocation_reason = reason
    await session.flush()
    audit.record(action="revoke", object_type="consent", object_ids=[consent.id], person_ids=[person.id],
                 purpose=str(consent.purpose))
    await _changed(session, consent, "revoked")
    return consent


async def list_for_person(session, *, principal, person_id: uuid.UUID) -> list[Consent]:
    person = await person_in_full_scope(session, principal, person_id)
    rows = (await session.execute(sa.select(Consent).where(Consent.person_id == person.id)
                                  .order_by(Consent.recorded_at.desc(), Consent.id))).scalars().all()
    audit.record(action="read", object_type="consent", object_ids=[c.id for c in rows], person_ids=[person.id],
                 result_count=len(rows))
    return list(rows)


def to_public(c: Consent) -> dict:
    data = {k: getattr(c, k) for k in Consent.model_fields}  # (model_dump warns on enum columns read as str)
    return {**data, "purpose": str(c.purpose), "grantor_kind": str(c.grantor_kind),
            "purpose_label": CONSENT_PURPOSE_LABELS[str(c.purpose)], "active": is_active(c)}


# ---------------------------------------------------------------- readers for the contexts above (care_plan)
async def consent_record(session, consent_id: uuid.UUID) -> Consent | None:
    """The consent row, with no access check: for services that already hold the person's case (the care plan
    links and re-checks the consent it runs on with `is_active`)."""
    return await session.get(Consent, consent_id)


async def in_force_for(session, person_id: uuid.UUID, purpose: str) -> list[Consent]:
    """The person's consents for this purpose in force today (`policy.consent_in_force`, the same check as
    `in_force`), oldest first, with no access check: the care plan takes the one consent to care when its
    agreement names none."""
    return list((await session.execute(
        sa.select(Consent).where(Consent.person_id == person_id, Consent.purpose == str(purpose),
                                 policy.consent_in_force())
        .order_by(Consent.valid_from, Consent.recorded_at, Consent.id))).scalars())


# ---------------------------------------------------------------- sharing outside the Ambito (the outbox to ASST)
# Assignments whose legal basis is not a basis for sharing with ASST: a provider's basis covers delivering its
# intervention, a break-glass grant one person's emergency access.
_NOT_SHARING_REASONS = (AssignmentReason.provider.value, AssignmentReason.break_glass.value)


async def sharing_basis(session, person_id: uuid.UUID, purpose: str) -> str | None:
    """What allows sending the person's data out for `purpose` (share_asst: to ASST), as a short text for the
    record, or None: a consent for that purpose in force today (`policy.consent_in_force`, the check reads make),
    else a legal basis recorded on an active assignment of one of the person's cartelle by the joint-care flows
    (PUA referral, VMD, case manager of the plan: the integrated presa in carico with ASST). No principal: the
    system decides, and the caller records the answer with the message."""
    consent = (await session.execute(
        sa.select(Consent.id).where(Consent.person_id == person_id, Consent.purpose == str(purpose),
                                    policy.consent_in_force())
        .order_by(Consent.valid_from, Consent.id).limit(1))).scalar_one_or_none()
    if consent is not None:
        return f"consenso {purpose} {consent}"
    basis = (await session.execute(
        sa.select(CartellaAssignment.legal_basis)
        .join(Cartella, Cartella.id == CartellaAssignment.cartella_id)
        .where(Cartella.person_id == person_id, CartellaAssignment.legal_basis.is_not(None),
               CartellaAssignment.reason.not_in(_NOT_SHARING_REASONS), active_sql(CartellaAssignment, clock.now()))
        .order_by(CartellaAssignment.valid_from, CartellaAssignment.id).limit(1))).scalar_one_or_none()
    return f"base giuridica: {basis}"[:300] if basis else None
