"""VMD service: the integrated assessment by an ASST IFeC and the Offanengo social worker, sign-off rules, bad
answers that write nothing, illegal transitions, masking of ASST health answers, cancellation, reassessment and the
integration indicator. Real Postgres, no mocks."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa

from domain.assessment import equipe, policy, queries
from domain.assessment import service as vmd
from domain.assessment.models import Vmd, VmdState
from domain.kernel import history
from domain.kernel.errors import Conflict, Forbidden, Invalid, NotFound
from domain.kernel.models import WorkItem
from domain.kernel.settings import get_settings
from domain.registry import assignments
from domain.registry.models import CartellaAssignment
from domain.reporting import queries as reporting
from domain.security.models import Role, TeamType
from tests.domain.assessment.vmd_setup import (
    BARTHEL_35,
    IADL_2,
    MEETING,
    SOCIAL,
    add_member,
    build_world,
    counts,
    give_consent,
    in_progress,
    make_team,
    principal_of,
    requested,
    signed_and_met,
)
from tests.factories.cartelle import create_cartella, create_person
from tests.support import make_user, org

_requested, _in_progress, _signed_and_met = requested, in_progress, signed_and_met


async def _items(session, v, kind=None):
    q = sa.select(WorkItem).where(WorkItem.source_type == "vmd", WorkItem.source_id == v.id)
    if kind:
        q = q.where(WorkItem.kind == kind)
    return list((await session.execute(q.order_by(WorkItem.created_at, WorkItem.id))).scalars())


# ================================================================================================ full flow
async def test_full_flow_ifec_and_comune_social_worker_is_integrated(session, clock):
    w = await build_world(session)
    v = await _requested(session, w, trigger="rsa_application", referring_user_id=None, notes="Domanda RSA")
    assert v.state == VmdState.requested and v.requested_at == clock.now()
    assert v.due_at == clock.now() + timedelta(days=30)  # the RSA protocol: 30 days from the request
    team_items = await _items(session, v, vmd.KIND_EQUIPE)
    assert [(i.assignee_team_id, i.due_at, str(i.state)) for i in team_items] == [(w.team.id, v.due_at, "open")]
    team_assignment = (await session.execute(sa.select(CartellaAssignment).where(
        CartellaAssignment.source_id == v.id, CartellaAssignment.reason == "team"))).scalar_one()
    assert team_assignment.team_id == w.team.id and team_assignment.legal_basis == policy.LEGAL_BASIS

    ifec, sw = await w.p(session, "ifec"), await w.p(session, "sw")
    clock.advance(days=1)
    await vmd.schedule(session, principal=ifec, vmd_id=v.id,
                       scheduled_for=datetime.fromisoformat("2026-03-05T10:00:00+01:00"), location="Domicilio")
    a_ifec = await equipe.add_assessor(session, principal=ifec, vmd_id=v.id, user_id=w.ifec.id)
    a_sw = await equipe.add_assessor(session, principal=ifec, vmd_id=v.id, user_id=w.sw.id)
    assert (a_ifec.side, a_ifec.domains) == ("asst", ["functional", "health", "cognitive"])
    assert (a_sw.side, a_sw.domains) == ("comune", ["social_network", "caregiver", "housing", "economic"])
    assert a_ifec.organisation_id == (await org(session, "asst-crema-pua")).id
    assessor_rows = (await session.execute(sa.select(CartellaAssignment.user_id, CartellaAssignment.legal_basis)
                                           .where(CartellaAssignment.source_id == v.id,
                                                  CartellaAssignment.reason == "assessor"))).all()
    assert {(u, lb) for u, lb in assessor_rows} == {(w.ifec.id, policy.LEGAL_BASIS), (w.sw.id, policy.LEGAL_BASIS)}

    mine, _ = await queries.my_assessments(session, principal=ifec)
    assert [(i.kind, i.source_id, i.due_at) for i in mine] == [("vmd.assessment", v.id, v.due_at)]

    clock.advance(days=3)
    b = await equipe.record_response(session, principal=ifec, vmd_id=v.id, instrument_code="barthel",
                                     answers=BARTHEL_35)
    assert (b.instrument_version, b.scores["scores"]["total"]["value"], b.outcome) == (1, 35, "severe_dependency")
    assert b.author_org_id == a_ifec.organisation_id
    assert v.state == VmdState.in_progress
    iadl = await equipe.record_response(session, principal=ifec, vmd_id=v.id, instrument_code="lawton_iadl",
                                        answers=IADL_2)
    assert iadl.scores["scores"]["total"]["value"] == 2
    s = await equipe.record_response(session, principal=sw, vmd_id=v.id, instrument_code="social_risk", answers=SOCIAL)
    assert s.scores["scores"]["social_risk"]["band"]["code"] == "high"

    await equipe.sign(session, principal=ifec, vmd_id=v.id)
    assert v.integrated is False  # only the ASST side so far
    await equipe.sign(session, principal=sw, vmd_id=v.id)
    assert v.integrated is True
    assert {str(i.state) for i in await _items(session, v, vmd.KIND_ASSESSMENT)} == {"done"}

    m = await equipe.hold_meeting(session, principal=ifec, vmd_id=v.id, held_at=clock.now() - timedelta(hours=1),
                                  participants=[{"user_id": w.ifec.id}, {"user_id": w.sw.id}, *MEETING["participants"]],
                                  minutes=MEETING["minutes"], decision=MEETING["decision"])
    assert v.state == VmdState.equipe_review and len(m.participants) == 3
    assert m.participants[0] == {"user_id": str(w.ifec.id)}
    done = await vmd.conclude(session, principal=ifec, vmd_id=v.id, outcome="project_proposed",
                              notes="SAD 6 h/settimana e ADI", reassessment_due=date(2026, 9, 1))
    assert (done.state, done.outcome, done.concluded_at, done.integrated) == (
        VmdState.concluded, "project_proposed", clock.now(), True)
    assert {str(i.state) for i in await _items(session, v)} == {"done"}

    actions = [h.action for h in await history.versions(session, entity_type="vmd", entity_id=v.id)]
    assert actions == ["requested", "scheduled", "assessor_added", "assessor_added", "response_recorded",
                       "response_recorded", "response_recorded", "signed", "signed", "meeting_held", "concluded"]
    assert done.version == len(actions)

    view = await queries.get_vmd(session, principal=ifec, vmd_id=v.id)
    assert sorted(r.response.instrument_code for r in view.responses) == ["barthel", "lawton_iadl", "social_risk"]
    assert not any(r.masked for r in view.responses) and len(view.meetings) == 1 and len(view.assessors) == 2

    share = await reporting.integrated_share(session, ambito_id=v.ambito_id, start=date(2026, 3, 1),
                                             end=date(2026, 3, 31))
    assert (share.numerator, share.denominator, share.share) == (1, 1, 1.0)


async def test_only_one_side_signed_is_not_integrated(session, clock):
    w = await build_world(session)
    v = await _in_progress(session, w)
    ifec = await w.p(session, "ifec")
    await equipe.sign(session, principal=ifec, vmd_id=v.id)  # the social worker never signs
    await equipe.hold_meeting(session, principal=ifec, vmd_id=v.id, held_at=clock.now(), **MEETING)
    done = await vmd.conclude(session, principal=ifec, vmd_id=v.id, outcome="waiting_list")
    assert done.integrated is False
    sw_items = await _items(session, v, vmd.KIND_ASSESSMENT)
    assert {(i.assignee_user_id, str(i.state)) for i in sw_items} == {(w.ifec.id, "done"), (w.sw.id, "cancelled")}
    share = await reporting.integrated_share(session, ambito_id=v.ambito_id, start=date(2026, 1, 1),
                                             end=date(2026, 12, 31))
    assert (share.numerator, share.denominator) == (0, 1)
    by_comune = await reporting.integrated_share_by_comune(session, ambito_id=v.ambito_id,
                                                           start=date(2026, 1, 1), end=date(2026, 12, 31))
    assert by_comune == {w.cartella.owning_comune_id: (0, 1)}


async def test_two_asst_assessors_are_not_integrated_and_csc_counts_as_ambito_unless_switched_off(session, clock,
                                                                                              monkeypatch):
    assert policy.is_integrated({"asst", "comune"}) and policy.is_integrated({"asst", "ambito"})
    assert not policy.is_integrated({"asst"}) and not policy.is_integrated({"comune", "ambito"})
    # default: CSC, the comuni's consortium that carries out VMDs for DDN/Pro.Vi/B1 (seed L3667-3669), is the
    # Ambito side (docs/decisions/vmd.md §2)
    assert policy.is_integrated({"asst", "csc"})
    monkeypatch.setenv("VMD_CSC_COUNTS_AS_AMBITO", "false")
    get_settings.cache_clear()
    try:
        assert not policy.is_integrated({"asst", "csc"})
    finally:
        monkeypatch.delenv("VMD_CSC_COUNTS_AS_AMBITO")
        get_settings.cache_clear()


async def test_an_asst_and_a_csc_assessor_make_an_integrated_vmd(session, clock):
    w = await build_world(session)
    csc = await make_user(session, Role.csc_operator, "csc-crema", profession="Assistente sociale")
    await add_member(session, w.team, csc, "csc-crema")
    v = await _in_progress(session, w, assessors=("ifec",))
    ifec = await w.p(session, "ifec")
    a = await equipe.add_assessor(session, principal=ifec, vmd_id=v.id, user_id=csc.id)
    assert a.side == "csc"
    p_csc = await principal_of(session, csc)
    await equipe.record_response(session, principal=p_csc, vmd_id=v.id, instrument_code="social_risk",
                                 answers=SOCIAL)
    await equipe.sign(session, principal=ifec, vmd_id=v.id)
    await equipe.sign(session, principal=p_csc, vmd_id=v.id)
    assert v.integrated is True


async def test_the_clock_runs_from_the_application_date(session, clock):
    """An RSA application filed on 20 February and sent to the equipe on 2 March is due on 22 March: 30 days from
    "l'inserimento della domanda" (seed L11631), not from the VMD request."""
    w = await build_world(session)
    v = await _requested(session, w, trigger="rsa_application", application_date=date(2026, 2, 20))
    assert v.application_date == date(2026, 2, 20)
    assert v.due_at == clock.now() + timedelta(days=20)
    item = (await _items(session, v, vmd.KIND_EQUIPE))[0]
    assert item.due_at == v.due_at
    plain = await _requested(session, w, trigger="measure_b1")  # default: the day of the request
    assert plain.application_date == date(2026, 3, 2) and plain.due_at == clock.now() + timedelta(days=30)
    with pytest.raises(Invalid) as exc:
        await _requested(session, w, trigger="udo_access", application_date=date(2026, 3, 3))
    assert exc.value.field == "application_date"


async def test_a_vmd_concludes_with_several_outcomes(session, clock):
    w = await build_world(session)
    v, ifec, _ = await _signed_and_met(session, w, clock)
    for bad in (["no_need", "project_proposed"], ["measure_eligible", "measure_not_eligible"], []):
        with pytest.raises(Invalid) as exc:
            await vmd.conclude(session, principal=ifec, vmd_id=v.id, outcomes=bad)
        assert exc.value.field == "outcomes"
    with pytest.raises(Invalid) as exc:
        await vmd.conclude(session, principal=ifec, vmd_id=v.id, outcome="no_need", outcomes=["no_need"])
    assert exc.value.field == "outcomes"
    done = await vmd.conclude(session, principal=ifec, vmd_id=v.id,
                              outcomes=["measure_eligible", "project_proposed", "measure_eligible"])
    assert done.outcomes == ["project_proposed", "measure_eligible"] and done.outcome == "project_proposed"
    summary = await queries.vmd_summary(session, v.id)
    assert (summary.outcome, summary.outcomes) == ("project_proposed", ("project_proposed", "measure_eligible"))
    last = (await history.versions(session, entity_type="vmd", entity_id=v.id))[-1]
    assert last.data["detail"]["outcomes"] == ["project_proposed", "measure_eligible"]


async def test_a_vmd_concluded_with_one_outcome_reads_as_a_list_of_one(session, clock):
    w = await build_world(session)
    v, ifec, _ = await _signed_and_met(session, w, clock)
    await vmd.conclude(session, principal=ifec, vmd_id=v.id, outcome="waiting_list")
    assert v.outcomes == ["waiting_list"]
    # a row concluded before outcomes were a list has only the single value
    await session.execute(sa.update(Vmd).where(Vmd.id == v.id).values(outcomes=[]))
    await session.refresh(v)
    assert v.outcomes == [] and v.all_outcomes == ["waiting_list"]
    assert (await queries.vmd_summary(session, v.id)).outcomes == ("waiting_list",)


# ================================================================================================ sign-off
async def test_sign_off_by_a_non_member_or_non_assessor_is_refused(session):
    w = await build_world(session)
    v = await _in_progress(session, w, assessors=("ifec",))
    outsider = await principal_of(session, w.outsider)  # reaches the cartella (owning comune), not in the equipe
    before = await counts(session, v.id)
    with pytest.raises(Forbidden) as exc:
        await equipe.sign(session, principal=outsider, vmd_id=v.id)
    assert exc.value.extra["reason"] == "not_equipe_member" and "équipe" in exc.value.detail
    with pytest.raises(Forbidden) as exc:  # a member of the equipe who is not an assessor of this VMD
        await equipe.sign(session, principal=await w.p(session, "sw"), vmd_id=v.id)
    assert exc.value.extra["reason"] == "not_assessor"
    assert await counts(session, v.id) == before
    # a member whose membership ended can no longer sign
    ifec_member = (await session.execute(sa.text(
        "select id from team_member where team_id = :t and user_id = :u"), {"t": w.team.id, "u": w.ifec.id})).scalar()
    await session.execute(sa.text("update team_member set valid_to = '2025-12-31' where id = :i"), {"i": ifec_member})
    with pytest.raises(Forbidden):
        await equipe.sign(session, principal=await w.p(session, "ifec"), vmd_id=v.id)


async def test_sign_needs_own_responses_and_happens_once(session):
    w = await build_world(session)
    v = await _in_progress(session, w, assessors=("ifec",))
    ifec = await w.p(session, "ifec")
    await equipe.add_assessor(session, principal=ifec, vmd_id=v.id, user_id=w.sw.id)
    with pytest.raises(Conflict, match="almeno uno strumento"):
        await equipe.sign(session, principal=await w.p(session, "sw"), vmd_id=v.id)
    await equipe.sign(session, principal=ifec, vmd_id=v.id)
    with pytest.raises(Conflict, match="già firmato"):
        await equipe.sign(session, principal=ifec, vmd_id=v.id)
    with pytest.raises(Conflict, match="già firmato"):  # no more answers after signing
        await equipe.record_response(session, principal=ifec, vmd_id=v.id, instrument_code="barthel",
                                     answers=BARTHEL_35)


# ================================================================================================ bad answers
@pytest.mark.parametrize("who,code,version,answers,exc_type,field", [
    ("sw", "social_risk", None, {**SOCIAL, "helpers_count": 99}, Invalid, "answers.helpers_count"),  # out of range
    ("ifec", "barthel", None, {k: v for k, v in BARTHEL_35.items() if k != "stairs"}, Invalid, "answers.stairs"),
    ("ifec", "barthel", None, {**BARTHEL_35, "feeding": "sometimes"}, Invalid, "answers.feeding"),
    ("ifec", "pua_triage", 1, {}, Conflict, "instrument_version"),  # retired version
    ("ifec", "mmse", None, {"x": 1}, Invalid, "instrument_code"),  # unknown instrument
    ("ifec", "barthel", 7, BARTHEL_35, Invalid, "instrument_version"),  # unknown version
    ("ifec", "social_risk", None, SOCIAL, Forbidden, "instrument_code"),  # outside the IFeC's domains
])
async def test_bad_responses_name_the_item_and_write_nothing(session, who, code, version, answers, exc_type, field):
    w = await build_world(session)
    v = await _in_progress(session, w)
    before = await counts(session, v.id)
    with pytest.raises(exc_type) as exc:
        await equipe.record_response(session, principal=await w.p(session, who), vmd_id=v.id, instrument_code=code,
                                     instrument_version=version, answers=answers)
    assert field in [e["field"] for e in exc.value.errors]
    assert await counts(session, v.id) == before


async def test_only_assessors_record_responses(session):
    w = await build_world(session)
    v = await _in_progress(session, w, assessors=("ifec",))
    with pytest.raises(Forbidden):
        await equipe.record_response(session, principal=await w.p(session, "sw"), vmd_id=v.id,
                                     instrument_code="social_risk", answers=SOCIAL)


# ================================================================================================ transitions
async def test_illegal_transitions_are_409_naming_state_and_action(session, clock):
    w = await build_world(session)
    v = await _requested(session, w)
    ifec = await w.p(session, "ifec")
    await equipe.add_assessor(session, principal=ifec, vmd_id=v.id, user_id=w.ifec.id)
    with pytest.raises(Conflict) as exc:  # not scheduled yet
        await equipe.record_response(session, principal=ifec, vmd_id=v.id, instrument_code="barthel",
                                     answers=BARTHEL_35)
    assert exc.value.extra == {"state": "requested", "action": "record_response",
                               "allowed_actions": ["schedule", "add_assessor", "cancel"]}
    assert "serve prima la programmazione della valutazione" in exc.value.detail
    assert "Richiesta" in exc.value.detail
    with pytest.raises(Conflict):
        await equipe.hold_meeting(session, principal=ifec, vmd_id=v.id, held_at=clock.now(), **MEETING)
    with pytest.raises(Conflict):
        await vmd.conclude(session, principal=ifec, vmd_id=v.id, outcome="no_need")
    await vmd.schedule(session, principal=ifec, vmd_id=v.id, scheduled_for=clock.now() + timedelta(days=2))
    await equipe.record_response(session, principal=ifec, vmd_id=v.id, instrument_code="barthel", answers=BARTHEL_35)
    with pytest.raises(Conflict) as exc:  # conclusion needs the equipe meeting state
        await vmd.conclude(session, principal=ifec, vmd_id=v.id, outcome="no_need")
    assert exc.value.extra["state"] == "in_progress"
    await equipe.hold_meeting(session, principal=ifec, vmd_id=v.id, held_at=clock.now(), **MEETING)
    with pytest.raises(Conflict, match="firma"):  # no signature yet
        await vmd.conclude(session, principal=ifec, vmd_id=v.id, outcome="no_need")
    await equipe.sign(session, principal=ifec, vmd_id=v.id)  # signing during the equipe review is allowed
    await vmd.conclude(session, principal=ifec, vmd_id=v.id, outcome="no_need")
    for call in (
        vmd.schedule(session, principal=ifec, vmd_id=v.id, scheduled_for=clock.now() + timedelta(days=1)),
        vmd.cancel(session, principal=ifec, vmd_id=v.id, reason="rinuncia"),
        equipe.add_assessor(session, principal=ifec, vmd_id=v.id, user_id=w.sw.id),
    ):
        with pytest.raises(Conflict):
            await call
    with pytest.raises(Conflict, match="rivalutazione"):  # concluded without a reassessment date
        await vmd.request_reassessment(session, principal=ifec, vmd_id=v.id)


async def test_manage_actions_need_equipe_membership(session, clock):
    w = await build_world(session)
    v = await _requested(session, w)
    stranger = await make_user(session, Role.ambito_pua_social_worker, "ambito-crema")
    await assignments.assign(session, cartella_id=w.cartella.id, reason="case_manager", user_id=stranger.id)
    with pytest.raises(Forbidden):
        await vmd.schedule(session, principal=await principal_of(session, stranger), vmd_id=v.id,
                           scheduled_for=clock.now() + timedelta(days=1))
    asst_outsider = await make_user(session, Role.asst_pua_operator, "asst-crema-pua")
    with pytest.raises(NotFound):  # outside scope: no assignment, no consent
        await queries.get_vmd(session, principal=await principal_of(session, asst_outsider), vmd_id=v.id)


# ================================================================================================ request
async def test_request_validations(session, monkeypatch, clock):
    w = await build_world(session)
    sw = await w.p(session, "sw")
    pua_team = await make_team(session, [(w.sw, "comune-offanengo")], type=TeamType.pua)
    with pytest.raises(Invalid) as exc:
        await vmd.request_vmd(session, principal=sw, person_id=w.person.id, cartella_id=w.cartella.id,
                              trigger="pua", team_id=pua_team.id)
    assert exc.value.field == "team_id"
    with pytest.raises(Invalid) as exc:
        await _requested(session, w, trigger="astrologia")
    assert exc.value.field == "trigger"
    with pytest.raises(Invalid) as exc:
        await _requested(session, w, requested_service_type="nope")
    assert exc.value.field == "requested_service_type"
    crema_person = await create_person(session, comune="comune-crema")
    crema_cartella = await create_cartella(session, person=crema_person)
    with pytest.raises(NotFound):  # the Offanengo worker does not reach a cartella owned by Crema
        await vmd.request_vmd(session, principal=sw, person_id=crema_person.id, cartella_id=crema_cartella.id,
                              trigger="pua", team_id=w.team.id)
    with pytest.raises(Invalid) as exc:
        await vmd.request_vmd(session, principal=sw, person_id=crema_person.id, cartella_id=w.cartella.id,
                              trigger="pua", team_id=w.team.id)
    assert exc.value.field == "person_id"
    mmg = await make_user(session, Role.mmg, "mmg-crema-1")
    monkeypatch.setenv("VMD_DUE_DAYS", '{"measure_b1": 45}')
    get_settings.cache_clear()
    try:
        v = await _requested(session, w, trigger="measure_b1", referring_user_id=mmg.id)
    finally:
        monkeypatch.delenv("VMD_DUE_DAYS")
        get_settings.cache_clear()
    assert v.due_at == clock.now() + timedelta(days=45)
    mmg_a = (await session.execute(sa.select(CartellaAssignment).where(
        CartellaAssignment.source_id == v.id, CartellaAssignment.reason == "referring_mmg"))).scalar_one()
    assert mmg_a.user_id == mmg.id and mmg_a.legal_basis == policy.LEGAL_BASIS
    with pytest.raises(Conflict, match="già in corso"):
        await _requested(session, w, trigger="measure_b1")


async def test_add_assessor_rules(session):
    w = await build_world(session)
    v = await _requested(session, w)
    ifec = await w.p(session, "ifec")
    with pytest.raises(Invalid) as exc:
        await equipe.add_assessor(session, principal=ifec, vmd_id=v.id, user_id=w.outsider.id)
    assert exc.value.field == "user_id"
    desk = await make_user(session, Role.asst_front_desk, "asst-crema-pua")
    await add_member(session, w.team, desk, "asst-crema-pua")
    with pytest.raises(Invalid, match="vmd.assess"):
        await equipe.add_assessor(session, principal=ifec, vmd_id=v.id, user_id=desk.id)
    a = await equipe.add_assessor(session, principal=ifec, vmd_id=v.id, user_id=w.sw.id,
                                  domains=["functional", "social_network"])
    assert a.domains == ["functional", "social_network"]
    with pytest.raises(Conflict):
        await equipe.add_assessor(session, principal=ifec, vmd_id=v.id, user_id=w.sw.id)


# ================================================================================================ masking
async def test_asst_health_answers_are_masked_for_comune_readers_without_share_asst_consent(session):
    w = await build_world(session)
    v = await _in_progress(session, w)
    sw_view = await queries.get_vmd(session, principal=await w.p(session, "sw"), vmd_id=v.id)
    by_code = {r.response.instrument_code: r for r in sw_view.responses}
    assert by_code["barthel"].masked and by_code["lawton_iadl"].masked
    assert not by_code["social_risk"].masked  # the social worker's own answers
    masked = queries.response_payload(by_code["barthel"])
    assert masked["answers"] is None and masked["answers_masked"] is True
    assert masked["scores"]["total"]["value"] == 35 and masked["scores"]["total"]["band"]["code"] == "severe_dependency"
    outsider_view = await queries.get_vmd(session, principal=await principal_of(session, w.outsider), vmd_id=v.id)
    assert {r.response.instrument_code for r in outsider_view.responses if r.masked} == {"barthel", "lawton_iadl"}
    ifec_view = await queries.get_vmd(session, principal=await w.p(session, "ifec"), vmd_id=v.id)
    assert not any(r.masked for r in ifec_view.responses)  # ASST readers see everything

    consent = await give_consent(session, w.person, w.sw)
    sw_view = await queries.get_vmd(session, principal=await w.p(session, "sw"), vmd_id=v.id)
    assert not any(r.masked for r in sw_view.responses)
    by_code = {r.response.instrument_code: r for r in sw_view.responses}
    assert queries.response_payload(by_code["barthel"])["answers"] == BARTHEL_35
    consent.revoked_at = datetime.fromisoformat("2026-03-01T10:00:00+01:00")
    await session.flush()
    sw_view = await queries.get_vmd(session, principal=await w.p(session, "sw"), vmd_id=v.id)
    assert {r.response.instrument_code for r in sw_view.responses if r.masked} == {"barthel", "lawton_iadl"}


# ================================================================================================ cancel, reassess
async def test_cancel_closes_work_items_and_ends_the_vmd_assignments(session, clock):
    w = await build_world(session)
    v = await _in_progress(session, w)
    ifec = await w.p(session, "ifec")
    with pytest.raises(Invalid):
        await vmd.cancel(session, principal=ifec, vmd_id=v.id, reason="  ")
    done = await vmd.cancel(session, principal=ifec, vmd_id=v.id, reason="Ricoverata in RSA fuori distretto")
    assert (done.state, done.cancelled_at, done.cancel_reason) == (VmdState.cancelled, clock.now(),
                                                                   "Ricoverata in RSA fuori distretto")
    assert {str(i.state) for i in await _items(session, v)} == {"cancelled"}
    open_assignments = (await session.execute(sa.select(sa.func.count()).select_from(CartellaAssignment).where(
        CartellaAssignment.source_id == v.id, CartellaAssignment.valid_to.is_(None)))).scalar_one()
    assert open_assignments == 0
    with pytest.raises(NotFound):  # the ASST side reached the cartella only through the VMD's assignments
        await queries.get_vmd(session, principal=ifec, vmd_id=v.id)
    with pytest.raises(Conflict):  # the requester (owning comune) still sees it: cancelled is final
        await vmd.cancel(session, principal=await w.p(session, "sw"), vmd_id=v.id, reason="ancora")
    # the requester may cancel without being in the equipe; a new VMD with the same trigger is then allowed
    v2 = await _requested(session, w)
    await vmd.cancel(session, principal=await w.p(session, "sw"), vmd_id=v2.id, reason="rinuncia")
    assert v2.state == VmdState.cancelled


async def test_reassessment_spawns_a_new_linked_vmd(session, clock):
    w = await build_world(session)
    v, ifec, sw = await _signed_and_met(session, w, clock)
    with pytest.raises(Invalid) as exc:
        await vmd.conclude(session, principal=ifec, vmd_id=v.id, outcome="project_proposed",
                           reassessment_due=date(2026, 3, 2))
    assert exc.value.field == "reassessment_due"
    await vmd.conclude(session, principal=ifec, vmd_id=v.id, outcome="project_proposed",
                       reassessment_due=date(2026, 9, 1))
    clock.set(datetime.fromisoformat("2026-09-01T09:00:00+02:00"))
    new = await vmd.request_reassessment(session, principal=sw, vmd_id=v.id)
    assert (new.previous_vmd_id, new.person_id, new.cartella_id, new.team_id, new.state) == (
        v.id, v.person_id, v.cartella_id, v.team_id, VmdState.requested)
    assert new.requested_at == clock.now() and new.due_at == clock.now() + timedelta(days=30)
    assert v.state == VmdState.concluded and not new.integrated
    with pytest.raises(Conflict, match="già in corso"):
        await vmd.request_reassessment(session, principal=sw, vmd_id=v.id)
    page, _, view = await queries.list_for_cartella(session, principal=sw, cartella_id=w.cartella.id)
    assert [x.id for x in page] == [new.id, v.id]
    assert view == "full"
    page, _, _ = await queries.list_for_person(session, principal=sw, person_id=w.person.id, limit=1)
    assert [x.id for x in page] == [new.id]


async def test_death_cancels_the_open_vmds_of_the_person(session):
    from domain.assessment import subscribers
    from domain.kernel import events

    assert any("cancel_open_vmds_on_death" in k for k in events.subscribers("person.died"))
    w = await build_world(session)
    v = await _in_progress(session, w)
    w.person.date_of_death = date(2026, 3, 1)
    session.add(w.person)
    await session.flush()
    await subscribers.cancel_open_vmds_on_death(session, {"person_id": str(w.person.id)})
    assert (v.state, v.cancel_reason) == (VmdState.cancelled, "Decesso della persona")
    assert {str(i.state) for i in await _items(session, v)} == {"cancelled"}
    last = (await history.versions(session, entity_type="vmd", entity_id=v.id))[-1]
    assert (last.action, last.actor_id) == ("cancelled_by_system", None)
    assert await vmd.cancel_open_for_person(session, person_id=w.person.id) == 0  # a retried job does nothing
    with pytest.raises(Conflict, match="deceduta"):
        await _requested(session, w, trigger="mmg")


async def test_reassessment_reminder_goes_to_the_equipe_once(session, clock):
    from domain.assessment import jobs as vmd_jobs

    w = await build_world(session)
    v, ifec, sw = await _signed_and_met(session, w, clock)
    await vmd.conclude(session, principal=ifec, vmd_id=v.id, outcome="project_proposed",
                       reassessment_due=date(2026, 9, 1))
    assert await vmd_jobs.create_reassessment_reminders(session) == 0  # six months away
    clock.set(datetime.fromisoformat("2026-08-10T09:00:00+02:00"))
    await vmd_jobs.create_reassessment_reminders(session)
    await vmd_jobs.create_reassessment_reminders(session)  # the next day's run finds the same open item
    items = await _items(session, v, kind="vmd.reassessment")
    assert len(items) == 1 and items[0].assignee_team_id == w.team.id and items[0].state == "open"
    clock.set(datetime.fromisoformat("2026-09-01T09:00:00+02:00"))
    await vmd.request_reassessment(session, principal=sw, vmd_id=v.id)
    assert await vmd_jobs.create_reassessment_reminders(session) == 0  # requested: nothing more to remind
    assert [str(i.state) for i in await _items(session, v, kind="vmd.reassessment")] == ["cancelled"]
