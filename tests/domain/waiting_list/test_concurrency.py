"""A bed is never offered to two people at once and nobody holds two open offers, under concurrent offers and
replies from separate connections at a real Postgres (a database from the template, committed rows), many rounds.

Each round declares free beds at two units of the same operator (every applicant chose both), fires offers for
both units at once, then races two acceptances and a refusal on every open offer. After each phase the database
must hold: at most one open offer per bed and per person, at most one accepted offer per bed, every accepted
offer's bed occupied and its entry admitted, nobody admitted twice. Every call either succeeds or is refused as
a domain error (409 or 422): never a database error.
"""
from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from domain.kernel import clock
from domain.kernel.errors import Conflict, DomainError, Invalid
from domain.security.models import Role
from domain.security.principal import load_principal
from domain.waiting_list import offers
from domain.waiting_list.models import WaitingListBed, WaitingListChoice, WaitingListEntry
from tests.domain.waiting_list.setup import unit
from tests.factories.registry import insert_person
from tests.support import make_user, org

ROUNDS = 12
APPLICANTS = 60
BEDS_PER_UNIT = 3


async def _setup(engine) -> dict:
    rnd = random.Random(11)
    async with AsyncSession(engine, expire_on_commit=False) as s:
        op = await make_user(s, Role.rsa_operator, "op-fbc", username="cc.fbc")
        sw = await make_user(s, Role.comune_social_worker, "comune-offanengo", username="cc.sw")
        x, x2 = await unit(s, "rsa-fbc-crema-1"), await unit(s, "rsa-fbc-crema-2")
        amb, comune = await org(s, "ambito-crema"), await org(s, "comune-offanengo")
        today = clock.today_rome()
        for i in range(APPLICANTS):
            p = await insert_person(s, comune="comune-offanengo")
            listed = today - timedelta(days=rnd.randint(0, 400))
            e = WaitingListEntry(ambito_id=amb.id, person_id=p.id, comune_id=comune.id, udo_type="rsa",
                                 state="listed", applicant="person", application_date=listed - timedelta(days=20),
                                 listing_date=listed, listed_at=clock.now(), barthel=rnd.choice(range(0, 101, 5)),
                                 caregiver=rnd.choice(["none", "present", "overloaded"]),
                                 lives_alone=rnd.random() < 0.4, urgency="confirmed" if i % 7 == 0 else "none")
            s.add(e)
            await s.flush()
            s.add_all([WaitingListChoice(entry_id=e.id, unit_id=x.id, rank=1),
                       WaitingListChoice(entry_id=e.id, unit_id=x2.id, rank=2)])
        await s.commit()
        return {"op": op.id, "sw": sw.id, "units": [x.id, x2.id], "ambito": amb.id}


async def _call(engine, user_id, fn, **kw):
    """One service call in its own connection and transaction: the result, or the domain error that refused it."""
    async with AsyncSession(engine, expire_on_commit=False) as s:
        principal = await load_principal(s, str(user_id))
        try:
            out = await fn(s, principal=principal, **kw)
            await s.commit()
            return out
        except DomainError as e:
            await s.rollback()
            return e


async def _declare(engine, ids, n: int) -> None:
    async with AsyncSession(engine) as s:
        for unit_id in ids["units"]:
            for _ in range(n):
                s.add(WaitingListBed(ambito_id=ids["ambito"], unit_id=unit_id, state="free", declared_by=ids["op"]))
        await s.commit()


INVARIANTS = {
    "a bed with two open offers": "select bed_id from waiting_list_offer where state = 'open' group by bed_id "
                                  "having count(*) > 1",
    "a person with two open offers": "select person_id from waiting_list_offer where state = 'open' "
                                     "group by person_id having count(*) > 1",
    "a bed accepted twice": "select bed_id from waiting_list_offer where state = 'accepted' group by bed_id "
                            "having count(*) > 1",
    "an accepted offer on a bed not occupied": "select o.id from waiting_list_offer o join waiting_list_bed b "
                                               "on b.id = o.bed_id where o.state = 'accepted' and b.state <> "
                                               "'occupied'",
    "an accepted offer whose entry is not admitted": "select o.id from waiting_list_offer o join "
                                                     "waiting_list_entry e on e.id = o.entry_id where o.state = "
                                                     "'accepted' and e.state <> 'admitted'",
    "an occupied bed without its acceptance": "select b.id from waiting_list_bed b where b.state = 'occupied' and "
                                              "not exists (select 1 from waiting_list_offer o where o.bed_id = "
                                              "b.id and o.state = 'accepted')",
    "a person admitted twice": "select person_id from waiting_list_entry where state = 'admitted' "
                               "group by person_id having count(*) > 1",
    "an open offer to an entry not listed": "select o.id from waiting_list_offer o join waiting_list_entry e on "
                                            "e.id = o.entry_id where o.state = 'open' and e.state <> 'listed'",
}


async def _check(engine, where: str) -> None:
    async with engine.connect() as c:
        for name, sql in INVARIANTS.items():
            rows = (await c.execute(sa.text(sql))).all()
            assert not rows, f"{where}: {name}: {rows}"


def _only_domain_refusals(results, where: str) -> list:
    for r in results:
        assert not isinstance(r, BaseException) or isinstance(r, (Conflict, Invalid)), f"{where}: {r!r}"
    return [r for r in results if not isinstance(r, BaseException)]


@pytest.mark.timeout(600)
async def test_concurrent_offers_and_acceptances_keep_one_bed_one_person(fresh_db):
    engine = create_async_engine(fresh_db["DATABASE_URL"], pool_size=12, max_overflow=4)
    try:
        ids = await _setup(engine)
        accepted_total = made_total = 0
        for rnd in range(ROUNDS):
            await _declare(engine, ids, BEDS_PER_UNIT)
            # more offers than beds, for both units at once: they race for the same beds and the same people
            calls = [_call(engine, ids["op"], offers.offer, unit_id=u) for u in ids["units"]
                     for _ in range(BEDS_PER_UNIT + 2)]
            made = _only_domain_refusals(await asyncio.gather(*calls, return_exceptions=True), f"round {rnd} offers")
            made_total += len(made)
            assert len({o.bed_id for o in made}) == len(made) and len({o.person_id for o in made}) == len(made)
            await _check(engine, f"round {rnd} after the offers")
            # each open offer: two acceptances (operator and comune) and a refusal race; exactly one wins
            races = []
            for o in made:
                races += [_call(engine, ids["op"], offers.accept, offer_id=o.id),
                          _call(engine, ids["sw"], offers.accept, offer_id=o.id),
                          _call(engine, ids["op"], offers.refuse, offer_id=o.id, reason="Gara")]
            replies = await asyncio.gather(*races, return_exceptions=True)
            won = _only_domain_refusals(replies, f"round {rnd} replies")
            assert len(won) == len(made), f"round {rnd}: {len(won)} replies won for {len(made)} offers"
            accepted_total += sum(1 for o in won if o.state == "accepted")
            await _check(engine, f"round {rnd} after the replies")
        assert made_total >= ROUNDS * BEDS_PER_UNIT and accepted_total > 0  # the races did happen
    finally:
        await engine.dispose()


async def test_the_database_itself_refuses_a_second_open_offer_for_a_bed_or_a_person(session):
    """The guarantee does not rest on the service alone: the partial unique indexes refuse the rows."""
    from sqlalchemy.exc import IntegrityError

    from domain.waiting_list.models import WaitingListOffer

    op = await make_user(session, Role.rsa_operator, "op-fbc")
    x = await unit(session, "rsa-fbc-crema-1")
    amb = await org(session, "ambito-crema")
    people, entries = [], []
    for _ in range(2):
        p = await insert_person(session, comune="comune-offanengo")
        e = WaitingListEntry(ambito_id=amb.id, person_id=p.id, udo_type="rsa", state="listed", applicant="person",
                             application_date=clock.today_rome())
        session.add(e)
        people.append(p)
        entries.append(e)
    beds = [WaitingListBed(ambito_id=amb.id, unit_id=x.id, declared_by=op.id) for _ in range(2)]
    session.add_all(beds)
    await session.flush()

    def offer(bed, i):
        return WaitingListOffer(ambito_id=amb.id, bed_id=bed.id, unit_id=x.id, entry_id=entries[i].id,
                                person_id=people[i].id, position=1, score=50)

    session.add(offer(beds[0], 0))
    await session.flush()
    for bed, i in ((beds[0], 1), (beds[1], 0)):  # the same bed to another person; the same person another bed
        with pytest.raises(IntegrityError):
            async with session.begin_nested():
                session.add(offer(bed, i))
                await session.flush()
