"""The PUA transition table (pure, no database) and its 409: exactly `state`, `action`, `allowed_actions`, in the
domain and through the API (problem+json)."""
import pytest

from domain.kernel.errors import Conflict
from domain.pua.models import AccessState
from domain.pua.states import (
    CLOSING_STATES,
    FINAL_STATES,
    MACHINE,
    OPEN_STATES,
    TRANSITIONS,
    AccessAction,
    allowed_actions,
    next_state,
)
from tests.domain.pua.helpers import (
    complex_answers,
    elderly_woman,
    mmg_referral,
    setup_pua,
)
from tests.support import bearer

S, A = AccessState, AccessAction


async def test_happy_paths():
    assert next_state(S.registered, A.reception) == S.in_reception
    assert next_state(S.in_reception, A.triage) == S.first_level_done
    assert next_state(S.first_level_done, A.orient) == S.oriented
    assert next_state(S.first_level_done, A.refer_vmd) == S.referred_vmd
    assert next_state("first_level_done", "refer_cot") == S.referred_cot
    assert next_state(S.first_level_done, A.refer_cot_vmd) == S.referred_cot_vmd
    assert isinstance(next_state("registered", "reception"), AccessState)


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
        assert e.value.extra == {"state": state, "action": action.value, "allowed_actions": []}
        assert "stato finale" in e.value.detail


async def test_an_illegal_move_is_409_with_state_action_and_allowed_actions():
    with pytest.raises(Conflict) as e:
        next_state(S.registered, A.triage)
    assert e.value.status == 409
    assert e.value.extra == {"state": "registered", "action": "triage",
                             "allowed_actions": ["reception", "withdraw", "cancel"]}
    assert "Registrata" in e.value.detail and "valutazione di primo livello" in e.value.detail
    assert "serve prima la presa in accoglienza" in e.value.detail  # the missing step
    with pytest.raises(Conflict) as e:
        next_state(S.in_reception, A.orient)  # no orientation before the first-level assessment
    assert e.value.extra == {"state": "in_reception", "action": "orient",
                             "allowed_actions": ["triage", "withdraw", "cancel"]}
    assert "serve prima la valutazione di primo livello" in e.value.detail
    with pytest.raises(Conflict):
        next_state(S.registered, A.refer_vmd)


async def test_table_shape():
    assert CLOSING_STATES < FINAL_STATES
    assert FINAL_STATES == {S.oriented, S.referred_vmd, S.referred_cot, S.referred_cot_vmd, S.withdrawn,
                            S.cancelled}
    assert all(src in OPEN_STATES for src, _ in TRANSITIONS)
    assert MACHINE.internal == frozenset()
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


async def test_the_api_answers_the_same_409(client, session):
    pua = await setup_pua(session)
    person = await elderly_woman(session)
    r = await client.post("/api/pua/requests", json=mmg_referral(person.id), headers=bearer(pua.mmg))
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    r = await client.post(f"/api/pua/requests/{rid}/triage", json={"answers": complex_answers()},
                          headers=bearer(pua.operator))
    assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert {k: body[k] for k in ("state", "action", "allowed_actions")} == {
        "state": "registered", "action": "triage", "allowed_actions": ["reception", "withdraw", "cancel"]}
    assert "current_state" not in body
    assert "serve prima la presa in accoglienza" in body["detail"]
