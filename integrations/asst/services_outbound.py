"""Outbound to ASST for services (issue 13): every change of state of an activation order becomes one outbox
message, a transaction Bundle with the order as ServiceRequest and its execution as Task (the hours or accesses
delivered so far as the Task's output), through the outbox of integrations/asst/outbound.py (same Bundle shape,
same relay, same idempotency). Sharing with ASST rests on the person's consent (`share_asst`), decided by the
outbox when the message is written: without it the message is withheld, not sent.

Wired in deploy/composition.py (HANDLER_MODULES).
"""
from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.kernel import clock, events
from domain.kernel.ids import new_id
from domain.kernel.models import EntityHistory
from domain.outbox import service as outbox
from domain.services import service
from domain.services.models import Activation, Delivery
from domain.territory import queries as territory
from integrations.asst.outbound import bundle
from integrations.fhir import r4, service_activation
from schemas.services import ActivationPublic

EVENT = "services.activation_changed"


@events.subscribe(EVENT)
async def activation_changed(session: AsyncSession, payload: dict[str, Any]) -> None:
    """The order as it was at this change (its stored version), with the hours or accesses logged until then."""
    a = (await session.execute(sa.select(Activation).where(Activation.id == uuid.UUID(payload["activation_id"]))
                               )).scalar_one_or_none()
    if a is None:
        return
    version = int(payload["version"])
    row = (await session.execute(sa.select(EntityHistory).where(
        EntityHistory.entity_type == service.ENTITY, EntityHistory.entity_id == a.id,
        EntityHistory.version == version))).scalar_one_or_none()
    if row is not None:
        v = {**row.data["activation"], "state": payload["state"]}
        at = row.at
    else:  # no stored version (never expected): the order as it is now
        v = {**ActivationPublic.of({"activation": a, "view": "full", "allowed_actions": []}).model_dump(),
             "state": payload["state"]}
        at = clock.now()
    v["provider_name"] = (await territory.org_names(session, [a.provider_org_id])).get(a.provider_org_id)
    delivered = Decimal((await session.execute(sa.select(
        sa.func.coalesce(sa.func.sum(sa.func.coalesce(Delivery.hours, Delivery.accesses)), 0)).where(
        Delivery.activation_id == a.id, Delivery.recorded_at <= at))).scalar_one())
    resources = [r4.dump(service_activation.service_request(v)), r4.dump(service_activation.task(v, delivered))]
    for r in resources:
        r4.check_r4(r)  # nothing R4 does not define leaves the server
    mid = new_id()
    await outbox.record(session, message_id=mid, ambito_id=a.ambito_id, person_id=a.person_id,
                        event="services.activation_state_changed", source_type="service_activation",
                        source_id=a.id, change=f"v{payload['version']}",
                        resource_types=[r["resourceType"] for r in resources], payload=bundle(mid, resources),
                        source_state=payload["state"])
