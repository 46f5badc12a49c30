import pytest

from domain.kernel.errors import Conflict
from domain.pua.models import AccessState
from domain.pua.states import (
    CLOSING_STATES,
    FINAL_STATES,
    OPEN_STATES,
    TRANSITIONS,
    AccessAction,
    allowed_actions,
    next_state,
)

S, A = AccessState, AccessAction


async def test_happy_paths():
    assert next_state(S.registered, A.reception) == S.in_reception
    assert next_state(S.in_reception, A.triage) == S.first_level_done
    assert next_state(S.first_level_done, A.orient) == S.oriented
    assert next_state(S.first_level_done, A.refer_vmd) == S.referred_vmd
    assert next_state("first_level_done", "refer_cot") == S.referred_cot


@pytest.mark.parametrize("state", sorted(OPEN_STATES))
async def test_withdraw_and_cancel_from_every_open_state(state):
    assert next_state(state, A.withdraw) == S.withdrawn
    assert next_state(state, A.cancel) == S.cancelled


@pytest.mark.parametrize("state", sorted(FINAL_STATES))
async def test_final_states_allow_nothing(state):
    assert allowed_actions(state) == []
    for action in A:
        with pytest.raises(Conflict) as e:
            next_state(state, action)
        assert e.value.extra["current_state"] == state
        assert e.value.extra["action"] == action.value
        assert "stato finale" in e.value.detail


async def test_illegal_transition_names_state_and_action():
    with pytest.raises(Conflict) as e:
        next_state(S.registered, A.triage)
    assert e.value.status == 409
    assert e.value.extra == {"current_state": "registered", "action": "triage",
                             "allowed_actions": ["reception", "withdraw", "cancel"]}
    assert "Registrata" in e.value.detail and "valutazione di primo livello" in e.value.detail
    with pytest.raises(Conflict):
        next_state(S.in_reception, A.orient)  # no orientation before the first-level assessment
    with pytest.raises(Conflict):
        next_state(S.registered, A.refer_vmd)


async def test_table_shape():
    assert CLOSING_STATES < FINAL_STATES
    assert FINAL_STATES == {S.oriented, S.referred_vmd, S.referred_cot, S.withdrawn, S.cancelled}
    assert all(src in OPEN_STATES for src, _ in TRANSITIONS)
    # every state is reachable from `registered`
    reached, frontier = {S.registered}, [S.registered]
    while frontier:
        s = frontier.pop()
        for a in allowed_actions(s):
            t = next_state(s, a)
            if t not in reached:
                reached.add(t)
                frontier.append(t)
    assert reached == set(S)
