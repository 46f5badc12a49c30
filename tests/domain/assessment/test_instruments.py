"""Instrument engine: definitions are data (schemas/instruments/<code>/<version>.yaml). Pure tests, no database."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from domain.assessment import instruments as I  # noqa: N812  (the module is the subject of every line here)
from domain.kernel.errors import Conflict, Invalid, NotFound

SHIPPED = I.DEFAULT_DIR


@pytest.fixture
def reset_registry():
    yield
    I.use_directories()


def raw(code: str, version: int) -> dict:
    return yaml.safe_load((SHIPPED / code / f"{version}.yaml").read_text(encoding="utf-8"))


def fields(exc: Invalid) -> dict[str, str]:
    return {e["field"]: e["reason"] for e in exc.errors}


# -------------------- registry

def test_shipped_instruments_are_loaded_and_keyed_by_code_and_version():
    reg = I.registry()
    assert {"barthel", "lawton_iadl", "social_risk", "pua_triage"} <= set(reg.codes())
    assert ("barthel", 1) in reg and ("pua_triage", 1) in reg and ("pua_triage", 2) in reg
    assert [d.version for d in reg.versions("pua_triage")] == [1, 2]
    assert I.registry() is reg  # cached


def test_get_without_version_is_the_latest_active_and_retired_versions_stay_readable():
    latest = I.get("pua_triage")
    assert (latest.version, latest.status.value) == (2, "active")
    assert I.latest_active("pua_triage") is latest
    v1 = I.get("pua_triage", 1)
    assert v1.status.value == "retired" and v1.item("lives_alone_over_75") is not None


def test_unknown_instrument_or_version_is_not_found():
    with pytest.raises(NotFound, match="non trovato"):
        I.get("mmse")
    with pytest.raises(NotFound, match="Versione 9"):
        I.get("barthel", 9)


def test_latest_active_needs_an_active_version():
    retired_only = I.parse_definition(raw("pua_triage", 1))
    reg = I.InstrumentRegistry([retired_only])
    assert reg.get("pua_triage", 1) is retired_only
    with pytest.raises(NotFound, match="non ha versioni attive"):
        reg.latest_active("pua_triage")


# -------------------- Barthel

BARTHEL_MAX = {
    "feeding": "independent", "bathing": "independent", "grooming": "independent", "dressing": "independent",
    "bowels": "continent", "bladder": "continent", "toilet_use": "independent", "transfers": "independent",
    "mobility": "independent", "stairs": "independent",
}
BARTHEL_MIN = {
    "feeding": "unable", "bathing": "dependent", "grooming": "needs_help", "dressing": "dependent",
    "bowels": "incontinent", "bladder": "incontinent", "toilet_use": "dependent", "transfers": "unable",
    "mobility": "immobile", "stairs": "unable",
}


def test_barthel_published_item_scoring():
    d = I.get("barthel", 1)
    points = {it.id: sorted(o.points for o in it.options) for it in d.items}
    assert points == {
        "feeding": [0, 5, 10], "bathing": [0, 5], "grooming": [0, 5], "dressing": [0, 5, 10],
        "bowels": [0, 5, 10], "bladder": [0, 5, 10], "toilet_use": [0, 5, 10], "transfers": [0, 5, 10, 15],
        "mobility": [0, 5, 10, 15], "stairs": [0, 5, 10],
    }


def test_barthel_82_year_old_scoring_35_is_severe_dependency():
    answers = {
        "feeding": "needs_help", "bathing": "dependent", "grooming": "needs_help", "dressing": "needs_help",
        "bowels": "occasional_accident", "bladder": "occasional_accident", "toilet_use": "needs_help",
        "transfers": "major_help", "mobility": "wheelchair", "stairs": "unable",
    }
    r = I.score(I.get("barthel"), answers)
    total = r.scores["total"]
    assert (total.value, total.min, total.max) == (35, 0, 100)
    assert (total.band.code, total.band.label) == ("severe_dependency", "Dipendenza grave")


def test_barthel_all_max_is_100_independent_and_all_min_is_0_total_dependency():
    d = I.get("barthel")
    top = I.score(d, BARTHEL_MAX).scores["total"]
    assert (top.value, top.band.code, top.band.label) == (100, "independent", "Indipendente")
    bottom = I.score(d, BARTHEL_MIN).scores["total"]
    assert (bottom.value, bottom.band.code, bottom.band.label) == (0, "total_dependency", "Dipendenza totale")


@pytest.mark.parametrize("changes, total, band", [
    ({"feeding": "independent", "bowels": "continent"}, 20, "total_dependency"),
    ({"feeding": "needs_help", "bowels": "continent", "bladder": "occasional_accident", "transfers": "major_help"},
     25, "severe_dependency"),
    ({**BARTHEL_MAX, "stairs": "unable", "mobility": "walks_with_help", "transfers": "minor_help",
      "bathing": "dependent", "grooming": "needs_help"}, 70, "moderate_dependency"),
    ({**BARTHEL_MAX, "stairs": "needs_help", "bathing": "dependent"}, 90, "moderate_dependency"),
    ({**BARTHEL_MAX, "bathing": "dependent"}, 95, "mild_dependency"),
])
def test_barthel_band_boundaries(changes, total, band):
    r = I.score(I.get("barthel"), {**BARTHEL_MIN, **changes})
    assert (r.scores["total"].value, r.scores["total"].band.code) == (total, band)


# -------------------- Lawton

def test_lawton_total_of_2_and_sex_independent_8_items():
    d = I.get("lawton_iadl")
    assert len(d.items) == 8 and all(it.required for it in d.items)
    answers = {
        "telephone": "answers_only",        # 1
        "shopping": "small_purchases",      # 0
        "food_preparation": "heats_only",   # 0
        "housekeeping": "none",             # 0
        "laundry": "small_items",           # 1
        "transportation": "assisted_car",   # 0
        "medications": "if_prepared",       # 0
        "finances": "unable",               # 0
    }
    total = I.score(d, answers).scores["total"]
    assert (total.value, total.min, total.max, total.band) == (2, 0, 8, None)


def test_lawton_published_dichotomous_scoring():
    d = I.get("lawton_iadl")
    ones = {it.id: [o.code for o in it.options if o.points == 1] for it in d.items}
    assert ones["housekeeping"] == ["independent", "light_tasks", "light_tasks_inadequate", "needs_help_all"]
    assert ones["transportation"] == ["independent", "taxi_only", "accompanied_public"]
    assert ones["telephone"] == ["independent", "few_numbers", "answers_only"]
    assert ones["shopping"] == ones["food_preparation"] == ones["medications"] == ["independent"]
    assert ones["laundry"] == ["independent", "small_items"] and ones["finances"] == ["independent", "daily_purchases"]
    assert I.score(d, {it.id: it.options[0].code for it in d.items}).scores["total"].value == 8


# -------------------- social module

SOCIAL_LOW = {
    "living_arrangement": "with_able_family", "social_network": "present_active", "social_isolation": False,
    "caregiver_present": True, "housing_adequacy": "adequate", "housing_barriers": [], "eviction_risk": False,
    "economic_difficulty": "none",
}


def test_social_risk_weighted_score_and_bands():
    d = I.get("social_risk", 1)
    low = I.score(d, SOCIAL_LOW)
    assert (low.scores["social_risk"].value, low.scores["social_risk"].band.code) == (0, "low")
    assert (low.scores["social_risk"].min, low.scores["social_risk"].max) == (0, 24)
    answers = {
        **SOCIAL_LOW,
        "living_arrangement": "alone",                  # 2 x 2 = 4
        "social_network": "limited",                    # 1
        "caregiver_present": True, "caregiver_sole": True, "caregiver_burden": "high",  # 0 + 1 + 2
        "housing_barriers": ["stairs_without_lift", "bathroom_not_accessible"],         # 2
        "economic_difficulty": "occasional",            # 1 x 2 = 2
        "housing_tenure": "private_rent", "benefits": ["attendance_allowance"], "helpers_count": 1,
        "notes": "Figlia unica, lavora a tempo pieno.",
    }
    r = I.score(d, answers)
    risk = r.scores["social_risk"]
    assert (risk.value, risk.band.code, risk.band.label) == (12, "high", "Rischio sociale alto")
    assert r.scores["housing_barriers"].value == 2 and r.scores["housing_barriers"].band is None


def test_social_risk_absent_caregiver_counts_and_optional_items_may_be_left_empty():
    r = I.score(I.get("social_risk"), {**SOCIAL_LOW, "caregiver_present": False, "economic_difficulty": "severe"})
    assert (r.scores["social_risk"].value, r.scores["social_risk"].band.code) == (6, "medium")


def test_social_risk_v2_scores_having_no_home_and_refuses_contradictions():
    """A change of scoring is a new version (v2), never an edit of v1: v1 is retired and keeps its scores."""
    v1, v2 = I.get("social_risk", 1), I.get("social_risk")
    assert v2.version == 2 and v1.status == "retired" and v2.status == "active"
    homeless = {**SOCIAL_LOW, "housing_tenure": "no_home"}
    assert I.score(v1, homeless).scores["social_risk"].value == 0  # v1: having no home scored nothing
    r = I.score(v2, homeless)
    assert (r.scores["social_risk"].value, r.scores["social_risk"].min, r.scores["social_risk"].max) == (4, 0, 28)
    assert I.score(v2, {**SOCIAL_LOW, "housing_tenure": "guest"}).scores["social_risk"].value == 0
    contradictory = {**SOCIAL_LOW, "caregiver_present": False, "caregiver_sole": True}
    with pytest.raises(Invalid) as e:
        I.submit(v2, contradictory)
    assert [x["field"] for x in e.value.errors] == ["answers.caregiver_present", "answers.caregiver_sole"]
    assert "contraddizione" in e.value.errors[0]["reason"]
    with pytest.raises(Invalid) as e:
        I.submit(v2, {**SOCIAL_LOW, "caregiver_present": False, "caregiver_burden": "high"})
    assert [x["field"] for x in e.value.errors] == ["answers.caregiver_present", "answers.caregiver_burden"]
    assert I.score(v1, contradictory).scores["social_risk"].value == 3  # stored v1 answers keep their meaning
    ok = I.submit(v2, {**SOCIAL_LOW, "caregiver_present": True, "caregiver_sole": True})
    assert ok.scores["social_risk"].value == 1


def test_a_constraint_may_only_compare_answers():
    raw = yaml.safe_load((I.DEFAULT_DIR / "social_risk" / "2.yaml").read_text(encoding="utf-8"))
    raw["constraints"][0]["when"] = {"score": "social_risk", "at_least": 3}
    with pytest.raises(I.InstrumentDefinitionError, match="compares answers only"):
        I.parse_definition(raw, source="social_risk/2.yaml")
    raw["constraints"][0]["when"] = {"item": "caregiver_present", "equals": False}
    raw["constraints"][0]["items"] = ["caregiver_nobody"]
    with pytest.raises(I.InstrumentDefinitionError, match="unknown item 'caregiver_nobody'"):
        I.parse_definition(raw, source="social_risk/2.yaml")


# -------------------- triage

TRIAGE_SIMPLE = {
    "request_type": "information", "need_areas": ["economic"], "age": 68, "lives_alone": False,
    "caregiver": "adequate", "autonomy_loss": "none", "cognitive_decline": False, "multimorbidity": False,
    "recent_discharge": False, "caregiver_loss": False, "abuse_suspicion": False, "housing_emergency": False,
}


def triage(**changes):
    return I.score(I.get("pua_triage", 2), {**TRIAGE_SIMPLE, **changes})


def test_triage_simple_need_is_oriented():
    r = triage()
    assert r.scores["complexity"].value == 1 and r.scores["complexity"].band.code == "low"
    assert r.scores["need_areas_count"].value == 1
    level, referral = r.outcomes["need_level"], r.outcomes["referral"]
    assert (level.value, level.reasons) == ("simple", [])
    assert level.value_label.startswith("Bisogno semplice")
    assert referral.value == "orientation"


@pytest.mark.parametrize("flag, rule", [
    ("recent_discharge", "red_flag_recent_discharge"),
    ("caregiver_loss", "red_flag_caregiver_loss"),
    ("abuse_suspicion", "red_flag_abuse_suspicion"),
    ("housing_emergency", "red_flag_housing_emergency"),
])
def test_triage_each_red_flag_alone_makes_the_need_complex(flag, rule):
    r = triage(**{flag: True})
    assert r.scores["complexity"].band.code == "low"  # the score alone would say simple
    assert r.outcomes["need_level"].value == "complex"
    assert [x.code for x in r.outcomes["need_level"].reasons] == [rule]
    assert r.outcomes["referral"].value == ("cot" if flag == "recent_discharge" else "vmd")


def test_triage_living_alone_over_75_is_a_red_flag_computed_from_age_and_living_alone():
    assert triage(lives_alone=True, age=75).outcomes["need_level"].value == "simple"
    r = triage(lives_alone=True, age=76)
    assert r.outcomes["need_level"].value == "complex"
    assert [x.code for x in r.outcomes["need_level"].reasons] == ["red_flag_alone_over_75"]
    assert triage(lives_alone=False, age=90).outcomes["need_level"].value == "simple"


def test_triage_high_complexity_score_is_complex_and_reasons_list_every_matching_rule():
    answers = dict(request_type="care_need", need_areas=["health", "personal_care"], caregiver="overloaded",
                   autonomy_loss="partial", multimorbidity=True)
    medium = triage(**answers)  # 2 + 1 + 2 + 1 = 6
    assert (medium.scores["complexity"].value, medium.scores["complexity"].band.code) == (6, "medium")
    assert medium.outcomes["need_level"].value == "simple"
    high = triage(**answers, cognitive_decline=True)  # 8
    assert (high.scores["complexity"].value, high.scores["complexity"].band.code) == (8, "high")
    assert [x.code for x in high.outcomes["need_level"].reasons] == ["high_complexity"]
    both = triage(**answers, cognitive_decline=True, caregiver_loss=True)
    assert [x.code for x in both.outcomes["need_level"].reasons] == ["red_flag_caregiver_loss", "high_complexity"]


def test_triage_health_and_social_needs_together_with_autonomy_loss_are_complex():
    r = triage(request_type="care_need", need_areas=["health", "social_relational"], autonomy_loss="partial")
    assert r.scores["complexity"].band.code == "medium"  # 2 areas + partial loss x 2 = 4: the score says simple
    assert r.outcomes["need_level"].value == "complex"
    assert [x.code for x in r.outcomes["need_level"].reasons] == ["integrated_need"]
    assert r.outcomes["referral"].value == "vmd"
    # health + social without loss of autonomy: two separate simple answers
    assert triage(need_areas=["health", "economic"]).outcomes["need_level"].value == "simple"
    # only health-side areas with loss of autonomy: not integrated
    assert triage(need_areas=["health", "personal_care"], autonomy_loss="partial") \
        .outcomes["need_level"].value == "simple"


def test_triage_v1_rule_still_scores_stored_answers():
    v1 = I.get("pua_triage", 1)
    stored = {
        "request_type": "care_need", "need_areas": ["health"], "caregiver": "adequate", "autonomy_loss": "none",
        "multimorbidity": False, "recent_discharge": False, "lives_alone_over_75": True, "caregiver_loss": False,
        "abuse_suspicion": False,
    }
    r = I.score(v1, stored)
    assert (r.instrument, r.version) == ("pua_triage", 1)
    assert r.outcomes["need_level"].value == "complex"
    assert [x.code for x in r.outcomes["need_level"].reasons] == ["red_flag_alone_over_75"]
    assert "referral" not in r.outcomes
    assert I.score(v1, {**stored, "lives_alone_over_75": False}).outcomes["need_level"].value == "simple"


# -------------------- versioning

def test_retired_version_refuses_new_answers_but_scores_stored_ones():
    v1, v2 = I.get("pua_triage", 1), I.get("pua_triage", 2)
    with pytest.raises(Conflict, match="versione ritirata") as exc:
        I.ensure_accepts_answers(v1)
    assert exc.value.extra == {"instrument": "pua_triage", "version": 1}
    stored = {"request_type": "information", "need_areas": [], "caregiver": "adequate", "autonomy_loss": "none",
              "multimorbidity": False, "recent_discharge": False, "lives_alone_over_75": False,
              "caregiver_loss": False, "abuse_suspicion": False}
    with pytest.raises(Conflict, match="versione ritirata"):
        I.submit(v1, stored)
    assert I.score(v1, stored).outcomes["need_level"].value == "simple"
    I.ensure_accepts_answers(v2)  # active: no error
    assert I.submit(v2, TRIAGE_SIMPLE).outcomes["need_level"].value == "simple"


# -------------------- answer validation

def test_validation_error_names_the_item():
    with pytest.raises(Invalid) as exc:
        I.validate_answers(I.get("barthel"), {**BARTHEL_MAX, "transfers": "flying"})
    assert exc.value.field == "answers.transfers"
    assert "opzione sconosciuta 'flying'" in exc.value.reason and "independent" in exc.value.reason
    assert exc.value.status == 422


def test_validation_collects_every_problem_with_field_paths():
    answers = {**TRIAGE_SIMPLE, "age": 130, "lives_alone": "sì", "need_areas": ["health", "pets"],
               "caregiver": 2, "discharge_date": "2026-02-30", "colour": "blue"}
    del answers["autonomy_loss"]
    with pytest.raises(Invalid) as exc:
        I.validate_answers(I.get("pua_triage", 2), answers)
    got = fields(exc.value)
    assert got == {
        "answers.age": "deve essere compreso tra 0 e 120",
        "answers.lives_alone": "deve essere vero o falso",
        "answers.need_areas": got["answers.need_areas"],
        "answers.caregiver": got["answers.caregiver"],
        "answers.autonomy_loss": "risposta obbligatoria",
        "answers.discharge_date": "deve essere una data nel formato AAAA-MM-GG",
        "answers.colour": "voce non prevista dallo strumento pua_triage versione 2",
    }
    assert "pets" in got["answers.need_areas"] and "codice di un'opzione" in got["answers.caregiver"]
    assert "answers.age" in exc.value.detail and "answers.colour" in exc.value.detail


@pytest.mark.parametrize("changes, field, reason", [
    ({"age": True}, "answers.age", "deve essere un numero intero"),
    ({"age": 70.5}, "answers.age", "deve essere un numero intero"),
    ({"age": -1}, "answers.age", "deve essere compreso tra 0 e 120"),
    ({"need_areas": "health"}, "answers.need_areas", "deve essere un elenco"),
    ({"need_areas": ["health", "health"]}, "answers.need_areas", "opzioni ripetute"),
    ({"discharge_date": "02/03/2026"}, "answers.discharge_date", "AAAA-MM-GG"),
    ({"notes": 12}, "answers.notes", "deve essere un testo"),
    ({"notes": "x" * 4001}, "answers.notes", "testo troppo lungo"),
    ({"recent_discharge": None}, "answers.recent_discharge", "risposta obbligatoria"),
])
def test_validation_of_each_answer_type(changes, field, reason):
    with pytest.raises(Invalid) as exc:
        I.validate_answers(I.get("pua_triage", 2), {**TRIAGE_SIMPLE, **changes})
    assert list(fields(exc.value)) == [field] and reason in fields(exc.value)[field]


def test_valid_optional_answers_and_partial_drafts():
    d = I.get("pua_triage", 2)
    I.validate_answers(d, {**TRIAGE_SIMPLE, "discharge_date": "2026-03-02", "notes": "", "request_source": None,
                           "need_areas": []})
    I.validate_answers(d, {"age": 81}, partial=True)  # a draft: required items may still be missing
    with pytest.raises(Invalid) as exc:
        I.validate_answers(d, {"age": 181}, partial=True)
    assert list(fields(exc.value)) == ["answers.age"]
    with pytest.raises(Invalid) as exc:
        I.validate_answers(d, ["age", 81])
    assert exc.value.field == "answers"


def test_score_validates_first():
    with pytest.raises(Invalid) as exc:
        I.score(I.get("barthel"), {k: v for k, v in BARTHEL_MAX.items() if k != "stairs"})
    assert exc.value.field == "answers.stairs"


def test_score_result_is_json_ready():
    dumped = json.loads(json.dumps(triage(recent_discharge=True).model_dump(mode="json")))
    assert dumped["instrument"] == "pua_triage" and dumped["version"] == 2
    assert dumped["scores"]["complexity"]["band"]["code"] == "low"
    assert dumped["outcomes"]["referral"] == {
        "code": "referral", "label": "Percorso suggerito", "value": "cot",
        "value_label": "Attivazione della COT (continuità ospedale-territorio) e VMD",
        "reasons": [{"code": "continuity_of_care", "label": "Bisogno complesso con dimissione ospedaliera"}],
    }


# -------------------- new instrument as data

NEW_INSTRUMENT = """
code: spmsq
version: 1
title: Short Portable Mental Status Questionnaire (prova)
status: active
domains: [cognitive]
items:
  - {id: date_today, label: "Che giorno è oggi?", type: boolean, points_true: 0, points_false: 1}
  - {id: weekday, label: "Che giorno della settimana è?", type: boolean, points_true: 0, points_false: 1}
  - {id: place, label: "Come si chiama questo posto?", type: boolean, domain: cognitive, points_false: 1,
     points_true: 0}
  - {id: schooling, label: Anni di scolarità, type: integer, min: 0, max: 30, required: false}
  - {id: visit_date, label: Data del colloquio, type: date}
scores:
  - code: errors
    label: Numero di errori
    method: weighted
    weights: {date_today: 1.5, weekday: 1.5, place: 1.5}
    decimals: 1
    bands:
      - {code: intact, label: Funzioni cognitive integre, min: 0, max: 1.5}
      - {code: impaired, label: Deficit cognitivo, min: 1.6, max: 4.5}
outcomes:
  - code: follow_up
    label: Approfondimento
    values:
      - {code: needed, label: Approfondimento al CDCD}
      - {code: not_needed, label: Nessun approfondimento}
    default: not_needed
    rules:
      - code: impaired
        label: Deficit cognitivo
        when: {any: [{score: errors, band_in: [impaired]}, {not: {item: place, equals: true}}]}
        result: needed
"""


def test_new_instrument_added_as_a_data_file_is_loaded_and_scored(tmp_path, reset_registry):
    (tmp_path / "spmsq").mkdir()
    (tmp_path / "spmsq" / "1.yaml").write_text(NEW_INSTRUMENT, encoding="utf-8")
    (tmp_path / "README.md").write_text("non-YAML files are ignored")

    reg = I.load_registry(tmp_path)
    assert "spmsq" in reg.codes() and "barthel" in reg.codes()

    with pytest.raises(NotFound):
        I.get("spmsq")
    I.use_directories(tmp_path)
    d = I.get("spmsq")
    assert (d.code, d.version, d.domains[0].value) == ("spmsq", 1, "cognitive")
    answers = {"date_today": False, "weekday": True, "place": True, "visit_date": "2026-03-02"}
    r = I.submit(d, answers)
    assert (r.scores["errors"].value, r.scores["errors"].max, r.scores["errors"].band.code) == (1.5, 4.5, "intact")
    assert r.outcomes["follow_up"].value == "not_needed"
    r = I.score(d, {**answers, "weekday": False})
    assert (r.scores["errors"].value, r.scores["errors"].band.code) == (3.0, "impaired")
    assert r.outcomes["follow_up"].value == "needed"
    assert I.score(d, {**answers, "place": False}).outcomes["follow_up"].reasons[0].code == "impaired"
    with pytest.raises(Invalid) as exc:
        I.submit(d, {**answers, "schooling": 31})
    assert exc.value.field == "answers.schooling"


def test_use_directories_resets_to_the_shipped_set(tmp_path, reset_registry):
    (tmp_path / "spmsq").mkdir()
    (tmp_path / "spmsq" / "1.yaml").write_text(NEW_INSTRUMENT, encoding="utf-8")
    I.use_directories(tmp_path)
    assert "spmsq" in I.registry().codes()
    I.use_directories()
    assert "spmsq" not in I.registry().codes()


# -------------------- malformed definitions

def mutate(code, version, fn):
    d = copy.deepcopy(raw(code, version))
    fn(d)
    return d


def item(d, item_id):
    return next(i for i in d["items"] if i["id"] == item_id)


def rule(d, outcome, code):
    return next(r for o in d["outcomes"] if o["code"] == outcome for r in o["rules"] if r["code"] == code)


MALFORMED = [
    ("unknown answer type",
     lambda d: item(d, "transfers").__setitem__("type", "slider"),
     "items.transfers.type: unknown answer type 'slider'"),
    ("overlapping bands",
     lambda d: d["scores"][0]["bands"][2].__setitem__("min", 55),
     "scores.total.bands: bands 'severe_dependency' (21-60) and 'moderate_dependency' (55-90) overlap"),
    ("gap between bands",
     lambda d: d["scores"][0]["bands"][2].__setitem__("min", 65),
     "scores.total.bands: gap between 'severe_dependency' (up to 60) and 'moderate_dependency' (from 65)"),
    ("bands not covering the range",
     lambda d: d["scores"][0]["bands"].pop(),
     "scores.total.bands: score 100 falls in no band (the score ranges 0-100)"),
    ("band min above max",
     lambda d: d["scores"][0]["bands"][0].__setitem__("min", 30),
     "scores.total.bands.total_dependency: min 30 is greater than max 20"),
    ("scored option without points",
     lambda d: item(d, "stairs")["options"][1].pop("points"),
     "scores.total: item 'stairs' is scored but options ['needs_help'] have no points"),
    ("score naming an unknown item",
     lambda d: d["scores"][0].__setitem__("items", ["feeding", "walking"]),
     "scores.total: unknown item 'walking'"),
    ("duplicate item id",
     lambda d: d["items"].append(copy.deepcopy(d["items"][0])),
     "items: duplicate item id 'feeding'"),
    ("single choice without options",
     lambda d: item(d, "bathing").__setitem__("options", []),
     "item 'bathing': a single_choice item needs options"),
    ("unknown key",
     lambda d: d.__setitem__("colour", "red"),
     "colour: unknown key"),
    ("missing title",
     lambda d: d.pop("title"),
     "title: required key missing"),
    ("unknown status",
     lambda d: d.__setitem__("status", "draft"),
     "status: unknown value 'draft'"),
    ("item domain outside the instrument's domains",
     lambda d: item(d, "feeding").__setitem__("domain", "housing"),
     "items.feeding.domain: 'housing' is not among the instrument's domains ['functional']"),
    ("weighted score without weights",
     lambda d: d["scores"][0].__setitem__("method", "weighted"),
     "score 'total': method 'weighted' needs 'weights'"),
]


@pytest.mark.parametrize("case, change, message", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_definition_is_rejected_with_a_clear_message(case, change, message):
    with pytest.raises(I.InstrumentDefinitionError) as exc:
        I.parse_definition(mutate("barthel", 1, change), source="barthel/1.yaml")
    assert message in str(exc.value), str(exc.value)
    assert str(exc.value).startswith("invalid instrument definition barthel/1.yaml: ")


TRIAGE_MALFORMED = [
    ("condition on an unknown item",
     lambda d: rule(d, "need_level", "red_flag_caregiver_loss")["when"].__setitem__("item", "carer_lost"),
     "outcomes.need_level.rules.red_flag_caregiver_loss.when: unknown item 'carer_lost'"),
    ("condition with an unknown option",
     lambda d: rule(d, "need_level", "integrated_need")["when"]["all"][2].__setitem__("in", ["partial", "mild"]),
     "outcomes.need_level.rules.integrated_need.when.all.2: item 'autonomy_loss' has no options ['mild']"),
    ("condition with no operator",
     lambda d: rule(d, "need_level", "red_flag_abuse_suspicion").__setitem__("when", {"item": "abuse_suspicion"}),
     "needs exactly one of equals, in"),
    ("condition that is not a condition",
     lambda d: rule(d, "need_level", "red_flag_abuse_suspicion").__setitem__("when", {"if": "abuse"}),
     "outcomes.need_level.rules.red_flag_abuse_suspicion.when: a condition has exactly one of the keys"),
    ("operator not fit for the type",
     lambda d: rule(d, "need_level", "red_flag_alone_over_75")["when"]["all"].__setitem__(
         0, {"item": "lives_alone", "at_least": 1}),
     "operator 'at_least' cannot be used on boolean item 'lives_alone'"),
    ("unknown band",
     lambda d: rule(d, "need_level", "high_complexity")["when"].__setitem__("band_in", ["very_high"]),
     "score 'complexity' has no bands ['very_high']"),
    ("result outside the values",
     lambda d: rule(d, "referral", "complex_need").__setitem__("result", "hospital"),
     "outcomes.referral.rules.complex_need.result: 'hospital' is not one of the values"),
    ("outcome used before it is declared",
     lambda d: d["outcomes"].reverse(),
     "outcome 'need_level' is unknown or not declared before this one"),
    ("text item in a score",
     lambda d: d["scores"][0]["weights"].__setitem__("notes", 1),
     "scores.complexity: item 'notes' of type text cannot be scored"),
    ("scored integer without range",
     lambda d: (item(d, "age").pop("max"), d["scores"][1].__setitem__("items", ["need_areas", "age"])),
     "scores.need_areas_count: integer item 'age' is scored but lacks min/max"),
]


@pytest.mark.parametrize("case, change, message", TRIAGE_MALFORMED, ids=[m[0] for m in TRIAGE_MALFORMED])
def test_malformed_rules_are_rejected_with_a_clear_message(case, change, message):
    with pytest.raises(I.InstrumentDefinitionError) as exc:
        I.parse_definition(mutate("pua_triage", 2, change))
    assert message in str(exc.value), str(exc.value)


def write(root: Path, rel: str, text: str) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


def test_file_layout_errors(tmp_path):
    write(tmp_path / "a", "other/1.yaml", NEW_INSTRUMENT)
    with pytest.raises(I.InstrumentDefinitionError, match="code: 'spmsq' differs from its directory 'other'"):
        I.load_registry(tmp_path / "a", include_default=False)
    write(tmp_path / "b", "spmsq/2.yaml", NEW_INSTRUMENT)
    with pytest.raises(I.InstrumentDefinitionError, match="version: 1 differs from the file name '2.yaml'"):
        I.load_registry(tmp_path / "b", include_default=False)
    write(tmp_path / "c", "spmsq/v1.yaml", NEW_INSTRUMENT)
    with pytest.raises(I.InstrumentDefinitionError, match="file name must be <version>.yaml"):
        I.load_registry(tmp_path / "c", include_default=False)
    write(tmp_path / "d", "spmsq/1.yaml", "code: [unclosed")
    with pytest.raises(I.InstrumentDefinitionError, match="spmsq/1.yaml: not valid YAML"):
        I.load_registry(tmp_path / "d", include_default=False)
    write(tmp_path / "e", "barthel/1.yaml", (SHIPPED / "barthel" / "1.yaml").read_text(encoding="utf-8"))
    with pytest.raises(I.InstrumentDefinitionError, match="barthel/1.yaml: defined twice"):
        I.load_registry(tmp_path / "e")
    write(tmp_path / "f", "spmsq.yaml", NEW_INSTRUMENT)
    with pytest.raises(I.InstrumentDefinitionError, match="not at the top"):
        I.load_registry(tmp_path / "f", include_default=False)
    write(tmp_path / "g", "spmsq/1.yaml", "- just\n- a list\n")
    with pytest.raises(I.InstrumentDefinitionError, match="must be a mapping"):
        I.load_registry(tmp_path / "g", include_default=False)
    with pytest.raises(I.InstrumentDefinitionError, match="does not exist"):
        I.load_registry(tmp_path / "missing", include_default=False)


def test_every_shipped_instrument_has_one_active_version_and_closed_bands():
    reg = I.load_registry()
    for code in reg.codes():
        assert [d.status.value for d in reg.versions(code)].count("active") == 1, code
    for d in reg:
        for s in d.scores:
            if s.bands:
                lo, hi = d.score_range(s)
                assert (min(b.min for b in s.bands), max(b.max for b in s.bands)) == (lo, hi), (d.code, s.code)
