"""The outbox to ASST over HTTP: the integration operator lists dead letters with their payload and retries them,
the DPO sees the metadata only, the system administrator nothing; keyset pages, problem+json, audited reads."""
from __future__ import annotations

import uuid
from datetime import timedelta

import sqlalchemy as sa

from domain.kernel import clock
from domain.outbox.models import MessageState, OutboxMessage
from domain.security.models import AuditEvent, Role
from tests.factories.cartelle import create_person
from tests.support import bearer, make_user

URL = "/api/integration/outbox"
PROBLEM = "application/problem+json"


async def _message(session, person, state=MessageState.dead, *, minutes=0, ambito=None) -> OutboxMessage:
    mid = uuid.uuid4()
    m = OutboxMessage(id=mid, ambito_id=ambito or person.ambito_id, person_id=person.id, event="consent.changed",
                      source_type="consent", source_id=uuid.uuid4(), source_state="granted",
                      dedup_key=f"test:{mid}", idempotency_key=str(mid), resource_types=["Consent"],
                      payload={"resourceType": "Bundle", "type": "transaction", "entry": [
                          {"resource": {"resourceType": "Consent", "patient": {"reference": f"Patient/{person.id}"}}}]},
                      state=state, basis="consenso share_asst", basis_kind="consent", attempts=8,
                      last_error="HTTP 500", last_status=500, created_at=clock.now() + timedelta(minutes=minutes))
    session.add(m)
    await session.flush()
    return m


async def _users(session):
    return {r: await make_user(session, r, "ambito-crema")
            for r in (Role.integration_operator, Role.dpo, Role.system_admin)}


class TestList:
    async def test_the_operator_lists_dead_letters_with_their_payload_newest_first_in_keyset_pages(
            self, client, session):
        u = await _users(session)
        person = await create_person(session)
        old, new = await _message(session, person, minutes=-5), await _message(session, person)
        await _message(session, person, MessageState.sent)
        h = bearer(u[Role.integration_operator])
        r = await client.get(URL, params={"state": "dead", "limit": 1}, headers=h)
        assert r.status_code == 200, r.text
        page = r.json()
        assert [i["id"] for i in page["items"]] == [str(new.id)]
        item = page["items"][0]
        assert item["payload"]["entry"][0]["resource"]["patient"]["reference"] == f"Patient/{person.id}"
        assert (item["state_label"], item["allowed_actions"]) == ("Non recapitato (da riprovare)", ["retry"])
        assert item["idempotency_key"] == str(new.id)
        r = await client.get(URL, params={"state": "dead", "limit": 1, "cursor": page["next_cursor"]}, headers=h)
        assert [i["id"] for i in r.json()["items"]] == [str(old.id)] and r.json()["next_cursor"] is None
        everything = (await client.get(URL, headers=h)).json()["items"]
        assert len(everything) == 3

    async def test_the_dpo_sees_metadata_without_payload_and_the_administrator_nothing(self, client, session):
        u = await _users(session)
        m = await _message(session, await create_person(session))
        r = await client.get(f"{URL}/{m.id}", headers=bearer(u[Role.dpo]))
        assert r.status_code == 200 and r.json()["payload"] is None
        assert (r.json()["attempts"], r.json()["last_error"], r.json()["basis"]) == (8, "HTTP 500",
                                                                                      "consenso share_asst")
        assert r.json()["payload"] is None
        assert (await client.post(f"{URL}/{m.id}/retry", headers=bearer(u[Role.dpo]))).status_code == 403
        for call in (client.get(URL, headers=bearer(u[Role.system_admin])),
                     client.get(f"{URL}/{m.id}", headers=bearer(u[Role.system_admin]))):
            r = await call
            assert r.status_code == 403 and r.headers["content-type"].startswith(PROBLEM)

    async def test_reads_are_audited_with_the_person_and_whether_the_payload_was_shown(self, client, session):
        u = await _users(session)
        person = await create_person(session)
        m = await _message(session, person)
        await client.get(f"{URL}/{m.id}", headers=bearer(u[Role.integration_operator]))
        await client.get(f"{URL}/{m.id}", headers=bearer(u[Role.dpo]))
        rows = (await session.execute(sa.select(AuditEvent).where(AuditEvent.object_type == "outbox_message",
                                                                  AuditEvent.action == "read")
                                      .order_by(AuditEvent.id))).scalars().all()
        assert [(r.actor_id, r.purpose) for r in rows] == [
            (u[Role.integration_operator].id, "integration_payload"), (u[Role.dpo].id, "integration_metadata")]
        assert all(r.person_ids == [person.id] for r in rows)

    async def test_bad_input_names_the_field(self, client, session):
        h = bearer((await _users(session))[Role.integration_operator])
        r = await client.get(URL, params={"state": "lost"}, headers=h)
        assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
        assert r.json()["errors"][0]["field"].endswith("state")
        r = await client.get(URL, params={"cursor": "not-a-cursor"}, headers=h)
        assert r.status_code == 400 and r.json()["errors"][0]["field"] == "cursor"

    async def test_another_ambito_s_message_is_not_found(self, client, session):
        u = await _users(session)
        other = await create_person(session, ambito="ambito-cremona-test", comune="comune-cremona")
        m = await _message(session, other)
        h = bearer(u[Role.integration_operator])
        assert (await client.get(f"{URL}/{m.id}", headers=h)).status_code == 404
        assert (await client.post(f"{URL}/{m.id}/retry", headers=h)).status_code == 404
        assert (await client.get(URL, headers=h)).json()["items"] == []


class TestRetry:
    async def test_a_dead_letter_goes_back_to_the_queue_with_the_same_key(self, client, session):
        u = await _users(session)
        m = await _message(session, await create_person(session))
        r = await client.post(f"{URL}/{m.id}/retry", headers=bearer(u[Role.integration_operator]))
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["state"], body["attempts"], body["retries"], body["idempotency_key"]) == (
            "pending", 0, 1, str(m.id))

    async def test_retrying_a_sent_message_is_409_with_the_state(self, client, session):
        u = await _users(session)
        m = await _message(session, await create_person(session), MessageState.sent)
        r = await client.post(f"{URL}/{m.id}/retry", headers=bearer(u[Role.integration_operator]))
        assert r.status_code == 409 and r.headers["content-type"].startswith(PROBLEM)
        assert (r.json()["state"], r.json()["action"], r.json()["allowed_actions"]) == ("sent", "retry", [])


class TestRole:
    async def test_granting_the_integration_operator_waits_for_a_second_administrator(self, client, session):
        first = await make_user(session, Role.system_admin, "ambito-crema")
        second = await make_user(session, Role.system_admin, "ambito-crema")
        r = await client.post("/api/admin/users", headers=bearer(first), json={
            "username": "integrazioni.attesa", "display_name": "Operatore integrazioni",
            "roles": [{"role": "integration_operator", "organisation_code": "ambito-crema"}]})
        assert r.status_code == 201, r.text
        user, [grant] = r.json(), r.json()["roles"]
        assert grant["pending"] and not grant["active"]  # the payloads are personal data
        assert (await client.get(URL, headers=bearer(user["id"]))).status_code == 403
        r = await client.post(f"/api/admin/role-assignments/{grant['id']}/approve", headers=bearer(second))
        assert r.status_code == 200 and r.json()["active"]
        assert (await client.get(URL, headers=bearer(user["id"]))).status_code == 200
