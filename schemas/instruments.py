"""Contracts of assessment instruments (data files under schemas/instruments/<code>/<version>.yaml) and of their
scoring results. The engine lives in domain/assessment/instruments.py; a definition is validated here, structurally
and for consistency (bands that overlap or leave gaps, options without points where a score needs them, conditions
that name unknown items...), so a bad file fails at load with a message naming the offending path."""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

Number = int | float
CODE_PATTERN = r"^[a-z][a-z0-9_]*$"
Code = Annotated[str, Field(pattern=CODE_PATTERN, max_length=60)]  # instrument_response.instrument_code is 60


class AnswerType(StrEnum):
    single_choice = "single_choice"
    multiple_choice = "multiple_choice"
    integer = "integer"
    boolean = "boolean"
    text = "text"
    date = "date"


SCOREABLE = frozenset({AnswerType.single_choice, AnswerType.multiple_choice, AnswerType.integer, AnswerType.boolean})
CHOICE = frozenset({AnswerType.single_choice, AnswerType.multiple_choice})


class AssessmentDomain(StrEnum):
    functional = "functional"
    cognitive = "cognitive"
    health = "health"
    social_network = "social_network"
    caregiver = "caregiver"
    housing = "housing"
    economic = "economic"


class InstrumentStatus(StrEnum):
    active = "active"
    retired = "retired"


class ScoringMethod(StrEnum):
    sum = "sum"
    weighted = "weighted"


class _Def(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def dec(x: Number) -> Decimal:
    """Exact decimal of a YAML/JSON number (0.1 stays 0.1)."""
    return x if isinstance(x, Decimal) else Decimal(str(x))


def fmt(x: Number | Decimal) -> str:
    d = dec(x).normalize()
    return format(d, "f")


# ---------------------------------------------------------------------------------------------- items

class Option(_Def):
    code: Code
    label: str = Field(min_length=1)
    points: Number | None = None


class Item(_Def):
    id: Code
    label: str = Field(min_length=1)
    type: AnswerType
    required: bool = True
    domain: AssessmentDomain | None = None
    help: str | None = None
    options: list[Option] = Field(default_factory=list)
    # multiple_choice: how many options may be ticked (0 = "none of these" is a valid answer)
    min_selected: int | None = Field(default=None, ge=0)
    max_selected: int | None = Field(default=None, ge=1)
    # integer: inclusive range
    min: int | None = None
    max: int | None = None
    # boolean: points when scored
    points_true: Number = 1
    points_false: Number = 0
    # text
    max_length: int = Field(default=2000, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> Item:
        t = self.type
        if t in CHOICE:
            if len(self.options) < (2 if t is AnswerType.single_choice else 1):
                raise ValueError(f"item '{self.id}': a {t.value} item needs options")
            codes = [o.code for o in self.options]
            dup = sorted({c for c in codes if codes.count(c) > 1})
            if dup:
                raise ValueError(f"item '{self.id}': duplicate option codes {dup}")
        elif self.options:
            raise ValueError(f"item '{self.id}': options are only allowed on single_choice/multiple_choice items")
        if t is not AnswerType.multiple_choice and (self.min_selected is not None or self.max_selected is not None):
            raise ValueError(f"item '{self.id}': min_selected/max_selected are only allowed on multiple_choice items")
        if t is AnswerType.multiple_choice:
            lo, hi = self.min_selected or 0, self.max_selected
            if hi is not None and (hi < lo or hi > len(self.options)):
                raise ValueError(f"item '{self.id}': max_selected must be between min_selected and the option count")
            if lo > len(self.options):
                raise ValueError(f"item '{self.id}': min_selected exceeds the option count")
        if t is not AnswerType.integer and (self.min is not None or self.max is not None):
            raise ValueError(f"item '{self.id}': min/max are only allowed on integer items")
        if t is AnswerType.integer and self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"item '{self.id}': min ({self.min}) is greater than max ({self.max})")
        if t is not AnswerType.boolean and {"points_true", "points_false"} & self.model_fields_set:
            raise ValueError(f"item '{self.id}': points_true/points_false are only allowed on boolean items")
        return self

    def option(self, code: str) -> Option | None:
        return next((o for o in self.options if o.code == code), None)

    def point_range(self) -> tuple[Decimal, Decimal]:
        """Lowest and highest points this item can contribute (unanswered optional items contribute 0)."""
        t = self.type
        if t is AnswerType.single_choice:
            pts = [dec(o.points) for o in self.options]  # type: ignore[arg-type]
            lo, hi = min(pts), max(pts)
        elif t is AnswerType.multiple_choice:
            pts = sorted(dec(o.points) for o in self.options)  # type: ignore[arg-type]
            ks = range(self.min_selected or 0, (self.max_selected or len(pts)) + 1)
            lo = min(sum(pts[:k], Decimal(0)) for k in ks)
            hi = max(sum(pts[len(pts) - k:], Decimal(0)) for k in ks)
        elif t is AnswerType.integer:
            lo, hi = Decimal(self.min), Decimal(self.max)  # type: ignore[arg-type]
        else:
            lo, hi = sorted((dec(self.points_true), dec(self.points_false)))
        if not self.required:
            lo, hi = min(lo, Decimal(0)), max(hi, Decimal(0))
        return lo, hi


# ---------------------------------------------------------------------------------------------- scores

class Band(_Def):
    """A closed interval [min, max] of a score, at the score's resolution (`decimals`)."""

    code: Code
    label: str = Field(min_length=1)
    min: Number
    max: Number


class ScoringRule(_Def):
    code: Code
    label: str = Field(min_length=1)
    method: ScoringMethod = ScoringMethod.sum
    # sum: items added up (default: every single_choice/multiple_choice/integer/boolean item)
    items: list[Code] | None = None
    # weighted: item -> weight; the items are the keys
    weights: dict[Code, Number] | None = None
    decimals: int = Field(default=0, ge=0, le=4)
    bands: list[Band] = Field(default_factory=list)

    @model_validator(mode="after")
    def _method(self) -> ScoringRule:
        if self.method is ScoringMethod.weighted:
            if not self.weights:
                raise ValueError(f"score '{self.code}': method 'weighted' needs 'weights' (item: weight)")
            if self.items is not None:
                raise ValueError(f"score '{self.code}': a weighted score takes its items from 'weights'; drop 'items'")
        elif self.weights is not None:
            raise ValueError(f"score '{self.code}': 'weights' is only allowed with method 'weighted'")
        return self

    @property
    def step(self) -> Decimal:
        return Decimal(1).scaleb(-self.decimals)

    def quantize(self, x: Decimal) -> Decimal:
        return x.quantize(self.step, rounding=ROUND_HALF_UP)

    def weight_of(self, item_id: str) -> Decimal:
        return dec(self.weights[item_id]) if self.weights else Decimal(1)


# ---------------------------------------------------------------------------------------------- conditions
# Expression-free rule language: a condition is a small tree of any / all / not over leaf tests on one item's
# answer, one score (value or band) or an outcome computed earlier in the same definition.

class ItemCondition(_Def):
    """Exactly one operator. An unanswered item satisfies no test (so `not` of it is true)."""

    item: Code
    equals: bool | int | str | None = None
    in_: list[int | str] | None = Field(default=None, alias="in")
    includes_any: list[str] | None = None
    includes_all: list[str] | None = None
    at_least: Number | None = None
    at_most: Number | None = None

    @model_validator(mode="after")
    def _one(self) -> ItemCondition:
        ops = self.operators()
        if len(ops) != 1:
            raise ValueError(f"condition on item '{self.item}' needs exactly one of equals, in, includes_any, "
                             f"includes_all, at_least, at_most (got {sorted(ops) or 'none'})")
        if "equals" in ops and self.equals is None:
            raise ValueError(f"condition on item '{self.item}': 'equals' cannot be null")
        return self

    def operators(self) -> set[str]:
        return {("in" if f == "in_" else f) for f in self.model_fields_set} - {"item"}


class ScoreCondition(_Def):
    score: Code
    at_least: Number | None = None
    at_most: Number | None = None
    band_in: list[Code] | None = None

    @model_validator(mode="after")
    def _one(self) -> ScoreCondition:
        ops = self.model_fields_set - {"score"}
        if len(ops) != 1:
            raise ValueError(f"condition on score '{self.score}' needs exactly one of at_least, at_most, band_in")
        return self


class OutcomeCondition(_Def):
    outcome: Code
    equals: Code


class AnyOf(_Def):
    any_: list[Condition] = Field(alias="any", min_length=1)


class AllOf(_Def):
    all_: list[Condition] = Field(alias="all", min_length=1)


class Not(_Def):
    not_: Condition = Field(alias="not")


_CONDITION_KEYS = ("any", "all", "not", "item", "score", "outcome")


def _condition_kind(v: Any) -> str | None:
    if isinstance(v, dict):
        keys = [k for k in _CONDITION_KEYS if k in v]
        return keys[0] if len(keys) == 1 else None
    for cls, tag in ((AnyOf, "any"), (AllOf, "all"), (Not, "not"), (ItemCondition, "item"),
                     (ScoreCondition, "score"), (OutcomeCondition, "outcome")):
        if isinstance(v, cls):
            return tag
    return None


Condition = Annotated[
    Annotated[AnyOf, Tag("any")] | Annotated[AllOf, Tag("all")] | Annotated[Not, Tag("not")]
    | Annotated[ItemCondition, Tag("item")] | Annotated[ScoreCondition, Tag("score")]
    | Annotated[OutcomeCondition, Tag("outcome")],
    Discriminator(_condition_kind, custom_error_type="condition",
                  custom_error_message="a condition has exactly one of the keys any, all, not, item, score, outcome"),
]
AnyOf.model_rebuild()
AllOf.model_rebuild()
Not.model_rebuild()


class OutcomeValue(_Def):
    code: Code
    label: str = Field(min_length=1)


class OutcomeRule(_Def):
    """When `when` holds, the outcome is `result` (rules are tried in order; the first match decides)."""

    code: Code
    label: str = Field(min_length=1)
    when: Condition
    result: Code


class Constraint(_Def):
    """Answers that contradict each other (e.g. a "sole caregiver" where there is no caregiver): when `when` holds
    (item conditions only), the answers are refused, naming `answers.<item>` for each of `items` with `label` as
    the reason. Checked with the answers, before any score."""

    code: Code
    label: str = Field(min_length=1)
    when: Condition
    items: list[Code] = Field(min_length=1)


class Outcome(_Def):
    """A derived output, e.g. the triage outcome simple/complex."""

    code: Code
    label: str = Field(min_length=1)
    values: list[OutcomeValue] = Field(min_length=1)
    rules: list[OutcomeRule] = Field(default_factory=list)
    default: Code

    def value(self, code: str) -> OutcomeValue:
        return next(v for v in self.values if v.code == code)


# ---------------------------------------------------------------------------------------------- definition

def _mentions_scores_or_outcomes(c: Any) -> bool:
    if isinstance(c, AnyOf):
        return any(_mentions_scores_or_outcomes(x) for x in c.any_)
    if isinstance(c, AllOf):
        return any(_mentions_scores_or_outcomes(x) for x in c.all_)
    if isinstance(c, Not):
        return _mentions_scores_or_outcomes(c.not_)
    return isinstance(c, (ScoreCondition, OutcomeCondition))


class InstrumentDefinition(_Def):
    code: Code
    version: int = Field(ge=1)
    title: str = Field(min_length=1)
    status: InstrumentStatus
    domains: list[AssessmentDomain] = Field(min_length=1)
    description: str | None = None
    references: list[str] = Field(default_factory=list)
    changes: str | None = None
    items: list[Item] = Field(min_length=1)
    scores: list[ScoringRule] = Field(default_factory=list)
    outcomes: list[Outcome] = Field(default_factory=list)
    constraints: list[Constraint] = Field(default_factory=list)

    @property
    def key(self) -> tuple[str, int]:
        return self.code, self.version

    @property
    def is_active(self) -> bool:
        return self.status is InstrumentStatus.active

    def item(self, item_id: str) -> Item | None:
        return next((i for i in self.items if i.id == item_id), None)

    def scoring(self, code: str) -> ScoringRule | None:
        return next((s for s in self.scores if s.code == code), None)

    def score_items(self, rule: ScoringRule) -> list[Item]:
        if rule.weights is not None:
            ids = list(rule.weights)
        elif rule.items is not None:
            ids = rule.items
        else:
            return [i for i in self.items if i.type in SCOREABLE]
        return [i for i in (self.item(x) for x in ids) if i is not None]

    def score_range(self, rule: ScoringRule) -> tuple[Decimal, Decimal]:
        lo = hi = Decimal(0)
        for it in self.score_items(rule):
            a, b = it.point_range()
            w = rule.weight_of(it.id)
            a, b = sorted((a * w, b * w))
            lo, hi = lo + a, hi + b
        return rule.quantize(lo), rule.quantize(hi)

    # -- consistency of the whole file -------------------------------------------------------------
    @model_validator(mode="after")
    def _consistent(self) -> InstrumentDefinition:
        problems: list[str] = []
        ids = [i.id for i in self.items]
        for dup in sorted({x for x in ids if ids.count(x) > 1}):
            problems.append(f"items: duplicate item id '{dup}'")
        for it in self.items:
            if it.domain is not None and it.domain not in self.domains:
                problems.append(f"items.{it.id}.domain: '{it.domain.value}' is not among the instrument's domains "
                                f"{[d.value for d in self.domains]}")
        codes = [s.code for s in self.scores]
        for dup in sorted({x for x in codes if codes.count(x) > 1}):
            problems.append(f"scores: duplicate score code '{dup}'")
        for rule in self.scores:
            problems += self._check_score(rule)
        seen_outcomes: dict[str, Outcome] = {}
        for out in self.outcomes:
            problems += self._check_outcome(out, seen_outcomes)
            if out.code in seen_outcomes:
                problems.append(f"outcomes: duplicate outcome code '{out.code}'")
            seen_outcomes[out.code] = out
        constraint_codes = [c.code for c in self.constraints]
        for dup in sorted({x for x in constraint_codes if constraint_codes.count(x) > 1}):
            problems.append(f"constraints: duplicate constraint code '{dup}'")
        for c in self.constraints:
            where = f"constraints.{c.code}"
            problems += [f"{where}.items: unknown item '{i}'" for i in c.items if self.item(i) is None]
            if _mentions_scores_or_outcomes(c.when):
                problems.append(f"{where}.when: a constraint compares answers only (no scores or outcomes)")
            else:
                problems += self._check_condition(c.when, f"{where}.when", {})
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _check_score(self, rule: ScoringRule) -> list[str]:
        where = f"scores.{rule.code}"
        out: list[str] = []
        ids = list(rule.weights) if rule.weights is not None else (rule.items or [])
        for x in sorted({x for x in ids if ids.count(x) > 1}):
            out.append(f"{where}.items: item '{x}' listed twice")
        for x in ids:
            it = self.item(x)
            if it is None:
                out.append(f"{where}: unknown item '{x}'")
            elif it.type not in SCOREABLE:
                out.append(f"{where}: item '{x}' of type {it.type.value} cannot be scored")
        items = self.score_items(rule)
        if not items:
            out.append(f"{where}: no scoreable items")
        for it in items:
            if it.type in CHOICE:
                missing = [o.code for o in it.options if o.points is None]
                if missing:
                    out.append(f"{where}: item '{it.id}' is scored but options {missing} have no points")
            elif it.type is AnswerType.integer and (it.min is None or it.max is None):
                out.append(f"{where}: integer item '{it.id}' is scored but lacks min/max")
        if out:
            return out
        out += self._check_bands(rule, where)
        return out

    def _check_bands(self, rule: ScoringRule, where: str) -> list[str]:
        if not rule.bands:
            return []
        out: list[str] = []
        codes = [b.code for b in rule.bands]
        for dup in sorted({x for x in codes if codes.count(x) > 1}):
            out.append(f"{where}.bands: duplicate band code '{dup}'")
        for b in rule.bands:
            if dec(b.min) > dec(b.max):
                out.append(f"{where}.bands.{b.code}: min {fmt(b.min)} is greater than max {fmt(b.max)}")
            for v in (b.min, b.max):
                if rule.quantize(dec(v)) != dec(v):
                    out.append(f"{where}.bands.{b.code}: bound {fmt(v)} is finer than the score's resolution "
                               f"({rule.decimals} decimals)")
        if out:
            return out
        bands = sorted(rule.bands, key=lambda b: (dec(b.min), dec(b.max)))
        for a, b in zip(bands, bands[1:], strict=False):
            if dec(b.min) <= dec(a.max):
                out.append(f"{where}.bands: bands '{a.code}' ({fmt(a.min)}-{fmt(a.max)}) and '{b.code}' "
                           f"({fmt(b.min)}-{fmt(b.max)}) overlap")
            elif dec(b.min) != dec(a.max) + rule.step:
                out.append(f"{where}.bands: gap between '{a.code}' (up to {fmt(a.max)}) and '{b.code}' "
                           f"(from {fmt(b.min)})")
        lo, hi = self.score_range(rule)

        def uncovered(a: Decimal, b: Decimal) -> str:
            what = f"score {fmt(a)} falls" if a == b else f"scores {fmt(a)} to {fmt(b)} fall"
            return f"{where}.bands: {what} in no band (the score ranges {fmt(lo)}-{fmt(hi)})"

        if dec(bands[0].min) > lo:
            out.append(uncovered(lo, dec(bands[0].min) - rule.step))
        if dec(bands[-1].max) < hi:
            out.append(uncovered(dec(bands[-1].max) + rule.step, hi))
        return out

    def _check_outcome(self, out: Outcome, earlier: dict[str, Outcome]) -> list[str]:
        where = f"outcomes.{out.code}"
        problems: list[str] = []
        values = [v.code for v in out.values]
        for dup in sorted({x for x in values if values.count(x) > 1}):
            problems.append(f"{where}.values: duplicate value '{dup}'")
        if out.default not in values:
            problems.append(f"{where}.default: '{out.default}' is not one of the values {values}")
        rule_codes = [r.code for r in out.rules]
        for dup in sorted({x for x in rule_codes if rule_codes.count(x) > 1}):
            problems.append(f"{where}.rules: duplicate rule code '{dup}'")
        for r in out.rules:
            if r.result not in values:
                problems.append(f"{where}.rules.{r.code}.result: '{r.result}' is not one of the values {values}")
            problems += self._check_condition(r.when, f"{where}.rules.{r.code}.when", earlier)
        return problems

    def _check_condition(self, c: Any, where: str, earlier: dict[str, Outcome]) -> list[str]:
        if isinstance(c, AnyOf):
            return [p for i, x in enumerate(c.any_) for p in self._check_condition(x, f"{where}.any.{i}", earlier)]
        if isinstance(c, AllOf):
            return [p for i, x in enumerate(c.all_) for p in self._check_condition(x, f"{where}.all.{i}", earlier)]
        if isinstance(c, Not):
            return self._check_condition(c.not_, f"{where}.not", earlier)
        if isinstance(c, ScoreCondition):
            rule = self.scoring(c.score)
            if rule is None:
                return [f"{where}: unknown score '{c.score}'"]
            if c.band_in is not None:
                known = {b.code for b in rule.bands}
                bad = [b for b in c.band_in if b not in known]
                if bad:
                    return [f"{where}: score '{c.score}' has no bands {bad}"]
            return []
        if isinstance(c, OutcomeCondition):
            prev = earlier.get(c.outcome)
            if prev is None:
                return [f"{where}: outcome '{c.outcome}' is unknown or not declared before this one"]
            if c.equals not in {v.code for v in prev.values}:
                return [f"{where}: outcome '{c.outcome}' has no value '{c.equals}'"]
            return []
        assert isinstance(c, ItemCondition)
        it = self.item(c.item)
        if it is None:
            return [f"{where}: unknown item '{c.item}'"]
        op = next(iter(c.operators()))
        t = it.type
        allowed = {
            AnswerType.boolean: {"equals"},
            AnswerType.single_choice: {"equals", "in"},
            AnswerType.multiple_choice: {"includes_any", "includes_all"},
            AnswerType.integer: {"equals", "in", "at_least", "at_most"},
            AnswerType.text: set(),
            AnswerType.date: set(),
        }[t]
        if op not in allowed:
            return [f"{where}: operator '{op}' cannot be used on {t.value} item '{it.id}'"]
        if t is AnswerType.boolean and not isinstance(c.equals, bool):
            return [f"{where}: boolean item '{it.id}' compares with true/false"]
        if t in CHOICE:
            given = [c.equals] if op == "equals" else (c.in_ if op == "in" else (c.includes_any or c.includes_all))
            bad = [v for v in given or [] if not isinstance(v, str) or it.option(v) is None]
            if bad:
                return [f"{where}: item '{it.id}' has no options {bad}"]
        if t is AnswerType.integer:
            given = [c.equals] if op == "equals" else (c.in_ if op == "in" else [])
            if any(isinstance(v, bool) or not isinstance(v, int) for v in given or []):
                return [f"{where}: integer item '{it.id}' compares with whole numbers"]
        return []


# ---------------------------------------------------------------------------------------------- results

class BandResult(BaseModel):
    code: str
    label: str


class ScoreValue(BaseModel):
    code: str
    label: str
    value: int | float
    min: int | float
    max: int | float
    band: BandResult | None = None


class MatchedRule(BaseModel):
    code: str
    label: str


class OutcomeResult(BaseModel):
    code: str
    label: str
    value: str
    value_label: str
    reasons: list[MatchedRule] = Field(
        default_factory=list, description="Regole soddisfatte che portano al valore (vuoto = valore predefinito)")


class ScoreResult(BaseModel):
    instrument: str
    version: int
    scores: dict[str, ScoreValue] = Field(default_factory=dict)
    outcomes: dict[str, OutcomeResult] = Field(default_factory=dict)


__all__ = [
    "AnswerType", "AssessmentDomain", "InstrumentStatus", "ScoringMethod", "Option", "Item", "Band", "ScoringRule",
    "ItemCondition", "ScoreCondition", "OutcomeCondition", "AnyOf", "AllOf", "Not", "Condition", "OutcomeValue",
    "OutcomeRule", "Outcome", "InstrumentDefinition", "BandResult", "ScoreValue", "MatchedRule", "OutcomeResult",
    "ScoreResult",
]
