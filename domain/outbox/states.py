"""The life of a message to ASST, as data (domain.kernel.states): an illegal move is the one 409 body.

    pending → sent (deliver) | dead (bury, out of attempts) | withheld (withhold, basis gone at send time)
    dead | withheld → pending (retry, an integration operator); a retried withheld message is checked again
"""
from __future__ import annotations

from domain.kernel.states import StateMachine
from domain.outbox.models import MESSAGE_STATE_LABELS, MessageState

S = MessageState

ACTION_LABELS = {"deliver": "registrare l'invio", "bury": "archiviare come non recapitato",
                 "withhold": "trattenere", "retry": "riprovare l'invio"}

MACHINE = StateMachine("il messaggio", MESSAGE_STATE_LABELS, ACTION_LABELS, {
    (S.pending, "deliver"): S.sent,
    (S.pending, "bury"): S.dead,
    (S.pending, "withhold"): S.withheld,
    (S.dead, "retry"): S.pending,
    (S.withheld, "retry"): S.pending,
}, internal=frozenset({"deliver", "bury", "withhold"}), state_type=MessageState)
