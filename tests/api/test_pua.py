"""PUA API: registration, reception, triage, orientation and referrals, the triage queue, access rules."""
import sqlalchemy as sa

from domain.assessment.models import InstrumentResponse, Vmd
from domain.pua.models import AccessRequest
from domain.security.models import Role
from tests.domain.pua.helpers import complex_answers, elderly_woman, mmg_referral, setup_pua, simple_answers
from tests.factories.registry import insert_person, person_payload
from tests.support import bearer, make_user, org

PROBLEM = "application/problem+json"


async def _register(client, user, body):
    r = await client.post("/api/pua/requests", json=body, headers=bearer(user))
    assert r.status_code == 201, r.text
    return r.json()


async def _to_first_level(client, pua, person, answers):
    created = await _register(client, pua.mmg, mmg_referral(person.id))
    rid = created["id"]
    h = bearer(pua.operator)
    r = await client.post(f"/api/pua/requests/{rid}/reception", headers=h)
    assert r.status_code == 200, r.text
    r = await client.post(f"/api/pua/requests/{rid}/triage", json={"answers": answers}, headers=h)
    assert r.status_code == 200, r.text
    return r.json()


async def test_the_triage_fills_in_what_the_registry_knows_and_says_so(client, session):
    """The operator leaves out the age and whether she lives alone: the registry answers both (82, alone), the red
    flag fires, and the answer shows which items came from the registry - in the reply and when read again."""
    pua = await setup_pua(session)
    person = await elderly_woman(session)
    answers = {k: v for k, v in complex_answers().items() if k != "lives_alone"}
    body = await _to_first_level(client, pua, person, answers)
    triage = body["triage"]
    assert (triage["answers"]["age"], triage["answers"]["lives_alone"]) == (82, True)
    assert triage["from_registry"] == ["age", "lives_alone"]
    assert "red_flag_alone_over_75" in [x["code"] for x in triage["scores"]["outcomes"]["need_level"]["reasons"]]
    again = (await client.get(f"/api/pua/requests/{body['id']}", headers=bearer(pua.operator))).json()
    assert again["triage"]["from_registry"] == ["age", "lives_alone"]
    # the operator knows better today: her daughter moved in; the explicit answer wins and is not the registry's
    body = await _to_first_level(client, pua, person, complex_answers(lives_alone=False))
    assert body["triage"]["answers"]["lives_alone"] is False and body["triage"]["from_registry"] == ["age"]
    assert "red_flag_alone_over_75" not in [
        x["code"] for x in body["triage"]["scores"]["outcomes"]["need_level"]["reasons"]]


async def test_mmg_referral_to_vmd_end_to_end(client, session):
    """An 82-year-old living alone in Offanengo is referred by her MMG → triage complex → VMD."""
    pua = await setup_pua(session)
    person = await elderly_woman(session)
    created = await _register(client, pua.mmg, mmg_referral(person.id))
    assert created["state"] == "registered" and created["channel_label"] == "Invio del MMG/PLS"
    assert created["referring_user_id"] == str(pua.mmg.id) and created["view"] == "registration"
    assert created["triage_work_item_id"] is not None and created["person_created"] is False
    rid = created["id"]
    h = bearer(pua.operator)

    queue = (await client.get("/api/pua/queue", headers=h, params={"limit": 200})).json()
    mine = [w for w in queue["items"] if w["source_id"] == rid]
    assert len(mine) == 1 and mine[0]["kind"] == "pua.triage" and mine[0]["assigned_via"] == ["team"]
    assert mine[0]["due_at"].startswith("2026-03-04T")

    r = await client.post(f"/api/pua/requests/{rid}/reception", headers=h, json={"version": 1})
    assert r.status_code == 200 and r.json()["state"] == "in_reception"
    r = await client.post(f"/api/pua/requests/{rid}/triage", json={"answers": complex_answers()}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "first_level_done" and body["complexity"] == "complex"
    assert body["complexity_label"] == "Bisogno complesso" and body["suggested_path"] == "vmd"
    reasons = [x["code"] for x in body["triage"]["scores"]["outcomes"]["need_level"]["reasons"]]
    assert "red_flag_alone_over_75" in reasons

    r = await client.post(f"/api/pua/requests/{rid}/refer-vmd", headers=h,
                          json={"requested_service_type": "sad", "notes": "Valutare SAD e ADI"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "referred_vmd" and body["vmd_id"] and body["cartella_id"]
    vmd = await session.get(Vmd, body["vmd_id"])
    assert vmd.trigger == "pua" and str(vmd.access_request_id) == rid and vmd.team_id == pua.vmd_team.id

    queue = (await client.get("/api/pua/queue", headers=h, params={"limit": 200})).json()
    assert rid not in {w["source_id"] for w in queue["items"]}
    r = await client.post(f"/api/pua/requests/{rid}/withdraw", headers=h, json={"reason": "ripensamento"})
    assert r.status_code == 409 and r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["state"] == "referred_vmd" and r.json()["action"] == "withdraw"

    # the referring MMG sees the outcome summary only
    r = await client.get(f"/api/pua/requests/{rid}", headers=bearer(pua.mmg))
    assert r.status_code == 200
    seen = r.json()
    assert seen["state"] == "referred_vmd" and seen["complexity"] == "complex"
    assert seen["triage"] is None and seen["orientation"] is None and seen["vmd_id"] is None


async def test_simple_need_is_oriented(client, session):
    pua = await setup_pua(session)
    person = await insert_person(session, comune="comune-crema")
    body = await _to_first_level(client, pua, person, simple_answers())
    rid = body["id"]
    assert body["complexity"] == "simple" and body["suggested_path"] == "orientation"
    h = bearer(pua.social_worker)
    r = await client.post(f"/api/pua/requests/{rid}/refer-vmd", headers=h, json={})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "override_reason"
    r = await client.post(f"/api/pua/requests/{rid}/orient", headers=h, json={
        "information_given": "Requisiti e modulo della misura", "external_service": "CAF di zona"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["state"] == "oriented" and out["closed_at"] and out["orientation"]["external_service"] == "CAF di zona"
    items = (await client.get("/api/pua/queue", headers=h, params={"limit": 200})).json()["items"]
    assert rid not in {w["source_id"] for w in items}


async def test_bad_triage_answers_are_422_and_write_nothing(client, session):
    pua = await setup_pua(session)
    person = await elderly_woman(session)
    rid = (await _register(client, pua.mmg, mmg_referral(person.id)))["id"]
    h = bearer(pua.operator)
    await client.post(f"/api/pua/requests/{rid}/reception", headers=h)
    answers = complex_answers(multimorbidity="sì")
    del answers["autonomy_loss"]
    r = await client.post(f"/api/pua/requests/{rid}/triage", json={"answers": answers}, headers=h)
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
    assert {e["field"] for e in r.json()["errors"]} == {"answers.multimorbidity", "answers.autonomy_loss"}
    r = await client.post(f"/api/pua/requests/{rid}/triage", json={"answers": complex_answers(),
                                                                    "instrument_version": 1}, headers=h)
    assert r.status_code == 409  # retired version
    r = await client.post(f"/api/pua/requests/{rid}/triage", json={"answers": {}, "extra": 1}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "extra"
    n = (await session.execute(sa.select(sa.func.count()).select_from(InstrumentResponse)
                               .where(InstrumentResponse.context_id == rid))).scalar_one()
    assert n == 0
    got = (await client.get(f"/api/pua/requests/{rid}", headers=h)).json()
    assert got["state"] == "in_reception" and got["complexity"] is None and got["version"] == 2


async def test_illegal_transition_is_409(client, session):
    pua = await setup_pua(session)
    person = await elderly_woman(session)
    rid = (await _register(client, pua.mmg, mmg_referral(person.id)))["id"]
    h = bearer(pua.operator)
    r = await client.post(f"/api/pua/requests/{rid}/triage", json={"answers": complex_answers()}, headers=h)
    assert r.status_code == 409
    p = r.json()
    assert p["state"] == "registered" and p["action"] == "triage" and "Registrata" in p["detail"]
    r = await client.post(f"/api/pua/requests/{rid}/refer-cot", json={}, headers=h)
    assert r.status_code == 409 and r.json()["action"] == "refer_cot"
    r = await client.post(f"/api/pua/requests/{rid}/cancel", json={"reason": "Registrazione doppia"}, headers=h)
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    r = await client.post(f"/api/pua/requests/{rid}/reception", headers=h)
    assert r.status_code == 409 and r.json()["state"] == "cancelled"


async def test_front_desk_registers_but_cannot_triage(client, session):
    pua = await setup_pua(session)
    offanengo = await org(session, "comune-offanengo")
    desk = bearer(pua.front_desk)
    body = {"person": person_payload(residence_comune_id=str(offanengo.id)), "channel": "desk",
            "requester_kind": "self", "reported_need": "Informazioni sull'assegno di inclusione",
            "need_domains": ["economic"]}
    created = await _register(client, pua.front_desk, body)
    assert created["person_created"] is True and created["view"] == "registration"
    rid = created["id"]
    for action, payload in (("reception", None), ("triage", {"answers": simple_answers()}),
                            ("withdraw", {"reason": "x"})):
        r = await client.post(f"/api/pua/requests/{rid}/{action}", headers=desk, json=payload)
        assert r.status_code == 403, action
    assert (await client.get("/api/pua/queue", headers=desk)).status_code == 403
    # it sees its own registration, not the others'
    person = await elderly_woman(session)
    other = (await _register(client, pua.mmg, mmg_referral(person.id)))["id"]
    listed = (await client.get("/api/pua/requests", headers=desk, params={"total": "true"})).json()
    assert [x["id"] for x in listed["items"]] == [rid] and listed["total"] == 1
    assert listed["items"][0]["reported_need"] == "Informazioni sull'assegno di inclusione"
    assert (await client.get(f"/api/pua/requests/{other}", headers=desk)).status_code == 404
    # PUA staff see both
    staff = (await client.get("/api/pua/requests", headers=bearer(pua.operator),
                              params={"registered_from": "2026-03-02", "registered_to": "2026-03-02",
                                      "limit": 200})).json()
    assert {rid, other} <= {x["id"] for x in staff["items"]}
    assert all(x["view"] == "full" for x in staff["items"])


async def test_refer_cot_gives_the_cot_its_work_and_view(client, session):
    pua = await setup_pua(session)
    person = await elderly_woman(session)
    body = await _to_first_level(client, pua, person, complex_answers(recent_discharge=True,
                                                                        discharge_date="2026-03-05"))
    rid = body["id"]
    assert body["suggested_path"] == "cot"
    h = bearer(pua.operator)
    r = await client.post(f"/api/pua/requests/{rid}/refer-cot", headers=h, json={"notes": "Dimissione venerdì"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["state"] == "referred_cot" and out["orientation"]["cot_org_id"] == str(pua.cot_org.id)
    cot_user = await make_user(session, Role.cot_operator, "asst-crema-cot")
    items = (await client.get("/api/work-items/mine", headers=bearer(cot_user),
                              params={"kind": "cot.evaluation"})).json()["items"]
    assert [w["source_id"] for w in items] == [rid] and items[0]["due_at"] == "2026-03-04T08:00:00Z"
    seen = (await client.get(f"/api/pua/requests/{rid}", headers=bearer(cot_user))).json()
    assert seen["view"] == "full"


async def test_validation_and_permissions(client, session):
    pua = await setup_pua(session)
    person = await elderly_woman(session)
    h = bearer(pua.operator)
    r = await client.post("/api/pua/requests", headers=h, json=mmg_referral(person.id, channel="pigeon"))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "channel"
    r = await client.post("/api/pua/requests", headers=h, json=mmg_referral(person.id))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "referring_user_id"
    r = await client.post("/api/pua/requests", headers=h, json={**mmg_referral(person.id), "colour": "red"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "colour"
    analyst = await make_user(session, Role.analyst, "udp-crema")
    assert (await client.get("/api/pua/requests", headers=bearer(analyst))).status_code == 403
    assert (await client.post("/api/pua/requests", headers=bearer(analyst),
                              json=mmg_referral(person.id))).status_code == 403
    comune = bearer(pua.comune_sw)  # pua.read but not pua.triage
    rid = (await _register(client, pua.mmg, mmg_referral(person.id)))["id"]
    assert (await client.post(f"/api/pua/requests/{rid}/reception", headers=comune)).status_code == 403
    assert (await client.get(f"/api/pua/requests/{rid}", headers=comune)).status_code == 404  # no cartella yet
    assert (await client.get("/api/pua/requests", headers=h, params={"cursor": "nope"})).status_code == 400
    assert (await session.execute(sa.select(AccessRequest.state).where(AccessRequest.id == rid))).scalar_one() \
        == "registered"


async def test_mmg_refers_a_patient_not_yet_registered(client, session):
    """The MMG names the patient in the referral; the registry registers her (automated path) without letting the
    MMG search it, and a second referral with the same codice fiscale reuses the same person."""
    from domain.security.models import Role
    from tests.factories.registry import person_payload
    from tests.support import bearer, make_user, org

    mmg = await make_user(session, Role.mmg, "mmg-crema-1")
    pua = await org(session, "asst-crema-pua")
    patient = person_payload(residence_comune_id=str((await org(session, "comune-offanengo")).id))
    body = {"channel": "referral_mmg", "person": patient, "reported_need": "Anziana sola, cadute ripetute",
            "location_org_id": str(pua.id)}
    first = await client.post("/api/pua/requests", json=body, headers=bearer(mmg))
    assert first.status_code == 201, first.text
    second = await client.post("/api/pua/requests", json=body, headers=bearer(mmg))
    assert second.status_code == 201, second.text
    assert first.json()["person_id"] == second.json()["person_id"]
    r = await client.get("/api/persons", params={"cf": patient["codice_fiscale"]}, headers=bearer(mmg))
    assert r.status_code == 403  # the MMG cannot browse the registry


async def test_refer_cot_with_vmd_records_both_referrals(client, session):
    pua = await setup_pua(session)
    person = await elderly_woman(session)
    body = await _to_first_level(client, pua, person, complex_answers(recent_discharge=True))
    rid = body["id"]
    r = await client.post(f"/api/pua/requests/{rid}/refer-cot", headers=bearer(pua.operator),
                          json={"with_vmd": True, "notes": "Dimissione venerdì"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["state"] == "referred_cot_vmd" and out["state_label"] == "Inviata alla COT e a VMD"
    assert out["vmd_id"] and out["orientation"]["cot_org_id"] == str(pua.cot_org.id)
    vmd = await session.get(Vmd, out["vmd_id"])
    assert str(vmd.access_request_id) == rid and vmd.trigger == "pua"
    cot_user = await make_user(session, Role.cot_operator, "asst-crema-cot")
    items = (await client.get("/api/work-items/mine", headers=bearer(cot_user),
                              params={"kind": "cot.evaluation"})).json()["items"]
    assert [w["source_id"] for w in items] == [rid]
