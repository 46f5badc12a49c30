"""Indicator definitions as data: one YAML file per indicator under schemas/reference/indicators/, loaded once and
checked against the vocabulary of its source (domain/reporting/sources.py). A definition that names an unknown
source, event or condition, or lacks its Italian title, fails the load: a wrong file is found at start-up, not when
someone asks for the number."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from domain.reporting import sources

DEFINITIONS_DIR = Path(__file__).resolve().parents[2] / "schemas" / "reference" / "indicators"
READINGS = ("same_period", "cohort", "event_date")
GROUPINGS = ("ambito", "sub_ambito", "comune", "area", "udo_type", "urgency", "trigger")
TERRITORY = ("ambito", "sub_ambito", "comune")
KINDS = ("ratio", "count", "snapshot", "duration")
UNITS = ("percent", "ratio", "count", "days")
STATISTICS = {"median": 0.5, "p90": 0.9, "mean": None}  # a percentile's fraction; None: the arithmetic mean
OPS = (">", ">=", "<", "<=")


class DefinitionError(ValueError):
    pass


@dataclass(frozen=True)
class Part:
    label: str
    where: tuple[str, ...]
    event: str | None = None


@dataclass(frozen=True)
class Target:
    op: str
    value: float

    def met(self, value: float) -> bool:
        return {">": value > self.value, ">=": value >= self.value, "<": value < self.value,
                "<=": value <= self.value}[self.op]

    @property
    def label(self) -> str:
        return f"{self.op} {self.value:.0%}".replace(">=", "≥").replace("<=", "≤")


@dataclass(frozen=True)
class Definition:
    code: str
    title: str
    seed: str
    source: str
    kind: str
    counts: str
    unit: str
    population: str
    start_event: str
    numerator: Part
    denominator: Part | None
    default_reading: str
    stratifications: tuple[str, ...]
    reference: str
    limit: timedelta | None = None
    limit_in_days: bool = False  # calendar days (Europe/Rome dates) rather than elapsed hours
    duration: str | None = None  # kind duration: the source's duration measured ...
    statistic: str | None = None  # ... and the statistic reported (median, p90)
    targets: dict[int, Target] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)  # what the source's conditions read (excluded_triggers)

    def target(self, year: int) -> Target | None:
        return self.targets.get(year)

    @property
    def is_duration(self) -> bool:
        return self.limit is not None


def _part(raw: Any, where: str, src: sources.Source, *, needs_event: bool) -> Part:
    if not isinstance(raw, dict) or not raw.get("label"):
        raise DefinitionError(f"{where}: needs a label")
    conds = tuple(raw.get("where") or ())
    for c in conds:
        if c not in src.conditions:
            raise DefinitionError(f"{where}: unknown condition {c!r} for source {src.name}")
    event = raw.get("event")
    if event is not None and event not in src.events:
        raise DefinitionError(f"{where}: unknown event {event!r} for source {src.name}")
    if needs_event and event is None:
        raise DefinitionError(f"{where}: the numerator needs the event that completes it")
    return Part(str(raw["label"]), conds, event)


def parse(raw: dict[str, Any], *, name: str = "?") -> Definition:
    """One definition from its YAML mapping, checked."""
    def need(key: str) -> Any:
        if raw.get(key) in (None, ""):
            raise DefinitionError(f"{name}: missing {key}")
        return raw[key]

    code, src_name = str(need("code")), str(need("source"))
    if not re.fullmatch(r"[A-Z][A-Z0-9-]{0,30}", code):  # it is part of a FHIR id (MeasureReport/<code>-<year>)
        raise DefinitionError(f"{name}: code {code!r} must be capitals, digits and '-'")
    if src_name not in sources.SOURCES:
        raise DefinitionError(f"{name}: unknown source {src_name!r}")
    src = sources.source(src_name)
    kind, unit, counts = need("kind"), need("unit"), need("counts")
    if kind not in KINDS or unit not in UNITS or counts not in ("items", "persons"):
        raise DefinitionError(f"{name}: kind, unit or counts not allowed")
    start = need("start_event")
    if start not in src.events:
        raise DefinitionError(f"{name}: unknown start_event {start!r}")
    numerator = _part(need("numerator"), f"{name}.numerator", src, needs_event=True)
    denominator = None
    if kind == "ratio":
        denominator = _part(need("denominator"), f"{name}.denominator", src, needs_event=False)
    reading = raw.get("default_reading", "same_period")
    if reading not in READINGS:
        raise DefinitionError(f"{name}: unknown default_reading {reading!r}")
    strat = tuple(raw.get("stratifications") or ())
    if any(s not in GROUPINGS or (s not in TERRITORY and s not in src.dims) for s in strat):
        raise DefinitionError(f"{name}: stratification not available for source {src_name}")
    duration = statistic = None
    if kind == "duration":
        duration, statistic = need("duration"), need("statistic")
        if duration not in src.durations or statistic not in STATISTICS:
            raise DefinitionError(f"{name}: unknown duration or statistic ({', '.join(STATISTICS)})")
    limit = None
    if raw.get("limit"):
        lim = raw["limit"]
        limit = timedelta(hours=lim["hours"]) if "hours" in lim else timedelta(days=int(lim["days"]))
    targets: dict[int, Target] = {}
    for year, t in (raw.get("targets") or {}).items():
        if t.get("op") not in OPS or not 0 <= float(t.get("value", -1)) <= 1:
            raise DefinitionError(f"{name}: target {year} needs op in {OPS} and a value between 0 and 1")
        targets[int(year)] = Target(t["op"], float(t["value"]))
    return Definition(
        code=code, title=str(need("title")), seed=str(need("seed")), source=src_name, kind=kind, counts=counts,
        unit=unit, population=str(need("population")), start_event=start, numerator=numerator,
        denominator=denominator, default_reading=reading, stratifications=strat, reference=str(need("reference")),
        limit=limit, limit_in_days=bool(raw.get("limit") and "days" in raw["limit"]), duration=duration,
        statistic=statistic, targets=targets, params=dict(raw.get("params") or {}))


@lru_cache
def registry() -> dict[str, Definition]:
    """Every definition by code, in the report's order."""
    out: dict[str, Definition] = {}
    # the order of the report: PUA, VMD, protected discharges, the LEPS ratio, waiting lists, waiting times, cartelle
    for path in sorted(DEFINITIONS_DIR.glob("*.yaml"), key=lambda p: ("PUVDLSMRAC".find(p.stem[0]), p.stem)):
        d = parse(yaml.safe_load(path.read_text()), name=path.name)
        if d.code != path.stem:
            raise DefinitionError(f"{path.name}: code {d.code!r} differs from the file name")
        out[d.code] = d
    return out


def codes() -> list[str]:
    return list(registry())
