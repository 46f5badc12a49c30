"""Assessment instruments as versioned data.

Each instrument version is one YAML file, schemas/instruments/<code>/<version>.yaml, validated against
schemas.instruments.InstrumentDefinition when the registry is loaded (a broken file fails loudly, naming the file
and the offending path). Adding an instrument or a version is adding a file: no code change.

Pure Python, no database: the assessment service stores `(code, version, answers)` and calls
`ensure_accepts_answers` + `validate_answers` + `score` (or `submit`, which does the three).
Retired versions stay readable and scoreable, so answers stored under them keep their meaning.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from domain.kernel.errors import Conflict, Invalid, NotFound
from domain.kernel.settings import get_settings
from schemas.instruments import (
    AllOf,
    AnswerType,
    AnyOf,
    BandResult,
    InstrumentDefinition,
    InstrumentStatus,
    Item,
    ItemCondition,
    MatchedRule,
    Not,
    OutcomeCondition,
    OutcomeResult,
    ScoreCondition,
    ScoreResult,
    ScoreValue,
    ScoringRule,
    dec,
)

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "schemas" / "instruments"
_VERSION_FILE = re.compile(r"^([1-9][0-9]*)\.ya?ml$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

__all__ = [
    "DEFAULT_DIR", "InstrumentDefinitionError", "InstrumentRegistry", "parse_definition", "load_file",
    "load_registry", "registry", "use_directories", "get", "latest_active", "ensure_accepts_answers",
    "validate_answers", "score", "submit",
]


# ================================================================================================ loading

class InstrumentDefinitionError(ValueError):
    """A definition file is malformed. `problems` lists `path: reason` strings."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"invalid instrument definition {source}: " + "; ".join(problems))


_CONDITION_TAGS = ("any", "all", "not", "item", "score", "outcome")


def _loc_path(raw: Any, loc: Sequence[Any]) -> str:
    """Readable path of a pydantic error location: list indexes become the element's id/code when it has one,
    and the discriminator tags pydantic inserts for conditions are dropped."""
    parts: list[str] = []
    node: Any = raw
    tag_skipped: Any = None
    for p in loc:
        if isinstance(p, int) and isinstance(node, list) and 0 <= p < len(node):
            node = node[p]
            label = (node.get("id") or node.get("code")) if isinstance(node, dict) else None
            parts.append(str(label) if isinstance(label, str) else str(p))
            continue
        if (isinstance(node, dict) and p in _CONDITION_TAGS and tag_skipped is not node
                and [k for k in _CONDITION_TAGS if k in node] == [p]):
            tag_skipped = node
            continue
        if isinstance(node, dict) and p in node:
            node = node[p]
        else:
            node = None
        parts.append(str(p))
    return ".".join(parts)


def _problems(raw: Any, exc: ValidationError) -> list[str]:
    out: list[str] = []
    for e in exc.errors():
        msg = str(e.get("msg", "invalid"))
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        where = _loc_path(raw, e.get("loc", ()))
        if e.get("type") == "extra_forbidden":
            msg = "unknown key"
        elif e.get("type") == "missing":
            msg = "required key missing"
        elif e.get("type") == "enum":
            kind = "answer type" if list(e.get("loc", ()))[-1:] == ["type"] else "value"
            msg = f"unknown {kind} {e.get('input')!r} (allowed: {e.get('ctx', {}).get('expected', '?')})"
        for line in msg.split("\n"):
            out.append(f"{where}: {line}" if where else line)
    return out


def parse_definition(data: Any, *, source: str = "<definition>") -> InstrumentDefinition:
    """Validate one definition (the parsed YAML document) or raise InstrumentDefinitionError."""
    if not isinstance(data, dict):
        raise InstrumentDefinitionError(source, ["the document must be a mapping (code, version, title, ...)"])
    try:
        return InstrumentDefinition.model_validate(data)
    except ValidationError as exc:
        raise InstrumentDefinitionError(source, _problems(data, exc)) from None


def load_file(path: Path) -> InstrumentDefinition:
    """Load schemas/instruments/<code>/<version>.yaml; the code and version in the file must match its path."""
    path = Path(path)
    source = f"{path.parent.name}/{path.name}"
    m = _VERSION_FILE.match(path.name)
    if not m:
        raise InstrumentDefinitionError(source, ["file name must be <version>.yaml with a positive integer version"])
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InstrumentDefinitionError(source, [f"not valid YAML: {exc}"]) from None
    definition = parse_definition(data, source=source)
    problems = []
    if definition.code != path.parent.name:
        problems.append(f"code: '{definition.code}' differs from its directory '{path.parent.name}'")
    if definition.version != int(m.group(1)):
        problems.append(f"version: {definition.version} differs from the file name '{path.name}'")
    if problems:
        raise InstrumentDefinitionError(source, problems)
    return definition


def _definition_files(directory: Path) -> list[Path]:
    directory = Path(directory)
    if not directory.is_dir():
        raise InstrumentDefinitionError(str(directory), ["instrument directory does not exist"])
    files: list[Path] = []
    for entry in sorted(directory.iterdir()):
        if entry.is_dir() and not entry.name.startswith((".", "_")):
            files += sorted(p for p in entry.iterdir() if p.suffix in (".yaml", ".yml"))
        elif entry.suffix in (".yaml", ".yml"):
            raise InstrumentDefinitionError(entry.name, ["definitions live in <code>/<version>.yaml, not at the top"])
    return files


class InstrumentRegistry:
    """All known definitions keyed by (code, version)."""

    def __init__(self, definitions: Iterable[InstrumentDefinition] = ()):
        self._defs: dict[tuple[str, int], InstrumentDefinition] = {}
        for d in definitions:
            if d.key in self._defs:
                raise InstrumentDefinitionError(f"{d.code}/{d.version}.yaml", ["defined twice (two directories?)"])
            self._defs[d.key] = d

    def __len__(self) -> int:
        return len(self._defs)

    def __iter__(self):
        return iter(sorted(self._defs.values(), key=lambda d: d.key))

    def __contains__(self, key: object) -> bool:
        return key in self._defs

    def codes(self) -> list[str]:
        return sorted({c for c, _ in self._defs})

    def versions(self, code: str) -> list[InstrumentDefinition]:
        """Every version of `code`, oldest first (retired ones included)."""
        found = sorted((d for d in self._defs.values() if d.code == code), key=lambda d: d.version)
        if not found:
            raise NotFound(f"Strumento di valutazione '{code}' non trovato", instrument=code)
        return found

    def get(self, code: str, version: int | None = None) -> InstrumentDefinition:
        """A given version (active or retired), or the latest active one when `version` is None."""
        if version is None:
            return self.latest_active(code)
        d = self._defs.get((code, version))
        if d is None:
            self.versions(code)  # NotFound for an unknown code
            raise NotFound(f"Versione {version} dello strumento '{code}' non trovata", instrument=code,
                           version=version)
        return d

    def latest_active(self, code: str) -> InstrumentDefinition:
        active = [d for d in self.versions(code) if d.status is InstrumentStatus.active]
        if not active:
            raise NotFound(f"Lo strumento '{code}' non ha versioni attive", instrument=code)
        return active[-1]


def load_registry(*extra_dirs: Path, include_default: bool = True) -> InstrumentRegistry:
    """Read every definition of the default directory (unless excluded) and of `extra_dirs`. Not cached."""
    dirs = ([DEFAULT_DIR] if include_default else []) + [Path(d) for d in extra_dirs]
    return InstrumentRegistry(load_file(p) for d in dirs for p in _definition_files(d))


_extra_dirs: tuple[Path, ...] = ()


def _configured_extra_dirs() -> tuple[Path, ...]:
    return tuple(Path(p) for p in get_settings().instruments_extra_dirs) + _extra_dirs


@lru_cache(maxsize=1)
def registry() -> InstrumentRegistry:
    """The process-wide registry (default directory + configured extra directories), loaded once."""
    return load_registry(*_configured_extra_dirs())


def use_directories(*extra_dirs: Path) -> None:
    """Add directories of definitions besides schemas/instruments/ (replacing earlier ones) and reload lazily."""
    global _extra_dirs
    _extra_dirs = tuple(Path(d) for d in extra_dirs)
    registry.cache_clear()


def get(code: str, version: int | None = None) -> InstrumentDefinition:
    return registry().get(code, version)


def latest_active(code: str) -> InstrumentDefinition:
    return registry().latest_active(code)


# ================================================================================================ answers

def ensure_accepts_answers(definition: InstrumentDefinition) -> None:
    """New answers are only taken by active versions; retired ones stay readable and scoreable."""
    if definition.status is not InstrumentStatus.active:
        raise Conflict(
            f"Lo strumento '{definition.title}' ({definition.code}) versione {definition.version} è una versione "
            f"ritirata: non accetta nuove compilazioni; usare la versione attiva più recente",
            instrument=definition.code, version=definition.version,
        )


def _value_problem(item: Item, value: Any) -> str | None:
    t = item.type
    if t is AnswerType.boolean:
        return None if isinstance(value, bool) else "deve essere vero o falso"
    if t is AnswerType.integer:
        if isinstance(value, bool) or not isinstance(value, int):
            return "deve essere un numero intero"
        if item.min is not None and item.max is not None and not item.min <= value <= item.max:
            return f"deve essere compreso tra {item.min} e {item.max}"
        if item.min is not None and value < item.min:
            return f"deve essere almeno {item.min}"
        if item.max is not None and value > item.max:
            return f"deve essere al massimo {item.max}"
        return None
    allowed = ", ".join(o.code for o in item.options)
    if t is AnswerType.single_choice:
        if not isinstance(value, str):
            return f"deve essere il codice di un'opzione ({allowed})"
        return None if item.option(value) else f"opzione sconosciuta '{value}' (ammesse: {allowed})"
    if t is AnswerType.multiple_choice:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            return f"deve essere un elenco di codici di opzione ({allowed})"
        unknown = [v for v in value if item.option(v) is None]
        if unknown:
            return f"opzioni sconosciute {unknown} (ammesse: {allowed})"
        if len(set(value)) != len(value):
            return "opzioni ripetute"
        if item.min_selected is not None and len(value) < item.min_selected:
            return f"selezionare almeno {item.min_selected} opzioni"
        if item.max_selected is not None and len(value) > item.max_selected:
            return f"selezionare al massimo {item.max_selected} opzioni"
        return None
    if t is AnswerType.text:
        if not isinstance(value, str):
            return "deve essere un testo"
        return f"testo troppo lungo (massimo {item.max_length} caratteri)" if len(value) > item.max_length else None
    # date
    if isinstance(value, date) and not isinstance(value, datetime):
        return None
    if isinstance(value, str) and _ISO_DATE.match(value):
        try:
            date.fromisoformat(value)
            return None
        except ValueError:
            pass
    return "deve essere una data nel formato AAAA-MM-GG"


def validate_answers(definition: InstrumentDefinition, answers: Any, *, partial: bool = False) -> None:
    """Raise Invalid (several errors: Invalid.many) with fields `answers.<item id>`.

    `partial=True` skips the required-item check (drafts); every given answer is still checked.
    An optional item may be omitted or null; a blank text counts as not answered."""
    if not isinstance(answers, Mapping):
        raise Invalid("answers", "deve essere un oggetto {voce: risposta}")
    errors: list[tuple[str, str]] = []
    for item in definition.items:
        value = answers.get(item.id)
        if value is None or (item.type is AnswerType.text and isinstance(value, str) and not value.strip()):
            if item.required and not partial:
                errors.append((f"answers.{item.id}", "risposta obbligatoria"))
            continue
        problem = _value_problem(item, value)
        if problem:
            errors.append((f"answers.{item.id}", problem))
    for key in answers:
        if not isinstance(key, str) or definition.item(key) is None:
            errors.append((f"answers.{key}", f"voce non prevista dallo strumento {definition.code} "
                                             f"versione {definition.version}"))
    if not errors:  # contradictions are judged on answers that are each valid
        for c in definition.constraints:
            if _holds(c.when, answers, {}, {}):
                errors += [(f"answers.{item}", c.label) for item in c.items]
    if errors:
        raise Invalid.many(errors)


# ================================================================================================ scoring

def _points(item: Item, value: Any) -> Decimal:
    if value is None:
        return Decimal(0)
    t = item.type
    if t is AnswerType.single_choice:
        return dec(item.option(value).points)  # type: ignore[union-attr,arg-type]
    if t is AnswerType.multiple_choice:
        return sum((dec(item.option(v).points) for v in value), Decimal(0))  # type: ignore[union-attr,arg-type]
    if t is AnswerType.integer:
        return Decimal(value)
    return dec(item.points_true if value else item.points_false)


def _number(rule: ScoringRule, x: Decimal) -> int | float:
    return int(x) if rule.decimals == 0 else float(x)


def _holds(c: Any, answers: Mapping[str, Any], scores: dict[str, tuple[Decimal, str | None]],
           outcomes: dict[str, str]) -> bool:
    if isinstance(c, AnyOf):
        return any(_holds(x, answers, scores, outcomes) for x in c.any_)
    if isinstance(c, AllOf):
        return all(_holds(x, answers, scores, outcomes) for x in c.all_)
    if isinstance(c, Not):
        return not _holds(c.not_, answers, scores, outcomes)
    if isinstance(c, OutcomeCondition):
        return outcomes.get(c.outcome) == c.equals
    if isinstance(c, ScoreCondition):
        value, band = scores[c.score]
        if c.band_in is not None:
            return band in c.band_in
        if c.at_least is not None:
            return value >= dec(c.at_least)
        return value <= dec(c.at_most)  # type: ignore[arg-type]
    assert isinstance(c, ItemCondition)
    v = answers.get(c.item)
    if v is None:
        return False
    if c.includes_any is not None:
        return any(x in v for x in c.includes_any)
    if c.includes_all is not None:
        return all(x in v for x in c.includes_all)
    if c.in_ is not None:
        return v in c.in_
    if c.at_least is not None:
        return dec(v) >= dec(c.at_least)
    if c.at_most is not None:
        return dec(v) <= dec(c.at_most)
    return type(v) is type(c.equals) and v == c.equals


def score(definition: InstrumentDefinition, answers: Mapping[str, Any]) -> ScoreResult:
    """Named scores (with band), then derived outcomes in declaration order. Validates the answers first.

    Works for retired versions too (stored answers keep their score). Unanswered optional items add 0."""
    validate_answers(definition, answers)
    result = ScoreResult(instrument=definition.code, version=definition.version)
    ctx: dict[str, tuple[Decimal, str | None]] = {}
    for rule in definition.scores:
        total = sum((_points(it, answers.get(it.id)) * rule.weight_of(it.id) for it in definition.score_items(rule)),
                    Decimal(0))
        total = rule.quantize(total)
        lo, hi = definition.score_range(rule)
        band = next((b for b in rule.bands if dec(b.min) <= total <= dec(b.max)), None)
        ctx[rule.code] = (total, band.code if band else None)
        result.scores[rule.code] = ScoreValue(
            code=rule.code, label=rule.label, value=_number(rule, total), min=_number(rule, lo),
            max=_number(rule, hi), band=BandResult(code=band.code, label=band.label) if band else None,
        )
    decided: dict[str, str] = {}
    for out in definition.outcomes:
        matched = [r for r in out.rules if _holds(r.when, answers, ctx, decided)]
        value = matched[0].result if matched else out.default
        decided[out.code] = value
        result.outcomes[out.code] = OutcomeResult(
            code=out.code, label=out.label, value=value, value_label=out.value(value).label,
            reasons=[MatchedRule(code=r.code, label=r.label) for r in matched if r.result == value],
        )
    return result


def submit(definition: InstrumentDefinition, answers: Mapping[str, Any]) -> ScoreResult:
    """A new compilation: the version must be active, the answers complete and valid; returns the scores."""
    ensure_accepts_answers(definition)
    return score(definition, answers)
