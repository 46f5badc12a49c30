"""State machines of the progetto individualizzato (domain brief §6.3 C) and of its interventions, as data
(domain.kernel.states): an illegal move is one 409 body everywhere, {state, action, allowed_actions}, and its
detail names the missing step when there is one.

    draft → proposed → agreed → active → under_review ↔ active → completed | suspended | revoked
                                                        suspended → active (resume)

- `propose`      draft → proposed (the equipe / case manager proposal); `back_to_draft` proposed → draft.
- `agree`        proposed → agreed: needs a consent (care) of the person or of their legal representative,
                 linked to the plan version agreed. agreed = "compilato / redatto" (`agreed_at`).
- `activate`     agreed → active: the first intervention starts. active = "attivato" (`activated_at`).
- `start_review` active → under_review; `end_review` under_review → active (review outcome continue / modify).
- `complete`     active | under_review → completed (also the review outcome "complete").
- `suspend`      active | under_review → suspended (also the review outcome "suspend"); `resume` suspended → active.
- `revoke`       any state that is not final → revoked (the person withdraws, the plan is dropped).
- `close_temporary` (system) any state that is not final → completed: a temporary/alternative plan ends when its
                 waiting-list entry ends (RSA admission...).

Final states: completed, revoked. Guards that are not moves (`MACHINE.require`): goals, interventions, title and
summary are edited only in draft, proposed and under_review (`edit`); interventions start and end one at a time
only while the plan runs (active, under_review); a review outcome is recorded only under review.

Interventions: planned → active (`start`) → ended (`end`); planned | active → cancelled (`cancel`).
"""
from __future__ import annotations

from domain.care_plan.models import PLAN_STATE_LABELS, InterventionStatus, PlanState
from domain.kernel.states import StateMachine
from schemas.care_plan import INTERVENTION_STATUS_LABELS

S = PlanState

FINAL = frozenset({S.completed, S.revoked})
OPEN = frozenset(set(S) - FINAL)
EDITABLE = frozenset({S.draft, S.proposed, S.under_review})
RUNNING = frozenset({S.active, S.under_review})  # interventions may be started / ended one at a time

ACTION_LABELS = {
    "propose": "proporre", "back_to_draft": "riportare in bozza", "agree": "sottoscrivere", "activate": "attivare",
    "start_review": "avviare la verifica", "end_review": "chiudere la verifica",
    "record_review": "registrare l'esito della verifica", "complete": "concludere", "suspend": "sospendere",
    "resume": "riprendere", "revoke": "revocare", "close_temporary": "chiudere il progetto temporaneo",
    "edit": "modificare obiettivi, interventi, titolo o sintesi",
    "start_intervention": "avviare un intervento", "end_intervention": "concludere un intervento",
}

_TRANSITIONS: dict[tuple[PlanState, str], PlanState] = {}
for _action, _moves in (
    ("propose", {S.draft: S.proposed}),
    ("back_to_draft", {S.proposed: S.draft}),
    ("agree", {S.proposed: S.agreed}),
    ("activate", {S.agreed: S.active}),
    ("start_review", {S.active: S.under_review}),
    ("end_review", {S.under_review: S.active}),
    ("complete", {S.active: S.completed, S.under_review: S.completed}),
    ("suspend", {S.active: S.suspended, S.under_review: S.suspended}),
    ("resume", {S.suspended: S.active}),
    ("revoke", {s: S.revoked for s in (S.draft, S.proposed, S.agreed, S.active, S.under_review, S.suspended)}),
    ("close_temporary", {s: S.completed for s in (S.draft, S.proposed, S.agreed, S.active, S.under_review,
                                                  S.suspended)}),
):
    for _state, _target in _moves.items():
        _TRANSITIONS[(_state, _action)] = _target

_PROPOSE_FIRST = "il progetto va prima proposto"
_AGREE_FIRST = "il progetto va prima sottoscritto con il consenso della persona o del suo rappresentante"
_ACTIVATE_FIRST = "il progetto va prima attivato"
_RESUME_FIRST = "il progetto va prima ripreso"
_REVIEW_FIRST = "la verifica va prima avviata"

HINTS: dict[tuple[PlanState, str], str] = {
    (S.draft, "agree"): _PROPOSE_FIRST,
    (S.draft, "activate"): f"{_PROPOSE_FIRST} e sottoscritto",
    (S.proposed, "activate"): _AGREE_FIRST,
    **{(s, a): _ACTIVATE_FIRST for s in (S.draft, S.proposed, S.agreed)
       for a in ("start_review", "complete", "suspend", "start_intervention", "end_intervention")},
    **{(S.suspended, a): _RESUME_FIRST for a in ("start_review", "complete", "start_intervention",
                                                   "end_intervention", "edit")},
    (S.active, "end_review"): _REVIEW_FIRST,
    (S.active, "record_review"): _REVIEW_FIRST,
    (S.active, "edit"): "per modificarlo avviare prima la verifica",
    (S.agreed, "edit"): "il progetto sottoscritto si modifica dopo l'attivazione, avviando una verifica",
    (S.under_review, "start_review"): "la verifica è già in corso",
    (S.active, "resume"): "il progetto non è sospeso",
}

MACHINE = StateMachine(noun="il progetto", state_labels=PLAN_STATE_LABELS, action_labels=ACTION_LABELS,
                       transitions=_TRANSITIONS, internal=frozenset({"close_temporary"}), hints=HINTS,
                       state_type=PlanState)

# ---------------------------------------------------------------------------------------------------- interventions
IV = InterventionStatus

INTERVENTION = StateMachine(
    noun="l'intervento", state_labels=INTERVENTION_STATUS_LABELS,
    action_labels={"start": "avviare l'intervento", "end": "concludere l'intervento",
                   "cancel": "annullare l'intervento", "edit": "modificare l'intervento"},
    transitions={(IV.planned, "start"): IV.active, (IV.active, "end"): IV.ended,
                 (IV.planned, "cancel"): IV.cancelled, (IV.active, "cancel"): IV.cancelled},
    hints={(IV.planned, "end"): "l'intervento va prima avviato",
           **{(s, a): "l'intervento è chiuso: aggiungerne uno nuovo" for s in (IV.ended, IV.cancelled)
              for a in ("edit", "start")}},
    state_type=InterventionStatus)
INTERVENTION_OPEN = frozenset({IV.planned, IV.active})
