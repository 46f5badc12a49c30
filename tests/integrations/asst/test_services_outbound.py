"""Activation orders to ASST (issue 13, optional part): each change of state of an order is one outbox message, a
transaction Bundle with the order as ServiceRequest and its execution as Task (the hours delivered as output), sent
to the fake ASST by the relay as the worker runs it; the converter's resources are valid R4."""
from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa

from domain.kernel import jobs
from domain.outbox.models import OutboxMessage
from domain.registry.models import ConsentPurpose
from domain.services import service
from integrations.fhir import r4, service_activation
from schemas.services import ActivationCreate, DeliveryCreate
from tests.domain.assessment.vmd_setup import give_consent
from tests.domain.services.setup import MONDAY, build_case


async def test_each_state_of_an_order_goes_to_asst_as_service_request_and_task(session, clock, asst_settings,
                                                                                fake_asst):
    clock.set(MONDAY)
    c = await build_case(session, clock)
    await give_consent(session, c.w.person, c.w.sw, purpose=ConsentPurpose.share_asst)
    sw, coop = await c.p(session, c.w.sw), await c.p(session, c.coop)
    a = await service.order(session, principal=sw, data=ActivationCreate(intervention_id=c.sad.id))
    await service.accept(session, principal=coop, activation_id=a.id)
    await service.start(session, principal=coop, activation_id=a.id)
    clock.set(MONDAY + timedelta(days=1))
    await service.record_delivery(session, principal=coop, activation_id=a.id, data=DeliveryCreate(
        delivered_on=date(2026, 3, 2), hours="3"))
    await service.end(session, principal=sw, activation_id=a.id, reason="goals_reached")
    await jobs.run_ready_in_session(session, limit=200)
    msgs = list((await session.execute(sa.select(OutboxMessage).where(
        OutboxMessage.event == "services.activation_state_changed", OutboxMessage.source_id == a.id)
        .order_by(OutboxMessage.created_at, OutboxMessage.id))).scalars())
    assert [m.source_state for m in msgs] == ["requested", "accepted", "active", "ended"]
    assert all(m.state == "sent" for m in msgs), [(m.state, m.withheld_reason) for m in msgs]
    sent = {r.key: r.body for r in fake_asst.received}
    bodies = [sent[str(m.id)] for m in msgs]
    requests = [b["entry"][0]["resource"] for b in bodies]
    tasks = [b["entry"][1]["resource"] for b in bodies]
    assert {r["code"]["coding"][0]["code"] for r in requests} == {"sad"}
    assert [r["status"] for r in requests] == ["active", "active", "active", "completed"]
    assert requests[0]["occurrencePeriod"] == {"start": "2026-03-02", "end": "2026-03-29"}
    assert [t["status"] for t in tasks] == ["requested", "accepted", "in-progress", "completed"]
    assert tasks[-1]["output"][0]["valueQuantity"]["value"] == 3.0
    assert tasks[-1]["statusReason"]["text"] == "Obiettivi raggiunti"


def test_a_declined_order_is_a_revoked_request_and_a_rejected_task():
    v = {"id": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "state": "declined", "person_id":
         "0d6f5f7e-8c2b-4b7e-9a51-3c4d2e1f0a21", "provider_org_id": "3f2b8c1d-6e4a-4f7b-8c9d-0a1b2c3d4e5f",
         "service_type": "adm", "intensity_value": "2", "intensity_unit": "accesses_week",
         "start_date": "2026-03-02", "end_date": None, "requested_at": "2026-03-02T09:00:00+01:00",
         "decline_reason": "Nessun educatore disponibile", "version": 2}
    sr, task = r4.dump(service_activation.service_request(v)), r4.dump(service_activation.task(v))
    r4.check_r4(sr)
    r4.check_r4(task)
    assert (sr["status"], task["status"], task["statusReason"]["text"]) == ("revoked", "rejected",
                                                                            "Nessun educatore disponibile")
    assert sr["extension"][0]["valueQuantity"]["unit"] == "accessi/settimana"
