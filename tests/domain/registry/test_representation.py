"""Consent and representation (issue 9): a decree says what an amministratore di sostegno represents the person
in; an adult with a tutore, or an AdS for care and health, does not consent alone; a curatore assists but does not
represent; a consent lapses with its basis (the appointment ends, the minor turns 18) for reads the same day."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from domain.kernel import clock
from domain.kernel import clock as kclock
from domain.kernel.errors import Invalid
from domain.registry import consent as svc
from domain.registry import policy as registry_policy
from domain.registry import relations
from domain.registry.models import Consent, DecreeScope, GrantorKind
from domain.security.models import Role
from schemas.access import ConsentCreate
from schemas.persons import RelationCreate
from tests.domain.security.access_setup import assign, person_with_cartella, relation, user_and_principal, years_ago
from tests.factories.registry import relation_payload


def body(**kw) -> ConsentCreate:
    data = {"purpose": "share_asst", "grantor_kind": "self", "valid_from": clock.today_rome()}
    data.update(kw)
    return ConsentCreate(**data)


async def owner(session):
    return await user_and_principal(session, Role.comune_social_worker, "comune-crema")


class TestDecrees:
    async def test_a_tutore_needs_a_decree_and_an_ads_its_scope(self, session):
        _, p = await owner(session)
        person, _ = await person_with_cartella(session, birth_date=years_ago(70))
        with pytest.raises(Invalid) as e:
            await relations.add_relation(session, principal=p, person_id=person.id,
                                       data=RelationCreate(**relation_payload("tutore", decree_reference=None)))
        assert e.value.field == "decree_reference"
        with pytest.raises(Invalid) as e:
            await relations.add_relation(session, principal=p, person_id=person.id,
                                       data=RelationCreate(**relation_payload("ads", decree_scope=[])))
        assert e.value.field == "decree_scope"
        with pytest.raises(Invalid) as e:
            await relations.add_relation(session, principal=p, person_id=person.id, data=RelationCreate(
                **relation_payload("ads", decree_scope=["assistance", "care_health"])))
        assert e.value.field == "decree_scope"
        with pytest.raises(Invalid) as e:
            await relations.add_relation(session, principal=p, person_id=person.id, data=RelationCreate(
                **relation_payload("caregiver", decree_scope=["assets"])))
        assert e.value.field == "decree_scope"
        rel = await relations.add_relation(session, principal=p, person_id=person.id,
                                         data=RelationCreate(**relation_payload("ads", decree_scope=["assets"])))
        view = relations.relation_view(rel)
        assert view["decree_scope"] == ["assets"] and view["legal_representative"] is True
        assert not relations.represents(rel, DecreeScope.care_health)

    async def test_a_curatore_is_not_a_legal_representative(self, session):
        person, _ = await person_with_cartella(session, birth_date=years_ago(30))
        cur = await relation(session, person, "curatore")
        assert relations.relation_view(cur)["legal_representative"] is False
        assistance = await relation(session, person, "ads", decree_scope=["assistance"])
        assert relations.relation_view(assistance)["legal_representative"] is False


class TestWhoConsents:
    async def test_an_adult_with_a_tutore_does_not_consent_alone(self, session):
        _, p = await owner(session)
        person, _ = await person_with_cartella(session, birth_date=years_ago(45))
        tutore = await relation(session, person, "tutore")
        with pytest.raises(Invalid) as e:
            await svc.grant(session, principal=p, person_id=person.id, data=body())
        assert e.value.field == "grantor_kind" and "tutore" in e.value.reason
        c = await svc.grant(session, principal=p, person_id=person.id,
                            data=body(grantor_kind="tutore", grantor_relation_id=tutore.id))
        assert c.grantor_kind == "tutore"

    async def test_the_ads_decree_decides(self, session):
        _, p = await owner(session)
        for_care, _ = await person_with_cartella(session, birth_date=years_ago(80))
        await relation(session, for_care, "ads", decree_scope=["care_health", "assets"])
        with pytest.raises(Invalid):
            await svc.grant(session, principal=p, person_id=for_care.id, data=body())

        for_assets, _ = await person_with_cartella(session, birth_date=years_ago(80))
        ads = await relation(session, for_assets, "ads", decree_scope=["assets"])
        with pytest.raises(Invalid) as e:  # the AdS cannot consent for care: the decree does not cover it ...
            await svc.grant(session, principal=p, person_id=for_assets.id,
                            data=body(grantor_kind="ads", grantor_relation_id=ads.id))
        assert e.value.field == "grantor_relation_id" and "cura e salute" in e.value.reason
        c = await svc.grant(session, principal=p, person_id=for_assets.id, data=body())  # ... the person does
        assert c.grantor_kind == "self"


class TestLapse:
    async def _asst_reader(self, session, person_cartella):
        user, p = await user_and_principal(session, Role.asst_pua_operator, "asst-crema-pua")
        await assign(session, person_cartella, user_id=user.id)  # no legal basis: the consent is what counts
        return user, p

    async def test_a_parents_consent_lapses_when_the_minor_turns_18(self, session, clock):
        birthday = kclock.today_rome() + timedelta(days=3)
        person, c = await person_with_cartella(session, birth_date=birthday.replace(year=birthday.year - 18))
        parent = await relation(session, person, "parent_responsibility")
        _, p = await self._asst_reader(session, c)
        consent = Consent(person_id=person.id, purpose="share_asst", grantor_kind=GrantorKind.parent_responsibility,
                          grantor_relation_id=parent.id, valid_from=kclock.today_rome() - timedelta(days=10),
                          recorded_by=p.user_id, recorded_at=kclock.now())
        session.add(consent)
        await session.flush()
        access = await registry_policy.person_access(session, p, person.id, person.ambito_id)
        assert access.in_scope and await svc.in_force(session, consent.id)
        clock.advance(days=3)  # eighteen today: the parent's consent no longer serves
        access = await registry_policy.person_access(session, p, person.id, person.ambito_id)
        assert access.consent_missing and not access.in_scope
        assert not await svc.in_force(session, consent.id)

    async def test_a_representatives_consent_lapses_with_the_appointment(self, session, clock):
        person, c = await person_with_cartella(session, birth_date=years_ago(85))
        ads = await relation(session, person, "ads", valid_from=date(2020, 1, 1),
                             valid_to=kclock.today_rome() + timedelta(days=1))
        _, p = await self._asst_reader(session, c)
        _, owner_p = await owner(session)
        consent = await svc.grant(session, principal=owner_p, person_id=person.id,
                                  data=body(grantor_kind="ads", grantor_relation_id=ads.id))
        assert (await registry_policy.person_access(session, p, person.id, person.ambito_id)).in_scope
        clock.advance(days=1)  # the decree ends today
        assert (await registry_policy.person_access(session, p, person.id, person.ambito_id)).consent_missing
        assert not await svc.in_force(session, consent.id) and svc.is_active(consent)
