"""Consent: who may give it (the adult person; a parent only for a minor; the tutore or AdS with an active
relation), its period, revocation at once (409 the second time), and the row filter reading it on every request."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from domain.kernel import clock
from domain.kernel.errors import Conflict, Invalid, NotFound
from domain.registry import consent as svc
from domain.registry.policy import ConsentRequired
from domain.security.models import Role
from schemas.access import ConsentCreate
from tests.domain.security.access_setup import (
    add_consent,
    assign,
    person_with_cartella,
    relation,
    user_and_principal,
    years_ago,
)


def body(**kw) -> ConsentCreate:
    data = {"purpose": "share_asst", "grantor_kind": "self", "valid_from": clock.today_rome()}
    data.update(kw)
    return ConsentCreate(**data)


async def owner(session):
    return await user_and_principal(session, Role.comune_social_worker, "comune-crema")


async def test_adult_gives_consent_herself(session):
    _, p = await owner(session)
    person, _ = await person_with_cartella(session, birth_date=years_ago(40))
    c = await svc.grant(session, principal=p, person_id=person.id, data=body(scope_note="condivisione con la CdC"))
    assert (c.person_id, c.purpose, c.grantor_kind, c.recorded_by) == (person.id, "share_asst", "self", p.user_id)
    assert svc.is_active(c)
    assert [x.id for x in await svc.list_for_person(session, principal=p, person_id=person.id)] == [c.id]


async def test_minor_cannot_consent_alone(session):
    _, p = await owner(session)
    person, _ = await person_with_cartella(session, birth_date=years_ago(12))
    with pytest.raises(Invalid) as e:
        await svc.grant(session, principal=p, person_id=person.id, data=body())
    assert e.value.field == "grantor_kind"


async def test_parent_consents_for_a_minor_only(session):
    _, p = await owner(session)
    minor, _ = await person_with_cartella(session, birth_date=years_ago(12))
    rel = await relation(session, minor, "parent_responsibility")
    c = await svc.grant(session, principal=p, person_id=minor.id,
                        data=body(grantor_kind="parent_responsibility", grantor_relation_id=rel.id))
    assert c.grantor_relation_id == rel.id

    adult, _ = await person_with_cartella(session, birth_date=years_ago(18))  # 18 today: an adult
    rel2 = await relation(session, adult, "parent_responsibility")
    with pytest.raises(Invalid) as e:
        await svc.grant(session, principal=p, person_id=adult.id,
                        data=body(grantor_kind="parent_responsibility", grantor_relation_id=rel2.id))
    assert e.value.field == "grantor_kind"


@pytest.mark.parametrize("kind", ["tutore", "ads"])
async def test_legal_representative_with_active_relation(session, kind):
    _, p = await owner(session)
    person, _ = await person_with_cartella(session, birth_date=years_ago(80))
    rel = await relation(session, person, kind)
    c = await svc.grant(session, principal=p, person_id=person.id, data=body(grantor_kind=kind,
                                                                            grantor_relation_id=rel.id))
    assert c.grantor_kind == kind


async def test_representative_needs_a_relation_of_that_kind_in_force(session):
    _, p = await owner(session)
    person, _ = await person_with_cartella(session, birth_date=years_ago(80))
    other, _ = await person_with_cartella(session, birth_date=years_ago(80))
    caregiver = await relation(session, person, "caregiver")
    ended = await relation(session, person, "ads", valid_from=date(2020, 1, 1), valid_to=clock.today_rome())
    future = await relation(session, person, "tutore", valid_from=clock.today_rome() + timedelta(days=3))
    someone_elses = await relation(session, other, "ads", valid_from=date(2019, 1, 1), valid_to=date(2019, 6, 1))
    cases = [
        ("ads", None),                 # no relation given
        ("ads", caregiver.id),         # wrong kind
        ("ads", ended.id),             # ended today: [valid_from, valid_to) no longer covers today
        ("tutore", future.id),         # not yet in force
        ("ads", someone_elses.id),     # another person's relation
    ]
    for kind, rel_id in cases:
        with pytest.raises(Invalid) as e:
            await svc.grant(session, principal=p, person_id=person.id,
                            data=body(grantor_kind=kind, grantor_relation_id=rel_id))
        assert e.value.field == "grantor_relation_id", (kind, rel_id)


async def test_self_with_a_relation_and_bad_period_are_refused(session):
    _, p = await owner(session)
    person, _ = await person_with_cartella(session, birth_date=years_ago(50))
    rel = await relation(session, person, "ads")
    with pytest.raises(Invalid) as e:
        await svc.grant(session, principal=p, person_id=person.id, data=body(grantor_relation_id=rel.id))
    assert e.value.field == "grantor_relation_id"
    with pytest.raises(Invalid) as e:
        await svc.grant(session, principal=p, person_id=person.id,
                        data=body(valid_to=clock.today_rome() - timedelta(days=1)))
    assert e.value.field == "valid_to"


async def test_dead_person_cannot_consent(session):
    _, p = await owner(session)
    person, _ = await person_with_cartella(session, birth_date=years_ago(90), date_of_death=clock.today_rome())
    with pytest.raises(Invalid) as e:
        await svc.grant(session, principal=p, person_id=person.id, data=body())
    assert e.value.field == "person_id"


async def test_revoke_takes_effect_at_once_and_twice_is_a_conflict(session):
    _, p = await owner(session)
    person, _ = await person_with_cartella(session, birth_date=years_ago(50))
    c = await svc.grant(session, principal=p, person_id=person.id, data=body())
    revoked = await svc.revoke(session, principal=p, person_id=person.id, consent_id=c.id,
                               reason="la persona ha revocato")
    assert revoked.revoked_at == clock.now() and revoked.revoked_by == p.user_id
    assert not svc.is_active(revoked)
    with pytest.raises(Conflict):
        await svc.revoke(session, principal=p, person_id=person.id, consent_id=c.id, reason="di nuovo")


async def test_revoke_of_another_persons_consent_is_not_found(session):
    _, p = await owner(session)
    a, _ = await person_with_cartella(session, birth_date=years_ago(50))
    b, _ = await person_with_cartella(session, birth_date=years_ago(50))
    c = await svc.grant(session, principal=p, person_id=a.id, data=body())
    with pytest.raises(NotFound):
        await svc.revoke(session, principal=p, person_id=b.id, consent_id=c.id, reason="errore")


async def test_consent_is_managed_only_by_who_holds_the_case(session):
    # Another comune's social worker sees identity data only: the person's consents are not theirs to read.
    _, other = await user_and_principal(session, Role.comune_social_worker, "comune-offanengo")
    person, _ = await person_with_cartella(session, birth_date=years_ago(50))
    with pytest.raises(NotFound):
        await svc.list_for_person(session, principal=other, person_id=person.id)
    with pytest.raises(NotFound):
        await svc.grant(session, principal=other, person_id=person.id, data=body())


async def test_asst_operator_without_consent_is_told_consent_is_required(session):
    user, asst = await user_and_principal(session, Role.asst_pua_operator, "asst-crema-pua")
    person, c = await person_with_cartella(session, birth_date=years_ago(50))
    await assign(session, c, user_id=user.id)
    with pytest.raises(ConsentRequired):
        await svc.list_for_person(session, principal=asst, person_id=person.id)
    await add_consent(session, person, "share_asst", recorded_by=user.id)
    assert len(await svc.list_for_person(session, principal=asst, person_id=person.id)) == 1
