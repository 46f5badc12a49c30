"""VMD API end to end: the Offanengo case assessed by an IFeC of the ASST and the comune's social worker (Barthel 35,
Lawton IADL 2) → both sign → integrated; problem+json for bad input with nothing written; sign-off by a non-member;
illegal transitions; consent masking; a new instrument added as a data file and used with no code change."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from domain.assessment import instruments as engine
from domain.assessment.models import Vmd
from domain.kernel.models import WorkItem
from domain.registry.models import CartellaAssignment
from domain.security.models import Role
from tests.domain.assessment.vmd_setup import BARTHEL_35, IADL_2, SOCIAL, build_world, counts, give_consent
from tests.support import bearer, make_user

PROBLEM = "application/problem+json"
MEETING = {"held_at": "2026-03-02T09:00:00+01:00",
           "participants": [{"name": "Figlia della signora", "role": "familiare"}],
           "minutes": "Valutazione condivisa in équipe.", "decision": "Proposta di progetto individualizzato"}


@pytest.fixture
def reset_instruments():
    yield
    engine.use_directories()


async def _world(session):
    w = await build_world(session)
    return w, {"ifec": bearer(w.ifec), "sw": bearer(w.sw), "outsider": bearer(w.outsider)}


async def _create(client, w, h, **extra):
    body = {"person_id": str(w.person.id), "cartella_id": str(w.cartella.id), "trigger": "pua",
            "team_id": str(w.team.id), **extra}
    r = await client.post("/api/vmd", json=body, headers=h["sw"])
    assert r.status_code == 201, r.text
    return r.json()


async def _in_progress(client, w, h):
    v = await _create(client, w, h)
    url = f"/api/vmd/{v['id']}"
    r = await client.post(f"{url}/schedule", json={"scheduled_for": "2026-03-02T10:00:00+01:00",
                                                   "location": "Domicilio"}, headers=h["ifec"])
    assert r.status_code == 200, r.text
    for u in (w.ifec, w.sw):
        r = await client.post(f"{url}/assessors", json={"user_id": str(u.id)}, headers=h["ifec"])
        assert r.status_code == 201, r.text
    for who, code, answers in (("ifec", "barthel", BARTHEL_35), ("ifec", "lawton_iadl", IADL_2),
                               ("sw", "social_risk", SOCIAL)):
        r = await client.post(f"{url}/responses", json={"instrument_code": code, "answers": answers},
                              headers=h[who])
        assert r.status_code == 201, r.text
    return v, url


async def test_end_to_end_integrated_assessment(client, session, clock):
    w, h = await _world(session)
    v = await _create(client, w, h, notes="Segnalata dal MMG: vive sola")
    assert (v["state"], v["state_label"], v["trigger_label"]) == ("requested", "Richiesta", "Bisogno complesso al PUA")
    assert v["due_at"].startswith("2026-04-01") and v["allowed_actions"] == ["schedule", "add_assessor", "cancel"]
    url = f"/api/vmd/{v['id']}"

    r = await client.post(f"{url}/schedule", json={"scheduled_for": "2026-03-02T10:00:00+01:00",
                                                   "location": "Domicilio"}, headers=h["ifec"])
    assert r.status_code == 200 and r.json()["state_label"] == "Programmata"
    r = await client.post(f"{url}/assessors", json={"user_id": str(w.ifec.id)}, headers=h["ifec"])
    assert r.status_code == 201 and (r.json()["side"], r.json()["side_label"]) == ("asst", "ASST")
    r = await client.post(f"{url}/assessors", json={"user_id": str(w.sw.id)}, headers=h["ifec"])
    assert r.status_code == 201 and r.json()["side_label"] == "Comune"
    assert r.json()["domain_labels"] == ["Rete sociale", "Caregiver", "Abitazione", "Condizione economica"]

    r = await client.get("/api/vmd/mine", headers=h["sw"])
    assert r.status_code == 200
    assert [(i["kind"], i["source_id"]) for i in r.json()["items"]] == [("vmd.assessment", v["id"])]

    r = await client.post(f"{url}/responses", json={"instrument_code": "barthel", "answers": BARTHEL_35},
                          headers=h["ifec"])
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["scores"]["total"]["value"], body["scores"]["total"]["band"]["label"]) == (35, "Dipendenza grave")
    assert body["instrument_title"].startswith("Indice di Barthel") and body["author_side"] == "asst"
    r = await client.post(f"{url}/responses", json={"instrument_code": "lawton_iadl", "instrument_version": 1,
                                                    "answers": IADL_2}, headers=h["ifec"])
    assert r.status_code == 201 and r.json()["scores"]["total"]["value"] == 2
    r = await client.post(f"{url}/responses", json={"instrument_code": "social_risk", "answers": SOCIAL},
                          headers=h["sw"])
    assert r.status_code == 201

    assert (await client.post(f"{url}/sign", headers=h["ifec"])).status_code == 200
    assert (await client.get(url, headers=h["ifec"])).json()["integrated"] is False
    r = await client.post(f"{url}/sign", headers=h["sw"])
    assert r.status_code == 200 and r.json()["signed"] is True
    detail = (await client.get(url, headers=h["ifec"])).json()
    assert detail["integrated"] is True and detail["signed_sides"] == ["asst", "comune"]
    assert (await client.get("/api/vmd/mine", headers=h["sw"])).json()["items"] == []

    r = await client.post(f"{url}/meetings", json={**MEETING, "participants": [
        {"user_id": str(w.ifec.id)}, {"user_id": str(w.sw.id)}, *MEETING["participants"]]}, headers=h["ifec"])
    assert r.status_code == 201, r.text
    assert len(r.json()["participants"]) == 3
    r = await client.post(f"{url}/conclude", json={"outcome": "project_proposed", "notes": "SAD 6 h/settimana e ADI",
                                                   "reassessment_due": "2026-09-01"}, headers=h["ifec"])
    assert r.status_code == 200, r.text
    done = r.json()
    assert (done["state_label"], done["outcome_label"], done["integrated"]) == (
        "Conclusa", "Proposta di progetto individualizzato", True)
    assert done["allowed_actions"] == ["reassess"] and done["version"] == 11

    r = await client.get(f"/api/cartelle/{w.cartella.id}/vmd", headers=h["sw"])
    assert r.status_code == 200 and [x["id"] for x in r.json()["items"]] == [v["id"]]
    r = await client.get(f"/api/persons/{w.person.id}/vmd", headers=h["ifec"])
    assert r.status_code == 200 and [x["id"] for x in r.json()["items"]] == [v["id"]]

    r = await client.post(f"{url}/reassessment", json={}, headers=h["sw"])
    assert r.status_code == 201 and r.json()["previous_vmd_id"] == v["id"]


async def test_asst_health_answers_masked_without_share_asst_consent(client, session):
    w, h = await _world(session)
    v, url = await _in_progress(client, w, h)
    detail = (await client.get(url, headers=h["sw"])).json()
    by_code = {x["instrument_code"]: x for x in detail["responses"]}
    assert by_code["barthel"]["answers_masked"] is True and by_code["barthel"]["answers"] is None
    assert by_code["barthel"]["scores"]["total"]["value"] == 35
    assert by_code["barthel"]["scores"]["total"]["band"]["code"] == "severe_dependency"
    assert by_code["social_risk"]["answers"] == SOCIAL
    ifec_detail = (await client.get(url, headers=h["ifec"])).json()
    assert all(not x["answers_masked"] for x in ifec_detail["responses"])
    await give_consent(session, w.person, w.sw)
    detail = (await client.get(url, headers=h["sw"])).json()
    assert {x["instrument_code"]: x["answers"] for x in detail["responses"]}["barthel"] == BARTHEL_35


@pytest.mark.parametrize("who,body,status,field", [
    ("sw", {"instrument_code": "social_risk", "answers": {**SOCIAL, "helpers_count": 99}}, 422,
     "answers.helpers_count"),  # out of range
    ("ifec", {"instrument_code": "barthel", "answers": {k: v for k, v in BARTHEL_35.items() if k != "stairs"}}, 422,
     "answers.stairs"),  # missing required item
    ("ifec", {"instrument_code": "pua_triage", "instrument_version": 1, "answers": {}}, 409,
     "instrument_version"),  # retired version
    ("ifec", {"instrument_code": "mmse", "answers": {"q1": True}}, 422, "instrument_code"),  # unknown instrument
    ("ifec", {"instrument_code": "barthel", "answers": BARTHEL_35, "colour": "blu"}, 422, "colour"),
    ("ifec", {"instrument_code": "social_risk", "answers": SOCIAL}, 403, "instrument_code"),  # outside domains
    ("sw", {"instrument_code": "social_risk", "answers": {**SOCIAL, "caregiver_sole": True}}, 422,
     "answers.caregiver_sole"),  # "sole caregiver" with no caregiver (social_risk v2)
])
async def test_bad_responses_are_problems_naming_the_item_and_write_nothing(client, session, who, body, status,
                                                                            field):
    w, h = await _world(session)
    v, url = await _in_progress(client, w, h)
    before = await counts(session, v["id"])
    r = await client.post(f"{url}/responses", json=body, headers=h[who])
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert field in [e["field"] for e in r.json()["errors"]]
    assert await counts(session, v["id"]) == before


async def test_sign_off_by_non_member_is_refused_and_nothing_changes(client, session):
    w, h = await _world(session)
    v, url = await _in_progress(client, w, h)
    before = await counts(session, v["id"])
    r = await client.post(f"{url}/sign", headers=h["outsider"])
    assert r.status_code == 403 and r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["reason"] == "not_equipe_member" and "équipe" in r.json()["detail"]
    assert await counts(session, v["id"]) == before
    signed = (await session.execute(sa.text("select count(*) from vmd_assessor where vmd_id = :v and signed_at is "
                                            "not null"), {"v": v["id"]})).scalar()
    assert signed == 0


async def test_illegal_transitions_are_409(client, session):
    w, h = await _world(session)
    v = await _create(client, w, h)
    url = f"/api/vmd/{v['id']}"
    r = await client.post(f"{url}/conclude", json={"outcome": "no_need"}, headers=h["ifec"])
    assert r.status_code == 409 and r.headers["content-type"].startswith(PROBLEM)
    assert (r.json()["state"], r.json()["action"]) == ("requested", "conclude")
    r = await client.post(f"{url}/meetings", json=MEETING, headers=h["ifec"])
    assert r.status_code == 409
    r = await client.post(f"{url}/cancel", json={"reason": "Rinuncia della persona"}, headers=h["ifec"])
    assert r.status_code == 200 and r.json()["state_label"] == "Annullata"
    r = await client.post(f"{url}/cancel", json={"reason": "di nuovo"}, headers=h["sw"])
    assert r.status_code == 409
    items = (await session.execute(sa.select(WorkItem.state).where(WorkItem.source_id == v["id"]))).scalars().all()
    assert {str(s) for s in items} == {"cancelled"}


async def test_request_writes_assignments_and_bad_requests_are_problems(client, session):
    w, h = await _world(session)
    mmg = await make_user(session, Role.mmg, "mmg-crema-1")
    v = await _create(client, w, h, trigger="rsa_application", referring_user_id=str(mmg.id))
    reasons = (await session.execute(sa.select(CartellaAssignment.reason, CartellaAssignment.legal_basis).where(
        CartellaAssignment.source_id == v["id"]))).all()
    assert sorted(str(r) for r, _ in reasons) == ["referring_mmg", "team"] and all(lb for _, lb in reasons)
    n = (await session.execute(sa.select(sa.func.count()).select_from(Vmd))).scalar_one()
    body = {"person_id": str(w.person.id), "cartella_id": str(w.cartella.id), "trigger": "pua",
            "team_id": str(w.team.id)}
    for bad, field in (({**body, "trigger": "oroscopo"}, "trigger"), ({**body, "urgente": True}, "urgente"),
                       ({**body, "team_id": str(w.cartella.id)}, "team_id")):
        r = await client.post("/api/vmd", json=bad, headers=h["sw"])
        assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
        assert r.json()["errors"][0]["field"] == field
    assert (await session.execute(sa.select(sa.func.count()).select_from(Vmd))).scalar_one() == n


async def test_permissions(client, session):
    w, h = await _world(session)
    v = await _create(client, w, h)
    url = f"/api/vmd/{v['id']}"
    r = await client.post(f"{url}/schedule", json={"scheduled_for": "2026-03-03T10:00:00+01:00"}, headers=h["sw"])
    assert r.status_code == 403 and "vmd.manage" in r.json()["detail"]  # comune social workers do not manage
    assert (await client.get(url)).status_code == 401
    stranger = await make_user(session, Role.comune_social_worker, "comune-crema")
    assert (await client.get(url, headers=bearer(stranger))).status_code == 404
    r = await client.post(f"{url}/schedule", json={"scheduled_for": "2026-03-03T10:00:00"}, headers=h["ifec"])
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "scheduled_for"  # no time zone


NEW_INSTRUMENT = """
code: spmsq_prova
version: 1
title: Questionario cognitivo breve (prova)
status: active
domains: [cognitive]
items:
  - {id: date_today, label: "Che giorno è oggi?", type: boolean, points_true: 0, points_false: 1}
  - {id: weekday, label: "Che giorno della settimana è?", type: boolean, points_true: 0, points_false: 1}
  - {id: place, label: "Come si chiama questo posto?", type: boolean, points_true: 0, points_false: 1}
scores:
  - code: errors
    label: Numero di errori
    bands:
      - {code: intact, label: Funzioni cognitive integre, min: 0, max: 1}
      - {code: impaired, label: Deficit cognitivo, min: 2, max: 3}
"""


async def test_new_instrument_as_a_data_file_is_scored_and_recorded_with_no_code_change(client, session, tmp_path,
                                                                                       reset_instruments):
    (tmp_path / "spmsq_prova").mkdir()
    (tmp_path / "spmsq_prova" / "1.yaml").write_text(NEW_INSTRUMENT, encoding="utf-8")
    engine.use_directories(tmp_path)
    w, h = await _world(session)
    answers = {"date_today": False, "weekday": False, "place": True}
    r = await client.post("/api/instruments/spmsq_prova/score", json={"answers": answers}, headers=h["ifec"])
    assert r.status_code == 200, r.text
    assert (r.json()["scores"]["errors"]["value"], r.json()["scores"]["errors"]["band"]["code"]) == (2, "impaired")
    v, url = await _in_progress(client, w, h)
    r = await client.post(f"{url}/responses", json={"instrument_code": "spmsq_prova", "answers": answers},
                          headers=h["ifec"])  # cognitive: one of the IFeC's domains
    assert r.status_code == 201, r.text
    assert r.json()["scores"]["errors"]["band"]["label"] == "Deficit cognitivo" and r.json()["outcome"] == "impaired"
    r = await client.post(f"{url}/responses", json={"instrument_code": "spmsq_prova", "answers": answers},
                          headers=h["sw"])  # not one of the social worker's domains
    assert r.status_code == 403


async def test_due_date_and_overdue_flag(client, session, clock):
    w, h = await _world(session)
    v = await _create(client, w, h, trigger="rsa_application")
    clock.advance(days=31)
    r = await client.get(f"/api/vmd/{v['id']}", headers=bearer(w.sw))  # a fresh token at the new time
    assert r.status_code == 200, r.text
    assert r.json()["overdue"] is True
    assert r.json()["due_at"].startswith(str(date(2026, 3, 2) + timedelta(days=30)))


async def test_the_application_date_and_several_outcomes_through_the_api(client, session, clock):
    w, h = await _world(session)
    v = await _create(client, w, h, trigger="rsa_application", application_date="2026-02-20")
    assert v["application_date"] == "2026-02-20" and v["due_at"].startswith("2026-03-22")
    r = await client.post("/api/vmd", json={"person_id": str(w.person.id), "cartella_id": str(w.cartella.id),
                                            "trigger": "udo_access", "team_id": str(w.team.id),
                                            "application_date": "2026-03-03"}, headers=h["sw"])
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "application_date"
    v, url = await _in_progress(client, w, h)
    for who in ("ifec", "sw"):
        assert (await client.post(f"{url}/sign", headers=h[who])).status_code == 200
    assert (await client.post(f"{url}/meetings", json=MEETING, headers=h["ifec"])).status_code == 201
    r = await client.post(f"{url}/conclude", json={"outcomes": ["no_need", "waiting_list"]}, headers=h["ifec"])
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "outcomes"
    r = await client.post(f"{url}/conclude", json={"outcomes": ["project_proposed", "waiting_list"]},
                          headers=h["ifec"])
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["outcomes"] == ["project_proposed", "waiting_list"] and done["outcome"] == "project_proposed"
    assert done["outcome_labels"] == ["Proposta di progetto individualizzato", "Inserimento in lista d'attesa"]


async def test_the_referring_mmg_gets_a_summary_of_the_vmd(client, session):
    """The MMG reads the outcome, the scores, the dates and the case manager of their patient's VMD; not the
    meeting minutes, participants, notes, outcome notes, where the assessment took place (the home address) or
    any answer."""
    w, h = await _world(session)
    mmg = await make_user(session, Role.mmg, "mmg-crema-1")
    v = await _create(client, w, h, referring_user_id=str(mmg.id), notes="Figlia riferisce cadute ripetute")
    url = f"/api/vmd/{v['id']}"
    r = await client.post(f"{url}/schedule", json={"scheduled_for": "2026-03-02T10:00:00+01:00",
                                                   "location": "Via Roma 12, Offanengo (domicilio)"},
                          headers=h["ifec"])
    assert r.status_code == 200, r.text
    for u in (w.ifec, w.sw):
        assert (await client.post(f"{url}/assessors", json={"user_id": str(u.id)}, headers=h["ifec"])).status_code \
            == 201
    for who, code, answers in (("ifec", "barthel", BARTHEL_35), ("sw", "social_risk", SOCIAL)):
        r = await client.post(f"{url}/responses", json={"instrument_code": code, "answers": answers},
                              headers=h[who])
        assert r.status_code == 201, r.text
    for who in ("ifec", "sw"):
        assert (await client.post(f"{url}/sign", headers=h[who])).status_code == 200
    assert (await client.post(f"{url}/meetings", json=MEETING, headers=h["ifec"])).status_code == 201
    r = await client.post(f"{url}/conclude", json={"outcome": "project_proposed",
                                                   "notes": "Conflitto con la nuora, non riferire"},
                          headers=h["ifec"])
    assert r.status_code == 200, r.text
    r = await client.patch(f"/api/cartelle/{w.cartella.id}", json={"case_manager_id": str(w.sw.id)},
                           headers=h["sw"])
    assert r.status_code == 200, r.text

    full = (await client.get(url, headers=h["sw"])).json()
    assert full["view"] == "full" and full["location"].startswith("Via Roma") and full["meetings"]
    assert full["case_manager"]["user_id"] == str(w.sw.id)

    seen = (await client.get(url, headers=bearer(mmg)))
    assert seen.status_code == 200, seen.text
    s = seen.json()
    assert s["view"] == "summary"
    assert (s["outcome"], s["outcomes"], s["integrated"]) == ("project_proposed", ["project_proposed"], True)
    assert s["requested_at"] and s["due_at"] and s["scheduled_for"] and s["concluded_at"]
    assert s["case_manager"]["user_id"] == str(w.sw.id) and s["case_manager"]["display_name"]
    assert s["location"] is None and s["notes"] is None and s["outcome_notes"] is None
    assert s["meetings"] == [] and s["assessors"] == []
    scores = {x["instrument_code"]: x for x in s["responses"]}
    assert scores["barthel"]["scores"]["total"]["value"] == 35 and scores["barthel"]["answers"] is None
    assert scores["social_risk"]["answers"] is None and scores["social_risk"]["answers_masked"] is True
    listed = (await client.get(f"/api/persons/{w.person.id}/vmd", headers=bearer(mmg))).json()["items"]
    assert [(x["id"], x["view"], x["notes"], x["location"]) for x in listed] == [(v["id"], "summary", None, None)]
