"""State machine of a protected discharge (domain brief §6.3 D), as a transition table (domain.kernel.states).

    signalled → cot_requested → evaluated → project_formulated → discharged → monitoring → closed
    exits: not_eligible (before the project), deceased (any open state), discharged_without_project (from
    cot_requested or evaluated, with a reason), cancelled (a signal entered by mistake or twice, before the
    evaluation, with a reason)

`choose_setting` records the setting the equipe chose without moving the case: while the evaluation is pending
(the VMD's conclusion then completes it with that setting) or once evaluated, before the project.

`closed`, `not_eligible`, `deceased`, `discharged_without_project` and `cancelled` are final. An illegal move is
the kernel's 409 with `state`, `action`, `allowed_actions`.
"""
from __future__ import annotations

from enum import StrEnum

from domain.discharge.models import DISCHARGE_STATE_LABELS, DischargeState
from domain.kernel.states import StateMachine


class DischargeAction(StrEnum):
    request_cot = "request_cot"
    choose_setting = "choose_setting"
    evaluate = "evaluate"
    formulate_project = "formulate_project"
    discharge = "discharge"
    start_monitoring = "start_monitoring"
    close = "close"
    not_eligible = "not_eligible"
    die = "die"
    discharge_without_project = "discharge_without_project"
    cancel = "cancel"


ACTION_LABELS = {
    "request_cot": "inviare la richiesta alla COT", "choose_setting": "registrare il setting scelto",
    "evaluate": "registrare la valutazione",
    "formulate_project": "formulare il progetto di dimissione", "discharge": "registrare la dimissione",
    "start_monitoring": "avviare il monitoraggio dopo la dimissione",
    "close": "chiudere il percorso", "not_eligible": "dichiarare la persona non eleggibile",
    "die": "registrare il decesso", "discharge_without_project": "registrare la dimissione senza progetto",
    "cancel": "annullare la segnalazione",
}

S, A = DischargeState, DischargeAction
OPEN_STATES = frozenset({S.signalled, S.cot_requested, S.evaluated, S.project_formulated, S.discharged,
                         S.monitoring})
FINAL_STATES = frozenset(set(S) - OPEN_STATES)
# The states in which the COT evaluation is pending (the 48-hour clock runs).
AWAITING_EVALUATION = frozenset({S.cot_requested})

TRANSITIONS: dict[tuple[DischargeState, DischargeAction], DischargeState] = {
    (S.signalled, A.request_cot): S.cot_requested,
    (S.cot_requested, A.choose_setting): S.cot_requested,
    (S.cot_requested, A.evaluate): S.evaluated,
    (S.evaluated, A.choose_setting): S.evaluated,
    (S.evaluated, A.formulate_project): S.project_formulated,
    (S.project_formulated, A.discharge): S.discharged,
    (S.discharged, A.start_monitoring): S.monitoring,
    (S.monitoring, A.close): S.closed,
    **{(s, A.not_eligible): S.not_eligible for s in (S.signalled, S.cot_requested, S.evaluated)},
    **{(s, A.die): S.deceased for s in OPEN_STATES},
    **{(s, A.discharge_without_project): S.discharged_without_project for s in (S.cot_requested, S.evaluated)},
    **{(s, A.cancel): S.cancelled for s in (S.signalled, S.cot_requested)},
}

HINTS: dict[tuple[DischargeState, DischargeAction], str] = {
    (S.signalled, A.evaluate): "serve prima la richiesta alla COT",
    (S.cot_requested, A.formulate_project): "serve prima la valutazione",
    **{(s, A.discharge): "serve prima il progetto di dimissione" for s in (S.cot_requested, S.evaluated)},
    (S.discharged, A.close): "serve prima il monitoraggio dopo la dimissione",
    **{(s, A.cancel): "dopo la valutazione si esce come non eleggibile o dimessa senza progetto"
       for s in (S.evaluated, S.project_formulated)},
}

MACHINE = StateMachine("la dimissione protetta", DISCHARGE_STATE_LABELS, ACTION_LABELS, TRANSITIONS, hints=HINTS,
                       internal=frozenset({A.die}), state_type=DischargeState)

next_state = MACHINE.next_state
allowed_actions = MACHINE.allowed_actions
