"""The measure application's state machine (domain brief §6.3 F), as a transition table.

    submitted → assessment_pending (the VMD with the measure's trigger)
    assessment_pending → eligible | not_eligible (with a reason)
    eligible → project_defined (the plan the VMD proposes)
    project_defined → active (period and amount, within the call's budget) | waiting_funds (budget committed)
    waiting_funds → active (the system, when funds are available, in rank order)
    active → monitoring → ended; active | monitoring → ended by the system at the period's end
    any open state → withdrawn
"""
from __future__ import annotations

from enum import StrEnum

from domain.kernel.states import StateMachine
from domain.measures.models import APPLICATION_STATE_LABELS, ApplicationState


class Action(StrEnum):
    request_assessment = "request_assessment"
    decide = "decide"
    define_project = "define_project"
    activate = "activate"
    wait_funds = "wait_funds"
    fund = "fund"
    monitor = "monitor"
    end = "end"
    withdraw = "withdraw"


ACTION_LABELS = {"request_assessment": "avviare la valutazione", "decide": "decidere l'idoneità",
                 "define_project": "collegare il progetto", "activate": "attivare la misura",
                 "wait_funds": "mettere in attesa di fondi", "fund": "finanziare la domanda in attesa",
                 "monitor": "avviare il monitoraggio", "end": "concludere la misura", "withdraw": "ritirare la domanda"}

S, A = ApplicationState, Action
OPEN_STATES = frozenset({S.submitted, S.assessment_pending, S.eligible, S.project_defined, S.waiting_funds,
                         S.active, S.monitoring})

MACHINE = StateMachine("la domanda", APPLICATION_STATE_LABELS, ACTION_LABELS, {
    (S.submitted, A.request_assessment): S.assessment_pending,
    (S.assessment_pending, A.decide): S.eligible,  # or not_eligible: the service picks the target
    (S.eligible, A.define_project): S.project_defined,
    (S.project_defined, A.activate): S.active,
    (S.project_defined, A.wait_funds): S.waiting_funds,
    (S.waiting_funds, A.fund): S.active,
    (S.active, A.monitor): S.monitoring,
    (S.active, A.end): S.ended,
    (S.monitoring, A.end): S.ended,
    **{(s, A.withdraw): S.withdrawn for s in OPEN_STATES},
}, internal=frozenset({A.wait_funds, A.fund}), hints={
    (S.submitted, A.decide): "serve prima la valutazione multidimensionale",
    (S.eligible, A.activate): "serve prima il progetto",
    (S.waiting_funds, A.activate): "la domanda è in attesa di fondi: sarà attivata quando il budget lo consente",
}, state_type=ApplicationState)
