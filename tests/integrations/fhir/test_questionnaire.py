"""Questionnaire ⇐ every instrument definition (R4-valid, points as ordinalValue), and the answers of a response
out and back in, typed by the definition; scores travel out only."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from domain.assessment import instruments as engine
from domain.kernel.errors import Invalid
from integrations.fhir import questionnaire, r4, systems

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("code", sorted(engine.registry().codes()))
def test_every_instrument_is_an_r4_questionnaire(code):
    d = engine.latest_active(code)
    res = r4.dump(questionnaire.to_fhir(d))
    r4.check_r4(res)
    assert questionnaire.parse_id(res["id"]) == (d.code, d.version)
    assert [i["linkId"] for i in res["item"]] == [i.id for i in d.items]


def test_barthel_options_carry_their_points():
    res = r4.dump(questionnaire.to_fhir(engine.latest_active("barthel")))
    feeding = res["item"][0]
    assert feeding["type"] == "choice" and feeding["required"] is True
    assert [(o["valueCoding"]["code"], o["extension"][0]["valueDecimal"]) for o in feeding["answerOption"]] == [
        ("unable", 0.0), ("needs_help", 5.0), ("independent", 10.0)]
    assert feeding["answerOption"][0]["extension"][0]["url"] == systems.ORDINAL_VALUE


def _response(d, answers, scores):
    return SimpleNamespace(id=uuid.uuid4(), person_id=uuid.uuid4(), instrument_code=d.code,
                           instrument_version=d.version, answers=answers, scores=scores, author_id=uuid.uuid4(),
                           recorded_at=datetime(2026, 3, 2, 9, tzinfo=UTC))


def test_barthel_answers_come_back_the_same_and_scores_go_out():
    d = engine.latest_active("barthel")
    answers = {i.id: i.options[-1].code for i in d.items}
    result = engine.score(d, answers)
    res = r4.dump(questionnaire.response_to_fhir(_response(d, answers, result.model_dump(mode="json"))))
    r4.check_r4(res)
    assert res["questionnaire"] == f"{systems.BASE}/Questionnaire/barthel|{d.version}"
    [total] = [e for e in res["extension"] if e["url"] == systems.INSTRUMENT_SCORE]
    assert {"url": "valore", "valueDecimal": 100.0} in total["extension"]
    assert questionnaire.response_from_fhir(res, d) == answers


def test_a_masked_response_shows_scores_not_answers():
    d = engine.latest_active("barthel")
    answers = {i.id: i.options[0].code for i in d.items}
    res = r4.dump(questionnaire.response_to_fhir(
        _response(d, answers, engine.score(d, answers).model_dump(mode="json")), masked=True))
    assert "item" not in res and res["extension"]


def test_answers_to_another_version_or_item_are_refused():
    d = engine.latest_active("barthel")
    res = r4.dump(questionnaire.response_to_fhir(_response(d, {"feeding": "independent"}, {})))
    with pytest.raises(Invalid, match="questionnaire"):
        questionnaire.response_from_fhir({**res, "questionnaire": f"{systems.BASE}/Questionnaire/barthel|99"}, d)
    res["item"][0]["linkId"] = "flying"
    with pytest.raises(Invalid) as exc:
        questionnaire.response_from_fhir(res, d)
    assert exc.value.field == "QuestionnaireResponse.item[0].linkId"
