"""The import test file generator (deploy/seed/import_file.py): deterministic, in the stated proportions, and its
truth holds by the registry's own rules — every reject row really breaks the named field, every other row passes
the checks, new persons have no look-alike and possible duplicates reach the threshold. Pure: no database.

The look-alike check here has its own copy of pg_trgm's similarity and compares every pair of persons, so it does
not trust the generator's indexes."""
from __future__ import annotations

import csv
import re
import uuid
from collections import Counter
from datetime import UTC, date, datetime
from functools import cache
from types import SimpleNamespace

import pytest
import yaml

from deploy.seed import import_file as gen
from deploy.seed import synthetic
from deploy.seed.demo import DEMO_PERSONS
from deploy.seed.demo import codice_fiscale as demo_cf
from domain.imports.mapping import fold
from domain.kernel.errors import Invalid
from domain.kernel.settings import get_settings
from domain.registry import codice_fiscale as cfmod
from domain.registry import dedup
from domain.territory.reference import REFERENCE_DIR, istat_comune

TODAY = date(2026, 3, 2)
OPERATORS = ["as.ambito.pua", "as.crema", "as.offanengo", "coord.crema"]
N_ROWS = 1500
REGISTRY = 2500
ID_TYPES = {"STP": "stp", "ENI": "eni", "passaporto": "passport", "provvisorio": "provisional"}


@cache
def comuni() -> tuple[tuple[str, str, str], ...]:
    """(ISTAT code, name, Belfiore) of the Ambito's 48 comuni, from the reference file and the ISTAT list."""
    doc = yaml.safe_load((REFERENCE_DIR / "ambiti" / "crema" / "comuni.yaml").read_text(encoding="utf-8"))
    out = []
    for c in doc["comuni"]:
        rec = istat_comune(c["name"], "CR")
        out.append((rec["istat_code"], rec["name"], rec["belfiore_code"]))
    return tuple(out)


@cache
def registry_sample() -> tuple[dict, ...]:
    """Persons as `python -m api seed` makes them (the same generator), plus the demo persons."""
    cs = [synthetic.Comune(uuid.uuid4(), f"comune-{i}", name, belfiore, 1000)
          for i, (_code, name, belfiore) in enumerate(comuni())]
    g = synthetic.Generator(ambito_id=uuid.uuid4(), comuni=cs, seed=7, taken_cf=set(), today=TODAY,
                            now=datetime(2026, 3, 2, 8, tzinfo=UTC))
    rows, _meta = g.persons(REGISTRY)
    sample = [{"id": uuid.UUID(int=i + 1), "codice_fiscale": r[2], "surname": r[3], "given_name": r[4], "sex": r[5],
               "birth_date": r[6], "birth_place_code": r[7]} for i, r in enumerate(rows)]
    for i, p in enumerate(DEMO_PERSONS):
        code = demo_cf(p)
        sample.append({"id": uuid.UUID(int=10_000_000 + i), "codice_fiscale": code, "surname": p["surname"],
                       "given_name": p["given_name"], "sex": p["sex"], "birth_date": p["birth_date"],
                       "birth_place_code": cfmod.decode(code, birth_date=p["birth_date"]).birth_place_code})
    return tuple(sample)


def make(n: int = N_ROWS, seed: int = 42):
    return gen.generate(n, registry_sample=list(registry_sample()), comuni=[(c, n_) for c, n_, _b in comuni()],
                        operators=OPERATORS, seed=seed, today=TODAY)


@pytest.fixture(scope="module")
def generated():
    return make()


def parse_date(value: str) -> date:
    for fmt in ("%d/%m/%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            pass
    raise AssertionError(f"data non leggibile: {value!r}")


def comune_known(value: str) -> bool:
    codes = {c for c, _n, _b in comuni()}
    names = {fold(n) for _c, n, _b in comuni()}
    return value in codes or fold(value) in names


# ---------------------------------------------------------------- a pg_trgm of our own
def trgm(text: str) -> set[str]:
    out: set[str] = set()
    for word in re.findall(r"[^\W_]+", text.lower()):
        padded = "  " + word + " "
        out |= {padded[i:i + 3] for i in range(len(padded) - 2)}
    return out


def trgm_similarity(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


# ---------------------------------------------------------------- determinism and shape
def test_deterministic():
    assert make(400, seed=5) == make(400, seed=5)
    assert make(400, seed=5)[0] != make(400, seed=6)[0]


def test_clean_only_and_taken_identifiers():
    sample = [*registry_sample(), {"id": uuid.UUID(int=99), "codice_fiscale": None, "surname": "Popescu",
                                   "given_name": "Ioana", "sex": "F", "birth_date": date(1990, 6, 1),
                                   "birth_place_code": "Z129", "other_identifier": "STP0303219000001"}]
    rows, truth = gen.generate(300, registry_sample=sample, comuni=[(c, n) for c, n, _b in comuni()],
                               operators=OPERATORS, seed=3, today=TODAY, shares={}, id_prefix="BC")
    assert {t["outcome"] for t in truth} == {"create"} and {t["kind"] for t in truth} == {"clean"}
    assert all(r["id_origine"].startswith("BC") and r["area"] for r in rows)
    assert "STP0303219000001" not in {r["identificativo"] for r in rows}
    assert any(r["identificativo"] for r in rows)


def test_rows_and_truth_shape(generated):
    rows, truth = generated
    assert len(rows) == len(truth) == N_ROWS
    assert all(tuple(r) == gen.HEADERS for r in rows)
    assert [t["row"] for t in truth] == list(range(1, N_ROWS + 1))
    assert len({r["id_origine"] for r in rows}) == N_ROWS
    assert all(t["id_origine"] == r["id_origine"] for r, t in zip(rows, truth, strict=True))
    assert {t["outcome"] for t in truth} == {"create", "match", "possible_match", "reject"}
    by_id = {r["id_origine"]: i + 1 for i, r in enumerate(rows)}
    for r, t in zip(rows, truth, strict=True):
        if r["relazione_di"] and t["kind"] != "unknown_relation":
            target = by_id[r["relazione_di"]]
            assert target < t["row"] and not rows[target - 1]["relazione_di"]  # an assisted row, earlier
            assert truth[target - 1]["outcome"] == "create"
        if not r["relazione_di"]:
            assert r["codice_cartella"] and r["case_manager"]  # every assisted row opens a cartella
    # dates mixed dd/mm/yyyy and ISO
    styles = Counter("iso" if "-" in r["data_nascita"] else "it" for r in rows if r["data_nascita"])
    assert styles["iso"] > 0.2 * N_ROWS and styles["it"] > 0.6 * N_ROWS


def test_proportions(generated):
    rows, truth = generated
    kinds = Counter(t["kind"] for t in truth)
    share = {k: v / N_ROWS for k, v in kinds.items()}
    assert 0.68 <= share["clean"] + share["missing_area"] + share.get("family_minor", 0) <= 0.78
    for kind, expected in (("registry_match", 0.08), ("row_match", 0.04), ("missing_area", 0.03),
                           ("unknown_comune", 0.02)):
        assert share[kind] == pytest.approx(expected, abs=0.004), kind
    assert share["possible_dup_registry"] + share["possible_dup_row"] == pytest.approx(0.04, abs=0.004)
    assert share["omocode_new"] + share["omocode_twin"] == pytest.approx(0.01, abs=0.003)
    invalid_cf = sum(share[k] for k in ("cf_checksum", "cf_omocodia_letter", "cf_mismatch"))
    assert invalid_cf == pytest.approx(0.03, abs=0.004)
    for kind in ("future_birth", "unknown_case_manager", "family_minor", "family_parent", "ads", "ads_no_decree",
                 "caregiver_name_only", "unknown_relation", "omocode_twin"):
        assert kinds[kind] >= 1, kind
    assert kinds["family_parent"] == 2 * kinds["family_minor"]
    outcomes = Counter(t["outcome"] for t in truth)
    assert outcomes["reject"] / N_ROWS == pytest.approx(0.06, abs=0.01)
    assert sum(1 for r in rows if r["area"] == "" and not r["relazione_di"]) == kinds["missing_area"]


# ---------------------------------------------------------------- validity by the registry's own checks
def cf_error(r: dict) -> Invalid | None:
    try:
        cfmod.check(r["codice_fiscale"], birth_date=parse_date(r["data_nascita"]), sex=r["sesso"] or None,
                    birth_place_code=r["luogo_nascita"] or None, today=TODAY)
    except Invalid as e:
        return e
    return None


def test_reject_rows_break_the_named_field_only(generated):
    rows, truth = generated
    ids = {r["id_origine"] for r in rows}
    registry_field = {"codice_fiscale": "codice_fiscale", "data_nascita": "birth_date", "sesso": "sex"}
    for r, t in zip(rows, truth, strict=True):
        if t["outcome"] != "reject":
            continue
        f, kind = t["reject_field"], t["kind"]
        assert f in gen.HEADERS
        if kind.startswith("cf_"):
            e = cf_error(r)
            assert e is not None and {x["field"] for x in e.errors} == {registry_field[f]}, (r, e)
        else:
            assert cf_error(r) is None if r["codice_fiscale"] else r["identificativo"]
        if f == "comune_residenza":
            assert not comune_known(r["comune_residenza"])
        else:
            assert comune_known(r["comune_residenza"]) or r["relazione_di"]
        if kind == "future_birth":
            assert f == "data_nascita" and parse_date(r["data_nascita"]) > TODAY and not r["codice_fiscale"]
        else:
            assert parse_date(r["data_nascita"]) <= TODAY
        if f == "case_manager":
            assert r["case_manager"] and r["case_manager"] not in OPERATORS
        if f == "decreto":
            assert r["tipo_relazione"] == "amministratore di sostegno" and not r["decreto"]
        if f == "relazione_di":
            assert r["relazione_di"] not in ids
    fields = Counter(t["reject_field"] for t in truth if t["kind"] == "cf_mismatch")
    assert fields["data_nascita"] > 0 and fields["sesso"] > 0


def test_other_rows_pass_every_check(generated):
    rows, truth = generated
    for r, t in zip(rows, truth, strict=True):
        if t["outcome"] == "reject":
            continue
        if r["codice_fiscale"]:
            assert cf_error(r) is None, (r, cf_error(r))
        elif r["identificativo"]:
            cfmod.check_other_identifier(ID_TYPES[r["tipo_identificativo"]], r["identificativo"])
        else:
            assert t["kind"] == "caregiver_name_only"  # a name-only relation: no person is registered
        if r["data_nascita"]:
            assert parse_date(r["data_nascita"]) <= TODAY
        if not r["relazione_di"]:
            assert comune_known(r["comune_residenza"]) and comune_known(r["comune_titolare"])
            assert r["case_manager"] in OPERATORS
            assert parse_date(r["data_nascita"]) <= parse_date(r["data_apertura"]) < TODAY
            assert fold(r["area"]) in {fold(v) for v in gen.AREA_LABELS.values()} | {""}
        if r["tipo_relazione"] == "amministratore di sostegno":
            scopes = r["ambito_decreto"].split("|")
            assert r["decreto"] and r["tribunale"] and "cura e salute" in scopes and "assistenza" not in scopes
        if t["kind"] == "family_parent":
            assert r["tipo_relazione"] == "genitore" and r["codice_fiscale"]


def test_matches_name_the_same_identifier(generated):
    rows, truth = generated
    by_id = {str(p["id"]): p for p in registry_sample()}
    registry_cf = {p["codice_fiscale"] for p in registry_sample()}
    for r, t in zip(rows, truth, strict=True):
        if t["outcome"] != "match":
            if r["codice_fiscale"] and t["outcome"] != "reject":
                assert cfmod.normalize(r["codice_fiscale"]) not in registry_cf  # else it would be a match
            continue
        if t["same_as_person_id"]:
            assert cfmod.normalize(r["codice_fiscale"]) == by_id[t["same_as_person_id"]]["codice_fiscale"]
        else:
            earlier = rows[t["same_as_row"] - 1]
            assert t["same_as_row"] < t["row"] and truth[t["same_as_row"] - 1]["outcome"] == "create"
            assert earlier["codice_fiscale"] == r["codice_fiscale"]
            assert (earlier["cognome"], earlier["nome"]) != (r["cognome"], r["nome"])  # a typo
    # each identifier registers one person: the first row with it, never a later one
    first: dict[str, int] = {}
    for r, t in zip(rows, truth, strict=True):
        key = cfmod.normalize(r["codice_fiscale"]) or r["identificativo"]
        if key and t["outcome"] in ("create", "possible_match"):
            assert key not in first, (key, first.get(key), t["row"])
            first[key] = t["row"]


def test_omocodes(generated):
    rows, truth = generated
    by_id = {str(p["id"]): p for p in registry_sample()}
    for r, t in zip(rows, truth, strict=True):
        if t["kind"] == "omocode_new":
            assert t["outcome"] == "create" and cfmod.is_omocode(r["codice_fiscale"])
        if t["kind"] == "omocode_twin":
            p = by_id[t["candidate_person_id"]]
            assert cfmod.is_omocode(r["codice_fiscale"]) and r["codice_fiscale"] != p["codice_fiscale"]
            assert cfmod.base_code(r["codice_fiscale"]) == p["codice_fiscale"]


# ---------------------------------------------------------------- look-alikes, every pair
def persons_registered(rows, truth):
    """(ref, probe) of every row that registers a person (identifier, not rejected), in file order."""
    out = []
    for r, t in zip(rows, truth, strict=True):
        if t["outcome"] not in ("create", "possible_match") or not (r["codice_fiscale"] or r["identificativo"]):
            continue
        out.append((("row", t["row"]), dedup.Probe(
            surname=r["cognome"].strip(), given_name=r["nome"].strip(), birth_date=parse_date(r["data_nascita"]),
            sex=r["sesso"], birth_place_code=r["luogo_nascita"],
            codice_fiscale=cfmod.normalize(r["codice_fiscale"]) or None)))
    return out


def test_lookalikes_by_brute_force(generated):
    rows, truth = generated
    s = get_settings()
    threshold, floor = s.dedup_candidate_threshold, s.dedup_name_similarity_floor
    registry = [(("person", str(p["id"])), dedup.Probe(
        surname=p["surname"], given_name=p["given_name"], birth_date=p["birth_date"], sex=p["sex"],
        birth_place_code=p["birth_place_code"], codice_fiscale=p["codice_fiscale"])) for p in registry_sample()]
    file_persons = persons_registered(rows, truth)
    everyone = [(ref, probe, trgm(f"{probe.surname} {probe.given_name}"), SimpleNamespace(**probe.__dict__))
                for ref, probe in registry + file_persons]
    truth_of = {("row", t["row"]): t for t in truth}
    checked = Counter()
    for ref, probe, tset, _ns in everyone[len(registry):]:
        t = truth_of[ref]
        best: dict[tuple, tuple[float, float]] = {}
        for other_ref, other, other_set, other_ns in everyone:
            if other_ref == ref or (probe.codice_fiscale and probe.codice_fiscale == other.codice_fiscale):
                continue
            sim = trgm_similarity(tset, other_set)
            if sim < floor - 0.05:  # below the floor the import never fetches the pair
                continue
            value, _ = dedup.score(probe, other_ns, sim)
            if sim >= floor - 0.05 and value >= threshold - 0.05:  # with the generator's safety margin
                best[other_ref] = (value, sim)
        if t["outcome"] == "create":
            # a new person is nobody's look-alike, in the file or the registry, but for the later rows that the
            # truth names as its possible duplicates (they are the look-alikes, when their turn comes)
            assert all(truth_of[r_]["candidate_row"] == t["row"] for r_ in best), (t, best)
        else:
            intended = ("person", t["candidate_person_id"]) if t["candidate_person_id"] else \
                ("row", t["candidate_row"])
            assert list(best) == [intended], (t, best)
            value, sim = best[intended]
            assert value >= 0.6 and sim >= floor + 0.1
            if t["kind"] == "omocode_twin":
                assert value == pytest.approx(0.6)  # 0.6 × a perfect score: the codes differ
            else:
                assert not probe.codice_fiscale and probe.birth_date == next(
                    p.birth_date for r_, p, _s, _n in everyone if r_ == intended)
        checked[t["outcome"]] += 1
    assert checked["create"] > 0.7 * N_ROWS and checked["possible_match"] >= 0.04 * N_ROWS


# ---------------------------------------------------------------- writers
def test_csv_cp1252_round_trip(generated, tmp_path):
    rows, truth = generated
    path = tmp_path / "persone.csv"
    gen.write_csv(rows, path)
    raw = path.read_bytes()
    assert "ò".encode("cp1252") in raw or "à".encode("cp1252") in raw
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # really Windows-1252, not UTF-8
    with open(path, encoding="cp1252", newline="") as f:
        back = list(csv.DictReader(f, delimiter=";"))
    assert back == rows
    assert "Niccolò" in raw.decode("cp1252") or "Nicolò" in raw.decode("cp1252")
    gen.write_truth(truth, tmp_path / "verita.csv")
    again = gen.read_truth(tmp_path / "verita.csv")
    assert [{k: str(v) for k, v in t.items()} for t in truth] == [{k: str(v) for k, v in t.items()} for t in again]


def test_xlsx_round_trip(generated, tmp_path):
    from openpyxl import load_workbook

    rows, _ = generated
    path = tmp_path / "persone.xlsx"
    gen.write_xlsx(rows[:300], path)
    ws = load_workbook(path, read_only=True).active
    width = len(gen.HEADERS)  # read-only sheets drop trailing empty cells
    table = [(["" if v is None else v for v in row] + [""] * width)[:width] for row in ws.iter_rows(values_only=True)]
    assert tuple(table[0]) == gen.HEADERS
    back = [dict(zip(gen.HEADERS, r, strict=True)) for r in table[1:]]
    assert back == rows[:300]
    assert any(r["comune_residenza"].startswith("0") for r in back)  # ISTAT codes keep their leading zero


def test_agrees():
    t = {"outcome": "possible_match", "same_as_person_id": "", "same_as_row": "", "candidate_person_id": "",
         "candidate_row": 12, "reject_field": ""}
    assert gen.agrees(t, {"outcome": "possible_match", "candidate_rows": [3, 12], "candidate_person_ids": []})
    assert not gen.agrees(t, {"outcome": "possible_match", "candidate_rows": [3], "candidate_person_ids": []})
    assert not gen.agrees(t, {"outcome": "create"})
    reject = {**t, "outcome": "reject", "reject_field": "data_nascita"}
    assert gen.agrees(reject, {"outcome": "reject", "errors": [{"field": "data_nascita", "reason": "x"}]})
    assert not gen.agrees(reject, {"outcome": "reject", "errors": [{"field": "codice_fiscale", "reason": "x"}]})
    pid = uuid.uuid4()
    match = {**t, "outcome": "match", "same_as_person_id": str(pid)}
    assert gen.agrees(match, {"outcome": "match", "person_id": pid})
    assert gen.agrees({**t, "outcome": "match", "same_as_row": 4}, {"outcome": "match", "matched_row": 4})
