"""VMD state machine (domain brief §6.3 B) as a transition table.

    requested → scheduled → in_progress → equipe_review → concluded
    cancelled from any non-final state

Reassessment is not a loop back to `scheduled`: a concluded VMD with a reassessment date spawns a NEW VMD row
(same person and cartella, `previous_vmd_id` pointing back), so every assessment keeps its own clock, assessors,
signatures and outcome, and the integration indicator counts each one once.
"""
from __future__ import annotations

from enum import StrEnum

from domain.assessment.models import VMD_STATE_LABELS, VmdState
from domain.kernel.errors import Conflict


class VmdAction(StrEnum):
    schedule = "schedule"
    add_assessor = "add_assessor"
    record_response = "record_response"
    sign = "sign"
    hold_meeting = "hold_meeting"
    conclude = "conclude"
    cancel = "cancel"
    reassess = "reassess"


ACTION_LABELS = {
    "schedule": "programmare la valutazione", "add_assessor": "aggiungere un valutatore",
    "record_response": "registrare uno strumento di valutazione", "sign": "firmare la valutazione",
    "hold_meeting": "registrare la riunione d'équipe", "conclude": "concludere la valutazione",
    "cancel": "annullare la valutazione", "reassess": "avviare una rivalutazione",
}

S, A = VmdState, VmdAction
FINAL_STATES = frozenset({S.concluded, S.cancelled})
OPEN_STATES = frozenset(set(S) - FINAL_STATES)

# (state, action) -> state after the action. Anything missing is illegal (409).
TRANSITIONS: dict[tuple[VmdState, VmdAction], VmdState] = {
    (S.requested, A.schedule): S.scheduled,
    (S.scheduled, A.schedule): S.scheduled,  # reschedule
    (S.requested, A.add_assessor): S.requested,
    (S.scheduled, A.add_assessor): S.scheduled,
    (S.in_progress, A.add_assessor): S.in_progress,
    (S.scheduled, A.record_response): S.in_progress,
    (S.in_progress, A.record_response): S.in_progress,
    (S.in_progress, A.sign): S.in_progress,
    (S.equipe_review, A.sign): S.equipe_review,
    (S.in_progress, A.hold_meeting): S.equipe_review,
    (S.equipe_review, A.hold_meeting): S.equipe_review,  # a further meeting
    (S.equipe_review, A.conclude): S.concluded,
    (S.concluded, A.reassess): S.concluded,  # the new VMD is another row; this one stays concluded
    **{(s, A.cancel): S.cancelled for s in OPEN_STATES},
}


def can(state: VmdState | str, action: VmdAction | str) -> bool:
    return (VmdState(state), VmdAction(action)) in TRANSITIONS


def next_state(state: VmdState | str, action: VmdAction | str) -> VmdState:
    """The state after `action`, or Conflict (409) naming the current state and the attempted action."""
    st, act = VmdState(state), VmdAction(action)
    target = TRANSITIONS.get((st, act))
    if target is None:
        raise Conflict(
            f"Non è possibile {ACTION_LABELS[act.value]}: la valutazione è nello stato "
            f"'{VMD_STATE_LABELS[st.value]}'.",
            state=st.value, action=act.value,
        )
    return target


def allowed_actions(state: VmdState | str) -> list[str]:
    st = VmdState(state)
    return [a.value for a in VmdAction if (st, a) in TRANSITIONS]
