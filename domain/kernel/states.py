"""State machines as data: one helper for every context, so an illegal move answers the same 409 everywhere.

    MACHINE = StateMachine("richiesta", PlanState, STATE_LABELS, ACTION_LABELS, {
        (S.draft, "propose"): S.proposed, ...})
    plan.state = MACHINE.next_state(plan.state, "propose")      # Conflict (409) when the table has no such move

The 409 body always carries `state` (the current state code), `action` (the attempted action code) and
`allowed_actions` (the actions the table allows from that state, internal ones left out), and its detail names
the missing step when the machine knows it (`hints`).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from domain.kernel.errors import Conflict


def _code(value: str | Enum) -> str:
    return value.value if isinstance(value, Enum) else str(value)


@dataclass(frozen=True)
class StateMachine:
    """`transitions` maps (state, action) to the state after the action. `internal` actions are moves the system
    makes (never offered to a user in `allowed_actions`). `hints` maps (state, action) to what must happen first."""

    noun: str  # how the detail names the object: "la richiesta", "la valutazione", "il progetto"
    state_labels: Mapping[str, str]
    action_labels: Mapping[str, str]
    transitions: Mapping[tuple[str, str], str]
    internal: frozenset[str] = frozenset()
    hints: Mapping[tuple[str, str], str] = field(default_factory=dict)
    state_type: type[Enum] | None = None  # next_state returns a member of it when given

    def __post_init__(self) -> None:
        table = {(_code(s), _code(a)): _code(t) for (s, a), t in self.transitions.items()}
        object.__setattr__(self, "transitions", table)
        object.__setattr__(self, "hints", {(_code(s), _code(a)): h for (s, a), h in self.hints.items()})

    def can(self, state: str | Enum, action: str | Enum) -> bool:
        return (_code(state), _code(action)) in self.transitions

    def allowed_actions(self, state: str | Enum) -> list[str]:
        st = _code(state)
        seen: dict[str, None] = {}
        for (s, a) in self.transitions:
            if s == st and a not in self.internal:
                seen[a] = None
        return list(seen)

    def next_state(self, state: str | Enum, action: str | Enum) -> Any:
        """The state after `action`, or the Conflict of an illegal move."""
        target = self.transitions.get((_code(state), _code(action)))
        if target is None:
            raise self.conflict(state, action)
        return self.state_type(target) if self.state_type else target

    def require(self, state: str | Enum, allowed_states: Iterable[str | Enum], action: str | Enum,
                detail: str | None = None) -> None:
        """A guard that is not a move (edit, add an item): Conflict unless `state` is one of `allowed_states`."""
        if _code(state) not in {_code(s) for s in allowed_states}:
            raise self.conflict(state, action, detail)

    def conflict(self, state: str | Enum, action: str | Enum, detail: str | None = None) -> Conflict:
        st, act = _code(state), _code(action)
        allowed = self.allowed_actions(st)
        if detail is None:
            detail = (f"Non è possibile {self.action_labels.get(act, act)}: {self.noun} è nello stato "
                      f"«{self.state_labels.get(st, st)}»")
            hint = self.hints.get((st, act))
            detail += f"; {hint}." if hint else ("." if allowed else " (stato finale).")
        return Conflict(detail, state=st, action=act, allowed_actions=allowed)
