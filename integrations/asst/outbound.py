"""Outbound to ASST: the subscribers that turn domain events into outbox messages (FHIR transaction Bundles built
with the converters of integrations/fhir), and the relay that sends them (job kind `outbox.relay`).

    domain change ──(same transaction)──► event job ──► subscriber here: build the Bundle, decide the basis,
                                                         write the outbox message (pending | withheld)
    outbox.relay job ──► lock the oldest due pending message ──► basis still there? ──► POST to ASST
                          ──► sent | back off | dead letter, in the same transaction as the lock

Wired in deploy/composition.py (HANDLER_MODULES). The Bundle is built when the message is written, from the record
as it is at that change: every attempt sends the same body under the same idempotency key
(docs/decisions/fhir.md, "Outbound to ASST").
"""
from __future__ import annotations

import logging
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.assessment.models import InstrumentResponse, Vmd
from domain.care_plan import policy as plan_policy
from domain.care_plan import repository as plan_repository
from domain.discharge.models import DischargeCase
from domain.kernel import clock, events, jobs
from domain.kernel.ids import new_id
from domain.outbox import service as outbox
from domain.registry import consent as registry_consent
from domain.registry.models import Person
from domain.waiting_list import queries as waiting_list_queries
from domain.waiting_list.models import WaitingListEntry
from integrations.asst import client
from integrations.fhir import care_plan, common, discharge, questionnaire, r4, waiting_list
from integrations.fhir import consent as consent_fhir
from schemas.discharge import DischargePublic
from schemas.waiting_list import EntryPublic

log = logging.getLogger("integrations.asst")

BUNDLE_ID_SYSTEM = "urn:ietf:rfc:3986"
# A protected discharge is signalled by the ASST ward and worked with the ASST's COT under the LEPS protocol:
# telling ASST how the case goes rests on that protocol, not on the person's consent to sharing.
DISCHARGE_BASIS = "LEPS dimissioni protette: caso segnalato dal reparto ASST e valutato dalla COT"


def bundle(message_id: uuid.UUID, resources: list[dict[str, Any]]) -> dict[str, Any]:
    """A transaction Bundle: each resource PUT at its id (ASST keeps our ids as given), the message id as the
    Bundle's identifier (the idempotency key in FHIR terms)."""
    return {"resourceType": "Bundle", "type": "transaction",
            "identifier": {"system": BUNDLE_ID_SYSTEM, "value": f"urn:uuid:{message_id}"},
            "timestamp": common.iso(clock.now()),
            "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r,
                       "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in resources]}


async def _write(session: AsyncSession, *, ambito_id, person_id, event: str, source_type: str, source_id,
                 change: str, resources: list[dict[str, Any]], source_state: str | None = None,
                 source_basis: str | None = None) -> None:
    for r in resources:
        r4.check_r4(r)  # nothing R4 does not define leaves the server
    mid = new_id()
    await outbox.record(session, message_id=mid, ambito_id=ambito_id, person_id=uuid.UUID(str(person_id)),
                        event=event, source_type=source_type, source_id=uuid.UUID(str(source_id)), change=change,
                        resource_types=[r["resourceType"] for r in resources], payload=bundle(mid, resources),
                        source_state=source_state, source_basis=source_basis)


async def _state_changed(session: AsyncSession, source_id: str, state: str) -> bool:
    return await outbox.last_source_state(session, uuid.UUID(source_id)) != state


# ---------------------------------------------------------------------------------------------------- subscribers
@events.subscribe("vmd.concluded")
async def vmd_concluded(session: AsyncSession, payload: dict[str, Any]) -> None:
    """The instruments of the concluded VMD, as QuestionnaireResponses (answers and scores)."""
    vmd = await session.get(Vmd, uuid.UUID(payload["vmd_id"]))
    if vmd is None:
        return
    responses = (await session.execute(
        sa.select(InstrumentResponse).where(InstrumentResponse.context_type == "vmd",
                                            InstrumentResponse.context_id == vmd.id)
        .order_by(InstrumentResponse.recorded_at, InstrumentResponse.id))).scalars()
    resources = [r4.dump(questionnaire.response_to_fhir(r)) for r in responses]
    if resources:
        await _write(session, ambito_id=vmd.ambito_id, person_id=vmd.person_id, event="vmd.concluded",
                     source_type="vmd", source_id=vmd.id, change="concluded", resources=resources,
                     source_state="concluded")


@events.subscribe("care_plan.state_changed")
async def care_plan_changed(session: AsyncSession, payload: dict[str, Any]) -> None:
    """The plan (CarePlan with goals and activities) as it is at its activation or closure."""
    plan = await plan_repository.plan_row(session, uuid.UUID(payload["plan_id"]))
    goals, ivs, reviews = await plan_repository.children(session, plan.id)
    b = plan_repository.PlanBundle(plan=plan, goals=goals, interventions=ivs, reviews=reviews, projection="full",
                                   labels=await plan_repository.intervention_labels(session, ivs))
    view = plan_policy.plan_view_for(None, b)  # the full view: the principal is read only for the minimal one
    await _write(session, ambito_id=plan.ambito_id, person_id=plan.person_id, event="care_plan.state_changed",
                 source_type="care_plan", source_id=plan.id, change=f"v{payload['version']}",
                 resources=[r4.dump(care_plan.to_fhir(view))], source_state=payload["state"])


@events.subscribe("discharge.changed")
async def discharge_changed(session: AsyncSession, payload: dict[str, Any]) -> None:
    """On a change of state: the stay, the request to the COT and the COT's task (Encounter, ServiceRequest,
    Task), as the case is at that version."""
    if not await _state_changed(session, payload["discharge_id"], payload["state"]):
        return
    case = await session.get(DischargeCase, uuid.UUID(payload["discharge_id"]))
    if case is None:
        return
    v = DischargePublic.of(case, "full", []).model_dump(exclude_none=True)
    v["state"] = payload["state"]  # the state of the change, even when the job runs after a later one
    await _write(session, ambito_id=case.ambito_id, person_id=case.person_id, event="discharge.state_changed",
                 source_type="discharge_case", source_id=case.id, change=f"v{payload['version']}",
                 resources=[r4.dump(discharge.encounter(v)), r4.dump(discharge.service_request(v)),
                            r4.dump(discharge.task(v))], source_state=payload["state"], source_basis=DISCHARGE_BASIS)


@events.subscribe("waiting_list.changed")
async def waiting_list_changed(session: AsyncSession, payload: dict[str, Any]) -> None:
    """On a change of status: the application as ServiceRequest and Task."""
    if not await _state_changed(session, payload["entry_id"], payload["state"]):
        return
    entry = await session.get(WaitingListEntry, uuid.UUID(payload["entry_id"]))
    if entry is None:
        return
    view = waiting_list_queries.EntryView(entry, "full", False)
    view.choices = (await waiting_list_queries.choices_of(session, [entry.id]))[entry.id]
    v = EntryPublic.of(view).model_dump(exclude_none=True)
    v["state"] = payload["state"]
    await _write(session, ambito_id=entry.ambito_id, person_id=entry.person_id, event="waiting_list.state_changed",
                 source_type="waiting_list_entry", source_id=entry.id, change=f"v{payload['version']}",
                 resources=[r4.dump(waiting_list.service_request(v)), r4.dump(waiting_list.task(v))],
                 source_state=payload["state"])


@events.subscribe("consent.changed")
async def consent_changed(session: AsyncSession, payload: dict[str, Any]) -> None:
    """A consent given or revoked, as a Consent resource. A revoked share_asst consent is itself withheld unless
    another basis remains: its revocation is ASST's cue to stop, and it reaches ASST only on a legal basis."""
    c = await registry_consent.consent_record(session, uuid.UUID(payload["consent_id"]))
    if c is None:
        return
    person = await session.get(Person, c.person_id)
    await _write(session, ambito_id=person.ambito_id, person_id=c.person_id, event="consent.changed",
                 source_type="consent", source_id=c.id, change=payload["change"],
                 resources=[r4.dump(consent_fhir.to_fhir(registry_consent.to_public(c)))],
                 source_state=payload["change"])


# ---------------------------------------------------------------------------------------------------- the relay
@jobs.handler(outbox.RELAY_KIND)
async def relay(session: AsyncSession, payload: dict[str, Any]) -> None:
    """Send the oldest due message, in this job's transaction (the row stays locked while it is sent). Then wake
    the next relay: another due message at once, a backed-off one when its time comes. With no ASST address
    configured nothing is sent and messages stay pending (a relay woken later sends them)."""
    if not client.enabled():
        return
    msg = await outbox.next_ready(session)
    if msg is None:
        return
    if await outbox.still_allowed(session, msg):
        result = await client.post_bundle(msg.payload, idempotency_key=msg.idempotency_key)
        if result.ok:
            outbox.delivered(msg, status=result.status)
        else:
            state = outbox.failed(msg, error=result.error or "errore", status=result.status)
            if state == "pending":
                await outbox.wake_relay(session, key=f"{msg.id}:{msg.retries}:{msg.attempts}",
                                        run_after=msg.next_attempt_at)
            log.warning("outbox attempt failed", extra={"message_id": str(msg.id), "attempts": msg.attempts,
                                                        "state": str(state), "status": result.status})
    await session.flush()
    if await outbox.has_ready(session):
        await outbox.wake_relay(session, key=f"next:{new_id()}")


async def enqueue_relay(session: AsyncSession) -> None:
    """Beat's periodic wake (deploy/composition.py DAILY_ENQUEUERS): messages left pending while the ASST address
    was not configured, or whose wake was lost, are picked up within the beat interval."""
    slot = clock.now().strftime("%Y-%m-%dT%H")
    await outbox.wake_relay(session, key=f"beat:{slot}")
