from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from domain.kernel import history, person_refs
from domain.kernel.clock import rome_day_bounds
from domain.kernel.errors import Conflict, Invalid, NotFound
from domain.registry import assignments
from domain.registry import cartelle as svc
from domain.registry.models import (
    AssignmentReason,
    Cartella,
    CartellaAssignment,
    CartellaStatus,
    CartellaTransfer,
)
from domain.security.models import Role, Team, TeamType
from domain.security.principal import Grant, Principal
from tests.factories.cartelle import create_cartella, create_person
from tests.support import make_user, org


async def principal_for(session, role="comune_social_worker", orgs="comune-crema"):
    """The principal of a fresh user; built from its rows so these tests do not depend on the token path."""
    user = await make_user(session, role, orgs)
    codes = [orgs] if isinstance(orgs, str) else orgs
    grants = tuple([Grant(Role(role), (await org(session, c)).id) for c in codes])
    return Principal(user_id=user.id, username=user.username, kind=user.kind, ambito_id=user.ambito_id,
                     grants=grants), user


class TestOwnerRule:
    async def test_residence_wins_over_domicile(self, session):
        p, _ = await principal_for(session, orgs="comune-offanengo")
        person = await create_person(session, comune="comune-crema", domicile="comune-pandino")
        c = await svc.open_cartella(session, principal=p, person_id=person.id, area="anziani")
        assert c.owning_comune_id == (await org(session, "comune-crema")).id
        assert c.status == CartellaStatus.open and c.version == 1 and c.opened_by == p.user_id

    async def test_domicile_when_no_residence(self, session):
        p, _ = await principal_for(session, orgs="comune-offanengo")
        person = await create_person(session, comune=None, domicile="comune-pandino")
        c = await svc.open_cartella(session, principal=p, person_id=person.id, area="disabili")
        assert c.owning_comune_id == (await org(session, "comune-pandino")).id

    async def test_residence_outside_the_ambito_falls_to_domicile(self, session):
        p, _ = await principal_for(session)
        person = await create_person(session, comune=None, domicile="comune-soncino")
        person.residence_comune_id = (await org(session, "comune-cremona")).id
        await session.flush()
        c = await svc.open_cartella(session, principal=p, person_id=person.id, area="disabili")
        assert c.owning_comune_id == (await org(session, "comune-soncino")).id

    async def test_office_comune_when_no_residence_nor_domicile(self, session):
        p, _ = await principal_for(session, orgs="comune-offanengo")
        person = await create_person(session, comune=None)
        c = await svc.open_cartella(session, principal=p, person_id=person.id, area="emarginazione_poverta")
        assert c.owning_comune_id == (await org(session, "comune-offanengo")).id
        h = await history.versions(session, entity_type="cartella", entity_id=c.id)
        assert [(x.version, x.action) for x in h] == [(1, "opened")]
        assert h[0].data["detail"]["owner_rule"] == "office"

    async def test_no_comune_at_all_asks_for_it(self, session):
        p, _ = await principal_for(session, role="ambito_pua_social_worker", orgs="ambito-crema")
        person = await create_person(session, comune=None)
        with pytest.raises(Invalid) as e:
            await svc.open_cartella(session, principal=p, person_id=person.id, area="anziani")
        assert e.value.field == "owning_comune_id"
        c = await svc.open_cartella(session, principal=p, person_id=person.id, area="anziani",
                                    owning_comune_id=(await org(session, "comune-vailate")).id)
        assert c.owning_comune_id == (await org(session, "comune-vailate")).id

    async def test_explicit_comune_cannot_contradict_residence(self, session):
        p, _ = await principal_for(session)
        person = await create_person(session, comune="comune-crema")
        with pytest.raises(Invalid) as e:
            await svc.open_cartella(session, principal=p, person_id=person.id, area="anziani",
                                    owning_comune_id=(await org(session, "comune-pandino")).id)
        assert e.value.field == "owning_comune_id"

    async def test_explicit_comune_of_another_ambito_is_refused(self, session):
        p, _ = await principal_for(session)
        person = await create_person(session, comune=None)
        with pytest.raises(Invalid) as e:
            await svc.open_cartella(session, principal=p, person_id=person.id, area="anziani",
                                    owning_comune_id=(await org(session, "comune-cremona")).id)
        assert e.value.field == "owning_comune_id"

    async def test_non_noto_is_a_valid_answer(self, session):
        # Issue 9: an adult whose area is not known yet is not filed as "disabili" by default.
        p, _ = await principal_for(session)
        person = await create_person(session)
        c = await svc.open_cartella(session, principal=p, person_id=person.id, area="non_noto")
        assert c.area == "non_noto" and c.legacy_code is None
        other = await create_person(session)
        c = await svc.open_cartella(session, principal=p, person_id=other.id, area="non_noto",
                                    legacy_code="GECAS-123")
        assert c.legacy_code == "GECAS-123"

    async def test_person_of_another_ambito_is_not_found(self, session):
        p, _ = await principal_for(session)
        person = await create_person(session, comune="comune-cremona", ambito="ambito-cremona-test")
        with pytest.raises(NotFound):
            await svc.open_cartella(session, principal=p, person_id=person.id, area="anziani")


class TestOneOpenPerArea:
    async def test_duplicate_area_conflicts_until_closed(self, session):
        p, _ = await principal_for(session)
        person = await create_person(session)
        first = await svc.open_cartella(session, principal=p, person_id=person.id, area="anziani")
        other_area = await svc.open_cartella(session, principal=p, person_id=person.id, area="disabili")
        assert other_area.id != first.id
        with pytest.raises(Conflict):
            await svc.open_cartella(session, principal=p, person_id=person.id, area="anziani")
        await svc.close_cartella(session, principal=p, cartella_id=first.id, reason="Trasferito in RSA")
        again = await svc.open_cartella(session, principal=p, person_id=person.id, area="anziani")
        assert again.id != first.id and again.status == CartellaStatus.open
        items, nxt = await svc.list_for_person(session, principal=p, person_id=person.id)
        assert [c.id for c in items] == [first.id, other_area.id, again.id] and nxt is None
        page, nxt = await svc.list_for_person(session, principal=p, person_id=person.id, limit=2)
        assert len(page) == 2 and nxt == other_area.id
        rest, _ = await svc.list_for_person(session, principal=p, person_id=person.id, cursor=nxt)
        assert [c.id for c in rest] == [again.id]


class TestCaseManager:
    async def test_change_writes_and_ends_assignments(self, session, clock):
        p, _ = await principal_for(session)
        a_user = await make_user(session, "comune_social_worker", "comune-crema")
        b_user = await make_user(session, "asst_pua_operator", "asst-crema-pua")
        person = await create_person(session)
        c = await svc.open_cartella(session, principal=p, person_id=person.id, area="anziani")
        await svc.set_case_manager(session, principal=p, cartella_id=c.id, user_id=a_user.id)
        clock.advance(hours=1)
        await svc.set_case_manager(session, principal=p, cartella_id=c.id, user_id=b_user.id)
        assert c.case_manager_id == b_user.id
        rows, _ = await assignments.list_assignments(session, principal=p, cartella_id=c.id)
        cm = [(r.user_id, svc.is_active(r)) for r in rows if r.reason == AssignmentReason.case_manager]
        assert cm == [(a_user.id, False), (b_user.id, True)]
        actions = [h.action for h in await history.versions(session, entity_type="cartella", entity_id=c.id)]
        assert actions == ["opened", "case_manager_changed", "case_manager_changed"]
        assert c.version == 3

    async def test_remove_and_stale_version(self, session):
        p, _ = await principal_for(session)
        u = await make_user(session, "comune_social_worker", "comune-crema")
        person = await create_person(session)
        c = await svc.open_cartella(session, principal=p, person_id=person.id, area="anziani", case_manager_id=u.id)
        assert c.case_manager_id == u.id and c.version == 2
        with pytest.raises(Conflict):
            await svc.set_case_manager(session, principal=p, cartella_id=c.id, user_id=None, expected_version=1)
        await svc.set_case_manager(session, principal=p, cartella_id=c.id, user_id=None, expected_version=2)
        assert c.case_manager_id is None
        active, _ = await assignments.list_assignments(session, principal=p, cartella_id=c.id, active=True)
        assert active == []

    async def test_user_of_another_ambito_is_refused(self, session):
        p, _ = await principal_for(session)
        stranger = await make_user(session, "comune_social_worker", "comune-cremona")
        person = await create_person(session)
        c = await svc.open_cartella(session, principal=p, person_id=person.id, area="anziani")
        with pytest.raises(Invalid) as e:
            await svc.set_case_manager(session, principal=p, cartella_id=c.id, user_id=stranger.id)
        assert e.value.field == "case_manager_id"

    async def test_assign_reason_case_manager_goes_through_the_change(self, session):
        p, _ = await principal_for(session)
        u1 = await make_user(session, "comune_social_worker", "comune-crema")
        u2 = await make_user(session, "comune_social_worker", "comune-crema")
        person = await create_person(session)
        c = await svc.open_cartella(session, principal=p, person_id=person.id, area="anziani", case_manager_id=u1.id)
        a = await assignments.assign(session, cartella_id=c.id, reason="case_manager", user_id=u2.id,
                                     actor_id=p.user_id)
        assert a.user_id == u2.id and c.case_manager_id == u2.id
        await assignments.end_assignment(session, assignment_id=a.id, actor_id=p.user_id)
        assert c.case_manager_id is None


class TestAssignments:
    async def test_validity_and_end(self, session, clock):
        p, _ = await principal_for(session)
        amb = await org(session, "ambito-crema")
        team = Team(ambito_id=amb.id, code="equipe-test-vmd", name="Équipe VMD di prova", type=TeamType.vmd_equipe)
        session.add(team)
        await session.flush()
        person = await create_person(session)
        c = await svc.open_cartella(session, principal=p, person_id=person.id, area="disabili")
        until = clock.now() + timedelta(days=30)
        a = await assignments.assign(session, cartella_id=c.id, reason="team", team_id=team.id, valid_to=until,
                             source_type="assessment", source_id=c.id, actor_id=p.user_id)
        same = await assignments.assign(session, cartella_id=c.id, reason="team", team_id=team.id,
                                source_type="assessment", source_id=c.id)
        assert same.id == a.id
        provider = await assignments.assign(session, cartella_id=c.id, reason="provider",
                                    organisation_id=(await org(session, "ets-igea")).id)
        active, _ = await assignments.list_assignments(session, principal=p, cartella_id=c.id, active=True)
        assert {x.id for x in active} == {a.id, provider.id}
        clock.advance(days=31)  # the team's validity has run out
        active, _ = await assignments.list_assignments(session, principal=p, cartella_id=c.id, active=True)
        assert [x.id for x in active] == [provider.id]
        await assignments.end_assignment(session, assignment_id=provider.id, actor_id=p.user_id)
        active, _ = await assignments.list_assignments(session, principal=p, cartella_id=c.id, active=True)
        assert active == []
        with pytest.raises(Conflict):
            await assignments.end_assignment(session, assignment_id=provider.id)
        ended, _ = await assignments.list_assignments(session, principal=p, cartella_id=c.id, active=False)
        assert {x.id for x in ended} == {a.id, provider.id}

    async def test_bad_input_names_the_field(self, session, clock):
        p, _ = await principal_for(session)
        u = await make_user(session, "cdc_assessor", "asst-crema-cdc-crema")
        person = await create_person(session)
        c = await svc.open_cartella(session, principal=p, person_id=person.id, area="anziani")
        with pytest.raises(Invalid) as e:
            await assignments.assign(session, cartella_id=c.id, reason="assessor", user_id=u.id,
                             organisation_id=(await org(session, "asst-crema")).id)
        assert e.value.field == "user_id"
        with pytest.raises(Invalid) as e:
            await assignments.assign(session, cartella_id=c.id, reason="assessor", user_id=u.id,
                             valid_to=clock.now() - timedelta(minutes=1))
        assert e.value.field == "valid_to"
        with pytest.raises(Invalid) as e:
            await assignments.assign(session, cartella_id=c.id, reason="provider",
                             organisation_id=(await org(session, "asst-cremona-test")).id)
        assert e.value.field == "organisation_id"
        with pytest.raises(Invalid) as e:
            await assignments.assign(session, cartella_id=c.id, reason="nobody", user_id=u.id)
        assert e.value.field == "reason"

    async def test_closed_cartella_takes_no_assignment(self, session):
        p, _ = await principal_for(session)
        u = await make_user(session, "cdc_assessor", "asst-crema-cdc-crema")
        person = await create_person(session)
        c = await svc.open_cartella(session, principal=p, person_id=person.id, area="anziani")
        a = await assignments.assign(session, cartella_id=c.id, reason="assessor", user_id=u.id)
        await svc.close_cartella(session, principal=p, cartella_id=c.id, reason="Obiettivi raggiunti")
        assert not svc.is_active(a)
        with pytest.raises(Conflict):
            await assignments.assign(session, cartella_id=c.id, reason="assessor", user_id=u.id)


class TestClose:
    async def test_close_with_past_date(self, session, clock):
        p, _ = await principal_for(session)
        person = await create_person(session)
        c = await create_cartella(session, person=person, opened_at=clock.now() - timedelta(days=100))
        await svc.close_cartella(session, principal=p, cartella_id=c.id, reason="Decesso",
                                 closed_on=date(2026, 2, 1))
        assert c.status == CartellaStatus.closed and c.close_reason == "Decesso"
        assert c.closed_at == rome_day_bounds(date(2026, 2, 1))[0]
        with pytest.raises(Conflict):
            await svc.close_cartella(session, principal=p, cartella_id=c.id, reason="ancora")

    async def test_future_or_before_opening_is_invalid(self, session, clock):
        p, _ = await principal_for(session)
        person = await create_person(session)
        c = await svc.open_cartella(session, principal=p, person_id=person.id, area="anziani")
        for bad in (date(2026, 3, 3), date(2026, 3, 1)):
            with pytest.raises(Invalid) as e:
                await svc.close_cartella(session, principal=p, cartella_id=c.id, reason="x", closed_on=bad)
            assert e.value.field == "closed_on"


class TestTransfer:
    async def test_transfer_keeps_history(self, session, clock):
        p, _ = await principal_for(session)
        u = await make_user(session, "comune_social_worker", "comune-crema")
        crema, pandino = await org(session, "comune-crema"), await org(session, "comune-pandino")
        person = await create_person(session, comune="comune-crema")
        c = await svc.open_cartella(session, principal=p, person_id=person.id, area="anziani", case_manager_id=u.id)
        clock.advance(days=10)
        person.residence_comune_id = pandino.id  # the person moved
        await session.flush()
        c2, t = await svc.transfer_cartella(session, principal=p, cartella_id=c.id, reason="Cambio di residenza")
        assert c2.owning_comune_id == pandino.id
        assert (t.from_comune_id, t.to_comune_id, t.by_user_id) == (crema.id, pandino.id, p.user_id)
        rows = list((await session.execute(
            sa.select(CartellaTransfer).where(CartellaTransfer.cartella_id == c.id))).scalars())
        assert len(rows) == 1
        h = await history.versions(session, entity_type="cartella", entity_id=c.id)
        assert [x.action for x in h] == ["opened", "case_manager_changed", "transferred"]
        assert h[0].data["state"]["owning_comune_id"] == str(crema.id)
        assert h[-1].data["state"]["owning_comune_id"] == str(pandino.id)
        assert h[-1].data["detail"]["from_comune_id"] == str(crema.id)
        # assignments are kept: the new comune sets its own case manager
        assert c2.case_manager_id == u.id
        # the cartella now belongs to Pandino: Crema no longer reaches it (row filter), Pandino does
        with pytest.raises(NotFound):
            await svc.get_cartella(session, principal=p, cartella_id=c.id)
        p_pandino, _ = await principal_for(session, orgs="comune-pandino")
        with pytest.raises(Invalid) as e:
            await svc.transfer_cartella(session, principal=p_pandino, cartella_id=c.id)
        assert e.value.field == "to_comune_id"
        with pytest.raises(Invalid) as e:
            await svc.transfer_cartella(session, principal=p_pandino, cartella_id=c.id, to_comune_id=pandino.id)
        assert e.value.field == "to_comune_id"

    async def test_closed_cartella_cannot_move(self, session):
        p, _ = await principal_for(session)
        person = await create_person(session)
        c = await svc.open_cartella(session, principal=p, person_id=person.id, area="anziani")
        await svc.close_cartella(session, principal=p, cartella_id=c.id, reason="Chiusa")
        with pytest.raises(Conflict):
            await svc.transfer_cartella(session, principal=p, cartella_id=c.id,
                                        to_comune_id=(await org(session, "comune-pandino")).id)


class TestVisibility:
    async def test_other_ambito_sees_nothing(self, session):
        p, _ = await principal_for(session)
        other, _ = await principal_for(session, orgs="comune-cremona")
        person = await create_person(session)
        c = await svc.open_cartella(session, principal=p, person_id=person.id, area="anziani")
        with pytest.raises(NotFound):
            await svc.get_cartella(session, principal=other, cartella_id=c.id)
        with pytest.raises(NotFound):
            await svc.list_for_person(session, principal=other, person_id=person.id)


class TestMergeHook:
    async def test_duplicate_open_area_is_closed_and_assignments_move(self, session):
        p, _ = await principal_for(session)
        u_kept = await make_user(session, "comune_social_worker", "comune-crema")
        u_merged = await make_user(session, "comune_social_worker", "comune-crema")
        assessor = await make_user(session, "cdc_assessor", "asst-crema-cdc-crema")
        kept = await create_person(session)
        merged = await create_person(session, comune="comune-pandino")
        k_anz = await svc.open_cartella(session, principal=p, person_id=kept.id, area="anziani",
                                        case_manager_id=u_kept.id)
        m_anz = await svc.open_cartella(session, principal=p, person_id=merged.id, area="anziani",
                                        case_manager_id=u_merged.id)
        m_assessor = await assignments.assign(session, cartella_id=m_anz.id, reason="assessor", user_id=assessor.id)
        m_dis = await svc.open_cartella(session, principal=p, person_id=merged.id, area="disabili")

        ids = {"kept": kept.id, "k_anz": k_anz.id, "m_anz": m_anz.id, "m_dis": m_dis.id, "m_assessor": m_assessor.id,
               "u_kept": u_kept.id, "u_merged": u_merged.id, "assessor": assessor.id}
        counts = await person_refs.repoint_all(session, kept_id=kept.id, merged_id=merged.id)
        assert counts["cartella.person_id"] == 2, counts
        session.expire_all()

        open_rows = list((await session.execute(sa.select(Cartella).where(
            Cartella.person_id == ids["kept"], Cartella.status == "open").order_by(Cartella.area))).scalars())
        assert [(c.area, c.id) for c in open_rows] == [("anziani", ids["k_anz"]), ("disabili", ids["m_dis"])]
        closed = await session.get(Cartella, ids["m_anz"])
        assert closed.status == "closed" and closed.close_reason == "unita per fusione anagrafica"
        assert closed.person_id == ids["kept"]
        moved = list((await session.execute(sa.select(CartellaAssignment).where(
            CartellaAssignment.cartella_id == ids["k_anz"]))).scalars())
        by_user = {a.user_id: svc.is_active(a) for a in moved}
        # the kept cartella's case manager stays; the duplicate's one ended; the assessor moved and is active
        assert by_user == {ids["u_kept"]: True, ids["u_merged"]: False, ids["assessor"]: True}
        assert any(a.id == ids["m_assessor"] for a in moved)
        k = await session.get(Cartella, ids["k_anz"])
        assert k.case_manager_id == ids["u_kept"]
        actions = [h.action for h in await history.versions(session, entity_type="cartella", entity_id=ids["k_anz"])]
        assert actions[-1] == "merged_from"
        actions = [h.action for h in await history.versions(session, entity_type="cartella", entity_id=ids["m_anz"])]
        assert actions[-1] == "closed_by_merge"

    async def test_hook_is_registered_on_the_cartella_reference(self):
        refs = [r for r in person_refs.repointed() if (r.table, r.column) == ("cartella", "person_id")]
        assert len(refs) == 1 and refs[0].before_merge is not None
