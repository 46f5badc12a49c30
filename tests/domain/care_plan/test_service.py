from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from domain.assessment.models import VmdOutcome, VmdState
from domain.care_plan import interventions, queries
from domain.care_plan import policy as plan_policy
from domain.care_plan import service as svc
from domain.care_plan.models import CarePlan, Intervention, PlanState
from domain.kernel import clock as clock_mod
from domain.kernel import history
from domain.kernel.errors import Conflict, Forbidden, Invalid
from domain.registry import cartelle
from domain.registry import consent as consent_mod
from domain.registry.models import AssignmentReason, CartellaAssignment, PersonRelation
from domain.security.models import Role
from schemas.care_plan import (
    ActivateIn,
    AgreeIn,
    CarePlanCreate,
    CarePlanUpdate,
    GoalCreate,
    GoalUpdate,
    InterventionCreate,
    InterventionUpdate,
)
from tests.domain.care_plan.support import World, concluded_vmd, grant_care_consent, make_world, principal_of
from tests.factories.registry import insert_person
from tests.support import make_user, org


@pytest.fixture
async def w(session) -> World:
    return await make_world(session)


async def new_plan(session, w: World, **kw) -> CarePlan:
    data = CarePlanCreate(cartella_id=w.cartella.id, case_manager_id=w.sw.id, title="Sostegno alla domiciliarità",
                          summary="Vive sola; Barthel 35, IADL 2.", **kw)
    return await svc.create_plan(session=session, principal=w.sw_p, data=data)


async def sad_and_adi(session, w: World, plan: CarePlan) -> tuple[Intervention, Intervention]:
    sad = await interventions.add_intervention(session, principal=w.sw_p, plan_id=plan.id, data=InterventionCreate(
        service_type="sad", provider_org_id=(await org(session, "ets-igea")).id, intensity_value=6,
        intensity_unit="ore/settimana", start_date=date(2026, 3, 2), funding_source="fna"))
    adi = await interventions.add_intervention(session, principal=w.sw_p, plan_id=plan.id, data=InterventionCreate(
        service_type="adi_cdom", provider_org_id=(await org(session, "asst-crema")).id, intensity_value=2,
        intensity_unit="accessi/settimana", start_date=date(2026, 3, 2), funding_source="fondo_sanitario"))
    return sad, adi


async def proposed_plan(session, w: World, **kw) -> tuple[CarePlan, Intervention, Intervention]:
    plan = await new_plan(session, w, **kw)
    await interventions.add_goal(session=session, principal=w.sw_p, plan_id=plan.id, data=GoalCreate(
        description="Permanenza al domicilio in sicurezza", indicator="Accessi in PS nei 6 mesi", target="0 accessi",
        due_date=date(2026, 9, 1)))
    sad, adi = await sad_and_adi(session, w, plan)
    await svc.propose(session=session, principal=w.sw_p, plan_id=plan.id)
    return plan, sad, adi


async def active_assignments(session, cartella_id, reason) -> list[CartellaAssignment]:
    now = clock_mod.now()
    return list((await session.execute(sa.select(CartellaAssignment).where(
        CartellaAssignment.cartella_id == cartella_id, CartellaAssignment.reason == reason,
        CartellaAssignment.valid_from <= now,
        sa.or_(CartellaAssignment.valid_to.is_(None), CartellaAssignment.valid_to > now)))).scalars())


class TestCreate:
    async def test_draft_with_case_manager_assignment_and_first_version(self, session, w):
        plan = await new_plan(session, w)
        assert plan.state == PlanState.draft and plan.version == 1 and plan.review_interval_days == 180
        assert plan.person_id == w.person.id and plan.ambito_id == w.cartella.ambito_id
        cms = await active_assignments(session, w.cartella.id, AssignmentReason.case_manager)
        assert [a.user_id for a in cms] == [w.sw.id] and cms[0].legal_basis
        await session.refresh(w.cartella)
        assert w.cartella.case_manager_id == w.sw.id
        rows = await history.versions(session, entity_type="care_plan", entity_id=plan.id)
        assert [(r.version, r.action) for r in rows] == [(1, "created")]
        assert rows[0].data["plan"]["title"] == "Sostegno alla domiciliarità" and rows[0].data["goals"] == []

    async def test_case_manager_must_hold_a_role_in_the_ambito(self, session, w):
        stranger = await make_user(session, Role.comune_social_worker, "comune-cremona")
        with pytest.raises(Invalid) as exc:
            await svc.create_plan(session=session, principal=w.sw_p, data=CarePlanCreate(
                cartella_id=w.cartella.id, case_manager_id=stranger.id, title="x"))
        assert exc.value.field == "case_manager_id"

    async def test_from_vmd_rules(self, session, w):
        vmd = await concluded_vmd(session, w, VmdOutcome.project_proposed)
        plan = await new_plan(session, w, vmd_id=vmd.id)
        assert plan.vmd_id == vmd.id
        with pytest.raises(Conflict):  # one running plan per VMD
            await new_plan(session, w, vmd_id=vmd.id)

        waiting = await concluded_vmd(session, w, VmdOutcome.waiting_list)
        with pytest.raises(Invalid) as exc:
            await new_plan(session, w, vmd_id=waiting.id, kind="ordinary")
        assert exc.value.field == "kind"
        temp = await new_plan(session, w, vmd_id=waiting.id, kind="temporary")
        assert temp.kind == "temporary"

        for bad in (await concluded_vmd(session, w, VmdOutcome.no_need),
                    await concluded_vmd(session, w, VmdOutcome.project_proposed, state=VmdState.in_progress)):
            with pytest.raises(Invalid) as exc:
                await new_plan(session, w, vmd_id=bad.id)
            assert exc.value.field == "vmd_id"

    async def test_a_vmd_with_several_outcomes(self, session, w):
        # Issue 9: eligible for a measure AND a project proposed (B1, Pro.Vi, Dopo di Noi need the project) ...
        both = await concluded_vmd(session, w, VmdOutcome.project_proposed,
                                   outcomes=[VmdOutcome.project_proposed, VmdOutcome.measure_eligible])
        assert (await new_plan(session, w, vmd_id=both.id)).vmd_id == both.id
        # ... and a waiting list with its temporary project: the project must be temporary
        waiting = await concluded_vmd(session, w, VmdOutcome.project_proposed,
                                      outcomes=[VmdOutcome.project_proposed, VmdOutcome.waiting_list])
        with pytest.raises(Invalid) as exc:
            await new_plan(session, w, vmd_id=waiting.id, kind="ordinary")
        assert exc.value.field == "kind"
        assert (await new_plan(session, w, vmd_id=waiting.id, kind="temporary")).kind == "temporary"

    async def test_vmd_of_another_cartella_is_refused(self, session, w):
        other_cartella = await cartelle.open_cartella(session, principal=w.sw_p, person_id=w.person.id,
                                                          area="disabili")
        vmd = await concluded_vmd(session, w, cartella_id=other_cartella.id)
        with pytest.raises(Invalid) as exc:
            await new_plan(session, w, vmd_id=vmd.id)
        assert exc.value.field == "vmd_id"


class TestEdits:
    async def test_every_edit_bumps_version_with_complete_snapshot(self, session, w):
        plan = await new_plan(session, w)
        goal = await interventions.add_goal(session=session, principal=w.sw_p, plan_id=plan.id, data=GoalCreate(
            description="Igiene personale autonoma", indicator="Barthel", target="Barthel ≥ 50"))
        sad, adi = await sad_and_adi(session, w, plan)
        await interventions.update_goal(session=session, principal=w.sw_p, plan_id=plan.id, goal_id=goal.id,
                              data=GoalUpdate(target="Barthel ≥ 55"))
        await svc.update_plan(session=session, principal=w.sw_p, plan_id=plan.id,
                              data=CarePlanUpdate(summary="Aggiornata", version=plan.version))
        assert plan.version == 6
        rows = await history.versions(session, entity_type="care_plan", entity_id=plan.id)
        assert [r.version for r in rows] == [1, 2, 3, 4, 5, 6]
        last = rows[-1].data
        assert last["plan"]["summary"] == "Aggiornata" and last["plan"]["version"] == 6
        assert [g["target"] for g in last["goals"]] == ["Barthel ≥ 55"]
        assert [(i["service_type"], i["intensity_value"], i["intensity_unit"]) for i in last["interventions"]] == [
            ("sad", 6.0, "ore/settimana"), ("adi_cdom", 2.0, "accessi/settimana")]
        assert [g["target"] for g in rows[3].data["goals"]] == ["Barthel ≥ 50"]  # older version untouched
        with pytest.raises(Conflict):  # stale expected version
            await svc.update_plan(session=session, principal=w.sw_p, plan_id=plan.id,
                                  data=CarePlanUpdate(title="x", version=3))

    async def test_intervention_validation_names_fields(self, session, w):
        plan = await new_plan(session, w)
        other_ambito = await org(session, "asst-cremona-test")
        cases = [
            ({"service_type": "giardinaggio"}, "service_type"),
            ({"service_type": "sad", "provider_org_id": other_ambito.id}, "provider_org_id"),
            ({"service_type": "sad", "funding_source": "lotteria"}, "funding_source"),
            ({"service_type": "sad", "start_date": date(2026, 3, 10), "end_date": date(2026, 3, 1)}, "end_date"),
            ({"service_type": "sad", "intensity_value": 6}, "intensity_unit"),
        ]
        for body, field in cases:
            with pytest.raises(Invalid) as exc:
                await interventions.add_intervention(session=session, principal=w.sw_p, plan_id=plan.id,
                                           data=InterventionCreate(**body))
            assert exc.value.field == field, body
        n = (await session.execute(sa.select(sa.func.count()).select_from(Intervention)
                                   .where(Intervention.plan_id == plan.id))).scalar_one()
        assert n == 0 and plan.version == 1

    async def test_inactive_service_type_is_refused(self, session, w):
        from domain.territory.models import ServiceType

        st = await session.get(ServiceType, "trasporto_sociale")
        st.active = False
        await session.flush()
        plan = await new_plan(session, w)
        with pytest.raises(Invalid) as exc:
            await interventions.add_intervention(session=session, principal=w.sw_p, plan_id=plan.id,
                                       data=InterventionCreate(service_type="trasporto_sociale"))
        assert exc.value.field == "service_type"

    async def test_not_editable_after_agreement(self, session, w):
        plan, sad, _ = await proposed_plan(session, w)
        await interventions.update_intervention(session, principal=w.sw_p, plan_id=plan.id, intervention_id=sad.id,
                                      data=InterventionUpdate(intensity_value=8))  # proposed: still editable
        assert sad.intensity_value == 8
        await svc.agree(session=session, principal=w.sw_p, plan_id=plan.id, data=AgreeIn(consent_id=w.consent.id))
        for call in (
            interventions.add_goal(session=session, principal=w.sw_p, plan_id=plan.id,
                         data=GoalCreate(description="a", indicator="b", target="c")),
            interventions.update_intervention(session, principal=w.sw_p, plan_id=plan.id, intervention_id=sad.id,
                                    data=InterventionUpdate(intensity_value=10)),
            svc.update_plan(session=session, principal=w.sw_p, plan_id=plan.id, data=CarePlanUpdate(title="x")),
        ):
            with pytest.raises(Conflict) as exc:
                await call
            assert exc.value.extra["state"] == "agreed"

    async def test_propose_needs_goal_and_intervention(self, session, w):
        plan = await new_plan(session, w)
        with pytest.raises(Invalid) as exc:
            await svc.propose(session=session, principal=w.sw_p, plan_id=plan.id)
        assert {e["field"] for e in exc.value.errors} == {"goals", "interventions"}
        assert plan.state == PlanState.draft


class TestAgreeAndActivate:
    async def test_agree_links_consent_version_and_signatories(self, session, w):
        vmd = await concluded_vmd(session, w)
        plan, _, _ = await proposed_plan(session, w, vmd_id=vmd.id)
        before = plan.version
        await svc.agree(session=session, principal=w.sw_p, plan_id=plan.id, data=AgreeIn(consent_id=w.consent.id))
        assert plan.state == PlanState.agreed and plan.consent_id == w.consent.id
        assert plan.agreed_at == clock_mod.now() and plan.agreed_version == before + 1 == plan.version
        roles = [(s["role"], s["name"]) for s in plan.signatories]
        assert roles == [("person", "Maria Bianchi"), ("case_manager", "Anna Ferrari"), ("equipe", "Luca Moretti")]
        row = (await history.versions(session, entity_type="care_plan", entity_id=plan.id))[-1]
        assert row.action == "agreed" and row.data["plan"]["consent_id"] == str(w.consent.id)

    async def test_bad_consents_are_422_naming_consent_id(self, session, w):
        plan, _, _ = await proposed_plan(session, w)
        share = await grant_care_consent(session, w.sw_p, w.person)
        share.purpose = "share_asst"
        await session.flush()
        revoked = await grant_care_consent(session, w.sw_p, w.person)
        await consent_mod.revoke(session, principal=w.sw_p, person_id=w.person.id, consent_id=revoked.id,
                                 reason="ritirato")
        other_person = await insert_person(session, comune="comune-offanengo")
        await cartelle.open_cartella(session, principal=w.sw_p, person_id=other_person.id, area="anziani")
        foreign = await grant_care_consent(session, w.sw_p, other_person)
        expired = await grant_care_consent(session, w.sw_p, w.person, valid_to=date(2026, 3, 2))  # [1/3, 2/3)
        for c in (share, revoked, foreign, expired):
            with pytest.raises(Invalid) as exc:
                await svc.agree(session=session, principal=w.sw_p, plan_id=plan.id, data=AgreeIn(consent_id=c.id))
            assert exc.value.field == "consent_id"
        assert plan.state == PlanState.proposed and plan.consent_id is None

    async def test_without_a_consent_named_the_one_in_force_is_taken(self, session, w):
        plan, _, _ = await proposed_plan(session, w)
        await svc.agree(session=session, principal=w.sw_p, plan_id=plan.id, data=None)
        assert plan.state == PlanState.agreed and plan.consent_id == w.consent.id
        plan, _, _ = await proposed_plan(session, w)
        await svc.agree(session=session, principal=w.sw_p, plan_id=plan.id, data=AgreeIn())
        assert plan.consent_id == w.consent.id

    async def test_without_a_consent_named_none_or_several_is_422_saying_which(self, session, w):
        plan, _, _ = await proposed_plan(session, w)
        await consent_mod.revoke(session, principal=w.sw_p, person_id=w.person.id, consent_id=w.consent.id,
                                 reason="ritirato")
        share = await grant_care_consent(session, w.sw_p, w.person)
        share.purpose = "share_asst"  # in force, but not for care
        await session.flush()
        with pytest.raises(Invalid) as exc:
            await svc.agree(session=session, principal=w.sw_p, plan_id=plan.id, data=None)
        assert exc.value.field == "consent_id" and "nessun consenso" in exc.value.errors[0]["reason"]
        first = await grant_care_consent(session, w.sw_p, w.person)
        second = await grant_care_consent(session, w.sw_p, w.person, document_ref="Modulo 2")
        with pytest.raises(Invalid) as exc:
            await svc.agree(session=session, principal=w.sw_p, plan_id=plan.id, data=AgreeIn())
        reason = exc.value.errors[0]["reason"]
        assert exc.value.field == "consent_id" and "2 consensi" in reason
        assert str(first.id) in reason and str(second.id) in reason
        assert plan.state == PlanState.proposed and plan.consent_id is None
        # naming one of them still works
        await svc.agree(session=session, principal=w.sw_p, plan_id=plan.id, data=AgreeIn(consent_id=second.id))
        assert plan.consent_id == second.id

    async def test_consent_of_the_ads(self, session, w):
        rel = PersonRelation(person_id=w.person.id, kind="ads", surname="Rossi", given_name="Giulia",
                             decree_reference="R.G. 1/2026", decree_scope=["care_health"],
                             valid_from=date(2026, 1, 1))
        session.add(rel)
        await session.flush()
        c = await grant_care_consent(session, w.sw_p, w.person, grantor_kind="ads", grantor_relation_id=rel.id)
        plan, _, _ = await proposed_plan(session, w)
        await svc.agree(session=session, principal=w.sw_p, plan_id=plan.id, data=AgreeIn(consent_id=c.id))
        assert plan.signatories[0] == {"role": "representative", "role_label": "Amministratore di sostegno",
                                       "name": "Giulia Rossi", "grantor_kind": "ads"}

    async def test_activate_without_consent_is_409_naming_consent_id_nothing_written(self, session, w):
        plan, sad, _ = await proposed_plan(session, w)
        version = plan.version
        with pytest.raises(Conflict) as exc:
            await svc.activate(session=session, principal=w.sw_p, plan_id=plan.id)
        assert exc.value.errors[0]["field"] == "consent_id"
        assert plan.state == PlanState.proposed and plan.version == version and sad.status == "planned"
        assert await active_assignments(session, w.cartella.id, AssignmentReason.provider) == []

    async def test_consent_revoked_after_agreement_blocks_activation(self, session, w):
        plan, _, _ = await proposed_plan(session, w)
        await svc.agree(session=session, principal=w.sw_p, plan_id=plan.id, data=AgreeIn(consent_id=w.consent.id))
        await consent_mod.revoke(session, principal=w.sw_p, person_id=w.person.id, consent_id=w.consent.id,
                                 reason="ritirato")
        with pytest.raises(Conflict) as exc:
            await svc.activate(session=session, principal=w.sw_p, plan_id=plan.id)
        assert exc.value.errors[0]["field"] == "consent_id" and exc.value.extra["consent_id"] == str(w.consent.id)
        assert plan.state == PlanState.agreed

    async def test_activate_starts_interventions_and_gives_providers_minimal_access(self, session, w):
        plan, sad, adi = await proposed_plan(session, w)
        await svc.agree(session=session, principal=w.sw_p, plan_id=plan.id, data=AgreeIn(consent_id=w.consent.id))
        await svc.activate(session=session, principal=w.sw_p, plan_id=plan.id, data=ActivateIn(
            intervention_ids=[sad.id]))
        assert plan.state == PlanState.active and plan.activated_at == clock_mod.now()
        assert plan.next_review_due == date(2026, 3, 2) + timedelta(days=180)
        assert sad.status == "active" and sad.started_at is not None and adi.status == "planned"
        provs = await active_assignments(session, w.cartella.id, AssignmentReason.provider)
        assert [(a.organisation_id, a.source_id) for a in provs] == [((await org(session, "ets-igea")).id, sad.id)]
        assert provs[0].legal_basis == interventions.LEGAL_BASIS_PROVIDER

        # The ETS operator reaches the case through the assignment and sees only its intervention.
        ets = await principal_of(session, await make_user(session, Role.ets_operator, "ets-igea"))
        bundle = await queries.get_plan(session=session, principal=ets, plan_id=plan.id)
        view = plan_policy.plan_view_for(ets, bundle)
        assert view["view"] == "minimal" and "goals" not in view and "summary" not in view and "title" not in view
        assert [i["service_type"] for i in view["interventions"]] == ["sad"]
        assert view["interventions"][0]["intensity_label"] == "6 ore/settimana"
        with pytest.raises(Forbidden):
            await queries.list_versions(session=session, principal=ets, plan_id=plan.id)
        full = plan_policy.plan_view_for(w.sw_p, await queries.get_plan(session, principal=w.sw_p, plan_id=plan.id))
        assert full["view"] == "full" and len(full["interventions"]) == 2 and full["goals"]

        # Another ETS has no access at all.
        meraki = await principal_of(session, await make_user(session, Role.ets_operator, "ets-meraki"))
        with pytest.raises(Exception) as exc:
            await queries.get_plan(session=session, principal=meraki, plan_id=plan.id)
        assert getattr(exc.value, "status", None) in (403, 404)

        # Starting the ADI later, then ending the SAD: its provider access ends.
        await interventions.start_intervention(session, principal=w.sw_p, plan_id=plan.id, intervention_id=adi.id)
        await interventions.end_intervention(session=session, principal=w.sw_p, plan_id=plan.id, intervention_id=sad.id)
        assert sad.status == "ended" and sad.end_date == date(2026, 3, 2)
        provs = await active_assignments(session, w.cartella.id, AssignmentReason.provider)
        assert [a.source_id for a in provs] == [adi.id]
        with pytest.raises(Exception) as exc:
            await queries.get_plan(session=session, principal=ets, plan_id=plan.id)
        assert getattr(exc.value, "status", None) in (403, 404)

    async def test_activate_default_picks_interventions_starting_by_today(self, session, w):
        plan, sad, adi = await proposed_plan(session, w)
        adi.start_date = date(2026, 4, 1)
        await session.flush()
        await svc.agree(session=session, principal=w.sw_p, plan_id=plan.id, data=AgreeIn(consent_id=w.consent.id))
        with pytest.raises(Invalid) as exc:
            await svc.activate(session=session, principal=w.sw_p, plan_id=plan.id,
                               data=ActivateIn(intervention_ids=[adi.id]))
        assert exc.value.field == "intervention_ids"
        await svc.activate(session=session, principal=w.sw_p, plan_id=plan.id)
        assert sad.status == "active" and adi.status == "planned"

    async def test_revoke_ends_everything(self, session, w):
        plan, sad, adi = await proposed_plan(session, w)
        await svc.agree(session=session, principal=w.sw_p, plan_id=plan.id, data=AgreeIn(consent_id=w.consent.id))
        await svc.activate(session=session, principal=w.sw_p, plan_id=plan.id, data=ActivateIn(
            intervention_ids=[sad.id]))
        await svc.revoke(session=session, principal=w.sw_p, plan_id=plan.id, reason="La persona rinuncia")
        assert plan.state == PlanState.revoked and plan.close_reason == "La persona rinuncia" and plan.closed_at
        assert (sad.status, adi.status) == ("ended", "cancelled")
        assert await active_assignments(session, w.cartella.id, AssignmentReason.provider) == []
        with pytest.raises(Conflict):
            await svc.resume(session=session, principal=w.sw_p, plan_id=plan.id)


class TestTemporary:
    async def test_close_temporary_plans_for(self, session, w):
        waiting = await concluded_vmd(session, w, VmdOutcome.waiting_list)
        plan, sad, _ = await proposed_plan(session, w, vmd_id=waiting.id, kind="temporary")
        ordinary, _, _ = await proposed_plan(session, w)
        await svc.agree(session=session, principal=w.sw_p, plan_id=plan.id, data=AgreeIn(consent_id=w.consent.id))
        await svc.activate(session=session, principal=w.sw_p, plan_id=plan.id,
                           data=ActivateIn(intervention_ids=[sad.id]))
        closed = await svc.close_temporary_plans_for(session, person_id=w.person.id, reason="Ingresso in RSA")
        assert [p.id for p in closed] == [plan.id]
        assert plan.state == PlanState.completed and sad.status == "ended" and ordinary.state == PlanState.proposed
        assert await active_assignments(session, w.cartella.id, AssignmentReason.provider) == []
        assert await svc.close_temporary_plans_for(session, person_id=w.person.id, reason="again") == []
