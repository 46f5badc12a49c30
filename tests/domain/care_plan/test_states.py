import pytest

from domain.care_plan import states
from domain.care_plan.models import PlanState as S
from domain.kernel.errors import Conflict


def test_happy_path():
    s = S.draft
    for action, expected in [("propose", S.proposed), ("agree", S.agreed), ("activate", S.active),
                             ("start_review", S.under_review), ("end_review", S.active),
                             ("start_review", S.under_review), ("complete", S.completed)]:
        s = states.next_state(s, action)
        assert s == expected


def test_suspend_and_resume():
    assert states.next_state(S.active, "suspend") == S.suspended
    assert states.next_state(S.under_review, "suspend") == S.suspended
    assert states.next_state(S.suspended, "resume") == S.active
    assert states.next_state(S.proposed, "back_to_draft") == S.draft


@pytest.mark.parametrize("state", [S.draft, S.proposed, S.agreed, S.active, S.under_review, S.suspended])
def test_revoke_from_every_open_state(state):
    assert states.next_state(state, "revoke") == S.revoked


@pytest.mark.parametrize("state,action", [
    (S.draft, "agree"), (S.draft, "activate"), (S.proposed, "activate"), (S.agreed, "start_review"),
    (S.draft, "suspend"), (S.proposed, "suspend"), (S.agreed, "suspend"), (S.active, "resume"),
    (S.completed, "revoke"), (S.revoked, "resume"), (S.completed, "start_review"), (S.suspended, "complete"),
    (S.active, "propose"), (S.under_review, "activate"),
])
def test_illegal_moves_are_409_naming_state_and_action(state, action):
    with pytest.raises(Conflict) as exc:
        states.next_state(state, action)
    assert exc.value.status == 409
    assert exc.value.extra["state"] == state.value and exc.value.extra["action"] == action
    assert "allowed_actions" in exc.value.extra


def test_editable_states():
    for s in (S.draft, S.proposed, S.under_review):
        states.ensure_editable(s)
    for s in (S.agreed, S.active, S.suspended, S.completed, S.revoked):
        with pytest.raises(Conflict):
            states.ensure_editable(s)


def test_allowed_actions_and_finals():
    assert states.allowed_actions(S.active) == ["start_review", "complete", "suspend", "revoke"]
    assert states.allowed_actions(S.completed) == []
    assert states.allowed_actions(S.revoked) == []
    assert "close_temporary" not in states.allowed_actions(S.draft)
    assert states.next_state(S.active, "close_temporary") == S.completed
    with pytest.raises(ValueError):
        states.next_state(S.draft, "fly")
