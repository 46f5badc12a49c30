"""VMD state machine (domain brief §6.3 B) as a transition table (domain.kernel.states).

    requested → scheduled → in_progress → equipe_review → concluded
    cancelled from any non-final state

Reassessment is not a loop back to `scheduled`: a concluded VMD with a reassessment date spawns a NEW VMD row
(same person and cartella, `previous_vmd_id` pointing back), so every assessment keeps its own clock, assessors,
signatures and outcome, and the integration indicator counts each one once.

An illegal move is the kernel's 409: `state`, `action`, `allowed_actions`, and a detail naming the missing step.
"""
from __future__ import annotations

from enum import StrEnum

from domain.assessment.models import VMD_STATE_LABELS, VmdState
from domain.kernel.states import StateMachine


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
    **{(s, A.cancel): S.cancelled for s in sorted(OPEN_STATES, key=list(S).index)},
}

_SCHEDULE_FIRST = "serve prima la programmazione della valutazione"
_INSTRUMENT_FIRST = "serve prima almeno uno strumento di valutazione registrato"
_MEETING_FIRST = "serve la riunione d'équipe prima della conclusione"
HINTS: dict[tuple[VmdState, VmdAction], str] = {
    (S.requested, A.record_response): _SCHEDULE_FIRST,
    (S.requested, A.sign): _SCHEDULE_FIRST,
    (S.scheduled, A.sign): _INSTRUMENT_FIRST,
    (S.requested, A.hold_meeting): _SCHEDULE_FIRST,
    (S.scheduled, A.hold_meeting): _INSTRUMENT_FIRST,
    **{(s, A.conclude): _MEETING_FIRST for s in (S.requested, S.scheduled, S.in_progress)},
    (S.concluded, A.cancel): "una valutazione conclusa non si annulla: avviare una rivalutazione",
}

MACHINE = StateMachine("la valutazione", VMD_STATE_LABELS, ACTION_LABELS, TRANSITIONS, hints=HINTS,
                       state_type=VmdState)

can = MACHINE.can
next_state = MACHINE.next_state
allowed_actions = MACHINE.allowed_actions
