"""Break-glass: allowed roles only, a reason of at least 15 characters, default duration from the configuration
(4 h), a maximum, a work item to each owning comune, an audit row with break_glass=true, and an access that ends
by itself when the clock passes expires_at."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from domain.kernel.errors import Conflict, Forbidden, Invalid, NotFound
from domain.kernel.models import WorkItem
from domain.registry import breakglass, consent
from domain.registry import policy as registry_policy
from domain.security import audit, scopes
from domain.security.models import Role
from schemas.access import ConsentCreate
from tests.domain.security.access_setup import person_with_cartella, user_and_principal
from tests.factories.cartelle import create_cartella
from tests.support import org

REASON = "Persona trovata in stato di abbandono, servizi chiusi"


async def test_defaults_come_from_the_configuration():
    cfg = scopes.access_config()["break_glass"]
    assert cfg["default_hours"] == 4 and cfg["max_hours"] == 12
    assert {Role(r) for r in cfg["roles"]} == {Role.comune_social_worker, Role.ambito_pua_social_worker,
                                              Role.asst_pua_operator, Role.cot_operator}


async def test_open_gives_full_access_for_four_hours_then_ends_by_itself(session, clock):
    _, p = await user_and_principal(session, Role.comune_social_worker, "comune-crema")
    person, c = await person_with_cartella(session, comune="comune-offanengo")
    before = await registry_policy.person_access(session, p, person.id, person.ambito_id)
    assert (before.projection, before.in_scope) == ("identity", False)

    grant = await breakglass.open_grant(session, principal=p, person_id=person.id, reason=REASON)
    assert grant.expires_at - grant.started_at == timedelta(hours=4)
    assert grant.started_at == clock.now() and breakglass.is_active(grant)
    during = await registry_policy.person_access(session, p, person.id, person.ambito_id)
    assert (during.projection, during.in_scope, during.break_glass) == ("full", True, True)
    assert (await registry_policy.cartella_in_scope(session, p, c.id)).id == c.id

    clock.advance(hours=3, minutes=59)
    assert (await registry_policy.person_access(session, p, person.id, person.ambito_id)).in_scope
    clock.advance(minutes=1)  # exactly expires_at: over
    after = await registry_policy.person_access(session, p, person.id, person.ambito_id)
    assert (after.projection, after.in_scope, after.break_glass) == ("identity", False, False)
    assert not breakglass.is_active(grant)
    with pytest.raises(NotFound):
        await registry_policy.cartella_in_scope(session, p, c.id)


async def test_default_duration_is_configurable(session, monkeypatch):
    monkeypatch.setitem(scopes.access_config()["break_glass"], "default_hours", 2)
    _, p = await user_and_principal(session, Role.cot_operator, "asst-crema-cot")
    person, _ = await person_with_cartella(session)
    grant = await breakglass.open_grant(session, principal=p, person_id=person.id, reason=REASON)
    assert grant.expires_at - grant.started_at == timedelta(hours=2)


async def test_explicit_duration_up_to_the_maximum(session):
    _, p = await user_and_principal(session, Role.ambito_pua_social_worker, "ambito-crema")
    person, _ = await person_with_cartella(session)
    with pytest.raises(Invalid) as e:
        await breakglass.open_grant(session, principal=p, person_id=person.id, reason=REASON, hours=12.5)
    assert e.value.field == "hours"
    grant = await breakglass.open_grant(session, principal=p, person_id=person.id, reason=REASON, hours=12)
    assert grant.expires_at - grant.started_at == timedelta(hours=12)


async def test_reason_is_mandatory_and_meaningful(session):
    _, p = await user_and_principal(session, Role.comune_social_worker, "comune-crema")
    person, _ = await person_with_cartella(session)
    for reason in ("", "urgente", "   urgente      "):
        with pytest.raises(Invalid) as e:
            await breakglass.open_grant(session, principal=p, person_id=person.id, reason=reason)
        assert e.value.field == "reason"


async def test_only_allowed_roles(session):
    person, _ = await person_with_cartella(session)
    for role, code in ((Role.csc_operator, "csc-crema"), (Role.ets_operator, "ets-igea"), (Role.dpo, "ambito-crema"),
                       (Role.sub_ambito_coordinator, "subambito-crema")):
        _, p = await user_and_principal(session, role, code)
        with pytest.raises(Forbidden):
            await breakglass.open_grant(session, principal=p, person_id=person.id, reason=REASON)


async def test_person_of_another_ambito_is_not_found(session):
    _, p = await user_and_principal(session, Role.comune_social_worker, "comune-crema")
    person, _ = await person_with_cartella(session, comune="comune-cremona", ambito="ambito-cremona-test")
    with pytest.raises(NotFound):
        await breakglass.open_grant(session, principal=p, person_id=person.id, reason=REASON)


async def test_one_active_grant_per_person_and_early_end(session, clock):
    _, p = await user_and_principal(session, Role.comune_social_worker, "comune-crema")
    person, _ = await person_with_cartella(session, comune="comune-offanengo")
    grant = await breakglass.open_grant(session, principal=p, person_id=person.id, reason=REASON)
    with pytest.raises(Conflict):
        await breakglass.open_grant(session, principal=p, person_id=person.id, reason=REASON)
    clock.advance(minutes=30)
    ended = await breakglass.end_grant(session, principal=p, grant_id=grant.id)
    assert ended.ended_at == clock.now()
    assert not (await registry_policy.person_access(session, p, person.id, person.ambito_id)).in_scope
    with pytest.raises(Conflict):
        await breakglass.end_grant(session, principal=p, grant_id=grant.id)
    # after it ended, a new one may be opened
    again = await breakglass.open_grant(session, principal=p, person_id=person.id, reason=REASON)
    assert again.id != grant.id


async def test_someone_elses_grant_cannot_be_ended(session):
    _, p = await user_and_principal(session, Role.comune_social_worker, "comune-crema")
    _, q = await user_and_principal(session, Role.comune_social_worker, "comune-crema")
    person, _ = await person_with_cartella(session, comune="comune-offanengo")
    grant = await breakglass.open_grant(session, principal=p, person_id=person.id, reason=REASON)
    with pytest.raises(NotFound):
        await breakglass.end_grant(session, principal=q, grant_id=grant.id)


async def test_owning_comuni_get_a_work_item(session):
    _, p = await user_and_principal(session, Role.cot_operator, "asst-crema-cot")
    person, _ = await person_with_cartella(session, comune="comune-offanengo")
    soncino = (await org(session, "comune-soncino")).id
    await create_cartella(session, person=person, area="disabili", owning_comune_id=soncino)
    grant = await breakglass.open_grant(session, principal=p, person_id=person.id, reason=REASON)
    items = list((await session.execute(sa.select(WorkItem).where(
        WorkItem.source_type == "break_glass_grant", WorkItem.source_id == grant.id))).scalars())
    owners = {(await org(session, c)).id for c in ("comune-offanengo", "comune-soncino")}
    assert {i.assignee_org_id for i in items} == owners
    for i in items:
        assert (i.kind, i.person_id, i.due_at, i.state) == ("security.break_glass", person.id, grant.expires_at, "open")
        assert i.data["reason"] == REASON and i.data["by"] == p.username
        assert person.surname not in i.title  # no personal data in the title


async def test_opening_is_audited_with_break_glass_true(session):
    _, p = await user_and_principal(session, Role.comune_social_worker, "comune-crema")
    person, _ = await person_with_cartella(session, comune="comune-offanengo")
    ctx = audit.begin(route="/test", method="POST", request_id="bg-test")
    ctx.principal = p
    grant = await breakglass.open_grant(session, principal=p, person_id=person.id, reason=REASON)
    [entry] = ctx.entries
    assert entry["break_glass"] is True and entry["action"] == "break_glass"
    assert entry["person_ids"] == [person.id] and entry["object_ids"] == [person.id]
    assert REASON in entry["legal_basis"]
    mine = await breakglass.my_grants(session, principal=p)
    assert [g.id for g in mine] == [grant.id]


async def test_odd_durations_and_dates_are_refused(session):
    """Issue 9: break-glass `hours: 1e-7` and a consent valid from year 1 were accepted."""
    _, p = await user_and_principal(session, Role.cot_operator, "asst-crema-cot")
    person, _ = await person_with_cartella(session, comune="comune-offanengo")
    for hours in (1e-7, 0.1, 13):
        with pytest.raises(Invalid) as e:
            await breakglass.open_grant(session, principal=p, person_id=person.id, hours=hours,
                                        reason="Segnalazione urgente: persona sola non raggiungibile")
        assert e.value.field == "hours"
    _, owner = await user_and_principal(session, Role.comune_social_worker, "comune-offanengo")
    for day in (date(1, 1, 1), date(2099, 1, 1)):
        with pytest.raises(Invalid) as e:
            await consent.grant(session, principal=owner, person_id=person.id,
                                data=ConsentCreate(purpose="care", grantor_kind="self", valid_from=day))
        assert e.value.field == "valid_from"
