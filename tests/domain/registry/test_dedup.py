"""De-duplication workflow: scoring, candidates on every create path, steward queue, merge and not-duplicate."""
from __future__ import annotations

import uuid
from datetime import date
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from domain.kernel import history, work_items
from domain.kernel.errors import Conflict, Invalid, NotFound
from domain.kernel.models import WorkItem
from domain.registry import dedup, persons, relations
from domain.registry.models import Person, PersonMerge, PersonRelation, PossibleMatch
from domain.security.principal import load_principal
from schemas.persons import DuplicatesCheck, MatchDecision, PersonCreate, RelationCreate
from tests.factories.registry import encode_cf, relation_payload
from tests.support import make_user


async def principal_for(session, role="comune_social_worker", org_code="comune-crema"):
    user = await make_user(session, role, org_code)
    return await load_principal(session, str(user.id))


def twin(surname="Bonetti", given_name="Carla", sex="F", born=date(1938, 7, 14), place="D142", **kw) -> dict:
    """Same person data without a codice fiscale (registered with a provisional identifier)."""
    return {"surname": surname, "given_name": given_name, "sex": sex, "birth_date": born, "birth_place_code": place,
            "other_identifier_type": "provisional", **kw}


async def original(session, p, **kw):
    cf = encode_cf("Bonetti", "Carla", "F", date(1938, 7, 14), "Crema")
    data = PersonCreate(codice_fiscale=cf, surname="Bonetti", given_name="Carla", **kw)
    return (await persons.create_person(session, principal=p, data=data)).person


async def matches_of(session, person_id) -> list[PossibleMatch]:
    return list((await session.execute(sa.select(PossibleMatch).where(sa.or_(
        PossibleMatch.person_a_id == person_id, PossibleMatch.person_b_id == person_id)))).scalars())


# ---------------------------------------------------------------- score
def row(**kw):
    base = dict(birth_date=None, sex=None, birth_place_code=None, codice_fiscale=None)
    return SimpleNamespace(**{**base, **kw})


async def test_score_components():
    probe = dedup.Probe("Rossi", "Mario", date(1950, 3, 4), "M", "D142")
    full, why = dedup.score(probe, row(birth_date=date(1950, 3, 4), sex="M", birth_place_code="D142"), 1.0)
    assert full == 1.0 and why == {"name": 1.0, "birth_date": "equal", "sex": "equal", "birth_place": "equal"}
    swapped, why = dedup.score(probe, row(birth_date=date(1950, 4, 3), sex="M", birth_place_code="D142"), 1.0)
    assert swapped == pytest.approx(0.92) and why["birth_date"] == "day_month_swapped"
    unknown, _ = dedup.score(probe, row(), 1.0)
    assert unknown == pytest.approx(0.4 + 0.2 + 0.05 + 0.05)
    other_year, _ = dedup.score(probe, row(birth_date=date(1952, 3, 4), sex="M", birth_place_code="D142"), 1.0)
    assert other_year == pytest.approx(0.6)
    probe_cf = dedup.Probe("Rossi", "Mario", date(1950, 3, 4), "M", "D142", "RSSMRA50C04D142A")
    penalised, why = dedup.score(probe_cf, row(birth_date=date(1952, 3, 4), sex="M", birth_place_code="D142",
                                               codice_fiscale="RSSMRA52C04D142B"), 1.0)
    assert penalised == pytest.approx(0.36) and why["codice_fiscale"] == "different"
    assert dedup.birth_component(date(1950, 1, 1), date(1950, 12, 31)) == (0.5, "same_year")


# ---------------------------------------------------------------- create paths
async def test_interactive_create_registers_and_queues_the_look_alike(session):
    p = await principal_for(session)
    first = await original(session, p)
    res = await persons.create_person(session, principal=p, data=PersonCreate(**twin()))
    assert res.person.id != first.id and not res.person.needs_review
    [cand] = res.possible_duplicates
    assert cand.person.id == first.id and cand.score == 1.0 and cand.match_id is not None
    [match] = await matches_of(session, first.id)
    assert match.id == cand.match_id
    assert (match.person_a_id, match.person_b_id) == tuple(sorted((first.id, res.person.id)))
    assert match.status == "pending" and match.ambito_id == p.ambito_id and match.source == "api"
    item = (await session.execute(sa.select(WorkItem).where(WorkItem.source_id == match.id))).scalar_one()
    assert (item.kind, item.assignee_org_id, item.person_id, item.dedup_key, item.state) == (
        "registry.possible_match", p.ambito_id, res.person.id, f"possible_match:{match.id}", "open")


async def test_unrelated_person_is_not_a_candidate(session):
    p = await principal_for(session)
    await original(session, p)
    res = await persons.create_person(session, principal=p, data=PersonCreate(**twin(
        surname="Zanchi", given_name="Ottavio", sex="M", born=date(1990, 1, 2), place="F205")))
    assert res.possible_duplicates == []


async def test_typo_in_the_name_and_swapped_day_month_still_match(session):
    p = await principal_for(session)
    first = await original(session, p)
    res = await persons.create_person(session, principal=p, data=PersonCreate(**twin(
        surname="Bonneti", given_name="Carla", born=date(1938, 7, 14))))
    assert [c.person.id for c in res.possible_duplicates] == [first.id]
    assert 0.55 <= res.possible_duplicates[0].score < 1.0
    res2 = await persons.create_person(session, principal=p, data=PersonCreate(
        surname="Bonetti", given_name="Carla", birth_date=date(1938, 7, 12), sex="F",
        other_identifier_type="passport", other_identifier="YA0001234"))
    assert first.id in [c.person.id for c in res2.possible_duplicates]


async def test_automated_path_creates_and_flags_for_review(session):
    p = await principal_for(session)
    first = await original(session, p)
    flagged = await persons.find_or_create_person(session, principal=p, data=PersonCreate(**twin()), source="import")
    assert flagged.id != first.id and flagged.needs_review and flagged.source == "import"
    [match] = await matches_of(session, flagged.id)
    assert match.source == "import"


async def test_duplicates_check_writes_nothing(session):
    p = await principal_for(session)
    first = await original(session, p)
    before = (await session.execute(sa.select(sa.func.count()).select_from(PossibleMatch))).scalar_one()
    existing, cands = await dedup.check(session, principal=p, data=DuplicatesCheck(
        codice_fiscale=first.codice_fiscale.lower(), surname="Bonetti", given_name="Carla"))
    assert existing == first.id and [c.person.id for c in cands] == [first.id]
    existing, cands = await dedup.check(session, principal=p, data=DuplicatesCheck(
        surname="Carla", given_name="Bonetti", birth_date=date(1938, 7, 14)))  # name order swapped
    assert existing is None and cands[0].person.id == first.id
    after = (await session.execute(sa.select(sa.func.count()).select_from(PossibleMatch))).scalar_one()
    assert after == before


async def test_candidates_stay_inside_the_ambito(session):
    crema = await principal_for(session)
    cremona = await principal_for(session, org_code="comune-cremona")
    await original(session, crema)
    res = await persons.create_person(session, principal=cremona, data=PersonCreate(**twin()))
    assert res.possible_duplicates == []


# ---------------------------------------------------------------- decisions
async def _pair(session, p):
    first = await original(session, p)
    res = await persons.create_person(session, principal=p, data=PersonCreate(**twin(
        contacts={"mobile": "+39 347 0000001"})))
    return first, res.person, res.possible_duplicates[0].match_id


async def test_merge_repoints_references_and_the_old_id_resolves(session):
    worker = await principal_for(session)
    steward = await principal_for(session, "data_steward", "ambito-crema")
    kept, dup, match_id = await _pair(session, worker)
    son = (await persons.create_person(session, principal=worker, data=PersonCreate(**twin(
        surname="Bonetti", given_name="Marco", sex="M", born=date(1965, 2, 2))))).person
    rel_on_dup = await relations.add_relation(session, principal=worker, person_id=dup.id,
                                            data=RelationCreate(**relation_payload("caregiver", registered=son)))
    rel_to_dup = await relations.add_relation(session, principal=worker, person_id=son.id,
                                            data=RelationCreate(**relation_payload("family_member", registered=dup)))
    task = await work_items.create(session, kind="test.followup", title="Richiamare", source_type="test",
                                   source_id=uuid.uuid4(), assignee_org_id=worker.ambito_id, person_id=dup.id)

    out = await dedup.decide(session, principal=steward, match_id=match_id, data=MatchDecision(
        decision="merge", keep_id=kept.id, reason="Stessa persona: verificato con l'anagrafe comunale"))
    assert (out.kept_id, out.merged_id, out.match.status) == (kept.id, dup.id, "merged")
    assert out.repointed["person_relation.person_id"] == 1 and out.repointed["person_relation.related_person_id"] == 1
    assert out.repointed["work_item.person_id"] >= 2  # the follow-up and the match's own steward item

    await session.refresh(rel_on_dup)
    await session.refresh(rel_to_dup)
    await session.refresh(task)
    assert rel_on_dup.person_id == kept.id and rel_to_dup.related_person_id == kept.id and task.person_id == kept.id
    resolved = await persons.get_person(session, principal=worker, person_id=dup.id)
    assert resolved.id == kept.id and resolved.contacts == {"mobile": "+39 347 0000001"}  # gap filled
    tomb = await session.get(Person, dup.id)
    assert (tomb.status, tomb.merged_into_id) == ("merged", kept.id)
    record = (await session.execute(sa.select(PersonMerge).where(PersonMerge.merged_id == dup.id))).scalar_one()
    assert (record.kept_id, record.by_user_id, record.match_id) == (kept.id, steward.user_id, match_id)
    assert record.reason.startswith("Stessa persona") and "contacts" in record.repointed["filled"]
    kept_hist = [r.action for r in await history.versions(session, entity_type="person", entity_id=kept.id)]
    dup_hist = [r.action for r in await history.versions(session, entity_type="person", entity_id=dup.id)]
    assert kept_hist[-1] == "merge_kept" and dup_hist == ["create", "merged"]
    item = (await session.execute(sa.select(WorkItem).where(WorkItem.source_id == match_id))).scalar_one()
    assert (item.state, item.completed_by) == ("done", steward.user_id)

    with pytest.raises(Conflict):  # deciding again
        await dedup.decide(session, principal=steward, match_id=match_id, data=MatchDecision(
            decision="not_duplicate", reason="ripensamento"))
    with pytest.raises(Conflict):  # writes on the tombstone
        await persons.record_death(session, principal=worker, person_id=dup.id, date_of_death=date(2026, 3, 1))


async def test_merge_keeping_the_newer_record_takes_over_the_codice_fiscale(session):
    worker = await principal_for(session)
    steward = await principal_for(session, "data_steward", "ambito-crema")
    old, new, match_id = await _pair(session, worker)
    await dedup.decide(session, principal=steward, match_id=match_id, data=MatchDecision(
        decision="merge", keep_id=new.id, reason="Si tiene la scheda più recente"))
    kept = await persons.get_person(session, principal=worker, person_id=old.id)
    assert kept.id == new.id and kept.codice_fiscale == old.codice_fiscale


async def test_not_duplicate_records_who_and_why(session):
    worker = await principal_for(session)
    steward = await principal_for(session, "data_steward", "ambito-crema")
    a, b, match_id = await _pair(session, worker)
    out = await dedup.decide(session, principal=steward, match_id=match_id, data=MatchDecision(
        decision="not_duplicate", reason="Omonime: gemelle"))
    assert (out.match.status, out.match.decided_by, out.match.decision_reason) == (
        "not_duplicate", steward.user_id, "Omonime: gemelle")
    assert (await session.get(Person, b.id)).status == "active"
    with pytest.raises(Conflict):
        await dedup.decide(session, principal=steward, match_id=match_id, data=MatchDecision(
            decision="merge", keep_id=a.id, reason="ripensamento"))


async def test_decision_input_errors(session):
    worker = await principal_for(session)
    steward = await principal_for(session, "data_steward", "ambito-crema")
    other_steward = await principal_for(session, "data_steward", "ambito-cremona-test")
    a, b, match_id = await _pair(session, worker)
    with pytest.raises(Invalid) as e:
        await dedup.decide(session, principal=steward, match_id=match_id, data=MatchDecision(
            decision="merge", keep_id=uuid.uuid4(), reason="boh"))
    assert e.value.field == "keep_id"
    with pytest.raises(Invalid) as e:
        await dedup.decide(session, principal=steward, match_id=match_id,
                           data=MatchDecision(decision="merge", reason="boh"))
    assert e.value.field == "keep_id"
    with pytest.raises(NotFound):
        await dedup.decide(session, principal=other_steward, match_id=match_id, data=MatchDecision(
            decision="not_duplicate", reason="altro Ambito"))
    assert (await session.get(PossibleMatch, match_id)).status == "pending"


async def test_two_guardians_block_the_merge(session):
    worker = await principal_for(session)
    steward = await principal_for(session, "data_steward", "ambito-crema")
    a, b, match_id = await _pair(session, worker)
    for pid in (a.id, b.id):
        await relations.add_relation(session, principal=worker, person_id=pid,
                                   data=RelationCreate(**relation_payload("ads")))
    with pytest.raises(Conflict) as e:
        await dedup.decide(session, principal=steward, match_id=match_id, data=MatchDecision(
            decision="merge", keep_id=a.id, reason="stessa persona"))
    assert "amministratore di sostegno" in e.value.detail
    assert (await session.get(PossibleMatch, match_id)).status == "pending"


async def test_pending_matches_of_the_merged_person_move_to_the_kept_one(session):
    worker = await principal_for(session)
    steward = await principal_for(session, "data_steward", "ambito-crema")
    a, b, ab = await _pair(session, worker)
    c = (await persons.create_person(session, principal=worker, data=PersonCreate(**twin(
        other_identifier_type="passport", other_identifier="AA1234567")))).person
    bc = next(m for m in await matches_of(session, c.id) if b.id in (m.person_a_id, m.person_b_id))
    await dedup.decide(session, principal=steward, match_id=ab, data=MatchDecision(
        decision="merge", keep_id=a.id, reason="stessa persona"))
    await session.refresh(bc)
    assert bc.status == "superseded"
    pending = [m for m in await matches_of(session, c.id) if m.status == "pending"]
    assert {frozenset((m.person_a_id, m.person_b_id)) for m in pending} == {frozenset((a.id, c.id))}
    stale_item = (await session.execute(sa.select(WorkItem).where(WorkItem.source_id == bc.id))).scalar_one()
    assert stale_item.state == "cancelled"


async def test_queue_is_by_score_and_per_ambito(session):
    worker = await principal_for(session)
    steward = await principal_for(session, "data_steward", "ambito-crema")
    other_steward = await principal_for(session, "data_steward", "ambito-cremona-test")
    await original(session, worker)
    await persons.create_person(session, principal=worker, data=PersonCreate(**twin()))  # score 1.0
    await persons.create_person(session, principal=worker, data=PersonCreate(**twin(
        surname="Bonetti", given_name="Carlo", sex="M", other_identifier_type="passport",
        other_identifier="BB7654321")))
    rows, nxt = await dedup.pending_queue(session, principal=steward, limit=2)
    scores = [r[0].score for r in rows]
    assert scores == sorted(scores, reverse=True) and scores[0] == 1.0 and nxt is not None
    more, _ = await dedup.pending_queue(session, principal=steward, limit=50, after=nxt)
    assert {r[0].id for r in more}.isdisjoint({r[0].id for r in rows}) and more
    assert all(r[0].score <= scores[-1] for r in more)
    theirs, _ = await dedup.pending_queue(session, principal=other_steward)
    assert theirs == []


async def test_merge_relations_between_the_pair_disappear(session):
    worker = await principal_for(session)
    steward = await principal_for(session, "data_steward", "ambito-crema")
    a, b, match_id = await _pair(session, worker)
    await relations.add_relation(session, principal=worker, person_id=a.id,
                               data=RelationCreate(**relation_payload("family_member", registered=b)))
    out = await dedup.decide(session, principal=steward, match_id=match_id, data=MatchDecision(
        decision="merge", keep_id=a.id, reason="stessa persona"))
    left = (await session.execute(sa.select(PersonRelation).where(PersonRelation.person_id == a.id))).scalars().all()
    assert left == [] and out.repointed["person_relation.related_person_id"] == 1


# ---------------------------------------------------------------- the coded probe's shortcut
async def test_a_coded_probe_finds_exactly_what_a_full_scan_scores_above_the_threshold(session):
    """With a codice fiscale, the search reads only same-date persons and those without a code; the candidates must
    be the very ones that scoring every person of the Ambito would keep."""
    p = await principal_for(session)
    born = date(1941, 3, 7)
    people = []
    for i, (surname, given, sex, when, coded) in enumerate([
        ("Brambilla", "Rosa", "F", born, True), ("Brambilla", "Rosa", "F", born, False),
        ("Brambila", "Rosa", "F", date(1941, 7, 3), True), ("Brambila", "Rosa", "F", date(1941, 7, 3), False),
        ("Brambilla", "Rosa", "F", date(1941, 9, 9), True), ("Brambilla", "Rosa", "F", date(1941, 9, 9), False),
        ("Brambilla", "Rosa", "F", date(1944, 3, 7), True), ("Brambilla", "Rosa", "F", date(1944, 3, 7), False),
        ("Bramilla", "Rosetta", "F", None, False), ("Brambilla", "Rosa", "F", None, False),
        ("Verdi", "Carla", "F", born, True), ("Verdi", "Carla", "F", born, False),
        ("Brambilla", "Rosa", "M", born, True), ("Crambilla", "Rosa", "F", born, True),
    ]):
        data = {"surname": surname, "given_name": given, "sex": sex, "birth_date": when, "birth_place_code": "D142"}
        if coded:
            data["codice_fiscale"] = encode_cf(surname, given, sex, when, "Crema")
        else:
            data.update(other_identifier_type="provisional", other_identifier=f"PRV-DEDUP-{i}")
        people.append((await persons.create_person(session, principal=p, data=PersonCreate(**data))).person)
    ids = {x.id for x in people}
    probes = [dedup.Probe(surname, given, when, "F", "D142",
                          encode_cf(surname, given, "F", when, "Crema")[:15] + "X")  # another (coded) person
              for surname, given, when in (("Brambilla", "Rosa", born), ("Brambila", "Rosa", date(1941, 7, 3)),
                                           ("Brambilla", "Rossa", date(1944, 3, 7)))]
    many = await dedup.candidates_many(session, ambito_id=p.ambito_id, probes=probes)  # the bulk form, one query
    for probe, batch in zip(probes, many, strict=True):
        surname, when = probe.surname, probe.birth_date
        found = {c.person.id for c in await dedup.find_candidates(session, ambito_id=p.ambito_id, probe=probe)}
        assert {c.person.id for c in batch} == found
        rows = (await session.execute(sa.select(*dedup.SUMMARY_COLUMNS, sa.func.similarity(
            Person.name_search, sa.func.lower(probe.name)).label("sim")).where(Person.id.in_(ids)))).all()
        full = {r.id for r in rows if r.sim >= 0.3 and dedup.score(probe, r, r.sim)[0] >= 0.55}
        assert found & ids == full, (surname, when)
        assert full  # the set is not empty: the comparison proves something
