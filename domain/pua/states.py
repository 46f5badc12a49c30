"""State machine of a PUA access request (domain brief §6.3 A), as a transition table (domain.kernel.states).

    registered → in_reception → first_level_done → oriented | referred_vmd | referred_cot | referred_cot_vmd
    withdrawn / cancelled from any state that is not closing

`oriented`, `referred_vmd`, `referred_cot`, `referred_cot_vmd` (both referrals in one step), `withdrawn` and
`cancelled` are final. An action that the table does
not allow from the current state is the kernel's 409: `state`, `action`, `allowed_actions`, and a detail naming
the missing step.
"""
from __future__ import annotations

from enum import StrEnum

from domain.kernel.states import StateMachine
from domain.pua.models import ACCESS_STATE_LABELS, AccessState


class AccessAction(StrEnum):
    reception = "reception"
    triage = "triage"
    orient = "orient"
    refer_vmd = "refer_vmd"
    refer_cot = "refer_cot"
    refer_cot_vmd = "refer_cot_vmd"
    withdraw = "withdraw"
    cancel = "cancel"


ACTION_LABELS = {
    "reception": "prendere in accoglienza la richiesta", "triage": "registrare la valutazione di primo livello",
    "orient": "orientare la persona (bisogno semplice)", "refer_vmd": "inviare a VMD",
    "refer_cot": "inviare alla COT", "refer_cot_vmd": "inviare alla COT e a VMD", "withdraw": "ritirare la richiesta",
    "cancel": "annullare la richiesta",
}

S, A = AccessState, AccessAction
OPEN_STATES = frozenset({S.registered, S.in_reception, S.first_level_done})
FINAL_STATES = frozenset(set(S) - OPEN_STATES)
CLOSING_STATES = frozenset({S.oriented, S.referred_vmd, S.referred_cot, S.referred_cot_vmd})
# The closing states in which the request went to a VMD / to the COT (a combined referral is both).
VMD_STATES = frozenset({S.referred_vmd, S.referred_cot_vmd})
COT_STATES = frozenset({S.referred_cot, S.referred_cot_vmd})
_OPEN = (S.registered, S.in_reception, S.first_level_done)

# (from state, action) → to state
TRANSITIONS: dict[tuple[AccessState, AccessAction], AccessState] = {
    (S.registered, A.reception): S.in_reception,
    (S.in_reception, A.triage): S.first_level_done,
    (S.first_level_done, A.orient): S.oriented,
    (S.first_level_done, A.refer_vmd): S.referred_vmd,
    (S.first_level_done, A.refer_cot): S.referred_cot,
    (S.first_level_done, A.refer_cot_vmd): S.referred_cot_vmd,
    **{(s, A.withdraw): S.withdrawn for s in _OPEN},
    **{(s, A.cancel): S.cancelled for s in _OPEN},
}

_RECEPTION_FIRST = "serve prima la presa in accoglienza"
_TRIAGE_FIRST = "serve prima la valutazione di primo livello"
HINTS: dict[tuple[AccessState, AccessAction], str] = {
    (S.registered, A.triage): _RECEPTION_FIRST,
    **{(s, a): _TRIAGE_FIRST for s in (S.registered, S.in_reception) for a in (A.orient, A.refer_vmd, A.refer_cot,
                                                                          A.refer_cot_vmd)},
}

MACHINE = StateMachine("la richiesta", ACCESS_STATE_LABELS, ACTION_LABELS, TRANSITIONS, hints=HINTS,
                       state_type=AccessState)

can = MACHINE.can
next_state = MACHINE.next_state
allowed_actions = MACHINE.allowed_actions
