"""Outbound to ASST against a fake ASST FHIR server (real HTTP on 127.0.0.1): what is sent, with which idempotency
key, the back-off between failed attempts, the dead letter, and that nothing leaves without consent or a recorded
legal basis (docs/readme/fhir.md "Outbound to ASST"). The relay runs as the worker runs it
(domain.kernel.jobs.run_ready_in_session: the same claim, handler and failure path, in the test's transaction)."""
from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from domain.kernel import jobs
from domain.kernel.models import Job
from domain.outbox import service as outbox
from domain.outbox.models import MessageState, OutboxMessage
from domain.registry import consent
from domain.registry.models import AssignmentReason, ConsentPurpose, GrantorKind
from domain.security.models import Role
from domain.security.principal import load_principal
from integrations.asst import outbound
from schemas.access import ConsentCreate
from tests.factories.cartelle import create_assignment, create_cartella, create_person
from tests.support import make_user


async def _case(session):
    person = await create_person(session, comune="comune-crema", birth_date=date(1944, 4, 4))
    cartella = await create_cartella(session, person=person)
    sw = await make_user(session, Role.comune_social_worker, "comune-crema")
    return person, cartella, await load_principal(session, str(sw.id))


async def _grant(session, principal, person, purpose=ConsentPurpose.share_asst):
    return await consent.grant(session, principal=principal, person_id=person.id, data=ConsentCreate(
        purpose=purpose, grantor_kind=GrantorKind.self, valid_from=date(2026, 3, 1)))


async def _messages(session, person_id) -> list[OutboxMessage]:
    return list((await session.execute(
        sa.select(OutboxMessage).where(OutboxMessage.person_id == person_id)
        .order_by(OutboxMessage.created_at, OutboxMessage.id).execution_options(populate_existing=True))).scalars())


async def _run(session):
    return await jobs.run_ready_in_session(session, limit=200)


async def _one_message(session, person, basis: str | None = "source") -> OutboxMessage:
    """A message written the way the subscribers write one (a Consent resource), with a source basis or none."""
    mid = uuid.uuid4()
    resource = {"resourceType": "Consent", "id": str(uuid.uuid4()), "status": "active",
                "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                      "code": "patient-privacy"}]},
                "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
                "patient": {"reference": f"Patient/{person.id}"}}
    return await outbox.record(session, message_id=mid, ambito_id=person.ambito_id, person_id=person.id,
                               event="consent.changed", source_type="consent", source_id=uuid.UUID(resource["id"]),
                               change="granted", resource_types=["Consent"],
                               payload=outbound.bundle(mid, [resource]),
                               source_basis="protocollo di prova" if basis == "source" else None)


class TestSend:
    async def test_a_consent_granted_goes_to_asst_as_a_transaction_bundle_with_its_idempotency_key(
            self, session, asst_settings, fake_asst):
        person, _, sw = await _case(session)
        c = await _grant(session, sw, person)
        await _run(session)  # the event's subscriber writes the message, the relay sends it
        [msg] = await _messages(session, person.id)
        assert (msg.state, msg.attempts, msg.last_status) == (MessageState.sent, 1, 200)
        assert msg.basis.startswith("consenso share_asst")
        [got] = fake_asst.received
        assert got.key == msg.idempotency_key == str(msg.id)
        assert got.headers["content-type"] == "application/fhir+json"
        assert got.body["resourceType"] == "Bundle" and got.body["type"] == "transaction"
        assert got.body["identifier"]["value"] == f"urn:uuid:{msg.id}"
        [entry] = got.body["entry"]
        assert entry["request"] == {"method": "PUT", "url": f"Consent/{c.id}"}
        assert entry["resource"]["patient"]["reference"] == f"Patient/{person.id}"
        await _run(session)
        assert len(fake_asst.received) == 1  # sent once: the relay has nothing more to do

    async def test_a_revocation_is_a_second_message_with_its_own_key(self, session, asst_settings, fake_asst):
        person, cartella, sw = await _case(session)
        # the joint-care basis keeps sharing possible after the consent is revoked
        await create_assignment(session, cartella=cartella, reason=AssignmentReason.team,
                                legal_basis="LEPS PUA/VMD (prova)", organisation_id=person.residence_comune_id)
        c = await _grant(session, sw, person)
        await _run(session)
        await consent.revoke(session, principal=sw, person_id=person.id, consent_id=c.id, reason="Revoca di prova")
        await _run(session)
        msgs = await _messages(session, person.id)
        assert [m.source_state for m in msgs] == ["granted", "revoked"]
        assert [m.state for m in msgs] == [MessageState.sent, MessageState.sent]
        assert msgs[1].basis == "base giuridica: LEPS PUA/VMD (prova)"
        assert fake_asst.keys() == [str(msgs[0].id), str(msgs[1].id)]
        assert fake_asst.received[1].body["entry"][0]["resource"]["status"] == "inactive"


class TestRetries:
    async def test_failures_back_off_exponentially_then_the_same_key_is_delivered(
            self, session, asst_settings, fake_asst, clock):
        person, *_ = await _case(session)
        msg = await _one_message(session, person)
        fake_asst.script(500, 503)
        start = clock.now()
        await _run(session)
        await session.refresh(msg)
        assert (msg.state, msg.attempts, msg.last_status, msg.last_error) == ("pending", 1, 500, "HTTP 500")
        assert msg.next_attempt_at == start + timedelta(seconds=10)  # base 10 s
        await _run(session)
        assert len(fake_asst.received) == 1  # nothing before the back-off has passed
        clock.advance(seconds=10)
        await _run(session)
        await session.refresh(msg)
        assert (msg.state, msg.attempts, msg.last_status) == ("pending", 2, 503)
        assert msg.next_attempt_at == start + timedelta(seconds=10 + 20)  # then 20 s
        clock.advance(seconds=19)
        await _run(session)
        assert len(fake_asst.received) == 2
        clock.advance(seconds=1)
        await _run(session)
        await session.refresh(msg)
        assert (msg.state, msg.attempts, msg.last_status) == ("sent", 3, 200)
        assert fake_asst.keys() == [str(msg.id)] * 3
        assert [r.body for r in fake_asst.received] == [msg.payload] * 3  # the same body every time

    async def test_a_document_asst_refuses_is_a_dead_letter_at_once_while_429_is_retried(
            self, session, asst_settings, fake_asst):
        person, *_ = await _case(session)
        a, b = await _one_message(session, person), await _one_message(session, person)
        fake_asst.script(429, 422)  # the first sent is told to come back later, the second is refused as it is
        await _run(session)
        first = fake_asst.received[0].key
        busy, refused = (a, b) if first == str(a.id) else (b, a)
        await session.refresh(busy)
        await session.refresh(refused)
        assert (busy.state, busy.attempts, busy.last_status) == ("pending", 1, 429)
        assert (refused.state, refused.attempts, refused.last_status) == ("dead", 1, 422)

    async def test_a_timeout_is_a_failed_attempt(self, session, asst_settings, fake_asst):
        person, *_ = await _case(session)
        msg = await _one_message(session, person)
        fake_asst.script("timeout")  # held 3 s, the client gives up after 1 s
        await _run(session)
        await session.refresh(msg)
        assert (msg.state, msg.attempts, msg.last_status) == ("pending", 1, None)
        assert msg.last_error.startswith("timeout")

    async def test_out_of_attempts_it_is_a_dead_letter_and_an_operator_retry_delivers_it(
            self, session, asst_settings, fake_asst, clock):
        person, *_ = await _case(session)
        msg = await _one_message(session, person)
        fake_asst.default = 500
        for _ in range(3):
            await _run(session)
            clock.advance(seconds=3600)
        await session.refresh(msg)
        assert (msg.state, msg.attempts, msg.last_error) == ("dead", 3, "HTTP 500")
        assert msg.dead_at is not None
        await _run(session)
        assert len(fake_asst.received) == 3  # a dead letter is not retried by itself
        operator = await load_principal(session, str(
            (await make_user(session, Role.integration_operator, "ambito-crema")).id))
        fake_asst.default = 200
        fake_asst.script(500)  # the retry's first attempt fails too: its back-off is woken like the first round's
        await outbox.retry(session, principal=operator, message_id=msg.id)
        await _run(session)
        await session.refresh(msg)
        assert (msg.state, msg.attempts, msg.retries, msg.retried_by) == ("pending", 1, 1, operator.user_id)
        clock.advance(seconds=10)
        await _run(session)
        await session.refresh(msg)
        assert (msg.state, msg.attempts) == ("sent", 2)
        assert fake_asst.keys() == [str(msg.id)] * 5  # the retry keeps the key


class TestBasis:
    async def test_without_consent_or_legal_basis_nothing_is_sent_and_the_message_is_withheld(
            self, session, asst_settings, fake_asst):
        person, _, sw = await _case(session)
        await _grant(session, sw, person, purpose=ConsentPurpose.care)  # consent to care, not to sharing
        await _run(session)
        [msg] = await _messages(session, person.id)
        assert (msg.state, msg.basis, msg.attempts) == ("withheld", None, 0)
        assert "né base giuridica" in msg.withheld_reason
        assert fake_asst.received == []
        assert msg.payload["entry"][0]["resource"]["resourceType"] == "Consent"  # kept, visible

    async def test_a_provider_s_legal_basis_is_not_a_basis_for_sharing_with_asst(self, session, asst_settings,
                                                                                  fake_asst):
        person, cartella, sw = await _case(session)
        await create_assignment(session, cartella=cartella, reason=AssignmentReason.provider,
                                legal_basis="Erogazione dell'intervento", organisation_id=person.residence_comune_id)
        await _grant(session, sw, person, purpose=ConsentPurpose.share_ets)
        await _run(session)
        [msg] = await _messages(session, person.id)
        assert msg.state == "withheld" and fake_asst.received == []

    async def test_a_consent_revoked_before_the_attempt_withholds_the_message(self, session, asst_settings,
                                                                               fake_asst):
        person, _, sw = await _case(session)
        c = await _grant(session, sw, person)
        fake_asst.script(500)
        await _run(session)
        [msg] = await _messages(session, person.id)
        assert (msg.state, msg.attempts) == ("pending", 1)
        await consent.revoke(session, principal=sw, person_id=person.id, consent_id=c.id, reason="Revoca")
        await session.execute(sa.update(OutboxMessage).where(OutboxMessage.id == msg.id)
                              .values(next_attempt_at=msg.created_at))  # due now
        await session.execute(sa.update(Job).where(Job.state == "pending").values(run_after=msg.created_at))
        await _run(session)
        msgs = await _messages(session, person.id)
        assert [(m.source_state, m.state) for m in msgs] == [("granted", "withheld"), ("revoked", "withheld")]
        assert len(fake_asst.received) == 1  # only the failed first attempt ever reached ASST


class TestDisabled:
    async def test_without_an_asst_address_messages_stay_pending_and_visible(self, session, fake_asst, monkeypatch):
        from domain.kernel.settings import get_settings

        monkeypatch.delenv("ASST_FHIR_BASE_URL", raising=False)
        get_settings.cache_clear()
        assert get_settings().asst_fhir_base_url is None
        person, *_ = await _case(session)
        msg = await _one_message(session, person)
        await _run(session)
        await session.refresh(msg)
        assert (msg.state, msg.attempts) == ("pending", 0)
        assert fake_asst.received == []


class TestEvents:
    async def test_a_discharge_signal_sends_its_state_changes_on_the_protocol_basis(
            self, session, asst_settings, fake_asst):
        """A protected discharge needs no sharing consent: the case rests on the protocol ASST started."""
        from domain.discharge import service as discharge_service
        from schemas.discharge import DischargeSignalCreate
        from tests.support import org

        person = await create_person(session, comune="comune-crema", birth_date=date(1940, 1, 1))
        ward = await org(session, "asst-crema-reparto-medicina")
        nurse = await load_principal(session, str(
            (await make_user(session, Role.ward_staff, "asst-crema-reparto-medicina")).id))
        case = await discharge_service.open_signal(session, principal=nurse, data=DischargeSignalCreate(
            person_id=person.id, ward_org_id=ward.id, admission_date=date(2026, 2, 26),
            expected_discharge_date=date(2026, 3, 5), criteria=["over65_not_self_sufficient"],
            clinician_summary="Dimissione a domicilio con bisogni di assistenza."))
        await _run(session)
        msgs = await _messages(session, person.id)
        assert {m.source_state for m in msgs} == {"signalled", "cot_requested"}
        assert all(m.state == "sent" and m.basis_kind == "source" for m in msgs)
        sent = {r.body["entry"][2]["resource"]["status"] for r in fake_asst.received}
        assert sent == {"requested"}
        assert {tuple(e["request"]["url"] for e in r.body["entry"]) for r in fake_asst.received} == {
            (f"Encounter/{case.id}", f"ServiceRequest/{case.id}", f"Task/{case.id}")}

    @pytest.mark.parametrize("event", sorted(["vmd.concluded", "care_plan.state_changed", "discharge.changed",
                                              "waiting_list.changed", "consent.changed"]))
    def test_every_outbound_event_has_a_subscriber(self, event):
        from domain.kernel import events

        assert any(k.endswith(f"integrations.asst.outbound.{n}") for k in events.subscribers(event)
                   for n in ("vmd_concluded", "care_plan_changed", "discharge_changed", "waiting_list_changed",
                             "consent_changed"))


class TestMoreEvents:
    async def test_a_concluded_vmd_sends_its_instruments_as_questionnaire_responses(
            self, session, asst_settings, fake_asst, clock):
        from domain.assessment import service as vmd
        from tests.domain.assessment.vmd_setup import build_world, signed_and_met

        w = await build_world(session)
        v, ifec, _ = await signed_and_met(session, w, clock)
        await vmd.conclude(session, principal=ifec, vmd_id=v.id, outcome="project_proposed")
        await _run(session)
        [msg] = [m for m in await _messages(session, w.person.id) if m.event == "vmd.concluded"]
        assert msg.state == "sent" and msg.basis_kind == "legal_basis"  # the VMD's own assignments (LEPS)
        [got] = [r for r in fake_asst.received if r.key == str(msg.id)]
        resources = [e["resource"] for e in got.body["entry"]]
        assert {r["resourceType"] for r in resources} == {"QuestionnaireResponse"}
        assert sorted(r["questionnaire"].rsplit("/", 1)[-1].split("|")[0] for r in resources) == [
            "barthel", "lawton_iadl", "social_risk"]
        assert all(r["subject"]["reference"] == f"Patient/{w.person.id}" and r.get("item") for r in resources)

    async def test_a_plan_s_activation_and_completion_are_two_messages(self, session, asst_settings, fake_asst):
        from domain.care_plan import service as plans
        from tests.domain.care_plan.support import make_world
        from tests.domain.care_plan.test_reviews import active_plan

        w = await make_world(session)
        plan = await active_plan(session, w)
        await _run(session)
        await plans.complete(session, principal=w.sw_p, plan_id=plan.id, reason="Obiettivi raggiunti")
        await _run(session)
        msgs = [m for m in await _messages(session, w.person.id) if m.event == "care_plan.state_changed"]
        assert [(m.source_state, m.state) for m in msgs] == [("active", "sent"), ("completed", "sent")]
        statuses = [r.body["entry"][0]["resource"]["status"] for r in fake_asst.received
                    if r.key in {str(m.id) for m in msgs}]
        assert statuses == ["active", "completed"]

    async def test_a_waiting_list_application_sends_each_status_once(self, session, asst_settings, fake_asst):
        from tests.domain.waiting_list.setup import World, applicant

        w = await World().build(session)
        a = await applicant(session, w, barthel=35, units=[w.x], application_date=date(2026, 2, 20),
                            listing_date=date(2026, 3, 2))
        await _run(session)
        msgs = [m for m in await _messages(session, a.person.id) if m.event == "waiting_list.state_changed"]
        # applied (awaiting the joint assessment) and listed: one message per status, however many changes
        assert [m.source_state for m in msgs] == ["assessment_pending", "listed"]
        assert all(m.state == "sent" for m in msgs)  # the VMD's LEPS assignments are the basis
        tasks = [r.body["entry"][1]["resource"] for r in fake_asst.received if r.key in {str(m.id) for m in msgs}]
        assert [t["status"] for t in tasks] == ["requested", "in-progress"]
        assert all(t["resourceType"] == "Task" for t in tasks)
