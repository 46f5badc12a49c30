"""Synthetic Ambito (or region) for development and benchmarks: `python -m api seed --persons N
[--ambito ambito-crema] [--ambiti K] [--seed 42]`.

With `--ambiti K` (K > 1) the persons are spread over K Ambiti: the real one and K-1 generated from the ISTAT list
of Lombardy (deploy/seed/region.py: a few large, many small, loaded like any reference Ambito).

Persons are spread over the Ambito's comuni in proportion to `Organisation.population_estimate` (equal weights
when no comune has one), with an age pyramid and sex ratio close to the Ambito's (domain brief §1.1: 15.9% minors,
23.9% over 65, 7.2% over 80), about 10% foreign citizens, valid and unique codici fiscali, rare homeless people
(most with a fictitious residence), `lives_alone` for the over-65s, and open cartelle by area in the proportions of
the 2023 GeCaS table (brief §5.1: 28,215 open records per 160,531 residents), with minori_famiglia cartelle on
minors and anziani cartelle on over-65s.

Rows go in with COPY (asyncpg `copy_records_to_table`) in batches, in one transaction; ANALYZE at the end. The
next batch is generated (in a thread) while the previous one is being copied. A large load (at least
DEFER_INDEXES_FROM persons and at least as many as the table holds) drops the secondary indexes and the foreign
keys of `person` and `cartella` first and builds them again after the COPY, in the same transaction: one sort per
index instead of a B-tree or GIN insertion and three foreign-key probes per row (issue 18: 10 M persons in 788 s of
COPY with the indexes maintained). The DDL is read back from the catalogue (pg_get_indexdef,
pg_get_constraintdef), so the rebuilt schema is the migrated one; the two tables stay locked until the load
commits (a seed is not run beside live traffic). The connection is the owner's
(MIGRATION_DATABASE_URL) when set, so ANALYZE and the DDL are allowed; DATABASE_URL otherwise.
Synthetic rows carry `source = 'synthetic'`; no history rows are written for them (a bulk load, like an import).
"""
from __future__ import annotations

import argparse
import asyncio
import bisect
import heapq
import math
import random
import sys
import time
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from itertools import accumulate
from typing import Any

from domain.kernel import clock
from domain.kernel.calendar import age_on
from domain.kernel.ids import new_id

# ---------------------------------------------------------------- proportions (domain brief §1.1, §5.1)
RESIDENTS_2023 = 160_531
OPEN_CARTELLE_2023 = {
    "anziani": 9_652,
    "minori_famiglia": 10_964,
    "disabili": 3_270,
    "emarginazione_poverta": 2_787,
    "servizi_sociali": 969,
    "dipendenze_salute_mentale": 350,
    "non_noto": 131,
    "immigrazione": 92,
}
CARTELLE_PER_RESIDENT = sum(OPEN_CARTELLE_2023.values()) / RESIDENTS_2023  # 28,215 / 160,531
AGE_GROUPS = ((0, 17, 0.159), (18, 64, 0.602), (65, 79, 0.167), (80, 104, 0.072))
FOREIGN_RATE_UNDER_55 = 0.13
FOREIGN_RATE_55_PLUS = 0.04
HOMELESS_RATE = 0.001            # adults 18-74; Italy ~0.16% of residents, lower in a rural Ambito
FICTITIOUS_RESIDENCE_SHARE = 0.7  # of the homeless: registered at the comune's fictitious address
OTHER_DOMICILE_RATE = 0.03       # domiciled in another comune of the Ambito
LIVES_ALONE = {65: 0.27, 80: 0.42}
CARTELLA_MAX_YEARS = 8
DEFER_INDEXES_FROM = 100_000
BULK_TABLES = ("person", "cartella")

ITALIAN_BIRTHPLACES = (  # (Belfiore, name, weight) outside the Ambito
    ("F205", "Milano", 5), ("D150", "Cremona", 4), ("E648", "Lodi", 3), ("A794", "Bergamo", 3),
    ("B157", "Brescia", 2), ("F839", "Napoli", 2), ("G273", "Palermo", 1), ("H501", "Roma", 1),
    ("A662", "Bari", 1), ("D643", "Foggia", 1),
)
COUNTRIES = (  # (Belfiore, citizenship, weight, surnames, male names, female names)
    ("Z129", "Romania", 24, ("Popescu", "Ionescu", "Dumitru", "Stan", "Constantin", "Munteanu", "Rusu"),
     ("Andrei", "Mihai", "Ionut", "Florin", "Adrian", "Marian"), ("Elena", "Ioana", "Maria", "Andreea", "Mihaela")),
    ("Z100", "Albania", 14, ("Hoxha", "Shehu", "Gjoka", "Leka", "Basha", "Dervishi", "Kola"),
     ("Arben", "Ermal", "Besnik", "Gentian", "Klodian", "Altin"), ("Elona", "Anila", "Blerina", "Mirela", "Ardita")),
    ("Z330", "Marocco", 12, ("El Amrani", "Benali", "Bouzid", "Rahmouni", "Tazi", "Alaoui", "Idrissi"),
     ("Mohamed", "Youssef", "Rachid", "Hamza", "Karim", "Said"), ("Fatima", "Khadija", "Amina", "Salma", "Nadia")),
    ("Z222", "India", 10, ("Singh", "Kaur", "Sharma", "Kumar", "Patel", "Gill", "Sandhu"),
     ("Harpreet", "Gurpreet", "Rajesh", "Amit", "Jaswinder", "Sukhdev"), ("Manpreet", "Priya", "Simran", "Anita")),
    ("Z138", "Ucraina", 8, ("Kovalenko", "Shevchenko", "Bondarenko", "Tkachenko", "Melnyk", "Boyko"),
     ("Oleksandr", "Andriy", "Serhiy", "Vasyl", "Taras"), ("Olena", "Natalia", "Iryna", "Oksana", "Tetiana")),
    ("Z210", "Cina", 6, ("Wang", "Li", "Zhang", "Liu", "Chen", "Hu", "Zhou"),
     ("Wei", "Jun", "Hao", "Ming", "Jian"), ("Li", "Fang", "Xiu", "Mei", "Yan")),
    ("Z343", "Senegal", 6, ("Diop", "Ndiaye", "Fall", "Sow", "Diallo", "Gueye"),
     ("Mamadou", "Cheikh", "Moussa", "Ibrahima", "Abdou"), ("Awa", "Fatou", "Aminata", "Mariama", "Khady")),
    ("Z236", "Pakistan", 5, ("Khan", "Ahmed", "Hussain", "Ali", "Iqbal", "Butt"),
     ("Muhammad", "Imran", "Asif", "Bilal", "Tariq"), ("Ayesha", "Sana", "Nadia", "Fatima", "Hina")),
    ("Z336", "Egitto", 5, ("Hassan", "Mahmoud", "Ibrahim", "Mostafa", "Abdelrahman", "Salem"),
     ("Ahmed", "Mohamed", "Mahmoud", "Omar", "Karim"), ("Mona", "Nour", "Heba", "Sara", "Yasmin")),
    ("Z335", "Nigeria", 4, ("Okafor", "Adeyemi", "Eze", "Okeke", "Bello", "Obi"),
     ("Chinedu", "Emeka", "Tunde", "Ifeanyi", "Samuel"), ("Ngozi", "Blessing", "Chioma", "Grace", "Joy")),
    ("Z140", "Moldova", 3, ("Rusu", "Ceban", "Ciobanu", "Turcan", "Lungu"),
     ("Ion", "Vasile", "Sergiu", "Victor"), ("Natalia", "Tatiana", "Svetlana", "Irina")),
    ("Z611", "Perù", 3, ("Quispe", "Flores", "Huaman", "Mamani", "Rojas"),
     ("Luis", "Jorge", "Carlos", "Juan"), ("Rosa", "Carmen", "Luz", "Maria")),
)
STREETS = ("Via Roma", "Via Giuseppe Mazzini", "Via Giuseppe Garibaldi", "Via XX Settembre", "Via Dante Alighieri",
           "Via Cavour", "Via Vittorio Emanuele II", "Via Matteotti", "Via IV Novembre", "Via della Chiesa",
           "Via Montello", "Via Libertà", "Via Repubblica", "Via Marconi", "Via Verdi", "Via Manzoni",
           "Via Europa", "Via Gramsci", "Via Kennedy", "Via San Martino", "Piazza Garibaldi", "Via Mulini",
           "Via Cremona", "Via Milano", "Via Bergamo", "Via Circonvallazione", "Via Indipendenza", "Via Cadorna")
FICTITIOUS_ADDRESS = "Via della Casa Comunale 1"

PERSON_COLUMNS = (
    "id", "ambito_id", "codice_fiscale", "surname", "given_name", "sex", "birth_date", "birth_place_code",
    "birth_place_name", "citizenship", "residence_comune_id", "residence_address", "domicile_comune_id",
    "domicile_address", "fictitious_residence", "homeless", "lives_alone", "contacts", "status", "needs_review",
    "source", "version", "created_at", "updated_at",
)
CARTELLA_COLUMNS = ("id", "ambito_id", "person_id", "area", "owning_comune_id", "status", "opened_at",
                    "legacy_code", "version")


# ---------------------------------------------------------------- codice fiscale (fast encoder)
_MONTHS = "ABCDEHLMPRST"
_ODD = dict(zip("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                (1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8,
                 12, 14, 16, 10, 22, 25, 24, 23), strict=True))
_EVEN = {**{str(d): d for d in range(10)}, **{chr(65 + i): i for i in range(26)}}
_VOWELS = set("AEIOU")


def _letters(s: str) -> str:
    ascii_ = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode("ascii").upper()
    return "".join(ch for ch in ascii_ if "A" <= ch <= "Z")


@cache
def surname_code(surname: str) -> str:
    s = _letters(surname)
    cons = [c for c in s if c not in _VOWELS]
    vows = [c for c in s if c in _VOWELS]
    return ("".join(cons + vows) + "XXX")[:3]


@cache
def name_code(name: str) -> str:
    s = _letters(name)
    cons = [c for c in s if c not in _VOWELS]
    if len(cons) >= 4:
        return cons[0] + cons[2] + cons[3]
    vows = [c for c in s if c in _VOWELS]
    return ("".join(cons + vows) + "XXX")[:3]


@cache
def _partial(chars: str, offset: int) -> int:
    """Check-character contribution of `chars` starting at 0-based position `offset` (even offset = odd place)."""
    return sum((_ODD if (offset + i) % 2 == 0 else _EVEN)[ch] for i, ch in enumerate(chars))


@cache
def _date_code(birth: date, female: bool) -> str:
    return f"{birth.year % 100:02d}{_MONTHS[birth.month - 1]}{birth.day + (40 if female else 0):02d}"


def encode_cf(surname: str, given_name: str, female: bool, birth: date, place_code: str) -> str:
    """The 16-character codice fiscale without omocodia. Pieces are cached, so a million calls take seconds."""
    head = surname_code(surname) + name_code(given_name)
    dcode = _date_code(birth, female)
    total = _partial(head, 0) + _partial(dcode, 6) + _partial(place_code, 11)
    return head + dcode + place_code + chr(65 + total % 26)


# ---------------------------------------------------------------- generation
@dataclass
class Comune:
    id: uuid.UUID
    code: str
    name: str
    belfiore: str | None
    population: int | None


@dataclass
class SeedReport:
    persons: int = 0
    cartelle: int = 0
    by_area: dict[str, int] = field(default_factory=dict)
    homeless: int = 0
    foreign: int = 0
    minors: int = 0
    over_65: int = 0
    elapsed_s: float = 0.0
    generate_s: float = 0.0
    copy_s: float = 0.0
    analyze_s: float = 0.0
    index_s: float = 0.0  # secondary indexes and foreign keys built after the COPY (0 when maintained during it)
    weights: str = "population_estimate"
    by_ambito: dict[str, int] = field(default_factory=dict)


def _age_cum_weights() -> tuple[list[int], list[float]]:
    ages, weights = [], []
    for lo, hi, share in AGE_GROUPS:
        raw = []
        for a in range(lo, hi + 1):
            if lo == 0:
                w = 0.85 + 0.3 * a / 17
            elif lo == 18:
                w = 1.0 + 0.6 * math.exp(-(((a - 55) / 12) ** 2))
            elif lo == 65:
                w = 1.0 - 0.25 * (a - 65) / 14
            else:
                w = math.exp(-(a - 80) / 5.5)
            raw.append(w)
        tot = sum(raw)
        ages.extend(range(lo, hi + 1))
        weights.extend(share * w / tot for w in raw)
    return ages, list(accumulate(weights))


def _female_probability(age: int) -> float:
    return 0.49 if age < 65 else (0.53 if age < 80 else 0.63)


def _weighted_sample(rng: random.Random, items: list[int], weights: list[float], k: int) -> list[int]:
    """k distinct items, probability proportional to weight (Efraimidis-Spirakis)."""
    if k >= len(items):
        return list(items)
    keys = ((rng.random() ** (1.0 / w), i) for i, w in zip(items, weights, strict=True))
    return [i for _, i in heapq.nlargest(k, keys)]


class Generator:
    def __init__(self, *, ambito_id: uuid.UUID, comuni: list[Comune], seed: int, taken_cf: set[str],
                 today: date, now: datetime):
        from faker.providers.person.it_IT import Provider

        self.rng = random.Random(seed)
        self.ambito_id = ambito_id
        self.comuni = comuni
        self.taken = taken_cf
        self.today, self.now = today, now
        pops = [c.population for c in comuni]
        known = [p for p in pops if p]
        if not known:
            weights = [1.0] * len(comuni)
            self.weights_source = "equal"
        else:
            fill = sorted(known)[len(known) // 2]
            weights = [float(p or fill) for p in pops]
            self.weights_source = "population_estimate" if len(known) == len(pops) else "population_estimate+median"
        self.comune_cw = list(accumulate(weights))
        self.ages, self.age_cw = _age_cum_weights()
        self.surnames = list(Provider.last_names)
        self.male = list(Provider.first_names_male)
        self.female = list(Provider.first_names_female)
        self.country_cw = list(accumulate(c[2] for c in COUNTRIES))
        self.it_cw = list(accumulate(p[2] for p in ITALIAN_BIRTHPLACES))
        self.hub = next((i for i, c in enumerate(comuni) if c.code == "comune-crema"),
                        max(range(len(comuni)), key=lambda i: weights[i]))  # where the hospital is
        self.area_carry = {a: 0.0 for a in OPEN_CARTELLE_2023}
        self.legacy_seq = 0

    def _pick(self, cw: list[float]) -> int:
        return bisect.bisect_right(cw, self.rng.random() * cw[-1])

    def persons(self, n: int) -> tuple[list[tuple], list[dict[str, Any]]]:
        rng = self.rng
        ages = rng.choices(self.ages, cum_weights=self.age_cw, k=n)
        comune_ix = rng.choices(range(len(self.comuni)), cum_weights=self.comune_cw, k=n)
        rows, meta = [], []
        now, today = self.now, self.today
        for i in range(n):
            age = ages[i]
            female = rng.random() < _female_probability(age)
            foreign = rng.random() < (FOREIGN_RATE_UNDER_55 if age < 55 else FOREIGN_RATE_55_PLUS)
            ci = comune_ix[i]
            res = self.comuni[ci]
            if foreign:
                country = COUNTRIES[self._pick(self.country_cw)]
                citizenship = country[1]
                born_here = age < 18 and rng.random() < 0.6
                place = (self.comuni[self.hub].belfiore, self.comuni[self.hub].name) if born_here \
                    else (country[0], country[1])
                surname_pool, names_pool = country[3], (country[5] if female else country[4])
            else:
                citizenship = "Italia"
                u = rng.random()
                if u < 0.45:
                    place = (self.comuni[self.hub].belfiore, self.comuni[self.hub].name)
                elif u < 0.75:
                    place = (res.belfiore, res.name)
                elif u < 0.9:
                    o = ITALIAN_BIRTHPLACES[self._pick(self.it_cw)]
                    place = (o[0], o[1])
                else:
                    other = self.comuni[rng.randrange(len(self.comuni))]
                    place = (other.belfiore, other.name)
                surname_pool, names_pool = self.surnames, (self.female if female else self.male)
            if not place[0]:  # a comune without its Belfiore code: fall back to the hospital's, else Crema's
                place = (self.comuni[self.hub].belfiore or "D142", self.comuni[self.hub].name)
            surname = rng.choice(surname_pool)
            for _attempt in range(50):
                given = rng.choice(names_pool)
                birth = today - timedelta(days=int(age * 365.25) + rng.randrange(365))
                cf = encode_cf(surname, given, female, birth, place[0])
                if cf not in self.taken:
                    break
                if _attempt > 10:
                    surname = rng.choice(surname_pool)
            else:
                raise RuntimeError("could not draw a unique codice fiscale")
            self.taken.add(cf)
            real_age = age_on(birth, today)
            homeless = 18 <= real_age < 75 and rng.random() < HOMELESS_RATE
            fictitious = False
            res_id, res_addr = res.id, f"{rng.choice(STREETS)} {rng.randint(1, 120)}"
            dom_id = dom_addr = None
            if homeless:
                if rng.random() < FICTITIOUS_RESIDENCE_SHARE:
                    fictitious = True
                    res_addr = FICTITIOUS_ADDRESS
                else:
                    res_id = res_addr = None
                    dom_id = self.comuni[self.hub].id  # de facto: where the shelters are
            elif rng.random() < OTHER_DOMICILE_RATE:
                other = self.comuni[rng.randrange(len(self.comuni))]
                if other.id != res.id:
                    dom_id, dom_addr = other.id, f"{rng.choice(STREETS)} {rng.randint(1, 120)}"
            lives_alone = None
            if real_age >= 65:
                lives_alone = rng.random() < (LIVES_ALONE[80] if real_age >= 80 else LIVES_ALONE[65])
            pid = new_id()
            rows.append((pid, self.ambito_id, cf, surname, given, "F" if female else "M", birth, place[0],
                         place[1], citizenship, res_id, res_addr, dom_id, dom_addr, fictitious, homeless,
                         lives_alone, "{}", "active", False, "synthetic", 1, now, now))
            meta.append({"id": pid, "age": real_age, "birth": birth, "foreign": foreign, "homeless": homeless,
                         "owner": res_id or dom_id})
        return rows, meta

    def _quota(self, area: str, n_persons: int) -> int:
        exact = n_persons * OPEN_CARTELLE_2023[area] / RESIDENTS_2023 + self.area_carry[area]
        k = int(exact)
        self.area_carry[area] = exact - k
        return k

    def cartelle(self, meta: list[dict[str, Any]]) -> list[tuple]:
        rng = self.rng
        n = len(meta)
        idx = range(n)
        adults = [i for i in idx if meta[i]["age"] >= 18]
        pools: dict[str, tuple[list[int], list[float] | None]] = {
            "anziani": ([i for i in idx if meta[i]["age"] >= 65], None),
            "minori_famiglia": ([i for i in idx if meta[i]["age"] < 18], None),
            "disabili": (list(idx), None),
            "emarginazione_poverta": ([i for i in adults if meta[i]["age"] < 75], None),
            "servizi_sociali": (adults, None),
            "dipendenze_salute_mentale": ([i for i in adults if meta[i]["age"] <= 70], None),
            "non_noto": (list(idx), None),
            "immigrazione": ([i for i in adults if meta[i]["foreign"]] or adults, None),
        }
        weights = {
            "anziani": lambda m: 3.0 if m["age"] >= 80 else 1.0,
            "disabili": lambda m: 0.6 if m["age"] < 18 else (1.0 if m["age"] < 65 else 1.8),
            "emarginazione_poverta": lambda m: (60.0 if m["homeless"] else 1.0) * (2.0 if m["foreign"] else 1.0),
        }
        out = []
        for area, (pool, _) in pools.items():
            k = self._quota(area, n)
            if k <= 0 or not pool:
                continue
            w = weights.get(area)
            chosen = _weighted_sample(rng, pool, [w(meta[i]) for i in pool], k) if w else \
                rng.sample(pool, min(k, len(pool)))
            for i in chosen:
                m = meta[i]
                max_days = min(CARTELLA_MAX_YEARS * 365, (self.today - m["birth"]).days)
                opened = self.now - timedelta(days=rng.randint(0, max(max_days, 0)), minutes=rng.randint(0, 600))
                legacy = None
                if area == "non_noto":
                    self.legacy_seq += 1
                    legacy = f"SYN-{self.legacy_seq:07d}"
                out.append((new_id(), self.ambito_id, m["id"], area, m["owner"], "open", opened, legacy, 1))
        return out


# ---------------------------------------------------------------- loading
def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://").replace("postgresql+psycopg://", "postgresql://")


async def _check_columns(conn, table: str, columns: tuple[str, ...]) -> None:
    """Fail early, with a clear message, if the table gained a required column this loader does not fill."""
    rows = await conn.fetch(
        "select column_name from information_schema.columns where table_schema = current_schema() "
        "and table_name = $1 and is_nullable = 'NO' and column_default is null and is_generated = 'NEVER' "
        "and is_identity = 'NO'", table)
    missing = {r["column_name"] for r in rows} - set(columns)
    if missing:
        raise RuntimeError(f"{table} has required columns the synthetic loader does not fill: {sorted(missing)}")


async def _secondary_ddl(conn, table: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(name, CREATE INDEX) of the indexes that back no constraint, and (name, definition) of the foreign keys."""
    indexes = [(r["name"], r["ddl"]) for r in await conn.fetch(
        "select c.relname as name, pg_get_indexdef(i.indexrelid) as ddl from pg_index i "
        "join pg_class c on c.oid = i.indexrelid where i.indrelid = $1::regclass "
        "and not exists (select 1 from pg_constraint k where k.conindid = i.indexrelid) order by c.relname", table)]
    fks = [(r["conname"], r["ddl"]) for r in await conn.fetch(
        "select conname, pg_get_constraintdef(oid) as ddl from pg_constraint "
        "where conrelid = $1::regclass and contype = 'f' order by conname", table)]
    return indexes, fks


async def _drop_secondary(conn) -> list[str]:
    """Drop the secondary indexes and foreign keys of BULK_TABLES; returns the statements that restore them."""
    restore_indexes, restore_fks = [], []
    for table in BULK_TABLES:
        indexes, fks = await _secondary_ddl(conn, table)
        for name, ddl in fks:
            await conn.execute(f'alter table {table} drop constraint "{name}"')
            restore_fks.append(f'alter table {table} add constraint "{name}" {ddl}')
        for name, ddl in indexes:
            await conn.execute(f'drop index "{name}"')
            restore_indexes.append(ddl)
    return restore_indexes + restore_fks  # the indexes first: validating a foreign key reads the whole table


async def _restore_secondary(conn, statements: list[str]) -> None:
    # One sort per index in memory where it fits; PostgreSQL 18 builds B-tree and GIN indexes in parallel.
    await conn.execute("set local maintenance_work_mem = '1GB'")
    await conn.execute("set local max_parallel_maintenance_workers = 2")
    for ddl in statements:
        await conn.execute(ddl)


async def _comuni(conn, ambito_id: uuid.UUID, code: str) -> list[Comune]:
    comuni = [Comune(r["id"], r["code"], r["name"], r["belfiore_code"], r["population_estimate"])
              for r in await conn.fetch(
                  "select id, code, name, belfiore_code, population_estimate from organisation "
                  "where ambito_id = $1 and kind = 'comune' and active order by code", ambito_id)]
    if not comuni:
        raise RuntimeError(f"the Ambito {code} has no comuni: run `python -m api load-reference` first")
    return comuni


async def _ensure_region(url: str, conn, k: int) -> list[str]:
    """Load the generated Ambiti of a K-Ambiti region (idempotent); their codes in size-rank order, None at the
    real Ambito's rank."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from deploy.seed import region
    from domain.kernel.db import make_engine
    from domain.territory.reference import ReferenceDataError, load_ambito_docs

    taken = {r[0] for r in await conn.fetch(
        "select c.code from organisation c join organisation a on a.id = c.ambito_id "
        "where c.kind = 'comune' and a.code not like $1", region.SYNTHETIC_PREFIX + "%")}
    docs = region.synthetic_ambiti(k, taken_comuni=taken)
    engine = make_engine(url, pool_size=1)
    try:
        async with AsyncSession(engine, expire_on_commit=False, autoflush=False) as session:
            try:
                await load_ambito_docs(session, docs)
            except ReferenceDataError as e:
                raise RuntimeError(f"--ambiti {k}: {e} (a region of another size was seeded here before?)") from e
            await session.commit()
    finally:
        await engine.dispose()
    codes: list[str | None] = [d["ambito"]["code"] for d in docs]
    codes.insert(region.real_ambito_rank(k), None)
    return codes


async def seed(url: str, *, persons: int, ambito_code: str = "ambito-crema", seed_value: int = 42,
               batch: int = 50_000, analyze: bool = True, quiet: bool = False, ambiti: int = 1,
               defer_indexes: bool | None = None) -> SeedReport:
    """Add `persons` synthetic persons (and their open cartelle) to the Ambito `ambito_code`, or, with `ambiti`
    K > 1, spread them over K Ambiti (`ambito_code` at the real Ambito's size rank, see deploy/seed/region.py).
    `defer_indexes`: drop the secondary indexes and foreign keys for the load and build them after it; None
    decides by size (see the module's docstring)."""
    import asyncpg

    from deploy.seed import region

    if ambiti < 1:
        raise RuntimeError("--ambiti must be at least 1")
    started = time.perf_counter()
    report = SeedReport()
    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        ambito_id = await conn.fetchval(
            "select id from organisation where code = $1 and kind = 'ambito'", ambito_code)
        if ambito_id is None:
            raise RuntimeError(f"no Ambito with code {ambito_code}: run `python -m api load-reference` first")
        codes = await _ensure_region(url, conn, ambiti) if ambiti > 1 else [None]
        shares = region.split(persons, region.zipf_shares(ambiti))
        plan: list[tuple[str, uuid.UUID, int]] = []  # (code, id, persons) of each Ambito, largest first
        for code, n in zip(codes, shares, strict=True):
            if n > 0:
                aid = ambito_id if code is None else await conn.fetchval(
                    "select id from organisation where code = $1 and kind = 'ambito'", code)
                plan.append((code or ambito_code, aid, n))
        await _check_columns(conn, "person", PERSON_COLUMNS)
        await _check_columns(conn, "cartella", CARTELLA_COLUMNS)
        if defer_indexes is None:
            have = await conn.fetchval(
                "select greatest(reltuples, 0)::bigint from pg_class where oid = 'person'::regclass")
            defer_indexes = persons >= max(DEFER_INDEXES_FROM, have)
        now = clock.now().astimezone(UTC)
        today = clock.today_rome()
        async with conn.transaction():
            restore = await _drop_secondary(conn) if defer_indexes else []
            done = 0
            copying: asyncio.Task | None = None
            for i, (code, aid, n_ambito) in enumerate(plan):
                if copying is not None:  # the connection runs one statement at a time
                    await copying
                    copying = None
                taken = {r[0] for r in await conn.fetch(
                    "select codice_fiscale from person where ambito_id = $1 and codice_fiscale is not null", aid)}
                gen = Generator(ambito_id=aid, comuni=await _comuni(conn, aid, code), seed=seed_value + i,
                                taken_cf=taken, today=today, now=now)
                if i == 0:
                    report.weights = gen.weights_source
                report.by_ambito[code] = n_ambito
                left = n_ambito
                while left > 0:
                    n = min(batch, left)
                    left -= n
                    t0 = time.perf_counter()
                    prows, meta, crows = await asyncio.to_thread(_generate, gen, n)
                    report.generate_s += time.perf_counter() - t0
                    if copying is not None:
                        await copying
                    copying = asyncio.create_task(_copy(conn, prows, crows, report))
                    done += n
                    _count(report, meta, crows)
                    if not quiet and persons > batch:
                        print(f"  {done:>9,} persons  ({time.perf_counter() - started:6.1f} s)", flush=True)
            if copying is not None:
                await copying
            if restore:
                t4 = time.perf_counter()
                await _restore_secondary(conn, restore)
                report.index_s = time.perf_counter() - t4
                if not quiet:
                    print(f"  indexes and foreign keys built ({report.index_s:.1f} s)", flush=True)
        if analyze:
            t3 = time.perf_counter()
            for table in BULK_TABLES:
                try:
                    await conn.execute(f"ANALYZE {table}")
                except asyncpg.PostgresError:  # not the owner: statistics come with autovacuum
                    pass
            report.analyze_s = time.perf_counter() - t3
    finally:
        await conn.close()
    report.elapsed_s = time.perf_counter() - started
    return report


def _generate(gen: Generator, n: int) -> tuple[list[tuple], list[dict[str, Any]], list[tuple]]:
    prows, meta = gen.persons(n)
    return prows, meta, gen.cartelle(meta)


async def _copy(conn, prows: list[tuple], crows: list[tuple], report: SeedReport) -> None:
    t0 = time.perf_counter()
    await conn.copy_records_to_table("person", records=prows, columns=PERSON_COLUMNS)
    await conn.copy_records_to_table("cartella", records=crows, columns=CARTELLA_COLUMNS)
    report.copy_s += time.perf_counter() - t0


def _count(report: SeedReport, meta: list[dict[str, Any]], crows: list[tuple]) -> None:
    report.persons += len(meta)
    report.cartelle += len(crows)
    for r in crows:
        report.by_area[r[3]] = report.by_area.get(r[3], 0) + 1
    report.homeless += sum(m["homeless"] for m in meta)
    report.foreign += sum(m["foreign"] for m in meta)
    report.minors += sum(m["age"] < 18 for m in meta)
    report.over_65 += sum(m["age"] >= 65 for m in meta)


def format_report(r: SeedReport) -> str:
    lines = [
        f"persons: {r.persons:,} (minors {r.minors:,}, over 65 {r.over_65:,}, foreign {r.foreign:,}, "
        f"homeless {r.homeless:,}; comune weights: {r.weights})",
        f"cartelle: {r.cartelle:,} open",
    ]
    for area in OPEN_CARTELLE_2023:
        n = r.by_area.get(area, 0)
        share = n / r.cartelle if r.cartelle else 0.0
        lines.append(f"  {area:<27} {n:>9,}  {share:6.1%}")
    if len(r.by_ambito) > 1:
        sizes = sorted(r.by_ambito.values(), reverse=True)
        lines.append(f"ambiti: {len(sizes)} (largest {sizes[0]:,}, median {sizes[len(sizes) // 2]:,}, "
                     f"smallest {sizes[-1]:,} persons)")
    lines.append(f"elapsed: {r.elapsed_s:.1f} s (generate {r.generate_s:.1f} s and copy {r.copy_s:.1f} s, "
                 f"overlapped; indexes {r.index_s:.1f} s, analyze {r.analyze_s:.1f} s)")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m api seed", description="Synthetic persons and cartelle")
    p.add_argument("--persons", type=int, required=True)
    p.add_argument("--ambito", default="ambito-crema")
    p.add_argument("--ambiti", type=int, default=1,
                   help="spread the persons over this many Ambiti: --ambito and K-1 generated ones (Lombardy)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--batch", type=int, default=50_000)
    p.add_argument("--database-url", default=None, help="default: MIGRATION_DATABASE_URL, else DATABASE_URL")
    a = p.parse_args(argv)
    if a.persons <= 0:
        p.error("--persons must be positive")
    if a.ambiti < 1:
        p.error("--ambiti must be at least 1")
    from domain.kernel.settings import get_settings

    url = a.database_url or get_settings().owner_database_url
    try:
        report = asyncio.run(seed(url, persons=a.persons, ambito_code=a.ambito, seed_value=a.seed, batch=a.batch,
                                  ambiti=a.ambiti))
    except RuntimeError as e:
        print(f"seed: {e}", file=sys.stderr)
        return 1
    print(format_report(report))
    return 0
