"""Break-glass: a user whose role allows it opens one person outside its scope, with a mandatory reason, for a
limited time. The grant ends by itself (the row filter compares expires_at with the clock), it is audited, and
the owning comuni see it in their work queue."""
from __future__ import annotations

import uuid
from datetime import timedelta

import sqlalchemy as sa

from domain.kernel import clock, work_items
from domain.kernel.errors import Conflict, Forbidden, Invalid, NotFound
from domain.registry.models import BreakGlassGrant, Cartella, CartellaStatus, Person
from domain.security import audit, scopes
from domain.security.models import Role

MIN_HOURS = 0.25  # a grant shorter than a quarter of an hour is a typing error, not an emergency


def _config() -> dict:
    return scopes.access_config()["break_glass"]


async def open_grant(session, *, principal, person_id: uuid.UUID, reason: str,
                     hours: float | None = None) -> BreakGlassGrant:
    cfg = _config()
    allowed = {Role(r) for r in cfg["roles"]}
    if not principal.roles & allowed:
        raise Forbidden("Il ruolo non consente l'accesso straordinario.")
    hours = float(cfg["default_hours"]) if hours is None else hours
    if not MIN_HOURS <= hours <= float(cfg["max_hours"]):
        raise Invalid("hours", f"tra {MIN_HOURS:g} e {cfg['max_hours']} ore")
    if len(reason.strip()) < 15:
        raise Invalid("reason", "motivo obbligatorio (almeno 15 caratteri)")
    person = await session.get(Person, person_id)
    if person is None or person.ambito_id != principal.ambito_id:
        raise NotFound("Persona non trovata.")
    now = clock.now()
    active = (await session.execute(sa.select(BreakGlassGrant.id).where(
        BreakGlassGrant.user_id == principal.user_id, BreakGlassGrant.person_id == person.id,
        BreakGlassGrant.ended_at.is_(None), BreakGlassGrant.expires_at > now))).first()
    if active:
        raise Conflict("È già attivo un accesso straordinario a questa persona.", existing_id=str(active[0]))
    grant = BreakGlassGrant(user_id=principal.user_id, person_id=person.id, reason=reason.strip(), started_at=now,
                            expires_at=now + timedelta(hours=hours))
    session.add(grant)
    await session.flush()
    owners = (await session.execute(sa.select(Cartella.owning_comune_id).distinct().where(
        Cartella.person_id == person.id, Cartella.status == CartellaStatus.open)
        .order_by(Cartella.owning_comune_id))).scalars().all()
    for comune_id in owners:
        # The owning comune is told who opened the person and why; the item carries no personal data in its title.
        await work_items.create(
            session, kind="security.break_glass", title="Accesso straordinario a una persona in carico",
            source_type="break_glass_grant", source_id=grant.id, ambito_id=principal.ambito_id,
            assignee_org_id=comune_id, person_id=person.id, due_at=grant.expires_at,
            dedup_key=f"break_glass:{grant.id}:{comune_id}",
            data={"by": principal.username, "reason": grant.reason, "expires_at": grant.expires_at.isoformat()},
        )
    audit.record(action="break_glass", object_type="person", object_ids=[person.id], person_ids=[person.id],
                 legal_basis="accesso straordinario: " + grant.reason[:150], break_glass=True)
    return grant


async def end_grant(session, *, principal, grant_id: uuid.UUID) -> BreakGlassGrant:
    grant = await session.get(BreakGlassGrant, grant_id, with_for_update=True)
    if grant is None or grant.user_id != principal.user_id:
        raise NotFound("Accesso straordinario non trovato.")
    if grant.ended_at is not None or grant.expires_at <= clock.now():
        raise Conflict("L'accesso straordinario è già terminato.")
    grant.ended_at = clock.now()
    await session.flush()
    audit.record(action="break_glass_end", object_type="person", object_ids=[grant.person_id],
                 person_ids=[grant.person_id])
    return grant


async def my_grants(session, *, principal) -> list[BreakGlassGrant]:
    rows = (await session.execute(sa.select(BreakGlassGrant).where(BreakGlassGrant.user_id == principal.user_id)
                                  .order_by(BreakGlassGrant.started_at.desc()).limit(100))).scalars().all()
    audit.record(action="list", object_type="break_glass_grant", object_ids=[g.id for g in rows],
                 person_ids=[g.person_id for g in rows], result_count=len(rows))
    return list(rows)


def is_active(g: BreakGlassGrant) -> bool:
    return g.ended_at is None and g.expires_at > clock.now()
