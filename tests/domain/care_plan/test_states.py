import pytest

from domain.care_plan import states
from domain.care_plan.models import PlanState as S
from domain.kernel.errors import Conflict
from domain.security.models import Role
from tests.factories.registry import insert_person
from tests.support import bearer, make_user


def test_happy_path():
    s = S.draft
    for action, expected in [("propose", S.proposed), ("agree", S.agreed), ("activate", S.active),
                             ("start_review", S.under_review), ("end_review", S.active),
                             ("start_review", S.under_review), ("complete", S.completed)]:
        s = states.MACHINE.next_state(s, action)
        assert s == expected


def test_suspend_and_resume():
    assert states.MACHINE.next_state(S.active, "suspend") == S.suspended
    assert states.MACHINE.next_state(S.under_review, "suspend") == S.suspended
    assert states.MACHINE.next_state(S.suspended, "resume") == S.active
    assert states.MACHINE.next_state(S.proposed, "back_to_draft") == S.draft


@pytest.mark.parametrize("state", [S.draft, S.proposed, S.agreed, S.active, S.under_review, S.suspended])
def test_revoke_from_every_open_state(state):
    assert states.MACHINE.next_state(state, "revoke") == S.revoked


@pytest.mark.parametrize("state,action", [
    (S.draft, "agree"), (S.draft, "activate"), (S.proposed, "activate"), (S.agreed, "start_review"),
    (S.draft, "suspend"), (S.proposed, "suspend"), (S.agreed, "suspend"), (S.active, "resume"),
    (S.completed, "revoke"), (S.revoked, "resume"), (S.completed, "start_review"), (S.suspended, "complete"),
    (S.active, "propose"), (S.under_review, "activate"),
])
def test_illegal_moves_are_409_naming_state_and_action(state, action):
    with pytest.raises(Conflict) as exc:
        states.MACHINE.next_state(state, action)
    assert exc.value.status == 409
    assert exc.value.extra["state"] == state.value and exc.value.extra["action"] == action
    assert "allowed_actions" in exc.value.extra


def test_editable_states():
    for s in (S.draft, S.proposed, S.under_review):
        states.MACHINE.require(s, states.EDITABLE, "edit")
    for s in (S.agreed, S.active, S.suspended, S.completed, S.revoked):
        with pytest.raises(Conflict):
            states.MACHINE.require(s, states.EDITABLE, "edit")


def test_allowed_actions_and_finals():
    assert states.MACHINE.allowed_actions(S.active) == ["start_review", "complete", "suspend", "revoke"]
    assert states.MACHINE.allowed_actions(S.completed) == []
    assert states.MACHINE.allowed_actions(S.revoked) == []
    assert "close_temporary" not in states.MACHINE.allowed_actions(S.draft)
    assert states.MACHINE.next_state(S.active, "close_temporary") == S.completed
    with pytest.raises(Conflict):  # an action the table does not know is an illegal move like any other
        states.MACHINE.next_state(S.draft, "fly")


async def test_an_illegal_move_is_one_409_body_in_the_domain_and_through_the_api(client, session):
    """agree from draft: the Conflict carries exactly state / action / allowed_actions, the detail names the missing
    step, and the API's problem+json body has the same three members with the same values."""
    with pytest.raises(Conflict) as exc:
        states.MACHINE.next_state(S.draft, "agree")
    assert exc.value.status == 409
    assert exc.value.extra == {"state": "draft", "action": "agree", "allowed_actions": ["propose", "revoke"]}
    assert "il progetto va prima proposto" in exc.value.detail

    sw = await make_user(session, Role.comune_social_worker, "comune-offanengo")
    person = await insert_person(session, comune="comune-offanengo")
    h = bearer(sw)
    cartella = (await client.post(f"/api/persons/{person.id}/cartelle", json={"area": "anziani"}, headers=h)).json()
    consent = (await client.post(f"/api/persons/{person.id}/consents", headers=h, json={
        "purpose": "care", "grantor_kind": "self", "valid_from": "2026-03-01"})).json()
    r = await client.post("/api/care-plans", headers=h, json={
        "cartella_id": cartella["id"], "case_manager_id": str(sw.id), "title": "Sostegno alla domiciliarità"})
    assert r.status_code == 201, r.text
    r = await client.post(f"/api/care-plans/{r.json()['id']}/agree", headers=h, json={"consent_id": consent["id"]})
    assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    members = set(body) - {"type", "title", "status", "detail", "instance"}
    assert members == {"state", "action", "allowed_actions"}, body
    assert (body["state"], body["action"], body["allowed_actions"]) == ("draft", "agree", ["propose", "revoke"])
    assert body["status"] == 409 and body["detail"] == exc.value.detail
