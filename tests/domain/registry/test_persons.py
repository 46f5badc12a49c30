"""Person registry service: registration rules, identifiers, corrections with history, death, relations."""
from __future__ import annotations

import uuid
from datetime import date

import pytest
import sqlalchemy as sa

from domain.kernel import events, history
from domain.kernel.errors import Conflict, Invalid, NotFound
from domain.kernel.models import Job
from domain.registry import persons, relations
from domain.registry.models import Person
from domain.security.principal import load_principal
from schemas.persons import PersonCreate, PersonUpdate, RelationCreate
from tests.factories.registry import encode_cf, insert_person, person_payload, relation_payload
from tests.support import make_user, org

DIED: list[dict] = []


@events.subscribe("person.died")
async def remember_death(session, payload):  # a real subscriber: publishing enqueues a job for it
    DIED.append(payload)


async def principal_for(session, role="comune_social_worker", org_code="comune-crema"):
    user = await make_user(session, role, org_code)
    return await load_principal(session, str(user.id))


async def count_persons(session) -> int:
    return (await session.execute(sa.select(sa.func.count()).select_from(Person))).scalar_one()


def errors_of(exc) -> dict[str, str]:
    return {e["field"]: e["reason"] for e in exc.value.errors}


async def create(session, p, **kw):
    return await persons.create_person(session, principal=p, data=PersonCreate(**person_payload(**kw)))


# ---------------------------------------------------------------- registration
async def test_register_with_codice_fiscale_fills_what_the_code_says(session):
    p = await principal_for(session)
    cf = encode_cf("Ferrari", "Giulia", "F", date(1942, 5, 17), "Crema")
    crema = await org(session, "comune-crema")
    res = await persons.create_person(session, principal=p, data=PersonCreate(
        codice_fiscale=cf.lower(), surname="  Ferrari ", given_name="Giulia", residence_comune_id=crema.id,
        contacts={"mobile": "+39 333 1112223", "email": "Giulia@Example.it"}))
    person = res.person
    assert (person.codice_fiscale, person.sex, person.birth_date, person.birth_place_code) == (
        cf, "F", date(1942, 5, 17), "D142")
    assert person.birth_place_name == "Crema" and person.surname == "Ferrari" and person.version == 1
    assert person.ambito_id == p.ambito_id and person.contacts == {"mobile": "+39 333 1112223",
                                                                   "email": "giulia@example.it"}
    rows = await history.versions(session, entity_type="person", entity_id=person.id)
    assert [(r.version, r.action, r.actor_id) for r in rows] == [(1, "create", p.user_id)]
    assert rows[0].data["state"]["codice_fiscale"] == cf


async def test_century_of_an_old_person_comes_from_the_given_birth_date(session):
    p = await principal_for(session)
    cf = encode_cf("Verdi", "Luigi", "M", date(1925, 4, 9), "Offanengo")
    res = await persons.create_person(session, principal=p, data=PersonCreate(
        codice_fiscale=cf, surname="Verdi", given_name="Luigi", birth_date=date(1925, 4, 9)))
    assert res.person.birth_date == date(1925, 4, 9)


async def test_identifier_is_required(session):
    p = await principal_for(session)
    before = await count_persons(session)
    with pytest.raises(Invalid) as e:
        await persons.create_person(session, principal=p, data=PersonCreate(surname="Rossi", given_name="Ada"))
    assert "codice_fiscale" in errors_of(e)
    assert await count_persons(session) == before


async def test_stp_eni_passport_and_provisional_identifiers(session):
    p = await principal_for(session)
    stp = await persons.create_person(session, principal=p, data=PersonCreate(
        surname="Amrani", given_name="Youssef", other_identifier_type="stp", other_identifier="stp0303210000123"))
    assert (stp.person.codice_fiscale, stp.person.other_identifier) == (None, "STP0303210000123")
    prov = await persons.create_person(session, principal=p, data=PersonCreate(
        surname="Sconosciuto", given_name="Uomo", other_identifier_type="provisional"))
    assert prov.person.other_identifier.startswith("PRV-") and len(prov.person.other_identifier) == 16
    with pytest.raises(Invalid) as e:
        await persons.create_person(session, principal=p, data=PersonCreate(
            surname="Popescu", given_name="Ion", other_identifier_type="eni", other_identifier="STP0303210000999"))
    assert "ENI" in errors_of(e)["other_identifier"]
    with pytest.raises(Conflict) as c:
        await persons.create_person(session, principal=p, data=PersonCreate(
            surname="Amrani", given_name="Y.", other_identifier_type="stp", other_identifier="STP0303210000123"))
    assert c.value.extra == {"existing_id": str(stp.person.id)}


async def test_duplicate_codice_fiscale_is_a_conflict_naming_only_the_existing_id(session):
    p = await principal_for(session)
    first = await create(session, p)
    before = await count_persons(session)
    body = {**person_payload(), "codice_fiscale": first.person.codice_fiscale, "surname": first.person.surname,
            "given_name": first.person.given_name, "sex": first.person.sex,
            "birth_date": first.person.birth_date.isoformat(), "birth_place_code": first.person.birth_place_code}
    with pytest.raises(Conflict) as e:
        await persons.create_person(session, principal=p, data=PersonCreate(**body))
    assert e.value.extra == {"existing_id": str(first.person.id)}
    assert await count_persons(session) == before


async def test_automated_path_returns_the_existing_person(session):
    p = await principal_for(session)
    first = await create(session, p)
    again = await persons.find_or_create_person(session, principal=p, data=PersonCreate(
        codice_fiscale=first.person.codice_fiscale, surname=first.person.surname,
        given_name=first.person.given_name), source="import")
    assert again.id == first.person.id


async def test_same_codice_fiscale_in_another_ambito_is_another_person(session):
    crema = await principal_for(session)
    cremona = await principal_for(session, org_code="comune-cremona")
    a = await create(session, crema)
    body = {k: getattr(a.person, k) for k in ("codice_fiscale", "surname", "given_name", "birth_date")}
    b = await persons.create_person(session, principal=cremona, data=PersonCreate(**body))
    assert b.person.id != a.person.id and b.person.ambito_id != a.person.ambito_id
    with pytest.raises(NotFound):
        await persons.get_person(session, principal=cremona, person_id=a.person.id)


@pytest.mark.parametrize("change, field", [
    ({"birth_date": "1950-03-05"}, "birth_date"),
    ({"sex": "F"}, "sex"),
    ({"birth_place_code": "G004"}, "birth_place_code"),
])
async def test_codice_fiscale_inconsistent_with_typed_data(session, change, field):
    p = await principal_for(session)
    body = person_payload(sex="M", birth_date="1950-03-04", birth_place="Crema")
    body.update(change)
    before = await count_persons(session)
    with pytest.raises(Invalid) as e:
        await persons.create_person(session, principal=p, data=PersonCreate(**body))
    assert field in errors_of(e) and "codice fiscale" in errors_of(e)[field]
    assert await count_persons(session) == before


async def test_invalid_checksum(session):
    p = await principal_for(session)
    body = person_payload()
    body["codice_fiscale"] = body["codice_fiscale"][:-1] + ("A" if body["codice_fiscale"][-1] != "A" else "B")
    with pytest.raises(Invalid) as e:
        await persons.create_person(session, principal=p, data=PersonCreate(**body))
    assert "controllo" in errors_of(e)["codice_fiscale"]


async def test_birth_date_in_the_future(session):
    p = await principal_for(session)
    with pytest.raises(Invalid) as e:
        await persons.create_person(session, principal=p, data=PersonCreate(
            surname="Futuro", given_name="Neo", birth_date=date(2026, 3, 3), other_identifier_type="provisional"))
    assert errors_of(e) == {"birth_date": "non può essere nel futuro"}


@pytest.mark.parametrize("code", ["asst-crema", "comune-cremona", None])
async def test_unknown_comune(session, code):
    p = await principal_for(session)
    comune_id = (await org(session, code)).id if code else uuid.uuid4()
    with pytest.raises(Invalid) as e:
        await create(session, p, residence_comune_id=comune_id, domicile_comune_id=comune_id)
    assert set(errors_of(e)) == {"residence_comune_id", "domicile_comune_id"}


async def test_fictitious_residence_means_homeless_and_needs_a_comune(session):
    p = await principal_for(session)
    crema = await org(session, "comune-crema")
    with pytest.raises(Invalid) as e:
        await create(session, p, fictitious_residence=True)
    assert "residence_comune_id" in errors_of(e)
    with pytest.raises(Invalid) as e:
        await create(session, p, fictitious_residence=True, homeless=False, residence_comune_id=crema.id)
    assert "homeless" in errors_of(e)
    ok = await create(session, p, fictitious_residence=True, residence_comune_id=crema.id,
                      residence_address="Via della Casa Comunale 1", lives_alone=True)
    assert ok.person.homeless and ok.person.fictitious_residence and ok.person.lives_alone


# ---------------------------------------------------------------- read, update, history
async def test_update_bumps_version_and_keeps_history(session):
    p = await principal_for(session)
    person = (await create(session, p)).person
    offanengo = await org(session, "comune-offanengo")
    updated = await persons.update_person(session, principal=p, person_id=person.id, data=PersonUpdate(
        residence_comune_id=offanengo.id, residence_address="Via Roma 1", version=1))
    assert updated.version == 2 and updated.residence_comune_id == offanengo.id
    rows = await history.versions(session, entity_type="person", entity_id=person.id)
    assert [(r.version, r.action) for r in rows] == [(1, "create"), (2, "update")]
    assert rows[1].data["changed"]["residence_comune_id"]["to"] == str(offanengo.id)
    same = await persons.update_person(session, principal=p, person_id=person.id,
                                       data=PersonUpdate(residence_address="Via Roma 1"))
    assert same.version == 2  # nothing changed: no new version
    with pytest.raises(Conflict) as e:
        await persons.update_person(session, principal=p, person_id=person.id,
                                    data=PersonUpdate(lives_alone=True, version=1))
    assert e.value.extra["current_version"] == 2


async def test_update_to_a_registered_codice_fiscale_is_a_conflict(session):
    p = await principal_for(session)
    a = (await create(session, p)).person
    b = (await create(session, p)).person
    with pytest.raises(Conflict) as e:
        await persons.update_person(session, principal=p, person_id=b.id, data=PersonUpdate(
            codice_fiscale=a.codice_fiscale, surname=a.surname, given_name=a.given_name))
    assert e.value.extra == {"existing_id": str(a.id)}


async def test_update_cannot_empty_required_fields_or_break_consistency(session):
    p = await principal_for(session)
    person = (await create(session, p)).person
    with pytest.raises(Invalid) as e:
        await persons.update_person(session, principal=p, person_id=person.id, data=PersonUpdate(surname=None))
    assert e.value.field == "surname"
    other_sex = "F" if person.sex == "M" else "M"
    with pytest.raises(Invalid) as e:
        await persons.update_person(session, principal=p, person_id=person.id, data=PersonUpdate(sex=other_sex))
    assert "sex" in errors_of(e)


# ---------------------------------------------------------------- death
async def test_death_is_recorded_once_and_published(session):
    p = await principal_for(session)
    person = (await create(session, p, birth_date="1940-01-01")).person
    with pytest.raises(Invalid) as e:
        await persons.record_death(session, principal=p, person_id=person.id, date_of_death=date(1939, 12, 31))
    assert e.value.field == "date_of_death" and "nascita" in e.value.reason
    with pytest.raises(Invalid) as e:
        await persons.record_death(session, principal=p, person_id=person.id, date_of_death=date(2026, 3, 3))
    assert "futuro" in e.value.reason
    dead = await persons.record_death(session, principal=p, person_id=person.id, date_of_death=date(2026, 3, 1))
    assert dead.date_of_death == date(2026, 3, 1) and dead.version == 2
    jobs = (await session.execute(sa.select(Job).where(Job.kind.like("event:person.died:%")))).scalars().all()
    mine = [j for j in jobs if j.payload["payload"]["person_id"] == str(person.id)]
    assert mine and mine[0].payload["payload"]["date_of_death"] == "2026-03-01"
    with pytest.raises(Conflict):
        await persons.record_death(session, principal=p, person_id=person.id, date_of_death=date(2026, 3, 1))
    actions = [r.action for r in await history.versions(session, entity_type="person", entity_id=person.id)]
    assert actions == ["create", "death"]


# ---------------------------------------------------------------- relations
async def test_relations_registered_or_by_name(session):
    p = await principal_for(session)
    person = (await create(session, p)).person
    daughter = (await create(session, p)).person
    care = await relations.add_relation(session, principal=p, person_id=person.id, data=RelationCreate(
        **relation_payload("caregiver", registered=daughter, sole_caregiver=True, cohabiting=False)))
    fam = await relations.add_relation(session, principal=p, person_id=person.id,
                                     data=RelationCreate(**relation_payload("family_member")))
    assert care.related_person_id == daughter.id and care.sole_caregiver and care.valid_from == date(2026, 3, 2)
    assert fam.related_person_id is None and fam.surname and fam.contacts == {"mobile": "+39 333 1234567"}
    listed = await relations.list_relations(session, principal=p, person_id=person.id)
    assert [r.id for r in listed] == [care.id, fam.id]
    with pytest.raises(Conflict):  # a second sole caregiver
        await relations.add_relation(session, principal=p, person_id=person.id,
                                   data=RelationCreate(**relation_payload("caregiver", sole_caregiver=True)))
    with pytest.raises(Invalid) as e:
        await relations.add_relation(session, principal=p, person_id=person.id,
                                   data=RelationCreate(**relation_payload("family_member", sole_caregiver=True)))
    assert e.value.field == "sole_caregiver"


async def test_relation_input_errors(session):
    p = await principal_for(session)
    person = (await create(session, p)).person
    stranger = await insert_person(session, ambito="ambito-cremona-test", comune="comune-cremona")
    with pytest.raises(Invalid) as e:
        await relations.add_relation(session, principal=p, person_id=person.id,
                                   data=RelationCreate(**relation_payload("caregiver", registered=stranger)))
    assert e.value.field == "related_person_id"
    with pytest.raises(Invalid) as e:
        await relations.add_relation(session, principal=p, person_id=person.id, data=RelationCreate(kind="caregiver"))
    assert set(errors_of(e)) == {"surname", "given_name"}
    with pytest.raises(Invalid) as e:
        await relations.add_relation(session, principal=p, person_id=person.id,
                                   data=RelationCreate(**relation_payload("ads", decree_reference=None)))
    assert e.value.field == "decree_reference"
    with pytest.raises(Invalid) as e:
        await relations.add_relation(session, principal=p, person_id=person.id,
                                   data=RelationCreate(**relation_payload("caregiver", registered=person)))
    assert e.value.field == "related_person_id"


async def test_one_ads_or_tutore_at_a_time(session, clock):
    p = await principal_for(session)
    person = (await create(session, p)).person
    ads = await relations.add_relation(session, principal=p, person_id=person.id,
                                     data=RelationCreate(**relation_payload("ads", valid_from=date(2025, 6, 1))))
    assert ads.decree_reference and relations.relation_is_active(ads)
    with pytest.raises(Conflict) as e:
        await relations.add_relation(session, principal=p, person_id=person.id,
                                   data=RelationCreate(**relation_payload("tutore")))
    assert e.value.extra["existing_relation_id"] == str(ads.id)
    ended = await relations.end_relation(session, principal=p, person_id=person.id, relation_id=ads.id)
    assert ended.valid_to == date(2026, 3, 2) and not relations.relation_is_active(ended)
    with pytest.raises(Conflict):
        await relations.end_relation(session, principal=p, person_id=person.id, relation_id=ads.id)
    new = await relations.add_relation(session, principal=p, person_id=person.id,
                                     data=RelationCreate(**relation_payload("ads")))  # from today: no overlap
    assert relations.relation_is_active(new)
    active = await relations.list_relations(session, principal=p, person_id=person.id, active_only=True)
    assert [r.id for r in active] == [new.id]
    rel_history = await history.versions(session, entity_type="person_relation", entity_id=ads.id)
    assert [r.action for r in rel_history] == ["create", "end"]


async def test_the_database_also_refuses_two_overlapping_guardians(session):
    """The exclusion constraint backs the service rule (e.g. for bulk imports that bypass it)."""
    from sqlalchemy.exc import IntegrityError

    from domain.registry.models import PersonRelation

    person = await insert_person(session)
    session.add(PersonRelation(person_id=person.id, kind="ads", surname="A", given_name="B",
                               decree_reference="x", valid_from=date(2025, 1, 1)))
    await session.flush()
    with pytest.raises(IntegrityError) as e:
        async with session.begin_nested():
            session.add(PersonRelation(person_id=person.id, kind="tutore", surname="C", given_name="D",
                                       valid_from=date(2025, 6, 1), valid_to=date(2025, 12, 1)))
            await session.flush()
    assert "ex_relation_one_legal_guardian" in str(e.value)
    session.add(PersonRelation(person_id=person.id, kind="curatore", surname="E", given_name="F",
                               valid_from=date(2025, 6, 1)))  # other kinds are not exclusive
    await session.flush()
    n = (await session.execute(sa.select(sa.func.count()).select_from(PersonRelation)
                               .where(PersonRelation.person_id == person.id))).scalar_one()
    assert n == 2


async def test_concurrent_automated_registrations_of_one_code_give_one_person(fresh_db):
    """Two imports of the same new person at once: the unique index decides, the loser gets the winner's row."""
    import asyncio

    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    engine = create_async_engine(fresh_db["DATABASE_URL"])
    try:
        async with AsyncSession(engine, expire_on_commit=False) as s:
            user = await make_user(s, "comune_social_worker", "comune-crema")
            await s.commit()
        body = person_payload()
        gate = asyncio.Event()

        async def register():
            async with AsyncSession(engine, expire_on_commit=False) as s:
                p = await load_principal(s, str(user.id))
                await gate.wait()
                person = await persons.find_or_create_person(s, principal=p, data=PersonCreate(**body),
                                                             source="import")
                await s.commit()
                return person.id

        tasks = [asyncio.create_task(register()) for _ in range(2)]
        await asyncio.sleep(0.05)
        gate.set()
        a, b = await asyncio.gather(*tasks)
        assert a == b
        async with AsyncSession(engine) as s:
            n = (await s.execute(sa.select(sa.func.count()).select_from(Person)
                                 .where(Person.codice_fiscale == body["codice_fiscale"]))).scalar_one()
        assert n == 1
    finally:
        await engine.dispose()


async def test_fuzzy_search_pages_cover_both_tiers_in_order(session):
    """Tier A (word similarity ≥ 0.6) then tier B (similarity ≥ 0.3): walking the pages yields every match once,
    in the documented order, and nothing else."""
    from domain.registry import queries

    p = await principal_for(session)
    names = [("Bonettini", "Carla"), ("Bonettini", "Carlo"), ("Bonetti", "Carla"), ("Bonetto", "Marco"),
             ("Benetti", "Clara"), ("Carla", "Bonomi"), ("Zanetti", "Carlotta"), ("Rossi", "Mario")]
    for surname, given in names:
        await persons.create_person(session, principal=p, data=PersonCreate(
            surname=surname, given_name=given, other_identifier_type="provisional"))
    q = "bonettini carla"
    await session.execute(sa.text("select set_config('pg_trgm.word_similarity_threshold', '0.6', true), "
                                  "set_config('pg_trgm.similarity_threshold', '0.3', true)"))
    expected = (await session.execute(sa.text(
        "select id, word_similarity(:q, name_search) w, similarity(name_search, :q) s from person "
        "where ambito_id = :a and status = 'active' and (:q <% name_search or name_search % :q)"),
        {"q": q, "a": p.ambito_id})).all()
    tier_a = sorted((r for r in expected if r.w >= 0.6), key=lambda r: (-r.w, -r.s, r.id))
    tier_b = sorted((r for r in expected if r.w < 0.6), key=lambda r: (-r.s, r.id))
    assert tier_a and tier_b  # the data exercises both tiers
    seen, cursor = [], None
    for _ in range(20):
        res = await queries.search_persons(session, principal=p, q=q, limit=2, cursor=cursor)
        seen += [r.id for r in res.items]
        cursor = res.next_cursor
        if cursor is None:
            break
    assert seen == [r.id for r in tier_a + tier_b]
    total = await queries.search_persons(session, principal=p, q=q, limit=1, with_total=True)
    assert total.total == len(expected)
