"""State machines of a waiting-list entry and of an offer (domain brief §6.3 E), as transition tables.

Entry:
    assessment_pending → listed | not_listed (the equipe's decision)
    listed → suspended (second refusal, by the system) → listed (the person confirms)
    listed → admitted (an offer accepted, by the system)
    assessment_pending | listed | suspended → withdrawn | admitted_elsewhere (the comune) | deceased (the system)
Urgency is a tier of a listed entry, not a state: `raise_urgency` and `decide_urgency` leave the state alone.

Offer: open → accepted | refused | expired (the system, past the reply deadline) | withdrawn (the system, the
person left the list); `receipt` records when the person received it and starts the reply deadline.
"""
from __future__ import annotations

from enum import StrEnum

from domain.kernel.states import StateMachine
from domain.waiting_list.models import ENTRY_STATE_LABELS, OFFER_STATE_LABELS, EntryState, OfferState


class EntryAction(StrEnum):
    list = "list"
    not_list = "not_list"
    raise_urgency = "raise_urgency"
    decide_urgency = "decide_urgency"
    refuse = "refuse"
    suspend = "suspend"
    confirm = "confirm"
    admit = "admit"
    withdraw = "withdraw"
    admit_elsewhere = "admit_elsewhere"
    die = "die"


ENTRY_ACTION_LABELS = {
    "list": "inserire in lista", "not_list": "registrare il mancato inserimento in lista",
    "raise_urgency": "segnalare l'urgenza", "decide_urgency": "decidere sull'urgenza",
    "refuse": "registrare un rifiuto", "suspend": "sospendere", "confirm": "confermare la permanenza in lista",
    "admit": "registrare l'ingresso", "withdraw": "ritirare la domanda",
    "admit_elsewhere": "registrare l'ingresso altrove", "die": "registrare il decesso",
}

S, A = EntryState, EntryAction
OPEN_STATES = frozenset({S.assessment_pending, S.listed, S.suspended})
FINAL_STATES = frozenset(set(S) - OPEN_STATES)

TRANSITIONS: dict[tuple[EntryState, EntryAction], EntryState] = {
    (S.assessment_pending, A.list): S.listed,
    (S.assessment_pending, A.not_list): S.not_listed,
    **{(s, A.raise_urgency): s for s in OPEN_STATES},
    **{(s, A.decide_urgency): s for s in OPEN_STATES},
    (S.listed, A.refuse): S.listed,
    (S.listed, A.suspend): S.suspended,
    (S.suspended, A.confirm): S.listed,
    (S.listed, A.admit): S.admitted,
    **{(s, A.withdraw): S.withdrawn for s in OPEN_STATES},
    **{(s, A.admit_elsewhere): S.admitted_elsewhere for s in OPEN_STATES},
    **{(s, A.die): S.deceased for s in OPEN_STATES},
}

HINTS: dict[tuple[EntryState, EntryAction], str] = {
    (S.listed, A.confirm): "la domanda non è sospesa",
    (S.listed, A.list): "la domanda è già in lista",
}

ENTRY = StateMachine("la domanda", ENTRY_STATE_LABELS, ENTRY_ACTION_LABELS, TRANSITIONS, hints=HINTS,
                     internal=frozenset({A.refuse, A.suspend, A.admit, A.die}), state_type=EntryState)


class OfferAction(StrEnum):
    receipt = "receipt"
    accept = "accept"
    refuse = "refuse"
    expire = "expire"
    withdraw = "withdraw"


OFFER_ACTION_LABELS = {"receipt": "registrare la ricezione dell'offerta", "accept": "registrare l'accettazione",
                       "refuse": "registrare il rifiuto", "expire": "far scadere l'offerta",
                       "withdraw": "ritirare l'offerta"}

OS, OA = OfferState, OfferAction
OFFER = StateMachine("l'offerta", OFFER_STATE_LABELS, OFFER_ACTION_LABELS, {
    (OS.open, OA.receipt): OS.open,
    (OS.open, OA.accept): OS.accepted,
    (OS.open, OA.refuse): OS.refused,
    (OS.open, OA.expire): OS.expired,
    (OS.open, OA.withdraw): OS.withdrawn,
}, internal=frozenset({OA.expire, OA.withdraw}), state_type=OfferState)
