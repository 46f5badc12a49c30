"""The VMD transition table, cell by cell (pure, no database), and its 409: exactly `state`, `action`,
`allowed_actions`, in the domain and through the API (problem+json)."""
from __future__ import annotations

import itertools

import pytest

from domain.assessment.models import VmdState
from domain.assessment.states import (
    FINAL_STATES,
    VmdAction,
    allowed_actions,
    can,
    next_state,
)
from domain.kernel.errors import Conflict
from tests.domain.assessment.vmd_setup import build_world
from tests.support import bearer

S, A = VmdState, VmdAction

# Every legal (state, action) and where it leads; every other pair must be a 409.
EXPECTED = {
    (S.requested, A.schedule): S.scheduled,
    (S.requested, A.add_assessor): S.requested,
    (S.requested, A.cancel): S.cancelled,
    (S.scheduled, A.schedule): S.scheduled,
    (S.scheduled, A.add_assessor): S.scheduled,
    (S.scheduled, A.record_response): S.in_progress,
    (S.scheduled, A.cancel): S.cancelled,
    (S.in_progress, A.add_assessor): S.in_progress,
    (S.in_progress, A.record_response): S.in_progress,
    (S.in_progress, A.sign): S.in_progress,
    (S.in_progress, A.hold_meeting): S.equipe_review,
    (S.in_progress, A.cancel): S.cancelled,
    (S.equipe_review, A.sign): S.equipe_review,
    (S.equipe_review, A.hold_meeting): S.equipe_review,
    (S.equipe_review, A.conclude): S.concluded,
    (S.equipe_review, A.cancel): S.cancelled,
    (S.concluded, A.reassess): S.concluded,
}


@pytest.mark.parametrize("state,action", list(itertools.product(S, A)))
def test_every_cell_of_the_table(state, action):
    if (state, action) in EXPECTED:
        assert can(state, action)
        assert next_state(state, action) == EXPECTED[(state, action)]
    else:
        assert not can(state, action)
        with pytest.raises(Conflict) as exc:
            next_state(state.value, action.value)
        allowed = [a.value for (s, a) in EXPECTED if s == state]
        assert exc.value.extra == {"state": state.value, "action": action.value, "allowed_actions": allowed}
        assert exc.value.status == 409


def test_main_path_and_finals():
    path = [A.schedule, A.add_assessor, A.record_response, A.sign, A.hold_meeting, A.conclude]
    st = S.requested
    seen = [st]
    for a in path:
        st = next_state(st, a)
        seen.append(st)
    assert seen == [S.requested, S.scheduled, S.scheduled, S.in_progress, S.in_progress, S.equipe_review,
                    S.concluded]
    assert FINAL_STATES == {S.concluded, S.cancelled}
    assert allowed_actions(S.cancelled) == []
    assert allowed_actions(S.concluded) == ["reassess"]  # a new VMD row, never a way back to `scheduled`
    assert allowed_actions(S.requested) == ["schedule", "add_assessor", "cancel"]
    assert all(can(s, A.cancel) for s in S if s not in FINAL_STATES)


def test_the_detail_is_italian_and_names_the_missing_step():
    with pytest.raises(Conflict) as exc:
        next_state(S.in_progress, A.conclude)
    assert exc.value.detail == ("Non è possibile concludere la valutazione: la valutazione è nello stato "
                                "«In corso»; serve la riunione d'équipe prima della conclusione.")
    assert exc.value.extra == {"state": "in_progress", "action": "conclude",
                               "allowed_actions": ["add_assessor", "record_response", "sign", "hold_meeting",
                                                   "cancel"]}
    with pytest.raises(Conflict) as exc:
        next_state(S.cancelled, A.schedule)
    assert exc.value.detail.endswith("«Annullata» (stato finale).")


async def test_the_api_answers_the_same_409(client, session):
    w = await build_world(session)
    body = {"person_id": str(w.person.id), "cartella_id": str(w.cartella.id), "trigger": "pua",
            "team_id": str(w.team.id)}
    r = await client.post("/api/vmd", json=body, headers=bearer(w.sw))
    assert r.status_code == 201, r.text
    r = await client.post(f"/api/vmd/{r.json()['id']}/conclude", json={"outcome": "no_need"},
                          headers=bearer(w.ifec))
    assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert {k: problem[k] for k in ("state", "action", "allowed_actions")} == {
        "state": "requested", "action": "conclude", "allowed_actions": ["schedule", "add_assessor", "cancel"]}
    assert "serve la riunione d'équipe prima della conclusione" in problem["detail"]
