"""Factories for cartelle and their assignments (factory-boy builds the row; the async helpers add and flush it).

    c = await create_cartella(session, person=p, area="anziani")              # owner: the person's residence
    a = await create_assignment(session, cartella=c, reason="team", team_id=t.id)
    p = await create_person(session, comune="comune-crema")                    # an adult by default

These bypass the service (no history rows, no owner rule): use the service when the behaviour is under test.
"""
from __future__ import annotations

import uuid

import factory
from sqlalchemy.ext.asyncio import AsyncSession

from domain.kernel import clock
from domain.registry.models import (
    Area,
    AssignmentReason,
    Cartella,
    CartellaAssignment,
    CartellaStatus,
    Person,
)
from tests.factories.registry import PersonFactory
from tests.support import org


class CartellaFactory(factory.Factory):
    class Meta:
        model = Cartella

    area = Area.anziani
    status = CartellaStatus.open
    opened_at = factory.LazyFunction(clock.now)
    version = 1


class CartellaAssignmentFactory(factory.Factory):
    class Meta:
        model = CartellaAssignment

    reason = AssignmentReason.assessor
    valid_from = factory.LazyFunction(clock.now)


async def create_person(session: AsyncSession, *, comune: str | None = "comune-crema", domicile: str | None = None,
                        ambito: str = "ambito-crema", **kw) -> Person:
    """A person in an Ambito, resident in `comune` (code) and domiciled in `domicile` (code), both optional."""
    amb = await org(session, ambito)
    kw.setdefault("residence_comune_id", (await org(session, comune)).id if comune else None)
    kw.setdefault("domicile_comune_id", (await org(session, domicile)).id if domicile else None)
    p = PersonFactory.build(ambito_id=amb.id, **kw)
    session.add(p)
    await session.flush()
    return p


async def create_cartella(session: AsyncSession, *, person: Person, area: Area | str = Area.anziani,
                          owning_comune_id: uuid.UUID | None = None, **kw) -> Cartella:
    c = CartellaFactory.build(ambito_id=person.ambito_id, person_id=person.id, area=Area(area),
                              owning_comune_id=owning_comune_id or person.residence_comune_id
                              or person.domicile_comune_id, **kw)
    session.add(c)
    await session.flush()
    return c


async def create_assignment(session: AsyncSession, *, cartella: Cartella,
                            reason: AssignmentReason | str = AssignmentReason.assessor, **kw) -> CartellaAssignment:
    a = CartellaAssignmentFactory.build(cartella_id=cartella.id, reason=AssignmentReason(reason), **kw)
    session.add(a)
    await session.flush()
    return a
