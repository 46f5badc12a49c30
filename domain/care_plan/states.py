"""State machine of the progetto individualizzato (domain brief §6.3 C).

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

Final states: completed, revoked. Suspend is allowed only on a running plan (active, under_review); revoke from
every non-final state (draft, proposed, agreed, active, under_review, suspended).
Goals and interventions are editable only in draft, proposed and under_review.
An illegal move raises Conflict (409) naming the current state and the attempted action.
"""
from __future__ import annotations

from domain.care_plan.models import PLAN_STATE_LABELS, PlanState
from domain.kernel.errors import Conflict

S = PlanState

TRANSITIONS: dict[str, dict[PlanState, PlanState]] = {
    "propose": {S.draft: S.proposed},
    "back_to_draft": {S.proposed: S.draft},
    "agree": {S.proposed: S.agreed},
    "activate": {S.agreed: S.active},
    "start_review": {S.active: S.under_review},
    "end_review": {S.under_review: S.active},
    "complete": {S.active: S.completed, S.under_review: S.completed},
    "suspend": {S.active: S.suspended, S.under_review: S.suspended},
    "resume": {S.suspended: S.active},
    "revoke": {s: S.revoked for s in (S.draft, S.proposed, S.agreed, S.active, S.under_review, S.suspended)},
    "close_temporary": {s: S.completed for s in (S.draft, S.proposed, S.agreed, S.active, S.under_review,
                                                 S.suspended)},
}

ACTION_LABELS = {
    "propose": "proporre", "back_to_draft": "riportare in bozza", "agree": "sottoscrivere", "activate": "attivare",
    "start_review": "avviare la verifica", "end_review": "chiudere la verifica", "complete": "concludere",
    "suspend": "sospendere", "resume": "riprendere", "revoke": "revocare",
    "close_temporary": "chiudere il progetto temporaneo", "edit": "modificare",
}

FINAL = frozenset({S.completed, S.revoked})
EDITABLE = frozenset({S.draft, S.proposed, S.under_review})
RUNNING = frozenset({S.active, S.under_review})  # interventions may be started / ended
# States where the plan counts as "compilato" (agreed at least once).
COMPILED = frozenset({S.agreed, S.active, S.under_review, S.completed, S.suspended})


def allowed_actions(state: PlanState | str) -> list[str]:
    state = PlanState(state)
    return [a for a, moves in TRANSITIONS.items() if state in moves and a != "close_temporary"]


def next_state(state: PlanState | str, action: str) -> PlanState:
    """The state after `action`, or Conflict (409) naming the current state and the action."""
    state = PlanState(state)
    moves = TRANSITIONS.get(action)
    if moves is None:
        raise ValueError(f"unknown care plan action {action!r}")
    target = moves.get(state)
    if target is None:
        raise Conflict(
            f"Non è possibile {ACTION_LABELS.get(action, action)} un progetto nello stato "
            f"«{PLAN_STATE_LABELS[state.value]}».",
            state=state.value, action=action, allowed_actions=allowed_actions(state))
    return target


def ensure_editable(state: PlanState | str) -> None:
    state = PlanState(state)
    if state not in EDITABLE:
        raise Conflict(
            f"Obiettivi, interventi e contenuti del progetto si modificano solo in bozza, proposto o in verifica; "
            f"il progetto è «{PLAN_STATE_LABELS[state.value]}».",
            state=state.value, action="edit", allowed_actions=allowed_actions(state))


def ensure_not_final(state: PlanState | str, action: str = "edit") -> None:
    state = PlanState(state)
    if state in FINAL:
        raise Conflict(f"Il progetto è «{PLAN_STATE_LABELS[state.value]}»: non si può più "
                       f"{ACTION_LABELS.get(action, action)}.", state=state.value, action=action,
                       allowed_actions=[])


def ensure_running(state: PlanState | str, action: str) -> None:
    state = PlanState(state)
    if state not in RUNNING:
        raise Conflict(f"Gli interventi si avviano o si chiudono solo a progetto attivo o in verifica; il progetto "
                       f"è «{PLAN_STATE_LABELS[state.value]}».", state=state.value, action=action,
                       allowed_actions=allowed_actions(state))
