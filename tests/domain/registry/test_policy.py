"""Row scopes per role: owning comune (through the organisation tree), assignments to user / team / organisation,
their end, consent for the roles that need it, projections and masks."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from domain.kernel import clock
from domain.kernel.errors import NotFound
from domain.registry import policy as registry_policy
from domain.registry.models import Cartella
from domain.registry.policy import ConsentRequired
from domain.security import scopes
from domain.security.models import Role
from tests.domain.security.access_setup import (
    add_consent,
    assign,
    person_with_cartella,
    principal_of,
    team_with,
    user_and_principal,
)
from tests.support import org


async def reachable(session, principal, *cartelle) -> set:
    ids = [c.id for c in cartelle]
    rows = await session.execute(
        sa.select(Cartella.id).where(Cartella.id.in_(ids), registry_policy.cartella_filter(principal)))
    return set(rows.scalars())


async def test_comune_social_worker_reaches_its_comune_only(session):
    _, p = await user_and_principal(session, Role.comune_social_worker, "comune-crema")
    _, mine = await person_with_cartella(session, comune="comune-crema")
    _, other = await person_with_cartella(session, comune="comune-offanengo")
    assert await reachable(session, p, mine, other) == {mine.id}
    assert (await registry_policy.cartella_in_scope(session, p, mine.id)).id == mine.id
    with pytest.raises(NotFound):
        await registry_policy.cartella_in_scope(session, p, other.id)


async def test_sub_ambito_coordinator_reaches_comuni_under_it(session):
    # Offanengo and Soncino sit under subambito-soncino; Crema does not.
    _, p = await user_and_principal(session, Role.sub_ambito_coordinator, "subambito-soncino")
    sub = await org(session, "subambito-soncino")
    offanengo = await org(session, "comune-offanengo")
    assert sub.id in offanengo.ancestor_ids
    _, a = await person_with_cartella(session, comune="comune-offanengo")
    _, b = await person_with_cartella(session, comune="comune-soncino")
    _, c = await person_with_cartella(session, comune="comune-crema")
    assert await reachable(session, p, a, b, c) == {a.id, b.id}


async def test_ambito_pua_social_worker_reaches_only_assigned(session):
    user, p = await user_and_principal(session, Role.ambito_pua_social_worker, "ambito-crema")
    _, assigned = await person_with_cartella(session)
    _, other = await person_with_cartella(session)
    await assign(session, assigned, user_id=user.id)
    assert await reachable(session, p, assigned, other) == {assigned.id}


async def test_assignment_to_team_reaches_members(session):
    user, _ = await user_and_principal(session, Role.csc_operator, "csc-crema")
    team = await team_with(session, user, "csc-crema")
    p = await principal_of(session, user)
    assert team.id in p.team_ids
    _, c = await person_with_cartella(session, comune="comune-soncino")
    _, other = await person_with_cartella(session, comune="comune-soncino")
    await assign(session, c, reason="team", team_id=team.id)
    assert await reachable(session, p, c, other) == {c.id}


async def test_assignment_to_organisation_reaches_its_staff_with_that_role(session):
    _, ets = await user_and_principal(session, Role.ets_operator, "ets-igea")
    _, other_ets = await user_and_principal(session, Role.ets_operator, "ets-meraki")
    _, c = await person_with_cartella(session)
    await assign(session, c, reason="provider", organisation_id=(await org(session, "ets-igea")).id)
    assert await reachable(session, ets, c) == {c.id}
    assert await reachable(session, other_ets, c) == set()


async def test_ended_assignment_no_longer_reaches(session, clock):
    user, p = await user_and_principal(session, Role.ambito_pua_social_worker, "ambito-crema")
    _, c = await person_with_cartella(session)
    await assign(session, c, user_id=user.id, valid_to=clock.now() + timedelta(hours=1))
    assert await reachable(session, p, c) == {c.id}
    clock.advance(hours=1)
    assert await reachable(session, p, c) == set()


async def test_future_assignment_does_not_reach_yet(session, clock):
    user, p = await user_and_principal(session, Role.ambito_pua_social_worker, "ambito-crema")
    _, c = await person_with_cartella(session)
    await assign(session, c, user_id=user.id, valid_from=clock.now() + timedelta(days=1))
    assert await reachable(session, p, c) == set()


async def test_roles_without_scopes_reach_nothing(session):
    for role, code in ((Role.analyst, "udp-crema"), (Role.system_admin, "ambito-crema"), (Role.dpo, "ambito-crema"),
                       (Role.asst_front_desk, "asst-crema-pua")):
        _, p = await user_and_principal(session, role, code)
        _, c = await person_with_cartella(session)
        assert await reachable(session, p, c) == set(), role


async def test_asst_operator_assigned_needs_consent_or_legal_basis(session):
    user, p = await user_and_principal(session, Role.asst_pua_operator, "asst-crema-pua")
    person, c = await person_with_cartella(session)
    await assign(session, c, user_id=user.id)
    access = await registry_policy.person_access(session, p, person.id, person.ambito_id)
    assert (access.projection, access.in_scope, access.consent_missing) == ("identity", False, True)
    with pytest.raises(ConsentRequired) as e:
        await registry_policy.cartella_in_scope(session, p, c.id)
    assert e.value.status == 403 and e.value.code == "consent_required"

    consent = await add_consent(session, person, "share_asst", recorded_by=user.id)
    access = await registry_policy.person_access(session, p, person.id, person.ambito_id)
    assert (access.projection, access.in_scope, access.purpose) == ("full", True, "share_asst")
    assert (await registry_policy.cartella_in_scope(session, p, c.id)).id == c.id

    consent.revoked_at = clock.now()  # revocation takes effect at once: nothing is cached
    await session.flush()
    with pytest.raises(ConsentRequired):
        await registry_policy.cartella_in_scope(session, p, c.id)


async def test_consent_for_another_purpose_or_expired_does_not_count(session):
    user, p = await user_and_principal(session, Role.asst_pua_operator, "asst-crema-pua")
    person, c = await person_with_cartella(session)
    await assign(session, c, user_id=user.id)
    await add_consent(session, person, "share_ets", recorded_by=user.id)
    await add_consent(session, person, "share_asst", recorded_by=user.id,
                      valid_from=clock.today_rome() - timedelta(days=30),
                      valid_to=clock.today_rome() - timedelta(days=1))
    await add_consent(session, person, "share_asst", recorded_by=user.id,
                      valid_from=clock.today_rome() + timedelta(days=1))
    access = await registry_policy.person_access(session, p, person.id, person.ambito_id)
    assert access.consent_missing and not access.in_scope


async def test_assignment_legal_basis_replaces_consent(session):
    user, p = await user_and_principal(session, Role.asst_pua_operator, "asst-crema-pua")
    person, c = await person_with_cartella(session)
    await assign(session, c, user_id=user.id, legal_basis="art. 9.2.h GDPR - presa in carico integrata")
    access = await registry_policy.person_access(session, p, person.id, person.ambito_id)
    assert access.projection == "full" and access.in_scope and not access.consent_missing
    assert (await registry_policy.cartella_in_scope(session, p, c.id)).id == c.id


async def test_comune_side_needs_no_consent(session):
    _, p = await user_and_principal(session, Role.comune_social_worker, "comune-crema")
    person, _ = await person_with_cartella(session)
    access = await registry_policy.person_access(session, p, person.id, person.ambito_id)
    assert (access.projection, access.in_scope, access.consent_missing, access.purpose) == ("full", True, False, None)


async def test_projection_per_role_out_of_scope(session):
    person, _ = await person_with_cartella(session, comune="comune-offanengo")
    expected = {
        (Role.comune_social_worker, "comune-crema"): "identity",  # registering role: identity, no case data
        (Role.asst_front_desk, "asst-crema-pua"): "identity",
        (Role.data_steward, "ambito-crema"): "identity",
        (Role.ets_operator, "ets-igea"): "none",
        (Role.rsa_operator, "op-rsa-soncino"): "none",
        (Role.mmg, "mmg-crema-1"): "none",
        (Role.analyst, "udp-crema"): "none",
        (Role.dpo, "ambito-crema"): "none",
    }
    for (role, code), projection in expected.items():
        _, p = await user_and_principal(session, role, code)
        access = await registry_policy.person_access(session, p, person.id, person.ambito_id)
        assert access.projection == projection, role
        assert not access.in_scope


async def test_minimal_roles_in_scope_get_minimal(session):
    person, c = await person_with_cartella(session)
    await assign(session, c, reason="provider", organisation_id=(await org(session, "ets-igea")).id,
                 legal_basis="intervento del progetto individualizzato")
    _, p = await user_and_principal(session, Role.ets_operator, "ets-igea")
    access = await registry_policy.person_access(session, p, person.id, person.ambito_id)
    assert (access.projection, access.in_scope) == ("minimal", True)


async def test_other_ambito_is_none_whatever_the_role(session):
    person, c = await person_with_cartella(session, comune="comune-cremona", ambito="ambito-cremona-test")
    user, p = await user_and_principal(session, Role.comune_social_worker, "comune-crema")
    access = await registry_policy.person_access(session, p, person.id, person.ambito_id)
    assert access.projection == "none"
    assert await reachable(session, p, c) == set()


async def test_several_roles_take_the_widest_projection(session):
    from datetime import date

    from domain.security.models import RoleAssignment
    from tests.support import make_user

    user = await make_user(session, Role.ets_operator, "ets-igea")
    session.add(RoleAssignment(user_id=user.id, role=Role.comune_social_worker,
                               organisation_id=(await org(session, "comune-crema")).id, valid_from=date(2020, 1, 1)))
    await session.flush()
    p = await principal_of(session, user)
    person, c = await person_with_cartella(session)
    await assign(session, c, reason="provider", organisation_id=(await org(session, "ets-igea")).id)
    access = await registry_policy.person_access(session, p, person.id, person.ambito_id)
    assert access.projection == "full" and access.in_scope


def test_mask_keeps_exactly_the_projection_fields():
    data = {"projection": "x", "id": 1, "surname": "R", "given_name": "A", "birth_date": "x",
            "residence_comune_id": 2, "residence_comune_name": "Crema", "contacts": {}, "interventions": [],
            "codice_fiscale": "C", "residence_address": "via", "lives_alone": True}
    # the comune's name goes with its id, which the projections list
    assert set(scopes.mask(data, "minimal")) == {"projection", "id", "surname", "given_name", "birth_date",
                                                 "residence_comune_id", "residence_comune_name", "contacts",
                                                 "interventions"}
    assert set(scopes.mask(data, "identity")) == {"projection", "id", "surname", "given_name", "birth_date",
                                                  "residence_comune_id", "residence_comune_name", "codice_fiscale"}
    assert scopes.mask(data, "full") == data
    assert scopes.mask(data, "none") == {}


def test_every_role_has_rules_and_scopes_are_known():
    rules = scopes.role_rules()
    assert set(rules) == set(Role)
    for role, rule in rules.items():
        assert set(rule.scopes) <= {"owning_org", "assigned", "break_glass"}, role
        assert rule.projection in scopes.PROJECTION_RANK, role


async def test_person_without_cartella_is_kept_by_the_registering_roles(session):
    from tests.factories.cartelle import create_person

    person = await create_person(session, comune="comune-offanengo")
    _, sw = await user_and_principal(session, Role.comune_social_worker, "comune-crema")
    access = await registry_policy.person_access(session, sw, person.id, person.ambito_id)
    assert (access.projection, access.unowned, access.in_scope) == ("full", True, False)
    for role, code in ((Role.ets_operator, "ets-igea"), (Role.mmg, "mmg-crema-1"), (Role.analyst, "udp-crema")):
        _, p = await user_and_principal(session, role, code)
        assert (await registry_policy.person_access(session, p, person.id, person.ambito_id)).projection == "none", role
    # once a comune takes the person in charge, the row filter decides
    from tests.factories.cartelle import create_cartella

    await create_cartella(session, person=person)
    access = await registry_policy.person_access(session, sw, person.id, person.ambito_id)
    assert (access.projection, access.unowned) == ("identity", False)


async def test_case_access_filter_matches_person_access(session):
    from domain.registry.models import Person

    user, p = await user_and_principal(session, Role.rsa_operator, "op-rsa-soncino")
    rsa = await org(session, "op-rsa-soncino")
    consented, c1 = await person_with_cartella(session)
    missing, c2 = await person_with_cartella(session)
    legal, c3 = await person_with_cartella(session)
    outside, _ = await person_with_cartella(session)
    for c in (c1, c2):
        await assign(session, c, reason="provider", organisation_id=rsa.id)
    await assign(session, c3, reason="provider", organisation_id=rsa.id, legal_basis="accordo RSA")
    await add_consent(session, consented, "share_rsa", recorded_by=user.id)
    ids = [x.id for x in (consented, missing, legal, outside)]
    found = set((await session.execute(sa.select(Person.id).where(Person.id.in_(ids),
                                                                 registry_policy.case_access_filter(p)))).scalars())
    assert found == {consented.id, legal.id}
    for x in (consented, missing, legal, outside):
        access = await registry_policy.person_access(session, p, x.id, x.ambito_id)
        assert (access.projection != "none") == (x.id in found)
    assert scopes.list_projection(p) == "minimal" and not scopes.has_identity(p)


async def test_consent_is_checked_per_person_of_the_cartella(session):
    # One consented person in scope must not open another, unconsented one.
    user, p = await user_and_principal(session, Role.asst_pua_operator, "asst-crema-pua")
    a, ca = await person_with_cartella(session)
    b, cb = await person_with_cartella(session)
    await assign(session, ca, user_id=user.id)
    await assign(session, cb, user_id=user.id)
    await add_consent(session, a, "share_asst", recorded_by=user.id)
    assert (await registry_policy.cartella_in_scope(session, p, ca.id)).id == ca.id
    with pytest.raises(ConsentRequired):
        await registry_policy.cartella_in_scope(session, p, cb.id)
    # a legal basis on the other person's assignment does not count for this one either
    await assign(session, ca, reason="provider", user_id=user.id, legal_basis="base giuridica")
    with pytest.raises(ConsentRequired):
        await registry_policy.cartella_in_scope(session, p, cb.id)
