"""Person search scoped by the caller's reach (issue 18): a user of one Ambito never gets another Ambito's persons,
a user who reaches persons through assignments only gets those, the search across all Ambiti reaches every one;
and the plan of the scoped search puts the Ambito in the trigram index's condition (0046), not in a filter."""
from __future__ import annotations

import sqlalchemy as sa

from bench.persons import explain_exact_name, explain_fuzzy, explain_regional_cf
from domain.registry import queries
from domain.registry.models import Person, PersonStatus
from domain.registry.policy import active
from domain.security.models import Role
from tests.domain.security.access_setup import assign, person_with_cartella, user_and_principal
from tests.factories.cartelle import create_person
from tests.support import org

NAME = {"surname": "Bonizzi", "given_name": "Teresa"}


async def _namesakes(session) -> dict[str, Person]:
    """The same name in three comuni of Crema and in the second test Ambito."""
    out = {c: await create_person(session, comune=c, **NAME)
           for c in ("comune-crema", "comune-offanengo", "comune-soncino")}
    out["cremona"] = await create_person(session, ambito="ambito-cremona-test", comune="comune-cremona", **NAME)
    return out


async def _found(session, principal, **criteria) -> set:
    return {r.id for r in (await queries.search_persons(session, principal=principal, **criteria)).items}


async def test_a_user_of_one_ambito_never_gets_the_persons_of_another(session):
    people = await _namesakes(session)
    _, crema = await user_and_principal(session, Role.comune_social_worker, "comune-crema")
    _, cremona = await user_and_principal(session, Role.comune_social_worker, "comune-cremona")
    in_crema = {people[c].id for c in ("comune-crema", "comune-offanengo", "comune-soncino")}
    assert await _found(session, crema, q="bonizzi teresa") == in_crema
    assert await _found(session, crema, q="bonizi teresa") == in_crema  # the typo tier too
    assert await _found(session, cremona, q="bonizzi teresa") == {people["cremona"].id}
    cf = people["cremona"].codice_fiscale
    assert await _found(session, crema, codice_fiscale=cf) == set()
    assert await _found(session, cremona, codice_fiscale=cf) == {people["cremona"].id}


async def test_a_user_reaching_persons_through_assignments_gets_only_those(session):
    people = await _namesakes(session)
    assigned, _ = await person_with_cartella(session, comune="comune-offanengo", **NAME)
    _, cartella = await person_with_cartella(session, comune="comune-soncino", **NAME)
    user, ets = await user_and_principal(session, Role.ets_operator, "ets-igea")
    await assign(session, cartella, reason="provider", legal_basis="contratto di servizio",
                 organisation_id=(await org(session, "ets-igea")).id)
    found = await _found(session, ets, q="bonizzi teresa")
    assert found == {cartella.person_id}
    assert not found & {assigned.id, *(p.id for p in people.values())}


async def test_the_search_across_all_ambiti_reaches_every_ambito(session):
    people = await _namesakes(session)
    rows, _ = await queries.fuzzy_page(session, [Person.status == PersonStatus.active.value], "bonizzi teresa", 20)
    assert {p.id for p in people.values()} <= {r.id for r in rows}
    ambiti = {r.ambito_id for r in (await session.execute(
        sa.select(Person.ambito_id).where(Person.id.in_([r.id for r in rows])))).all()}
    assert len(ambiti) == 2


async def test_the_regional_helpdesk_reaches_every_ambito_with_a_minimal_projection(session):
    people = await _namesakes(session)
    _, regional = await user_and_principal(session, Role.regional_operator, "regione-lombardia")
    res = await queries.regional_search(session, principal=regional, purpose=queries.RegionalPurpose.duplicato,
                                        reason="Verifica di una scheda doppia", q="bonizzi teresa")
    assert {p.id for p in people.values()} <= {r.id for r in res.items}
    assert {res.org_names[r.ambito_id] for r in res.items if r.id in {p.id for p in people.values()}} == {
        (await org(session, "ambito-crema")).name, (await org(session, "ambito-cremona-test")).name}
    shown = set(res.items[0]._fields) - {"word_similarity", "similarity"}
    assert shown == {"id", "ambito_id", "surname", "given_name", "sex", "birth_date", "residence_comune_id"}
    assert res.codice_fiscale is None
    # by codice fiscale: the exact person, whatever its Ambito, and the codice fiscale echoed
    cf = people["cremona"].codice_fiscale
    res = await queries.regional_search(session, principal=regional, purpose=queries.RegionalPurpose.cambio_ambito,
                                        reason="Trasferimento da Cremona", codice_fiscale=cf)
    assert [r.id for r in res.items] == [people["cremona"].id] and res.codice_fiscale == cf


async def test_the_thresholds_as_plain_comparisons_find_the_same_rows_in_the_same_order(session):
    """With a birth date the regional search leaves the trigram index aside (trigram_index=False): same answer."""
    from datetime import date

    born = date(1943, 7, 14)
    for n, (ambito, comune) in enumerate([("ambito-crema", "comune-crema"), ("ambito-cremona-test", "comune-cremona"),
                                          ("ambito-crema", "comune-soncino")]):
        await create_person(session, ambito=ambito, comune=comune, surname="Bonizzi", given_name=f"Teresa {n}",
                            birth_date=born)
    await create_person(session, comune="comune-crema", surname="Bonizzoni", given_name="Carla", birth_date=born)
    where = [queries.REGIONAL_ACTIVE, Person.birth_date == born]
    for q in ("bonizzi", "bonizi", "bonizzoni carla", "carla"):
        pages = [await queries.fuzzy_page(session, where, q, 2, columns=queries.REGIONAL_COLUMNS, trigram_index=t)
                 for t in (True, False)]
        assert [[r.id for r in rows] for rows, _ in pages][0] == [[r.id for r in rows] for rows, _ in pages][1], q
        assert pages[0][0], q


async def test_only_the_regional_role_searches_across_ambiti(session):
    import pytest

    from domain.kernel.errors import Forbidden

    await _namesakes(session)
    for role, code in ((Role.data_steward, "ambito-crema"), (Role.comune_social_worker, "comune-crema"),
                       (Role.system_admin, "regione-lombardia")):
        _, principal = await user_and_principal(session, role, code)
        with pytest.raises(Forbidden):
            await queries.regional_search(session, principal=principal, purpose=queries.RegionalPurpose.duplicato,
                                          reason="Verifica di una scheda doppia", q="bonizzi teresa")


def _index_conditions(plan: list[str]) -> list[str]:
    return [line.strip() for line in plan if "Index Cond" in line]


async def test_the_scoped_search_reads_the_ambito_from_the_trigram_index(fresh_db):
    """On a seeded registry of three Ambiti with its statistics, the plan the planner picks by itself."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from deploy.seed import synthetic
    from domain.kernel.db import make_engine
    from domain.security.principal import load_principal
    from tests.support import make_user

    report = await synthetic.seed(fresh_db["MIGRATION_DATABASE_URL"], persons=30_000, ambiti=3, quiet=True)
    largest = max(report.by_ambito, key=report.by_ambito.__getitem__)
    engine = make_engine(fresh_db["DATABASE_URL"], pool_size=1)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            comune = (await session.execute(sa.text(
                "select c.code from organisation c join organisation a on a.id = c.ambito_id "
                "where a.code = :a and c.kind = 'comune' order by c.code limit 1"), {"a": largest})).scalar_one()
            p = await load_principal(session, str((await make_user(session, Role.comune_social_worker, comune)).id))
            surname = (await session.execute(sa.select(Person.surname).where(Person.ambito_id == p.ambito_id)
                                             .limit(1))).scalar_one().lower()
            plan = await explain_fuzzy(session, [active(p)], surname)
            text = "\n".join(plan)
            assert "Bitmap Index Scan on ix_person_ambito_name_trgm" in text, text
            [cond] = _index_conditions(plan)
            assert "ambito_id" in cond and "name_search" in cond, text

            # The regional look-up by codice fiscale probes uq_person_cf (ambito_id, codice_fiscale) without the
            # Ambito: a skip scan over the Ambiti (PostgreSQL 18), no index of its own.
            cf = (await session.execute(sa.select(Person.codice_fiscale).where(Person.codice_fiscale.is_not(None))
                                        .limit(1))).scalar_one()
            plan = await explain_regional_cf(session, cf)
            assert "uq_person_cf" in "\n".join(plan), plan
            # A surname with its birth date: the persons born that day, through ix_person_birth, not the trigrams.
            born, name = (await session.execute(sa.select(Person.birth_date, Person.surname)
                                                .where(Person.birth_date.is_not(None)).limit(1))).one()
            plan = "\n".join(await explain_fuzzy(session, [queries.REGIONAL_ACTIVE, Person.birth_date == born],
                                                 name.lower(), queries.REGIONAL_COLUMNS, trigram_index=False))
            assert "ix_person_birth" in plan and "trgm" not in plan, plan
            # A full name: the exact name's page through its btree, every Ambito in one probe.
            full = (await session.execute(sa.select(Person.name_search).limit(1))).scalar_one()
            plan = "\n".join(await explain_exact_name(session, full))
            assert "ix_person_name_exact" in plan, plan

            # Across all Ambiti the same index serves the trigrams alone (at 30,000 rows a sequential scan costs
            # less, so it is switched off here; at a million rows the planner takes the index by itself).
            await session.execute(sa.text("set local enable_seqscan = off"))
            regional = await explain_fuzzy(session, [Person.status == PersonStatus.active.value], surname)
            text = "\n".join(regional)
            assert "Bitmap Index Scan on ix_person_ambito_name_trgm" in text, text
            [cond] = _index_conditions(regional)
            assert "name_search" in cond and "ambito_id" not in cond, text

            await session.rollback()
    finally:
        await engine.dispose()
