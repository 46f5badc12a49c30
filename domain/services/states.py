"""The activation order's state machine (domain brief §6.2 ServiceActivation), as a transition table.

    requested → accepted | declined (the provider, with a reason)
    accepted → active (start: the first day of service)
    active → suspended (with a reason) → active (resume)
    accepted | active | suspended → ended (with a reason; `period_over` by the system)
"""
from __future__ import annotations

from enum import StrEnum

from domain.kernel.states import StateMachine
from domain.services.models import ACTIVATION_STATE_LABELS, ActivationState


class Action(StrEnum):
    accept = "accept"
    decline = "decline"
    start = "start"
    suspend = "suspend"
    resume = "resume"
    end = "end"
    deliver = "deliver"


ACTION_LABELS = {"accept": "accettare l'attivazione", "decline": "rifiutare l'attivazione",
                 "start": "avviare il servizio", "suspend": "sospendere il servizio",
                 "resume": "riprendere il servizio", "end": "concludere il servizio",
                 "deliver": "registrare una prestazione"}

S, A = ActivationState, Action
OPEN_STATES = frozenset({S.requested, S.accepted, S.active, S.suspended})
# A delivery is recorded while the service runs, and after its end for the days it ran (late entries).
DELIVERY_STATES = frozenset({S.active, S.suspended, S.ended})

MACHINE = StateMachine("l'attivazione", ACTIVATION_STATE_LABELS, ACTION_LABELS, {
    (S.requested, A.accept): S.accepted,
    (S.requested, A.decline): S.declined,
    (S.accepted, A.start): S.active,
    (S.active, A.suspend): S.suspended,
    (S.suspended, A.resume): S.active,
    (S.accepted, A.end): S.ended,
    (S.active, A.end): S.ended,
    (S.suspended, A.end): S.ended,
    (S.active, A.deliver): S.active,
    (S.suspended, A.deliver): S.suspended,
    (S.ended, A.deliver): S.ended,
}, hints={(S.requested, A.start): "l'ente erogatore deve prima accettare",
          (S.accepted, A.deliver): "il servizio non è ancora avviato",
          (S.requested, A.deliver): "il servizio non è ancora avviato"}, state_type=ActivationState)
