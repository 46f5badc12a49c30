"""Shared set-up for the access-control tests: principals, persons with cartelle, consents, teams, relations."""
from __future__ import annotations

import uuid
from datetime import date, timedelta

import sqlalchemy as sa

from domain.kernel import clock
from domain.registry.models import (
    Area,
    Cartella,
    CartellaAssignment,
    Consent,
    GrantorKind,
    Person,
    PersonRelation,
    RelationKind,
)
from domain.security.models import AppUser, AuditEvent, Role, Team, TeamMember, TeamType
from domain.security.principal import Principal, load_principal
from tests.factories.cartelle import create_assignment, create_cartella, create_person
from tests.support import make_user, org


async def principal_of(session, user: AppUser) -> Principal:
    return await load_principal(session, str(user.id))


async def user_and_principal(session, role: Role | str, org_code: str | list[str]) -> tuple[AppUser, Principal]:
    user = await make_user(session, role, org_code)
    return user, await principal_of(session, user)


async def person_with_cartella(session, *, comune: str = "comune-crema", ambito: str = "ambito-crema",
                               area: Area | str = Area.anziani, **kw) -> tuple[Person, Cartella]:
    person = await create_person(session, comune=comune, ambito=ambito, **kw)
    cartella = await create_cartella(session, person=person, area=area)
    return person, cartella


async def assign(session, cartella: Cartella, *, reason: str = "assessor", legal_basis: str | None = None,
                 **who) -> CartellaAssignment:
    return await create_assignment(session, cartella=cartella, reason=reason, legal_basis=legal_basis, **who)


async def add_consent(session, person: Person, purpose: str, *, recorded_by: uuid.UUID,
                      valid_from: date | None = None, valid_to: date | None = None) -> Consent:
    c = Consent(person_id=person.id, purpose=purpose, grantor_kind=GrantorKind.self,
                valid_from=valid_from or clock.today_rome() - timedelta(days=1), valid_to=valid_to,
                recorded_by=recorded_by, recorded_at=clock.now())
    session.add(c)
    await session.flush()
    return c


async def team_with(session, user: AppUser, org_code: str) -> Team:
    o = await org(session, org_code)
    team = Team(ambito_id=o.ambito_id, code=f"team-{uuid.uuid4().hex[:8]}", name="Équipe di prova",
                type=TeamType.vmd_equipe, organisation_id=o.id)
    session.add(team)
    await session.flush()
    session.add(TeamMember(team_id=team.id, user_id=user.id, organisation_id=o.id, valid_from=date(2020, 1, 1)))
    await session.flush()
    return team


async def relation(session, person: Person, kind: RelationKind | str, *, valid_from: date | None = None,
                   valid_to: date | None = None, decree_scope: list[str] | None = None) -> PersonRelation:
    rel = PersonRelation(person_id=person.id, kind=RelationKind(kind), surname="Rossi", given_name="Anna",
                         valid_from=valid_from or date(2020, 1, 1), valid_to=valid_to,
                         decree_reference="R.G. 1/2020" if kind in ("ads", "tutore") else None,
                         decree_scope=list(decree_scope) if decree_scope is not None
                         else (["care_health"] if kind == "ads" else []))
    session.add(rel)
    await session.flush()
    return rel


async def audit_rows(session, request_id: str) -> list[AuditEvent]:
    """Audit rows of one request, read fresh (the rows of a failed request were committed elsewhere)."""
    return list((await session.execute(
        sa.select(AuditEvent).where(AuditEvent.request_id == request_id).order_by(AuditEvent.id)
        .execution_options(populate_existing=True))).scalars())


def years_ago(n: int, days: int = 0) -> date:
    today = clock.today_rome()
    return today.replace(year=today.year - n) - timedelta(days=days)


