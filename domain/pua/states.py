"""State machine of a PUA access request (domain brief §6.3 A).

    registered → in_reception → first_level_done → oriented | referred_vmd | referred_cot
    withdrawn / cancelled from any state that is not closing

`oriented`, `referred_vmd`, `referred_cot`, `withdrawn` and `cancelled` are final. An action that the table does
not allow from the current state is a Conflict (409) that names both the state and the action.
"""
from __future__ import annotations

from enum import StrEnum

from domain.kernel.errors import Conflict
from domain.pua.models import ACCESS_STATE_LABELS, AccessState


class AccessAction(StrEnum):
    reception = "reception"
    triage = "triage"
    orient = "orient"
    refer_vmd = "refer_vmd"
    refer_cot = "refer_cot"
    withdraw = "withdraw"
    cancel = "cancel"


ACTION_LABELS = {
    "reception": "presa in accoglienza", "triage": "valutazione di primo livello",
    "orient": "orientamento (bisogno semplice)", "refer_vmd": "invio a VMD", "refer_cot": "invio alla COT",
    "withdraw": "ritiro della richiesta", "cancel": "annullamento della richiesta",
}

S, A = AccessState, AccessAction
OPEN_STATES = frozenset({S.registered, S.in_reception, S.first_level_done})
FINAL_STATES = frozenset(set(S) - OPEN_STATES)
CLOSING_STATES = frozenset({S.oriented, S.referred_vmd, S.referred_cot})

# (from state, action) → to state
TRANSITIONS: dict[tuple[AccessState, AccessAction], AccessState] = {
    (S.registered, A.reception): S.in_reception,
    (S.in_reception, A.triage): S.first_level_done,
    (S.first_level_done, A.orient): S.oriented,
    (S.first_level_done, A.refer_vmd): S.referred_vmd,
    (S.first_level_done, A.refer_cot): S.referred_cot,
    **{(s, A.withdraw): S.withdrawn for s in OPEN_STATES},
    **{(s, A.cancel): S.cancelled for s in OPEN_STATES},
}


def allowed_actions(state: AccessState | str) -> list[AccessAction]:
    state = AccessState(state)
    return [a for (s, a) in TRANSITIONS if s == state]


def next_state(state: AccessState | str, action: AccessAction | str) -> AccessState:
    """The state after `action`, or Conflict naming the current state and the attempted action."""
    state, action = AccessState(state), AccessAction(action)
    target = TRANSITIONS.get((state, action))
    if target is None:
        allowed = allowed_actions(state)
        detail = (f"Azione '{ACTION_LABELS[action.value]}' non consentita: la richiesta è nello stato "
                  f"'{ACCESS_STATE_LABELS[state.value]}'")
        detail += "." if allowed else " (stato finale)."
        raise Conflict(detail, current_state=state.value, action=action.value,
                       allowed_actions=[a.value for a in allowed])
    return target
