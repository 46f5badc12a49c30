"""The counting rules of docs/indicators.md that need no database, one test per rule: the Europe/Rome year, the
readings and their cut-offs, value rounding, the definition loader, and small-cell suppression (no hidden count can
be recovered from the shown cells, totals, value × denominator or the bounds "<5" and "n.d." give away)."""
from __future__ import annotations

import dataclasses
import itertools
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from domain.kernel.errors import Invalid
from domain.reporting import definitions, indicators, suppression
from domain.reporting.suppression import Equation

pytestmark = pytest.mark.unit
ROME = "+01:00"


def d(code: str) -> definitions.Definition:
    return definitions.registry()[code]


# ---------------------------------------------------------------------------------------------------- the year
def test_the_year_is_cut_at_rome_midnight_not_utc():
    lo, hi = indicators.year_bounds(2026)
    assert lo == datetime.fromisoformat("2026-01-01T00:00:00+01:00")
    assert hi == datetime.fromisoformat("2027-01-01T00:00:00+01:00")
    # 00:40 on 1 January in Rome is still 31 December in UTC: it belongs to the new year
    assert lo <= datetime.fromisoformat("2026-01-01T00:40:00+01:00") < hi
    assert not lo <= datetime.fromisoformat("2025-12-31T23:59:59+01:00") < hi


# ---------------------------------------------------------------------------------------------------- readings
def test_same_period_is_the_default_and_cuts_completions_at_the_period_end():
    r = indicators.reading_for(d("P1"), 2026)
    assert (r.name, r.cutoff) == ("same_period", indicators.year_bounds(2026)[1])


def test_duration_indicators_default_to_cohort_with_the_limit_after_the_period():
    r = indicators.reading_for(d("D6"), 2026)
    assert r.name == "cohort"
    # a COT request at 23:00 on 31 December has its 48 hours: completions up to 2 January 23:59:59
    assert r.cutoff == datetime.fromisoformat("2027-01-01T00:00:00+01:00") + timedelta(hours=48)
    assert datetime.fromisoformat("2027-01-01T08:00:00+01:00") < r.cutoff
    r2 = indicators.reading_for(d("R2"), 2026)  # 30 calendar days: an application of 31 December until 30 January
    assert r2.cutoff == datetime.fromisoformat("2027-01-31T00:00:00+01:00")
    # a limit in hours is elapsed time from the period end, whatever it is (36 hours: noon on 2 January)
    d36 = dataclasses.replace(d("D6"), limit=timedelta(hours=36))
    assert indicators.reading_for(d36, 2026).cutoff == datetime.fromisoformat("2027-01-02T12:00:00+01:00")


def test_cohort_with_a_cutoff_counts_completions_up_to_the_end_of_that_day():
    r = indicators.reading_for(d("P1"), 2026, "cohort", date(2027, 3, 31))
    assert r.cutoff == datetime.fromisoformat("2027-04-01T00:00:00+02:00")


def test_a_cutoff_before_the_period_or_without_cohort_names_the_parameter():
    with pytest.raises(Invalid) as e:
        indicators.reading_for(d("P1"), 2026, "cohort", date(2025, 12, 31))
    assert e.value.field == "cutoff"
    with pytest.raises(Invalid) as e:
        indicators.reading_for(d("P1"), 2026, "same_period", date(2027, 1, 31))
    assert e.value.field == "cutoff"
    with pytest.raises(Invalid) as e:
        indicators.reading_for(d("P1"), 2026, "whenever")
    assert e.value.field == "reading"


# ---------------------------------------------------------------------------------------------------- value
def test_value_is_rounded_to_four_decimals_and_null_when_the_denominator_is_zero():
    assert indicators.value_of(2, 3, d("D6")) == Decimal("0.6667")
    assert indicators.value_of(1, 8, d("D6")) == Decimal("0.1250")
    assert indicators.value_of(0, 0, d("D6")) is None
    assert indicators.value_of(7, None, d("CARTELLE")) == Decimal(7)


def test_targets_and_status():
    p4 = d("P4")
    assert [p4.target(y).value for y in (2025, 2026, 2027)] == [0.5, 0.75, 1.0]
    assert p4.target(2026).met(0.75) and not p4.target(2027).met(0.9999)
    assert d("D6").target(2026).met(0.7501) and not d("D6").target(2026).met(0.75)  # "> 75 %"
    assert d("P1").target(2026) is None


# ---------------------------------------------------------------------------------------------------- definitions
def test_every_definition_loads_with_its_italian_title_and_seed_reference():
    reg = definitions.registry()
    assert {"P1", "P2", "P3", "P4", "V1", "D3", "D4", "D5", "D6", "D7", "LEPS-DP", "R1", "R2", "R3",
            "ATTESA-MEDIANA", "ATTESA-P90", "UVMD", "CARTELLE"} <= set(reg)
    for code, defn in reg.items():
        assert defn.title and defn.seed.startswith("L") and defn.reference.startswith("docs/indicators.md"), code
        # brief §6.6: every indicator is stratified by sub-ambito and comune (the FHIR strata rely on it too)
        assert {"sub_ambito", "comune"} <= set(defn.stratifications), code
    anchors = {ln.strip("# ").lower().replace(" ", "-").replace(",", "").replace("(", "").replace(")", "")
               for ln in (definitions.DEFINITIONS_DIR.parents[2] / "docs" / "indicators.md").read_text().splitlines()
               if ln.startswith("#")}
    assert {d.reference.split("#")[1] for d in reg.values()} <= anchors


@pytest.mark.parametrize(("change", "message"), [
    ({"source": "nowhere"}, "unknown source"),
    ({"start_event": "born_at"}, "unknown start_event"),
    ({"numerator": {"label": "x", "where": ["magic"], "event": "first_level_at"}}, "unknown condition"),
    ({"numerator": {"label": "x", "where": []}}, "needs the event"),
    ({"title": ""}, "missing title"),
    ({"targets": {2026: {"op": ">", "value": 75}}}, "between 0 and 1"),
    ({"stratifications": ["area"]}, "stratification not available"),
])
def test_a_wrong_definition_fails_the_load(change, message):
    import yaml

    raw = yaml.safe_load((definitions.DEFINITIONS_DIR / "P1.yaml").read_text())
    raw.update(change)
    with pytest.raises(definitions.DefinitionError, match=message):
        definitions.parse(raw, name="P1.yaml")


# ---------------------------------------------------------------------------------------------------- small cells
def _tree(values: dict) -> list[Equation]:
    """Ambito T = sub-ambiti A + B; A = comuni a1 + a2 + a3; B = b1 + b2; T = areas x + y."""
    return [Equation("T", ("A", "B")), Equation("A", ("a1", "a2", "a3")), Equation("B", ("b1", "b2")),
            Equation("T", ("x", "y"))]


def _recoverable(values: dict, eqs: list[Equation], primary: set, comp: set) -> set:
    """Brute force, as a reader would: every assignment of the hidden cells (primary 1-4, withheld ≥ 5 up to the
    largest total) that satisfies every equation; a hidden cell with one possible value is recovered."""
    hidden = sorted(primary | comp)
    top = max(values.values())
    ranges = [range(1, 5) if h in primary else range(5, top + 1) for h in hidden]
    seen: dict[str, set[int]] = {h: set() for h in hidden}
    for combo in itertools.product(*ranges):
        v = {**values, **dict(zip(hidden, combo, strict=True))}
        if all(v[e.total] == sum(v[m] for m in e.members) for e in eqs):
            for h, x in zip(hidden, combo, strict=True):
                seen[h].add(x)
    return {h for h, xs in seen.items() if len(xs) == 1}


@pytest.mark.parametrize("values", [
    # one small comune: its sub-ambito total would give it away
    {"a1": 3, "a2": 10, "a3": 12, "b1": 20, "b2": 9, "x": 30, "y": 24},
    # two small comuni summing to a known difference (2 = 1 + 1 would be pinned by the bounds)
    {"a1": 1, "a2": 1, "a3": 12, "b1": 20, "b2": 9, "x": 40, "y": 3},
    # a small sub-ambito and a small area
    {"a1": 0, "a2": 2, "a3": 1, "b1": 20, "b2": 9, "x": 31, "y": 1},
    # nothing small
    {"a1": 5, "a2": 6, "a3": 7, "b1": 8, "b2": 9, "x": 20, "y": 15},
])
def test_no_hidden_count_can_be_recovered_from_totals_or_other_cells(values):
    values = dict(values)
    values["A"] = values["a1"] + values["a2"] + values["a3"]
    values["B"] = values["b1"] + values["b2"]
    values["T"] = values["A"] + values["B"]
    assert values["x"] + values["y"] == values["T"]
    eqs = _tree(values)
    primary, comp = suppression.suppress(values, eqs)
    assert primary == {k for k, v in values.items() if 1 <= v <= 4}
    assert _recoverable(values, eqs, primary, comp) == set()
    shown = {k: suppression.shown(v, k, primary, comp) for k, v in values.items()}
    assert all(shown[k] == "<5" for k in primary) and all(shown[k] == "n.d." for k in comp)
    assert all(isinstance(shown[k], int) and (shown[k] == 0 or shown[k] >= 5)
               for k in values if k not in primary | comp)
