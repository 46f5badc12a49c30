from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa

from domain.assessment import policy as vmd_policy
from domain.assessment.models import InstrumentResponse
from domain.kernel import calendar, history
from domain.kernel.cursor import BadCursor
from domain.kernel.errors import Conflict, Forbidden, Invalid, NotFound
from domain.kernel.models import EntityHistory, WorkItem
from domain.pua import flows, queries, service
from domain.pua.models import AccessRequest, AccessState
from domain.registry.models import AssignmentReason, Cartella, CartellaAssignment
from domain.security.models import Role
from schemas.pua import CloseIn, OrientIn, ReferCotIn, ReferVmdIn
from tests.domain.pua.helpers import (
    complex_answers,
    create,
    elderly_woman,
    mmg_referral,
    setup_pua,
    simple_answers,
    triaged,
)
from tests.factories.registry import insert_person, person_payload
from tests.support import make_user, org

NOW = datetime.fromisoformat("2026-03-02T09:00:00+01:00")


async def _items(session, request_id, kind=service.TRIAGE_KIND):
    return list((await session.execute(sa.select(WorkItem).where(
        WorkItem.source_type == "access_request", WorkItem.source_id == request_id, WorkItem.kind == kind)
        .execution_options(populate_existing=True))).scalars())


# ---------------------------------------------------------------- time rules
async def test_working_days_skip_weekends_and_holidays():
    assert calendar.add_working_days(NOW, 2) == datetime.fromisoformat("2026-03-04T09:00:00+01:00")
    friday = datetime.fromisoformat("2026-03-06T17:30:00+01:00")
    assert calendar.add_working_days(friday, 2) == datetime.fromisoformat("2026-03-10T17:30:00+01:00")
    # Easter 2026 is 5 April: Easter Monday (6 April) is a holiday; DST starts on 29 March
    thursday = datetime.fromisoformat("2026-04-02T10:00:00+02:00")
    assert calendar.add_working_days(thursday, 2) == datetime.fromisoformat("2026-04-07T10:00:00+02:00")
    assert calendar.add_working_days(datetime.fromisoformat("2026-04-24T10:00:00+02:00"), 1) == \
        datetime.fromisoformat("2026-04-27T10:00:00+02:00")  # 25 April is a Saturday this year
    assert not calendar.is_working_day(date(2026, 6, 2)) and calendar.is_working_day(date(2026, 6, 3))


async def test_default_area_by_age(session):
    old = await elderly_woman(session)
    child = await insert_person(session, comune="comune-crema", birth_date=date(2015, 1, 1))
    adult = await insert_person(session, comune="comune-crema", birth_date=date(1980, 1, 1))
    turned_65 = await insert_person(session, comune="comune-crema", birth_date=date(1961, 3, 2))
    assert service.default_area(old) == "anziani"
    assert service.default_area(child) == "minori_famiglia"
    # Issue 9: an adult is never "disabili" by default; the request's needs decide when they point to one area.
    assert service.default_area(adult) == "non_noto"
    assert service.default_area(adult, ["economic", "housing"]) == "emarginazione_poverta"
    assert service.default_area(adult, ["economic", "health"]) == "non_noto"
    assert service.default_area(turned_65) == "anziani"
    adult.birth_date = None
    with pytest.raises(Invalid) as e:
        service.default_area(adult)
    assert e.value.field == "area"


# ---------------------------------------------------------------- registration
async def test_mmg_referral_registers_request_and_triage_work_item(session):
    pua = await setup_pua(session)
    person = await elderly_woman(session)
    mmg = await pua.principal(session, pua.mmg)
    reg = await service.register_request(session, principal=mmg, data=create(mmg_referral(person.id)))
    ar = reg.request
    assert ar.state == AccessState.registered and ar.version == 1
    assert ar.referring_user_id == pua.mmg.id  # an MMG refers in their own name
    assert ar.requester_kind == "mmg" and ar.operator_id == pua.mmg.id
    assert ar.location_org_id == pua.pua_org.id  # the Ambito's only PUA unit
    assert ar.registered_at == NOW
    assert ar.cartella_id is None
    assert (await session.execute(sa.select(Cartella).where(Cartella.person_id == person.id))).first() is None
    items = await _items(session, ar.id)
    assert len(items) == 1
    item = items[0]
    assert item.state == "open" and item.assignee_team_id == pua.pua_team.id
    assert item.due_at == datetime.fromisoformat("2026-03-04T09:00:00+01:00")  # two working days
    assert item.person_id == person.id
    hist = list((await session.execute(sa.select(EntityHistory).where(
        EntityHistory.entity_type == "access_request", EntityHistory.entity_id == ar.id))).scalars())
    assert [(h.version, h.action) for h in hist] == [(1, "registered")]


async def test_front_desk_registers_new_person_with_dedup(session):
    pua = await setup_pua(session)
    desk = await pua.principal(session, pua.front_desk)
    offanengo = await org(session, "comune-offanengo")
    payload = person_payload(sex="M", birth_date="1950-07-01", residence_comune_id=str(offanengo.id))
    body = {"person": payload, "channel": "desk", "requester_kind": "family", "requester_name": "La figlia",
            "reported_need": "Informazioni sul telesoccorso", "need_domains": ["health"]}
    reg = await service.register_request(session, principal=desk, data=create(body))
    assert reg.person_created is True
    assert reg.request.person_id is not None and reg.request.operator_id == pua.front_desk.id
    # the same codice fiscale again: the registry's interactive rule, 409 with the existing id
    with pytest.raises(Conflict) as e:
        await service.register_request(session, principal=desk, data=create(body))
    assert e.value.extra["existing_id"] == str(reg.request.person_id)


async def test_registration_rules_name_every_field(session):
    pua = await setup_pua(session)
    person = await elderly_woman(session)
    desk = await pua.principal(session, pua.front_desk)
    before = (await session.execute(sa.select(sa.func.count()).select_from(AccessRequest))).scalar_one()
    with pytest.raises(Invalid) as e:
        await service.register_request(session, principal=desk, data=create(mmg_referral(
            person.id, need_domains=["health", "astrology"])))
    fields = {x["field"] for x in e.value.errors}
    assert fields == {"referring_user_id", "need_domains.1"}
    crema = await org(session, "comune-crema")
    with pytest.raises(Invalid) as e:
        await service.register_request(session, principal=desk, data=create({
            "person_id": str(person.id), "channel": "referral_hospital", "referring_org_id": str(crema.id),
            "reported_need": "Dimissione", "location_org_id": str(crema.id)}))
    assert {x["field"] for x in e.value.errors} == {"referring_org_id", "location_org_id"}
    with pytest.raises(Invalid) as e:
        await service.register_request(session, principal=desk, data=create({
            "channel": "phone", "reported_need": "x", "referring_org_id": str(crema.id)}))
    assert {x["field"] for x in e.value.errors} == {"person_id", "requester_kind", "referring_org_id"}
    # a hospital referral from an ASST ward is fine
    ward = await org(session, "asst-crema-reparto-medicina")
    reg = await service.register_request(session, principal=desk, data=create({
        "person_id": str(person.id), "channel": "referral_hospital", "referring_org_id": str(ward.id),
        "reported_need": "Dimissione prevista venerdì, vive sola"}))
    assert reg.request.requester_kind == "hospital"
    after = (await session.execute(sa.select(sa.func.count()).select_from(AccessRequest))).scalar_one()
    assert after == before + 1


async def test_mmg_cannot_refer_for_someone_else(session):
    pua = await setup_pua(session)
    person = await elderly_woman(session)
    mmg = await pua.principal(session, pua.mmg)
    with pytest.raises(Invalid) as e:
        await service.register_request(session, principal=mmg, data=create(mmg_referral(
            person.id, referring_user_id=str(pua.operator.id))))
    assert e.value.field == "referring_user_id"
    with pytest.raises(Invalid) as e:
        await service.register_request(session, principal=mmg, data=create(mmg_referral(
            person.id, channel="desk", requester_kind="self")))
    assert e.value.field == "channel"
    # an MMG may name a new patient only in an MMG referral (found or registered by the registry), never otherwise
    with pytest.raises(Forbidden):
        await service.register_request(session, principal=mmg, data=create({
            **mmg_referral(None, channel="desk", requester_kind="self"), "person_id": None,
            "person": person_payload()}))


async def test_existing_open_cartella_is_linked(session):
    pua = await setup_pua(session)
    person = await elderly_woman(session)
    c = Cartella(ambito_id=pua.ambito.id, person_id=person.id, area="anziani",
                 owning_comune_id=(await org(session, "comune-offanengo")).id)
    session.add(c)
    await session.flush()
    op = await pua.principal(session, pua.operator)
    reg = await service.register_request(session, principal=op, data=create(mmg_referral(person.id, pua.mmg.id)))
    assert reg.request.cartella_id == c.id


# ---------------------------------------------------------------- triage
async def test_complex_triage_suggests_vmd(session):
    pua = await setup_pua(session)
    person = await elderly_woman(session)
    ar, resp, _ = await triaged(session, pua, person, complex_answers())
    assert ar.state == AccessState.first_level_done and ar.first_level_at == NOW
    assert ar.complexity == "complex" and ar.suggested_path == "vmd"
    assert ar.triage_response_id == resp.id and ar.version == 3
    assert resp.context_type == "access_request" and resp.context_id == ar.id
    assert (resp.instrument_code, resp.instrument_version) == ("pua_triage", 2)
    assert resp.outcome == "complex" and resp.author_org_id == pua.pua_org.id
    reasons = [r["code"] for r in resp.scores["outcomes"]["need_level"]["reasons"]]
    assert "red_flag_alone_over_75" in reasons
    # the triage item is still open (in progress) until the request closes
    assert [i.state for i in await _items(session, ar.id)] == ["in_progress"]


async def test_the_age_of_the_triage_comes_from_the_registry(session):
    """The operator does not type the age: the registry's birth date gives it (82 for the woman born on 10 May
    1943, on 2 March 2026), so the red flag 'alone and over 75' cannot hang on a typo."""
    pua = await setup_pua(session)
    person = await elderly_woman(session)
    mmg = await pua.principal(session, pua.mmg)
    op = await pua.principal(session, pua.operator)
    rid = (await service.register_request(session, principal=mmg, data=create(mmg_referral(person.id)))).request.id
    await service.take_in_reception(session, principal=op, request_id=rid)
    # a typed age (a typo: 70) does not decide: the registry's 82 does, and the red flag fires
    ar, resp = await service.record_triage(session, principal=op, request_id=rid, answers=complex_answers(age=70))
    assert resp.answers["age"] == 82
    assert ar.complexity == "complex"
    assert "red_flag_alone_over_75" in [r["code"] for r in resp.scores["outcomes"]["need_level"]["reasons"]]
    # nor is it needed
    rid1 = (await service.register_request(session, principal=mmg, data=create(mmg_referral(person.id)))).request.id
    await service.take_in_reception(session, principal=op, request_id=rid1)
    _, resp = await service.record_triage(session, principal=op, request_id=rid1, answers=complex_answers())
    assert "age" not in complex_answers() and resp.answers["age"] == 82
    # no birth date in the registry: the operator is asked to record it, not to guess an age
    unknown = await insert_person(session, comune="comune-crema")
    unknown.birth_date = None
    session.add(unknown)
    await session.flush()
    rid2 = (await service.register_request(session, principal=mmg, data=create(mmg_referral(unknown.id)))).request.id
    await service.take_in_reception(session, principal=op, request_id=rid2)
    with pytest.raises(Invalid) as e:
        await service.record_triage(session, principal=op, request_id=rid2, answers=simple_answers(age=70))
    assert [x["field"] for x in e.value.errors] == ["answers.age"] and "anagrafe" in e.value.errors[0]["reason"]


async def test_whether_the_person_lives_alone_comes_from_the_registry_unless_given(session):
    pua = await setup_pua(session)
    person = await elderly_woman(session)  # lives alone, says the registry
    mmg = await pua.principal(session, pua.mmg)
    op = await pua.principal(session, pua.operator)

    async def triage(person_id, answers):
        rid = (await service.register_request(session, principal=mmg, data=create(mmg_referral(person_id)))
               ).request.id
        await service.take_in_reception(session, principal=op, request_id=rid)
        return await service.record_triage(session, principal=op, request_id=rid, answers=answers)

    def without_lives_alone(**over):
        return {k: v for k, v in complex_answers(**over).items() if k != "lives_alone"}

    ar, resp = await triage(person.id, without_lives_alone())
    assert resp.answers["lives_alone"] is True
    assert "red_flag_alone_over_75" in [r["code"] for r in resp.scores["outcomes"]["need_level"]["reasons"]]
    [row] = [h for h in await history.versions(session, entity_type="access_request", entity_id=ar.id)
             if h.action == "triage"]
    assert row.data["detail"]["from_registry"] == ["age", "lives_alone"]
    # an explicit answer wins over the record: the operator may know better today
    ar, resp = await triage(person.id, complex_answers(lives_alone=False))
    assert resp.answers["lives_alone"] is False
    assert (await history.last_of(session, entity_type="access_request", entity_id=ar.id, action="triage")
            ).data["detail"]["from_registry"] == ["age"]
    # a record that does not say: the operator must answer
    unknown = await insert_person(session, comune="comune-crema", birth_date=date(1940, 1, 1), lives_alone=None)
    with pytest.raises(Invalid) as e:
        await triage(unknown.id, without_lives_alone())
    assert [x["field"] for x in e.value.errors] == ["answers.lives_alone"]


async def test_bad_triage_answers_write_nothing(session):
    pua = await setup_pua(session)
    person = await elderly_woman(session)
    mmg = await pua.principal(session, pua.mmg)
    op = await pua.principal(session, pua.operator)
    reg = await service.register_request(session, principal=mmg, data=create(mmg_referral(person.id)))
    await service.take_in_reception(session, principal=op, request_id=reg.request.id)
    bad = complex_answers(caregiver="sometimes", autonomy_loss="total", lives_alone="forse")
    with pytest.raises(Invalid) as e:
        await service.record_triage(session, principal=op, request_id=reg.request.id, answers=bad)
    assert {x["field"] for x in e.value.errors} == {"answers.autonomy_loss", "answers.caregiver",
                                                     "answers.lives_alone"}
    with pytest.raises(Conflict):  # v1 is retired: no new compilations
        await service.record_triage(session, principal=op, request_id=reg.request.id,
                                    answers=complex_answers(), instrument_version=1)
    responses = (await session.execute(sa.select(sa.func.count()).select_from(InstrumentResponse).where(
        InstrumentResponse.context_id == reg.request.id))).scalar_one()
    assert responses == 0
    ar = (await session.execute(sa.select(AccessRequest).where(AccessRequest.id == reg.request.id)
                                .execution_options(populate_existing=True))).scalar_one()
    assert ar.state == AccessState.in_reception and ar.version == 2 and ar.complexity is None


async def test_illegal_transitions_are_409(session):
    pua = await setup_pua(session)
    person = await elderly_woman(session)
    mmg = await pua.principal(session, pua.mmg)
    op = await pua.principal(session, pua.operator)
    reg = await service.register_request(session, principal=mmg, data=create(mmg_referral(person.id)))
    rid = reg.request.id
    with pytest.raises(Conflict) as e:
        await service.record_triage(session, principal=op, request_id=rid, answers=complex_answers())
    assert e.value.extra["state"] == "registered" and e.value.extra["action"] == "triage"
    await service.take_in_reception(session, principal=op, request_id=rid)
    with pytest.raises(Conflict) as e:
        await service.take_in_reception(session, principal=op, request_id=rid)
    assert e.value.extra["state"] == "in_reception"
    with pytest.raises(Conflict) as e:
        await service.orient(session, principal=op, request_id=rid, data=OrientIn(information_given="x"))
    assert e.value.extra == {"state": "in_reception", "action": "orient",
                             "allowed_actions": ["triage", "withdraw", "cancel"]}
    with pytest.raises(Conflict):  # a stale version
        await service.withdraw(session, principal=op, request_id=rid, reason="x", expected_version=1)


# ---------------------------------------------------------------- closing
async def test_simple_need_is_oriented_and_work_item_completed(session):
    pua = await setup_pua(session)
    person = await insert_person(session, comune="comune-crema", birth_date=date(1955, 9, 9))
    ar, _, op = await triaged(session, pua, person, simple_answers())
    assert ar.complexity == "simple" and ar.suggested_path == "orientation"
    with pytest.raises(Invalid) as e:
        await service.orient(session, principal=op, request_id=ar.id, data=OrientIn())
    assert e.value.field == "information_given"
    with pytest.raises(Invalid) as e:
        await service.orient(session, principal=op, request_id=ar.id, data=OrientIn(service_type_code="nope"))
    assert e.value.field == "service_type_code"
    ar = await service.orient(session, principal=op, request_id=ar.id, data=OrientIn(
        information_given="Spiegati requisiti e modulo per il telesoccorso", service_type_code="telesoccorso"))
    assert ar.state == AccessState.oriented and ar.closed_at == NOW
    assert ar.orientation["service_type_code"] == "telesoccorso" and ar.orientation["override"] is False
    items = await _items(session, ar.id)
    assert [(i.state, i.completed_by) for i in items] == [("done", pua.operator.id)]
    assert ar.cartella_id is None  # a simple need opens no cartella
    with pytest.raises(Conflict) as e:
        await service.withdraw(session, principal=op, request_id=ar.id, reason="ci ha ripensato")
    assert e.value.extra["state"] == "oriented"


async def test_override_needs_a_reason_and_cot_referral(session, clock):
    pua = await setup_pua(session)
    person = await elderly_woman(session)
    ar, _, op = await triaged(session, pua, person, simple_answers(age=82))
    assert ar.suggested_path == "orientation"
    with pytest.raises(Invalid) as e:
        await flows.refer_cot(session, principal=op, request_id=ar.id, data=ReferCotIn())
    assert e.value.field == "override_reason"
    ar = await flows.refer_cot(session, principal=op, request_id=ar.id, data=ReferCotIn(
        override_reason="La figlia riferisce una dimissione imminente non emersa al triage"))
    assert ar.state == AccessState.referred_cot
    assert ar.orientation["override"] is True and ar.orientation["cot_org_id"] == str(pua.cot_org.id)
    cartella = await session.get(Cartella, ar.cartella_id)
    assert cartella.area == "anziani" and cartella.owning_comune_id == (await org(session, "comune-offanengo")).id
    cot_items = await _items(session, ar.id, flows.COT_KIND)
    assert len(cot_items) == 1 and cot_items[0].assignee_org_id == pua.cot_org.id
    assert cot_items[0].due_at == NOW + timedelta(hours=48)
    assert [i.state for i in await _items(session, ar.id)] == ["done"]
    assigned = {(a.reason, a.organisation_id or a.team_id or a.user_id, a.legal_basis) for a in (await session.execute(
        sa.select(CartellaAssignment).where(CartellaAssignment.cartella_id == cartella.id))).scalars()}
    assert (AssignmentReason.assessor, pua.cot_org.id, vmd_policy.LEGAL_BASIS) in assigned
    assert (AssignmentReason.team, pua.pua_team.id, vmd_policy.LEGAL_BASIS) in assigned
    # closed: withdrawing after a referral is a conflict
    with pytest.raises(Conflict) as e:
        await service.withdraw(session, principal=op, request_id=ar.id, reason="x")
    assert e.value.extra["state"] == "referred_cot"


async def test_a_complex_need_goes_to_the_cot_and_to_a_vmd_in_one_step(session):
    """Triage v2's `cot` path is "Attivazione della COT … e VMD": one referral starts both."""
    from domain.assessment.models import Vmd

    pua = await setup_pua(session)
    person = await elderly_woman(session)
    ar, _, op = await triaged(session, pua, person, complex_answers(recent_discharge=True))
    assert ar.suggested_path == "cot"
    with pytest.raises(Invalid) as e:  # VMD details without asking for the VMD
        await flows.refer_cot(session, principal=op, request_id=ar.id, data=ReferCotIn(requested_service_type="adi"))
    assert e.value.field == "requested_service_type"
    ar = await flows.refer_cot(session, principal=op, request_id=ar.id, data=ReferCotIn(
        with_vmd=True, requested_service_type="sad", notes="Dimissione venerdì"))
    assert ar.state == AccessState.referred_cot_vmd and ar.closed_at == NOW
    assert ar.orientation["override"] is False  # the triage suggested exactly this
    assert ar.orientation["cot_org_id"] == str(pua.cot_org.id) and ar.orientation["vmd_id"] == str(ar.vmd_id)
    cot_items = await _items(session, ar.id, flows.COT_KIND)
    assert len(cot_items) == 1 and cot_items[0].assignee_org_id == pua.cot_org.id
    vmd = await session.get(Vmd, ar.vmd_id)
    assert (vmd.trigger, vmd.access_request_id, vmd.team_id, vmd.cartella_id) == (
        "pua", ar.id, pua.vmd_team.id, ar.cartella_id)
    assert vmd.requested_service_type == "sad"
    assert [i.state for i in await _items(session, ar.id)] == ["done"]
    with pytest.raises(Conflict) as e:
        await service.withdraw(session, principal=op, request_id=ar.id, reason="x")
    assert e.value.extra == {"state": "referred_cot_vmd", "action": "withdraw", "allowed_actions": []}
    # the COT sees it as a COT referral
    cot_user = await make_user(session, Role.cot_operator, "asst-crema-cot")
    visible, _ = await queries.get_request(session, principal=await pua.principal(session, cot_user),
                                           request_id=ar.id)
    assert visible.view == "full"


async def test_refer_to_vmd_creates_the_vmd(session):
    """The acceptance path: 82, alone, Offanengo, referred by her MMG → complex → VMD (trigger pua)."""
    from domain.assessment.models import Vmd

    pua = await setup_pua(session)
    person = await elderly_woman(session)
    ar, _, op = await triaged(session, pua, person, complex_answers())
    ar = await flows.refer_vmd(session, principal=op, request_id=ar.id,
                               data=ReferVmdIn(requested_service_type="sad", notes="SAD e ADI da valutare"))
    assert ar.state == AccessState.referred_vmd and ar.closed_at == NOW
    vmd = await session.get(Vmd, ar.vmd_id)
    assert vmd is not None and vmd.trigger == "pua" and vmd.access_request_id == ar.id
    assert vmd.team_id == pua.vmd_team.id and vmd.person_id == person.id and vmd.cartella_id == ar.cartella_id
    cartella = await session.get(Cartella, ar.cartella_id)
    assert cartella.area == "anziani"
    mmg_rows = list((await session.execute(sa.select(CartellaAssignment).where(
        CartellaAssignment.cartella_id == cartella.id,
        CartellaAssignment.reason == AssignmentReason.referring_mmg))).scalars())
    assert any(a.user_id == pua.mmg.id and a.source_type == "access_request" for a in mmg_rows)
    assert [i.state for i in await _items(session, ar.id)] == ["done"]
    with pytest.raises(Conflict):
        await service.withdraw(session, principal=op, request_id=ar.id, reason="x")


async def test_any_pua_social_worker_of_the_ambito_refers_to_vmd(session):
    """The Ambito's PUA social workers work every request of the Ambito (policy): the referral is their legal basis
    to reach the cartella for the VMD, even when they are not in the PUA team and the request sits at an ASST
    seat."""
    pua = await setup_pua(session)
    person = await elderly_woman(session)
    c = Cartella(ambito_id=pua.ambito.id, person_id=person.id, area="anziani",
                 owning_comune_id=(await org(session, "comune-offanengo")).id)
    session.add(c)
    await session.flush()
    ar, _, _ = await triaged(session, pua, person, complex_answers())
    outsider = await make_user(session, Role.ambito_pua_social_worker, "ambito-crema")
    ar = await flows.refer_vmd(session, principal=await pua.principal(session, outsider), request_id=ar.id,
                               data=ReferVmdIn())
    assert ar.state == AccessState.referred_vmd and ar.cartella_id == c.id and ar.vmd_id is not None


async def test_withdraw_and_cancel_cancel_the_work_item(session):
    pua = await setup_pua(session)
    person = await elderly_woman(session)
    mmg = await pua.principal(session, pua.mmg)
    sw = await pua.principal(session, pua.social_worker)
    one = (await service.register_request(session, principal=mmg, data=create(mmg_referral(person.id)))).request
    two = (await service.register_request(session, principal=mmg, data=create(mmg_referral(person.id)))).request
    with pytest.raises(Invalid) as e:
        await service.withdraw(session, principal=sw, request_id=one.id, reason="  ")
    assert e.value.field == "reason"
    one = await service.withdraw(session, principal=sw, request_id=one.id, reason="La famiglia ha trovato una badante")
    two = await service.cancel(session, principal=sw, request_id=two.id, reason=CloseIn(reason="Doppia").reason)
    assert (one.state, two.state) == (AccessState.withdrawn, AccessState.cancelled)
    assert one.close_reason == "La famiglia ha trovato una badante" and one.closed_at == NOW
    assert [i.state for i in await _items(session, one.id)] == ["cancelled"]
    assert [i.state for i in await _items(session, two.id)] == ["cancelled"]


# ---------------------------------------------------------------- access rules
async def test_front_desk_cannot_triage_and_sees_only_its_own(session):
    pua = await setup_pua(session)
    person = await elderly_woman(session)
    desk = await pua.principal(session, pua.front_desk)
    mmg = await pua.principal(session, pua.mmg)
    mine = (await service.register_request(session, principal=desk, data=create(mmg_referral(
        person.id, pua.mmg.id)))).request
    theirs = (await service.register_request(session, principal=mmg, data=create(mmg_referral(person.id)))).request
    with pytest.raises(Forbidden):
        await service.take_in_reception(session, principal=desk, request_id=mine.id)
    items, _, total = await queries.list_requests(session, principal=desk, total=True)
    assert [v.request.id for v in items] == [mine.id] and total == 1
    assert items[0].view == "registration"
    with pytest.raises(NotFound):
        await queries.get_request(session, principal=desk, request_id=theirs.id)
    # the MMG sees both (referred by them), the one registered by the desk only as a summary
    seen = {v.request.id: v.view for v in (await queries.list_requests(session, principal=mmg))[0]}
    assert seen == {mine.id: "summary", theirs.id: "registration"}


async def test_comune_social_worker_sees_requests_of_its_cartelle(session):
    pua = await setup_pua(session)
    person = await elderly_woman(session)
    ar, _, op = await triaged(session, pua, person, complex_answers(recent_discharge=True))
    assert ar.suggested_path == "cot"
    offanengo = await pua.principal(session, pua.comune_sw)
    crema = await pua.principal(session, pua.other_comune_sw)
    assert (await queries.list_requests(session, principal=offanengo))[0] == []  # no cartella yet
    await flows.refer_cot(session, principal=op, request_id=ar.id, data=ReferCotIn())
    (visible, triage) = await queries.get_request(session, principal=offanengo, request_id=ar.id)
    assert visible.view == "full" and triage is not None
    assert (await queries.list_requests(session, principal=crema))[0] == []
    with pytest.raises(NotFound):
        await queries.get_request(session, principal=crema, request_id=ar.id)


async def test_list_filters_and_keyset(session, clock):
    pua = await setup_pua(session)
    person = await elderly_woman(session)
    mmg = await pua.principal(session, pua.mmg)
    sw = await pua.principal(session, pua.social_worker)
    ids = []
    for _ in range(5):
        ids.append((await service.register_request(session, principal=mmg, data=create(mmg_referral(
            person.id)))).request.id)
        clock.advance(hours=1)
    await service.take_in_reception(session, principal=sw, request_id=ids[0])
    page1, cur, _ = await queries.list_requests(session, principal=sw, person_id=person.id, limit=2)
    page2, cur2, _ = await queries.list_requests(session, principal=sw, person_id=person.id, limit=2, cursor=cur)
    page3, cur3, _ = await queries.list_requests(session, principal=sw, person_id=person.id, limit=2, cursor=cur2)
    assert [v.request.id for v in page1 + page2 + page3] == list(reversed(ids)) and cur3 is None
    only, _, _ = await queries.list_requests(session, principal=sw, person_id=person.id, states=["in_reception"])
    assert [v.request.id for v in only] == [ids[0]]
    none, _, _ = await queries.list_requests(session, principal=sw, person_id=person.id,
                                             registered_from=date(2026, 3, 3))
    assert none == []
    with pytest.raises(BadCursor):
        await queries.list_requests(session, principal=sw, cursor="garbage")


async def test_triage_queue_is_the_pua_work_items(session):
    pua = await setup_pua(session)
    person = await elderly_woman(session)
    mmg = await pua.principal(session, pua.mmg)
    op = await pua.principal(session, pua.operator)
    rid = (await service.register_request(session, principal=mmg, data=create(mmg_referral(person.id)))).request.id
    items, _ = await queries.triage_queue(session, principal=op, limit=200)
    assert rid in {w.source_id for w in items}
    assert all(w.kind == "pua.triage" for w in items)
    await service.cancel(session, principal=op, request_id=rid, reason="Errore")
    items, _ = await queries.triage_queue(session, principal=op, limit=200)
    assert rid not in {w.source_id for w in items}


async def test_a_death_withdraws_the_open_requests_through_the_event(session):
    """Recording the death publishes `person.died`; the PUA subscriber, run as the job would run it, withdraws
    the open request and cancels its triage item; a closed request is left alone."""
    from deploy.composition import compose
    from domain.kernel import jobs
    from domain.registry import persons

    compose()  # as the API and the worker do at start-up: every subscriber is known when the event is published
    pua = await setup_pua(session)
    person = await elderly_woman(session)
    mmg = await pua.principal(session, pua.mmg)
    op = await pua.principal(session, pua.operator)
    open_one = (await service.register_request(session, principal=mmg, data=create(mmg_referral(person.id)))).request
    closed = (await service.register_request(session, principal=mmg, data=create(mmg_referral(person.id)))).request
    await service.cancel(session, principal=op, request_id=closed.id, reason="registrata due volte")

    await persons.record_death(session, principal=op, person_id=person.id, date_of_death=date(2026, 3, 1))
    await jobs.run_ready_in_session(session)

    await session.refresh(open_one)
    await session.refresh(closed)
    assert (open_one.state, open_one.close_reason) == (AccessState.withdrawn, service.DEATH_REASON)
    assert closed.state == AccessState.cancelled
    assert {str(i.state) for i in await _items(session, open_one.id)} == {"cancelled"}
