"""A file to import from the Ambito's older platform, with realistic mess, and the truth for every row:
`python -m deploy.seed.import_file --rows 30000 --out FILE.csv --truth TRUTH.csv [--xlsx] [--seed 42]`.

The file follows the reference template (domain/imports/template.yaml: Italian headers, one row per person, a row
with `relazione_di` is a related person of the row it names). The truth says, for every row, what a correct import
does with it: `create`, `match` (the registry person or the earlier row it is), `possible_match` (the look-alike it
must be queued beside, never merged) or `reject` (the field that is wrong).

What makes the truth trustworthy is that every row is checked here with the registry's own rules before it is
written: codici fiscali with domain.registry.codice_fiscale, look-alikes with domain.registry.dedup.score over a
Python copy of pg_trgm's similarity (`trigrams`, `similarity`). A "new" row is kept only if it is, with a margin,
no look-alike of any registry person nor of any other row that registers a person; a "possible duplicate" row only
if its one look-alike is the intended one, with a margin. Rows that fail are redrawn, so proportions hold.

Truth decisions (what the import must do, and why):
- omocode variant of a new person (its base code is nowhere): `create`;
- omocode twin: a person with the very same name, sex, birth date and birthplace as a registry person P, whose code
  is an omocode variant of P's (how omocodia arises): no identifier match (the codes differ), and the de-duplication
  score is 0.6 × 1.0 = 0.6 (different codici fiscali) ≥ the 0.55 threshold: `possible_match` with P;
- a valid codice fiscale whose birth date or sex disagrees with `data_nascita` / `sesso`: `reject` on
  `data_nascita` / `sesso`, the field the registry's check (codice_fiscale.check) names; a bad check character or
  a letter omocodia never uses: `reject` on `codice_fiscale`;
- a related person without any identifier (a caregiver known by name only): `create` (the relation only, no
  person, no look-alike search);
- a future birth date is given without a codice fiscale (a provisional identifier), so `data_nascita` is the only
  wrong field.
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import random
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from deploy.seed.synthetic import COUNTRIES, FICTITIOUS_ADDRESS, ITALIAN_BIRTHPLACES, STREETS, encode_cf
from domain.registry import codice_fiscale as cfmod
from domain.registry import dedup

HEADERS = (
    "id_origine", "codice_fiscale", "tipo_identificativo", "identificativo", "cognome", "nome", "sesso",
    "data_nascita", "luogo_nascita", "cittadinanza", "comune_residenza", "indirizzo_residenza", "comune_domicilio",
    "indirizzo_domicilio", "senza_dimora", "telefono", "email", "area", "codice_cartella", "comune_titolare",
    "case_manager", "data_apertura", "relazione_di", "tipo_relazione", "decreto", "tribunale", "ambito_decreto",
    "caregiver_unico", "convivente",
)
TRUTH_FIELDS = ("row", "id_origine", "outcome", "same_as_person_id", "same_as_row", "candidate_person_id",
                "candidate_row", "reject_field", "kind")

# Share of rows per kind (the rest are clean new persons with a cartella). Units of several rows (a minor with two
# parents, an adult with an AdS) count their rows.
SHARES: dict[str, float] = {
    "registry_match": 0.08,       # exact CF of a registry person; sometimes a name typo, other case, spaces
    "row_match": 0.04,            # exact CF of an earlier row, a name typo
    "possible_dup_registry": 0.02,  # 1-letter surname typo of a registry person, no CF: STP or provisional id
    "possible_dup_row": 0.02,     # the same of an earlier row
    "omocode_new": 0.008,         # valid omocode variant, new person
    "omocode_twin": 0.002,        # omocode variant of a registry person's code, same name and birth data
    "cf_checksum": 0.01,          # wrong check character
    "cf_omocodia_letter": 0.01,   # a letter that omocodia never uses (O for 0, A...)
    "cf_mismatch": 0.01,          # valid code, its birth date or sex disagrees: reject data_nascita / sesso
    "unknown_comune": 0.02,       # garbage comune_residenza
    "missing_area": 0.03,         # area empty: created with area non_noto
    "future_birth": 0.003,        # birth date in the future
    "unknown_case_manager": 0.003,
    "family": 0.015,              # a minor and two parents (3 rows)
    "ads": 0.01,                  # an adult and their amministratore di sostegno with a decree (2 rows)
    "ads_no_decree": 0.002,       # the same, the decree missing: the AdS row is rejected (2 rows)
    "caregiver_name_only": 0.01,  # an older person and a caregiver known by name only (2 rows)
    "unknown_relation": 0.001,    # a related person naming an id_origine that is not in the file
}
UNIT_ROWS = {"family": 3, "ads": 2, "ads_no_decree": 2, "caregiver_name_only": 2}
DEPENDENT_KINDS = ("row_match", "possible_dup_row")

# Area: the template's label and the share of open cartelle (synthetic seed, GeCaS 2023) without `non_noto`.
AREA_LABELS = {
    "anziani": "anziani", "minori_famiglia": "minori e famiglia", "disabili": "disabili",
    "emarginazione_poverta": "emarginazione e povertà", "dipendenze_salute_mentale": "dipendenze e salute mentale",
    "immigrazione": "immigrazione", "servizi_sociali": "servizi sociali",
}
AREA_WEIGHTS = {"anziani": 9_652, "minori_famiglia": 10_964, "disabili": 3_270, "emarginazione_poverta": 2_787,
                "servizi_sociali": 969, "dipendenze_salute_mentale": 350, "immigrazione": 92}
AREA_AGES = {"anziani": (65, 99), "minori_famiglia": (0, 17), "disabili": (3, 85), "emarginazione_poverta": (19, 72),
             "servizi_sociali": (18, 88), "dipendenze_salute_mentale": (19, 68), "immigrazione": (18, 60)}

# Surnames of new persons: Lombard-sounding stems and endings that Faker's Italian list does not use, so that a new
# person is nobody's look-alike (checked anyway, row by row).
_STEMS = ("Abbond", "Alghis", "Bagnar", "Benzon", "Bettol", "Bognan", "Brusad", "Cabrin", "Carniz", "Cervigh",
          "Chiodar", "Crottog", "Dagrad", "Dossen", "Fasolin", "Ferrand", "Folcher", "Gandin", "Garbell", "Ghidott",
          "Guarnesch", "Lamberg", "Madern", "Mombell", "Nervett", "Oldrin", "Pagazz", "Pedrin", "Quadrell",
          "Rampold", "Sbardell", "Scotugn", "Tagliafer", "Tironzell", "Ubertazz", "Vezzold", "Zambell", "Zucchell",
          "Gorlan", "Pozzabon", "Strepp", "Vailagh", "Soncinagh", "Marzocch", "Bressanin", "Cazzamal")
_ENDINGS = ("agnoli", "arezzi", "ellotti", "erini", "iboni", "icchio", "ignani", "inzoni", "olazzi", "onchelli",
            "ossetti", "ucchini", "ugatti", "urelli", "uzzoni", "avalli", "escotti", "ialdi", "occari", "ombelli",
            "anderi", "oletti", "ispoli", "ugaldi")
_ACCENTED_NAMES_M = ("Niccolò", "Nicolò", "Giosuè", "Mosè", "Noè")
_ACCENTED_NAMES_F = ("Zoè", "Noemì", "Rosalìa")
_GARBAGE_COMUNI = ("Borgo Fantasma", "Paperopoli", "Topolinia", "Vattelapesca", "Cremasco Superiore", "XXXXX",
                   "Comune di Prova", "999999", "Non noto", "Località sconosciuta", "Crema Nord-Est Inesistente",
                   "Forlì del Sannio Nuovo")
_UNKNOWN_OPERATORS = ("operatore.cessato", "as.vecchio.gestionale", "m.rossi.2009", "utente.sconosciuto",
                      "tirocinante.01", "ex.assistente")
_BAD_OMOCODIA = "AOBZEIK"  # O for 0 is the typo a desk makes; the others are letters omocodia never uses
_OMOCODIA_LETTERS = "LMNPQRSTUV"
_STREETS = (*STREETS, "Via Forlì", "Piazza Libertà", "Via Niccolò Tommaseo", "Via Carlo Urbino")
_COURTS = ("Tribunale di Cremona", "Tribunale di Cremona - Ufficio del Giudice Tutelare", "Tribunale di Lodi",
           "Tribunale di Bergamo")
# "assistenza" (the person decides, the AdS beside them) excludes representation: never beside "cura e salute".
_DECREE_SCOPES = ("cura e salute", "cura e salute", "cura e salute|patrimoniale")
_CRADLE = ("D142", "Crema")  # where the hospital is: most of the Ambito's people were born there
_FAR_PLACES = (("D704", "Forlì"), *((c, n) for c, n, _w in ITALIAN_BIRTHPLACES))


# ---------------------------------------------------------------- look-alikes (pg_trgm copy + registry score)
_WORD = re.compile(r"[^\W_]+")


def trigrams(text: str) -> frozenset[str]:
    """pg_trgm's trigrams: lower case, words of letters and digits, each padded with two spaces before and one
    after."""
    out: set[str] = set()
    for w in _WORD.findall(text.lower()):
        out |= _word_trigrams(w)
    return frozenset(out)


@lru_cache(maxsize=200_000)
def _word_trigrams(word: str) -> frozenset[str]:
    padded = f"  {word} "
    return frozenset(padded[i:i + 3] for i in range(len(padded) - 2))


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """pg_trgm `similarity`: shared trigrams over all trigrams of the two."""
    if not a or not b:
        return 0.0
    shared = len(a & b)
    return shared / (len(a) + len(b) - shared)


def name_trigrams(surname: str, given_name: str) -> frozenset[str]:
    return trigrams(f"{surname} {given_name}")  # the registry's name_search: lower(surname || ' ' || given_name)


@dataclass
class _Entry:
    ref: tuple[str, Any]        # ("person", id) or ("row", row number)
    probe: dedup.Probe
    tset: frozenset[str]


@dataclass
class LookalikePool:
    """Persons the de-duplication would compare a new one with, indexed so that a check reads only the entries
    that can reach the threshold: different codici fiscali cap the score at 0.6 × (0.4·name + 0.4·birth + 0.2),
    so two persons with codes are look-alikes only when born on the same day (or day and month swapped); another
    birth year leaves 0.4·name + 0.2, which needs an almost identical name (found through its rarest trigrams);
    within the birth year, only names sharing at least floor × |trigrams| trigrams can reach the floor."""

    threshold: float
    floor: float
    entries: list[_Entry] = field(default_factory=list)
    cf_by_date: dict[date, list[int]] = field(default_factory=dict)
    year_postings: dict[int, dict[str, list[int]]] = field(default_factory=dict)  # every entry of the year
    nocf_year_postings: dict[int, dict[str, list[int]]] = field(default_factory=dict)
    no_birth: list[int] = field(default_factory=list)
    postings: dict[str, list[int]] = field(default_factory=dict)
    nocf_postings: dict[str, list[int]] = field(default_factory=dict)

    def add(self, ref: tuple[str, Any], probe: dedup.Probe) -> None:
        i = len(self.entries)
        tset = name_trigrams(probe.surname, probe.given_name)
        self.entries.append(_Entry(ref, probe, tset))
        has_cf = bool(probe.codice_fiscale)
        indexes = [self.postings] + ([] if has_cf else [self.nocf_postings])
        if probe.birth_date is None:
            self.no_birth.append(i)
        else:
            y = probe.birth_date.year
            indexes.append(self.year_postings.setdefault(y, {}))
            if has_cf:
                self.cf_by_date.setdefault(probe.birth_date, []).append(i)
            else:
                indexes.append(self.nocf_year_postings.setdefault(y, {}))
        for index in indexes:
            for t in tset:
                index.setdefault(t, []).append(i)

    @staticmethod
    def _rarest(tset: frozenset[str], postings: dict[str, list[int]], min_sim: float) -> list[int]:
        # Prefix filter: a name with similarity ≥ min_sim holds all but m = ⌊(1 - min_sim)·|A|⌋ of A's trigrams,
        # so it holds at least k - m of any k of them: counted over A's rarest k = m + 3.
        m = int((1.0 - min_sim) * len(tset))
        k = min(len(tset), m + 3)
        rare = sorted(tset, key=lambda t: (len(postings.get(t, ())), t))[:k]
        counts: Counter[int] = Counter()
        for t in rare:
            counts.update(postings.get(t, ()))
        return [i for i, c in counts.items() if c >= k - m]

    @staticmethod
    def _sharing(tset: frozenset[str], postings: dict[str, list[int]] | None, min_sim: float) -> list[int]:
        # similarity = c / (|A| + |B| - c) ≥ min_sim needs c ≥ min_sim·|A| shared trigrams (|B| ≥ c)
        if not postings:
            return []
        counts: Counter[int] = Counter()
        for t in tset:
            counts.update(postings.get(t, ()))
        need = min_sim * len(tset) - 1e-9
        return [i for i, c in counts.items() if c >= need]

    def lookalikes(self, probe: dedup.Probe, *, margin: float = 0.0,
                   exclude: Sequence[tuple[str, Any]] = ()) -> list[tuple[tuple[str, Any], float, float]]:
        """(ref, score, name similarity) of every entry the import's de-duplication would list for `probe`, widened
        by `margin` on both the threshold and the name-similarity floor. Entries with the same codice fiscale are
        identifier matches, not look-alikes: skipped."""
        th, fl = self.threshold - margin, self.floor - margin
        other_year = max(fl, (th - dedup.W_SEX - dedup.W_PLACE) / dedup.W_NAME)
        assert dedup.CF_DIFFERENT_FACTOR * (dedup.W_NAME + 0.5 * dedup.W_BIRTH + dedup.W_SEX + dedup.W_PLACE) < th
        tset = name_trigrams(probe.surname, probe.given_name)
        cand: set[int] = set(self.no_birth)
        born = probe.birth_date
        if born is None:
            cand.update(range(len(self.entries)))
        elif probe.codice_fiscale:
            cand.update(self.cf_by_date.get(born, ()))
            if born.day <= 12 and born.day != born.month:
                cand.update(self.cf_by_date.get(date(born.year, born.day, born.month), ()))
            cand.update(self._sharing(tset, self.nocf_year_postings.get(born.year), fl))
            cand.update(self._rarest(tset, self.nocf_postings, other_year))
        else:
            cand.update(self._sharing(tset, self.year_postings.get(born.year), fl))
            cand.update(self._rarest(tset, self.postings, other_year))
        out = []
        for i in sorted(cand):
            e = self.entries[i]
            if e.ref in exclude:
                continue
            if probe.codice_fiscale and e.probe.codice_fiscale == probe.codice_fiscale:
                continue
            sim = similarity(tset, e.tset)
            if sim < fl:
                continue
            value, _ = dedup.score(probe, e.probe, sim)
            if value >= th:
                out.append((e.ref, value, sim))
        return out


def _valid(y: int, m: int, d: int) -> bool:
    try:
        date(y, m, d)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------- helpers
def omocode_variant(code: str, digits: int = 1) -> str:
    """The code with its last `digits` omocodia positions (right to left) turned into their letters, check character
    recomputed: what the Agenzia delle Entrate issues to the second person with the same base code."""
    chars = list(code[:15])
    for pos in reversed(cfmod._OMOCODIA_POSITIONS[-digits:]):
        chars[pos] = _OMOCODIA_LETTERS[int(chars[pos])]
    body = "".join(chars)
    return body + _check_char(body)


def _check_char(body15: str) -> str:
    from stdnum.it import codicefiscale as stdnum_cf

    return stdnum_cf.calc_check_digit(body15)


def typo(rng: random.Random, s: str) -> str:
    """One letter wrong inside a word: dropped, doubled or replaced (never the first letter)."""
    letters = [i for i, c in enumerate(s) if c.isalpha() and i > 0 and s[i - 1].isalpha()]
    if not letters:
        return s + "a"
    for _ in range(20):
        i = rng.choice(letters)
        kind = rng.randrange(3)
        if kind == 0:
            out = s[:i] + s[i + 1:]
        elif kind == 1:
            out = s[:i] + s[i] + s[i:]
        else:
            repl = rng.choice([c for c in "aeiourlntscm" if c != s[i].lower()])
            out = s[:i] + (repl.upper() if s[i].isupper() else repl) + s[i + 1:]
        if out != s:
            return out
    return s + "a"


def _citizenship(place: str) -> str:
    """Citizenship as the old platform wrote it: the country of birth for the foreign-born (a guess the steward may
    correct; it plays no part in de-duplication)."""
    if place.startswith("Z"):
        return next((c[1] for c in COUNTRIES if c[0] == place), "")
    return "Italia"


def _cp1252_ok(*values: str | None) -> bool:
    try:
        for v in values:
            (v or "").encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


@dataclass
class _Person:
    surname: str
    given_name: str
    sex: str
    birth: date
    place: str
    citizenship: str
    cf: str | None = None
    id_type: str = ""       # the template's label: STP, ENI, passaporto, provvisorio
    identifier: str = ""

    def probe(self) -> dedup.Probe:
        return dedup.Probe(surname=self.surname, given_name=self.given_name, birth_date=self.birth, sex=self.sex,
                           birth_place_code=self.place, codice_fiscale=self.cf)


# ---------------------------------------------------------------- the generator
class _Generator:
    def __init__(self, *, registry_sample: list[dict[str, Any]], comuni: list[tuple[str, str]],
                 operators: list[str], seed: int, today: date, threshold: float, floor: float,
                 id_prefix: str = "SC"):
        from faker.providers.person.it_IT import Provider

        if not comuni:
            raise ValueError("servono i comuni dell'Ambito")
        if not operators:
            raise ValueError("serve almeno un operatore (case manager)")
        self.rng = random.Random(seed)
        self.today = today
        self.comuni = sorted(comuni)
        self.operators = sorted(operators)
        known = {c for c, _ in comuni} | {n.lower() for _, n in comuni}
        self.garbage_comuni = [g for g in _GARBAGE_COMUNI if g.lower() not in known]
        self.unknown_operators = [u for u in _UNKNOWN_OPERATORS if u not in set(operators)]
        self.male = sorted(set(Provider.first_names_male))
        self.female = sorted(set(Provider.first_names_female))
        self.surnames = sorted({s + e for s in _STEMS for e in _ENDINGS})
        self.pool = LookalikePool(threshold=threshold, floor=floor)
        self.taken_cf: set[str] = set()
        self.taken_ids: set[str] = {str(p["other_identifier"]).upper() for p in registry_sample
                                    if p.get("other_identifier")}
        self.id_prefix = id_prefix
        self.taken_base: set[str] = set()
        self.registry: list[dict[str, Any]] = []
        for p in sorted(registry_sample, key=lambda r: str(r["id"])):
            cf = cfmod.normalize(p["codice_fiscale"]) if p.get("codice_fiscale") else None
            probe = dedup.Probe(surname=p["surname"], given_name=p["given_name"], birth_date=p.get("birth_date"),
                                sex=p.get("sex"), birth_place_code=p.get("birth_place_code"), codice_fiscale=cf)
            self.pool.add(("person", p["id"]), probe)
            if cf:
                self.taken_cf.add(cf)
                self.taken_base.add(cfmod.base_code(cf) if cfmod.is_omocode(cf) else cf)
            if (cf and p.get("birth_date") and p.get("sex") in ("M", "F") and p.get("birth_place_code")
                    and _cp1252_ok(p["surname"], p["given_name"]) and not cfmod.is_omocode(cf)):
                self.registry.append({**p, "codice_fiscale": cf})
        self.rng.shuffle(self.registry)  # drawn from the end, each registry person used once
        self.rows: list[dict[str, str]] = []
        self.truth: list[dict[str, Any]] = []
        self.referents: list[tuple[int, _Person, str]] = []  # (row, person, area) of created assisted rows with a CF
        self.seq = 0
        self.id_seq = 0
        self.file_id_origine: set[str] = set()

    # ------------------------------------------------------------ values
    def _date(self, d: date) -> str:
        return d.strftime("%d/%m/%Y") if self.rng.random() < 0.7 else d.isoformat()

    def _comune(self) -> tuple[str, str]:
        return self.comuni[self.rng.randrange(len(self.comuni))]

    def _comune_text(self, c: tuple[str, str]) -> str:
        u = self.rng.random()
        if u < 0.45:
            return c[0]
        if u < 0.55:
            return c[1].upper()
        return c[1]

    def _birth(self, lo: int, hi: int) -> date:
        age = self.rng.randint(lo, hi)
        return self.today - timedelta(days=int(age * 365.25) + self.rng.randrange(1, 365))

    def _next_id_origine(self) -> str:
        self.seq += 1
        return f"{self.id_prefix}{self.seq:07d}"

    def _other_identifier(self, kind: str) -> tuple[str, str]:
        while True:  # skipping the identifiers the registry holds (an earlier import's, for one)
            self.id_seq += 1
            n = 9_000_000 + self.id_seq
            if kind == "STP":
                value = f"STP030321{n:07d}"
            elif kind == "ENI":
                value = f"ENI030321{n:07d}"
            elif kind == "passaporto":
                value = f"YA{n:07d}"
            else:
                kind, value = "provvisorio", f"IMP-{self.today.year}-{self.id_seq:06d}"
            if value not in self.taken_ids:
                self.taken_ids.add(value)
                return kind, value

    def _name(self, sex: str) -> str:
        if self.rng.random() < 0.03:
            return self.rng.choice(_ACCENTED_NAMES_M if sex == "M" else _ACCENTED_NAMES_F)
        return self.rng.choice(self.male if sex == "M" else self.female)

    def _new_person(self, *, lo: int, hi: int, sex: str | None = None, surname: str | None = None,
                    foreign: bool | None = None, cf: bool = True, id_kind: str | None = None,
                    register: bool = True) -> _Person:
        """A person nobody in the registry or the file looks like (with a margin), with a fresh codice fiscale or
        another identifier; redrawn until so."""
        rng = self.rng
        for attempt in range(200):
            sx = sex or ("F" if rng.random() < 0.52 else "M")
            is_foreign = (rng.random() < 0.1) if foreign is None else foreign
            if is_foreign:
                country = rng.choices(COUNTRIES, weights=[c[2] for c in COUNTRIES])[0]
                place, citizenship = country[0], country[1]
                given = rng.choice(country[5] if sx == "F" else country[4])
            else:
                u = rng.random()
                place = _CRADLE[0] if u < 0.7 else rng.choice(_FAR_PLACES)[0]
                citizenship = "Italia"
                given = self._name(sx)
            sn = surname if (surname and attempt < 20) else rng.choice(self.surnames)
            p = _Person(sn, given, sx, self._birth(lo, hi), place, citizenship)
            if cf:
                code = encode_cf(p.surname, p.given_name, sx == "F", p.birth, p.place)
                if code in self.taken_cf or code in self.taken_base:
                    continue
                p.cf = code
            else:
                kind = id_kind or (rng.choice(("STP", "STP", "ENI", "passaporto")) if is_foreign else "provvisorio")
                p.id_type, p.identifier = self._other_identifier(kind)
            if self.pool.lookalikes(p.probe(), margin=0.05):
                continue
            if register:
                self._register(p)
            return p
        raise RuntimeError("impossibile generare una persona nuova senza somiglianze: registro troppo denso?")

    def _register(self, p: _Person) -> None:
        """Its code is taken at once; it joins the look-alike pool when its row is appended (row number)."""
        if p.cf:
            self.taken_cf.add(p.cf)
            self.taken_base.add(cfmod.base_code(p.cf))

    # ------------------------------------------------------------ rows
    def _person_row(self, p: _Person) -> dict[str, str]:
        rng = self.rng
        row = dict.fromkeys(HEADERS, "")
        row.update({
            "id_origine": self._next_id_origine(), "codice_fiscale": p.cf or "", "tipo_identificativo": p.id_type,
            "identificativo": p.identifier, "cognome": p.surname, "nome": p.given_name, "sesso": p.sex,
            "data_nascita": self._date(p.birth), "luogo_nascita": p.place, "cittadinanza": p.citizenship,
        })
        if rng.random() < 0.6:
            row["telefono"] = (f"0373 {rng.randint(200000, 899999)}" if rng.random() < 0.5
                               else f"3{rng.randint(20, 49)} {rng.randint(1000000, 9999999)}")
        if rng.random() < 0.2:
            local = cfmod._slug(f"{p.given_name}.{p.surname}").replace("-", ".")
            row["email"] = f"{local}@esempio.it"
        return row

    def _assisted(self, row: dict[str, str], p: _Person, area: str | None, *, comune: tuple[str, str] | None = None
                  ) -> dict[str, str]:
        rng = self.rng
        c = comune or self._comune()
        homeless = p.birth.year < self.today.year - 18 and rng.random() < 0.01
        row.update({
            "comune_residenza": self._comune_text(c),
            "indirizzo_residenza": FICTITIOUS_ADDRESS if homeless else f"{rng.choice(_STREETS)} {rng.randint(1, 120)}",
            "senza_dimora": "sì" if homeless else rng.choice(("no", "no", "No", "")),
            "area": AREA_LABELS[area] if area else "",
            "codice_cartella": f"CART/{rng.randint(2012, self.today.year)}/{rng.randint(1, 99999):05d}",
            "comune_titolare": self._comune_text(c),
            "case_manager": rng.choice(self.operators),
        })
        if area and rng.random() < 0.15:
            row["area"] = row["area"].capitalize() if rng.random() < 0.5 else row["area"].upper()
        if rng.random() < 0.03:
            d = self._comune()
            row["comune_domicilio"] = self._comune_text(d)
            row["indirizzo_domicilio"] = f"{rng.choice(_STREETS)} {rng.randint(1, 120)}"
        # at the latest yesterday: a cartella opened "today" is stored at noon, in the future until then
        latest = self.today - timedelta(days=1)
        earliest = min(max(p.birth, self.today - timedelta(days=8 * 365)), latest)
        row["data_apertura"] = self._date(earliest + timedelta(days=rng.randint(0, (latest - earliest).days)))
        return row

    def _related(self, row: dict[str, str], of: str, kind: str, *, cohabiting: bool, sole: bool = False
                 ) -> dict[str, str]:
        row.update({"relazione_di": of, "tipo_relazione": kind, "convivente": "sì" if cohabiting else "no",
                    "caregiver_unico": "sì" if sole else ""})
        if not cohabiting:
            c = self._comune()
            row["comune_residenza"] = self._comune_text(c)
            row["indirizzo_residenza"] = f"{self.rng.choice(_STREETS)} {self.rng.randint(1, 120)}"
        return row

    def _append(self, row: dict[str, str], kind: str, outcome: str, *, registers: _Person | None = None,
                same_as_person: Any = None, same_as_row: int | None = None, candidate_person: Any = None,
                candidate_row: int | None = None, reject_field: str = "") -> int:
        n = len(self.rows) + 1
        assert row["id_origine"] not in self.file_id_origine
        self.file_id_origine.add(row["id_origine"])
        self.rows.append(row)
        self.truth.append({"row": n, "id_origine": row["id_origine"], "outcome": outcome,
                           "same_as_person_id": "" if same_as_person is None else str(same_as_person),
                           "same_as_row": same_as_row or "", "candidate_person_id":
                               "" if candidate_person is None else str(candidate_person),
                           "candidate_row": candidate_row or "", "reject_field": reject_field, "kind": kind})
        if registers is not None:
            self.pool.add(("row", n), registers.probe())
        return n

    def _area(self) -> str:
        areas = list(AREA_WEIGHTS)
        return self.rng.choices(areas, weights=[AREA_WEIGHTS[a] for a in areas])[0]

    # ------------------------------------------------------------ units
    def clean(self, kind: str = "clean") -> None:
        area = self._area()
        lo, hi = AREA_AGES[area]
        foreign = True if area == "immigrazione" else None
        cf = self.rng.random() < 0.93
        p = self._new_person(lo=lo, hi=hi, foreign=foreign, cf=cf)
        row = self._assisted(self._person_row(p), p, None if kind == "missing_area" else area)
        n = self._append(row, kind, "create", registers=p)
        if p.cf:
            self.referents.append((n, p, area))

    def registry_match(self) -> bool:
        rng = self.rng
        if not self.registry:
            return False
        r = self.registry.pop()
        p = _Person(r["surname"], r["given_name"], r["sex"], r["birth_date"], r["birth_place_code"],
                    _citizenship(r["birth_place_code"]),
                    cf=r["codice_fiscale"])
        age = (self.today - p.birth).days // 365
        area = "anziani" if age >= 65 else ("minori_famiglia" if age < 18 else
                                             rng.choice(("disabili", "emarginazione_poverta", "servizi_sociali")))
        row = self._assisted(self._person_row(p), p, area)
        u = rng.random()
        if u < 0.25:
            row["cognome"] = typo(rng, p.surname)
        elif u < 0.35:
            row["nome"] = typo(rng, p.given_name)
        elif u < 0.55:
            row["cognome"], row["nome"] = p.surname.upper(), p.given_name.upper()
        elif u < 0.65:
            row["cognome"], row["nome"] = f"  {p.surname} ", f"{p.given_name}  "
        elif u < 0.7:
            row["cognome"] = p.surname.lower()
        self._append(row, "registry_match", "match", same_as_person=r["id"])
        return True

    def row_match(self) -> bool:
        rng = self.rng
        if not self.referents:
            return False
        ref_row, p, first_area = self.referents.pop(rng.randrange(len(self.referents)))
        others = [a for a in AREA_WEIGHTS if a != first_area and a not in ("minori_famiglia", "immigrazione")]
        row = self._assisted(self._person_row(p), p, rng.choice(others))
        if rng.random() < 0.7:
            row["cognome"] = typo(rng, p.surname)
        else:
            row["nome"] = typo(rng, p.given_name)
        self._append(row, "row_match", "match", same_as_row=ref_row)
        return True

    def _possible_dup_of(self, p: _Person, ref: tuple[str, Any]) -> _Person | None:
        foreign = p.place.startswith("Z")
        for _ in range(10):
            dup = _Person(typo(self.rng, p.surname), p.given_name, p.sex, p.birth, p.place, p.citizenship)
            kind = self.rng.choice(("STP", "ENI")) if foreign else "provvisorio"
            dup.id_type, dup.identifier = self._other_identifier(kind)
            hits = self.pool.lookalikes(dup.probe(), margin=0.05)
            if (len(hits) == 1 and hits[0][0] == ref and hits[0][1] >= 0.6
                    and hits[0][2] >= self.pool.floor + 0.1):
                return dup
        return None

    def possible_dup_registry(self) -> bool:
        for _ in range(30):
            if not self.registry:
                return False
            r = self.registry.pop()
            p = _Person(r["surname"], r["given_name"], r["sex"], r["birth_date"], r["birth_place_code"],
                        _citizenship(r["birth_place_code"]))
            dup = self._possible_dup_of(p, ("person", r["id"]))
            if dup is None:
                continue
            area = self._area()
            row = self._assisted(self._person_row(dup), dup, area)
            self._append(row, "possible_dup_registry", "possible_match", registers=dup, candidate_person=r["id"])
            return True
        return False

    def possible_dup_row(self) -> bool:
        rng = self.rng
        for _ in range(30):
            if not self.referents:
                return False
            ref_row, p, _area = self.referents.pop(rng.randrange(len(self.referents)))
            dup = self._possible_dup_of(p, ("row", ref_row))
            if dup is None:
                continue
            row = self._assisted(self._person_row(dup), dup, self._area())
            self._append(row, "possible_dup_row", "possible_match", registers=dup, candidate_row=ref_row)
            return True
        return False

    def omocode_new(self) -> None:
        rng = self.rng
        for _ in range(200):
            area = self._area()
            lo, hi = AREA_AGES[area]
            p = self._new_person(lo=lo, hi=hi, foreign=(area == "immigrazione") or None, register=False)
            variant = omocode_variant(p.cf, rng.choice((1, 1, 1, 2, 3)))
            if variant in self.taken_cf:
                continue
            p.cf = variant
            if self.pool.lookalikes(p.probe(), margin=0.05):
                continue
            self.taken_cf.add(variant)
            self.taken_base.add(cfmod.base_code(variant))
            row = self._assisted(self._person_row(p), p, area)
            self._append(row, "omocode_new", "create", registers=p)
            return
        raise RuntimeError("impossibile generare un omocodice nuovo")

    def omocode_twin(self) -> bool:
        for _ in range(30):
            if not self.registry:
                return False
            r = self.registry.pop()
            twin = _Person(r["surname"], r["given_name"], r["sex"], r["birth_date"], r["birth_place_code"],
                           _citizenship(r["birth_place_code"]),
                           cf=omocode_variant(r["codice_fiscale"]))
            if twin.cf in self.taken_cf:
                continue
            hits = self.pool.lookalikes(twin.probe(), margin=0.05)
            if not (len(hits) == 1 and hits[0][0] == ("person", r["id"]) and hits[0][1] >= 0.6):
                continue
            self.taken_cf.add(twin.cf)
            row = self._assisted(self._person_row(twin), twin, self._area())
            self._append(row, "omocode_twin", "possible_match", registers=twin, candidate_person=r["id"])
            return True
        return False

    def _rejected_person(self, *, cf: bool = True, lo: int = 20, hi: int = 90) -> _Person:
        return self._new_person(lo=lo, hi=hi, cf=cf, register=False)

    def invalid_cf(self, kind: str) -> None:
        rng = self.rng
        p = self._rejected_person()
        good = p.cf
        assert good
        field_ = "codice_fiscale"
        if kind == "cf_checksum":
            bad = good[:15] + rng.choice([c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c != good[15]])
        elif kind == "cf_omocodia_letter":
            pos = rng.choice((6, 7, 12, 13, 14))
            letter = "O" if good[pos] == "0" and rng.random() < 0.6 else rng.choice(_BAD_OMOCODIA)
            body = good[:pos] + letter + good[pos + 1:15]
            bad = body + _check_char(body)
        else:
            # A valid code that disagrees with what the row says: the registry's check names the field that
            # disagrees with the code (birth_date / sex), so that field is the truth.
            if rng.random() < 0.5:
                other = p.birth + timedelta(days=rng.choice((-1, 1)) * rng.randint(1, 400))
                bad = encode_cf(p.surname, p.given_name, p.sex == "F", other, p.place)
                field_ = "data_nascita"
            else:
                bad = encode_cf(p.surname, p.given_name, p.sex == "M", p.birth, p.place)
                field_ = "sesso"
        if bad in self.taken_cf:
            return self.invalid_cf(kind)
        self.taken_cf.add(bad)
        p.cf = bad
        row = self._assisted(self._person_row(p), p, self._area())
        self._append(row, kind, "reject", reject_field=field_)

    def unknown_comune(self) -> None:
        p = self._rejected_person()
        self.taken_cf.add(p.cf)
        row = self._assisted(self._person_row(p), p, self._area())
        row["comune_residenza"] = self.rng.choice(self.garbage_comuni)
        self._append(row, "unknown_comune", "reject", reject_field="comune_residenza")

    def future_birth(self) -> None:
        p = self._rejected_person(cf=False, lo=0, hi=0)
        # more than a year ahead: still in the future for an importer whose clock runs months ahead of `today`
        # (a test process on a fixed clock generating for a command line on the real one)
        p.birth = self.today + timedelta(days=self.rng.randint(400, 1500))
        row = self._assisted(self._person_row(p), p, "minori_famiglia")
        self._append(row, "future_birth", "reject", reject_field="data_nascita")

    def unknown_case_manager(self) -> None:
        p = self._rejected_person()
        self.taken_cf.add(p.cf)
        row = self._assisted(self._person_row(p), p, self._area())
        row["case_manager"] = self.rng.choice(self.unknown_operators)
        self._append(row, "unknown_case_manager", "reject", reject_field="case_manager")

    def family(self) -> None:
        rng = self.rng
        minor = self._new_person(lo=1, hi=16, foreign=False)
        c = self._comune()
        mrow = self._assisted(self._person_row(minor), minor, "minori_famiglia", comune=c)
        self._append(mrow, "family_minor", "create", registers=minor)
        age = (self.today - minor.birth).days // 365
        for sex, lo, hi, surname in (("M", 22, 45, minor.surname), ("F", 20, 42, None)):
            # appended before the other parent is drawn: the two are checked against each other too
            parent = self._new_person(lo=age + lo, hi=age + hi, sex=sex, surname=surname, foreign=False)
            row = self._related(self._person_row(parent), mrow["id_origine"], "genitore",
                                cohabiting=rng.random() < 0.85)
            self._append(row, "family_parent", "create", registers=parent)

    def ads(self, *, with_decree: bool = True) -> None:
        rng = self.rng
        area = rng.choice(("disabili", "anziani", "dipendenze_salute_mentale"))
        lo, hi = AREA_AGES[area]
        adult = self._new_person(lo=max(lo, 25), hi=hi)
        arow = self._assisted(self._person_row(adult), adult, area)
        kind = "ads_adult" if with_decree else "ads_no_decree_adult"
        self._append(arow, kind, "create", registers=adult)
        ads = self._new_person(lo=32, hi=70, foreign=False, register=with_decree)
        row = self._related(self._person_row(ads), arow["id_origine"], "amministratore di sostegno",
                            cohabiting=rng.random() < 0.3)
        row.update({"decreto": f"R.G. {rng.randint(100, 4999)}/{rng.randint(2012, self.today.year)} V.G.",
                    "tribunale": rng.choice(_COURTS), "ambito_decreto": rng.choice(_DECREE_SCOPES)})
        if with_decree:
            self._append(row, "ads", "create", registers=ads)
        else:
            self.taken_cf.add(ads.cf)
            row["decreto"] = ""
            self._append(row, "ads_no_decree", "reject", reject_field="decreto")

    def caregiver_name_only(self) -> None:
        rng = self.rng
        elder = self._new_person(lo=70, hi=97)
        erow = self._assisted(self._person_row(elder), elder, "anziani")
        self._append(erow, "caregiver_assisted", "create", registers=elder)
        sex = "F" if rng.random() < 0.7 else "M"
        row = dict.fromkeys(HEADERS, "")
        surname = elder.surname if rng.random() < 0.5 else rng.choice(self.surnames)
        row.update({"id_origine": self._next_id_origine(), "cognome": surname, "nome": self._name(sex),
                    "sesso": sex if rng.random() < 0.5 else "",
                    "telefono": f"3{rng.randint(20, 49)} {rng.randint(1000000, 9999999)}"})
        self._related(row, erow["id_origine"], "caregiver", cohabiting=rng.random() < 0.4, sole=rng.random() < 0.6)
        self._append(row, "caregiver_name_only", "create")

    def unknown_relation(self) -> None:
        p = self._rejected_person(lo=25, hi=70)
        self.taken_cf.add(p.cf)
        row = self._related(self._person_row(p), f"{self.id_prefix}9{self.rng.randint(0, 999999):06d}X", "familiare",
                            cohabiting=False)
        self._append(row, "unknown_relation", "reject", reject_field="relazione_di")

    # ------------------------------------------------------------ plan
    def run(self, n: int, shares: dict[str, float]) -> None:
        counts: dict[str, int] = {}
        for kind, share in shares.items():
            size = UNIT_ROWS.get(kind, 1)
            units = round(n * share / size)
            if n >= 200 and units == 0:
                units = 1  # every kind of mess, even in a small file
            counts[kind] = units
        used = sum(c * UNIT_ROWS.get(k, 1) for k, c in counts.items())
        while used > n:  # a tiny file: drop units, largest share first
            k = max(counts, key=lambda k: counts[k] * UNIT_ROWS.get(k, 1))
            counts[k] -= 1
            used -= UNIT_ROWS.get(k, 1)
        plan = [k for k, c in counts.items() for _ in range(c)]
        missing_area = counts.pop("missing_area", 0)
        plan = [k for k in plan if k != "missing_area"]
        plan += ["missing_area"] * missing_area + ["clean"] * (n - used)
        self.rng.shuffle(plan)
        deferred: list[str] = []
        for kind in plan:
            if not self._unit(kind):
                deferred.append(kind)
        for kind in deferred:  # the referents they needed came later in the plan
            if not self._unit(kind):
                self.clean()

    def _unit(self, kind: str) -> bool:
        if kind in ("clean", "missing_area"):
            self.clean(kind)
        elif kind in ("cf_checksum", "cf_omocodia_letter", "cf_mismatch"):
            self.invalid_cf(kind)
        elif kind == "ads_no_decree":
            self.ads(with_decree=False)
        elif kind in ("registry_match", "row_match", "possible_dup_registry", "possible_dup_row", "omocode_twin"):
            return getattr(self, kind)()
        else:
            getattr(self, kind)()
        return True


def generate(n: int, *, registry_sample: list[dict[str, Any]], comuni: list[tuple[str, str]], operators: list[str],
             seed: int = 42, today: date | None = None, shares: dict[str, float] | None = None,
             id_prefix: str = "SC") -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """`n` rows of the import template and their truth (see the module docstring). Deterministic for the same
    arguments; `today` defaults to the application's today (birth dates in the future are relative to it).

    `shares` replaces SHARES (`{}`: clean new persons only, as the throughput benchmark wants); `id_prefix` starts
    every `id_origine`, so two files for the same registry never share a source key. `registry_sample` rows may
    carry `other_identifier`: the generator never hands out one of those."""
    from domain.kernel import clock
    from domain.kernel.settings import get_settings

    s = get_settings()
    gen = _Generator(registry_sample=registry_sample, comuni=comuni, operators=operators, seed=seed,
                     today=today or clock.today_rome(), threshold=s.dedup_candidate_threshold,
                     floor=s.dedup_name_similarity_floor, id_prefix=id_prefix)
    gen.run(n, SHARES if shares is None else shares)
    return gen.rows, gen.truth


# ---------------------------------------------------------------- writers
def write_csv(rows: list[dict[str, str]], path: str | Path, encoding: str = "cp1252", delimiter: str = ";") -> None:
    with open(path, "w", encoding=encoding, newline="") as f:
        w = csv.DictWriter(f, fieldnames=HEADERS, delimiter=delimiter)
        w.writeheader()
        w.writerows(rows)


def write_xlsx(rows: list[dict[str, str]], path: str | Path) -> None:
    """Every cell as text: ISTAT codes keep their leading zero and dates stay as the old platform exported them."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Persone")
    ws.append(list(HEADERS))
    for r in rows:
        ws.append([r.get(h, "") or None for h in HEADERS])
    wb.save(path)


def write_truth(truth: list[dict[str, Any]], path: str | Path) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=TRUTH_FIELDS)
        w.writeheader()
        w.writerows(truth)


def read_truth(path: str | Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8", newline="") as f:
        return [{**r, "row": int(r["row"])} for r in csv.DictReader(f)]


def summary(truth: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    by_outcome: dict[str, int] = {}
    by_kind: dict[str, int] = {}
    for t in truth:
        by_outcome[t["outcome"]] = by_outcome.get(t["outcome"], 0) + 1
        by_kind[t["kind"]] = by_kind.get(t["kind"], 0) + 1
    return {"outcome": by_outcome, "kind": dict(sorted(by_kind.items()))}


# ---------------------------------------------------------------- comparing a report with the truth
def agrees(truth: dict[str, Any], result: dict[str, Any]) -> bool:
    """One row's result (import_row: outcome, person_id, matched_row, candidate_person_ids, candidate_rows,
    errors = [{field, reason}]) against the truth: the same outcome; a match names the same registry person or
    earlier row; a possible match lists the intended look-alike among its candidates; a reject names the field."""
    if result.get("outcome") != truth["outcome"]:
        return False
    if truth["outcome"] == "match":
        if truth["same_as_person_id"]:
            return str(result.get("person_id") or "") == str(truth["same_as_person_id"])
        return str(result.get("matched_row") or "") == str(truth["same_as_row"])
    if truth["outcome"] == "possible_match":
        if truth["candidate_person_id"]:
            return str(truth["candidate_person_id"]) in {str(x) for x in result.get("candidate_person_ids") or ()}
        return str(truth["candidate_row"]) in {str(x) for x in result.get("candidate_rows") or ()}
    if truth["outcome"] == "reject":
        return truth["reject_field"] in {e.get("field") for e in result.get("errors") or ()}
    return True


# ---------------------------------------------------------------- database
async def load_inputs(url: str, ambito_code: str = "ambito-crema"
                      ) -> tuple[list[dict[str, Any]], list[tuple[str, str]], list[str]]:
    """Registry persons (active), the Ambito's comuni (ISTAT code, name) and the usernames of its active operators
    (person users with a role in force on one of its organisations, as the import's case-manager check wants)."""
    import asyncpg

    from deploy.seed.synthetic import _asyncpg_dsn
    from domain.kernel import clock

    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        ambito_id = await conn.fetchval("select id from organisation where code = $1 and kind = 'ambito'", ambito_code)
        if ambito_id is None:
            raise RuntimeError(f"nessun Ambito con codice {ambito_code}: eseguire prima `python -m api load-reference`")
        persons = [dict(r) for r in await conn.fetch(
            "select id, codice_fiscale, surname, given_name, sex, birth_date, birth_place_code, other_identifier "
            "from person where ambito_id = $1 and status = 'active'", ambito_id)]
        comuni = [(r["istat_code"], r["name"]) for r in await conn.fetch(
            "select istat_code, name from organisation where ambito_id = $1 and kind = 'comune' and active "
            "and istat_code is not null order by istat_code", ambito_id)]
        today = clock.today_rome()
        operators = [r["username"] for r in await conn.fetch(
            "select distinct u.username from app_user u join role_assignment ra on ra.user_id = u.id "
            "join organisation o on o.id = ra.organisation_id "
            "where u.ambito_id = $1 and u.active and u.kind = 'person' and (o.id = $1 or o.ambito_id = $1) "
            "and ra.valid_from <= $2 and (ra.valid_to is null or ra.valid_to >= $2) "
            "and ra.role in ('comune_social_worker', 'ambito_pua_social_worker', 'sub_ambito_coordinator') "
            "order by u.username", ambito_id, today)]
    finally:
        await conn.close()
    return persons, comuni, operators


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m deploy.seed.import_file",
                                description="File di prova per l'importazione, con la verità riga per riga")
    p.add_argument("--rows", type=int, default=30_000)
    p.add_argument("--out", required=True, help="il file CSV (con --xlsx si scrive anche FILE.xlsx)")
    p.add_argument("--truth", required=True, help="la verità, CSV UTF-8")
    p.add_argument("--xlsx", action="store_true", help="scrive anche la versione XLSX")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--clean", action="store_true", help="solo persone nuove senza errori (prova di velocità)")
    p.add_argument("--id-prefix", default="SC", help="inizio di ogni id_origine (file diversi, chiavi diverse)")
    p.add_argument("--encoding", default="cp1252", choices=("cp1252", "utf-8"))
    p.add_argument("--delimiter", default=";", choices=(";", ","))
    p.add_argument("--ambito", default="ambito-crema")
    p.add_argument("--database-url", default=None, help="predefinito: DATABASE_URL")
    a = p.parse_args(argv)
    if a.rows <= 0:
        p.error("--rows deve essere positivo")
    from domain.kernel.settings import get_settings

    try:
        persons, comuni, operators = asyncio.run(load_inputs(a.database_url or get_settings().database_url,
                                                             a.ambito))
        rows, truth = generate(a.rows, registry_sample=persons, comuni=comuni, operators=operators, seed=a.seed,
                               shares={} if a.clean else None, id_prefix=a.id_prefix)
    except (RuntimeError, ValueError) as e:
        print(f"import_file: {e}", file=sys.stderr)
        return 1
    out = Path(a.out)
    if out.suffix.lower() == ".xlsx":
        write_xlsx(rows, out)
    else:
        write_csv(rows, out, encoding=a.encoding, delimiter=a.delimiter)
        if a.xlsx:
            write_xlsx(rows, out.with_suffix(".xlsx"))
    write_truth(truth, a.truth)
    s = summary(truth)
    print(f"{len(rows):,} righe ({len(persons):,} persone in anagrafica, {len(operators)} operatori)")
    for k, v in sorted(s["outcome"].items()):
        print(f"  {k:<15} {v:>7,}  {v / len(rows):6.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
