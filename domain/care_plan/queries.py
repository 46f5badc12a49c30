"""Read side of the care plan that other contexts' views use (wired by the composition root)."""
from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.care_plan.models import CarePlan, Intervention, InterventionStatus
from domain.territory import queries as territory

OPEN_INTERVENTION_STATES = (InterventionStatus.planned.value, InterventionStatus.active.value)


async def interventions_for_provider(session: AsyncSession, *, principal, person_id: uuid.UUID) -> list[dict[str, Any]]:
    """The person's plan interventions (planned or active) assigned to one of the principal's organisations: what
    a provider with the minimal projection sees beside the person's identity."""
    orgs = sorted(principal.orgs_for(), key=str)
    if not orgs:
        return []
    rows = (await session.execute(
        sa.select(Intervention, CarePlan.id.label("plan_id"))
        .join(CarePlan, CarePlan.id == Intervention.plan_id)
        .where(CarePlan.person_id == person_id, Intervention.provider_org_id.in_(orgs),
               Intervention.status.in_(OPEN_INTERVENTION_STATES))
        .order_by(Intervention.start_date, Intervention.id)
    )).all()
    services = await territory.service_types(session, (iv.service_type for iv, _ in rows))
    names = await territory.org_names(session, (iv.provider_org_id for iv, _ in rows))
    return [{"id": iv.id, "plan_id": plan_id, "service_type": iv.service_type,
             "service_label": services[iv.service_type].label if iv.service_type in services else None,
             "provider_org_id": iv.provider_org_id, "provider_name": names.get(iv.provider_org_id),
             "intensity_value": iv.intensity_value, "intensity_unit": iv.intensity_unit,
             "start_date": iv.start_date, "end_date": iv.end_date, "status": str(iv.status)} for iv, plan_id in rows]
