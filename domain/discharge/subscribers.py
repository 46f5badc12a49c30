"""Event subscribers of the discharge context (listed in deploy/composition.py HANDLER_MODULES)."""
from __future__ import annotations

import uuid
from datetime import datetime

from domain.assessment.models import VmdTrigger
from domain.discharge import flows, service
from domain.kernel import events


@events.subscribe("person.died")
async def close_open_discharges_on_death(session, payload: dict) -> None:
    """A person died: their open protected discharges end as deceased, their work items cancelled."""
    await service.close_open_for_death(session, person_id=uuid.UUID(str(payload["person_id"])))


@events.subscribe("vmd.concluded")
async def complete_evaluation_on_vmd_concluded(session, payload: dict) -> None:
    """The equipe concluded a VMD: when it is the evaluation a protected discharge requested, the case is
    evaluated at the VMD's conclusion (flows.evaluation_from_vmd); any other VMD is not ours."""
    if payload.get("trigger") != VmdTrigger.protected_discharge.value:
        return
    by = payload.get("concluded_by")
    await flows.evaluation_from_vmd(
        session, vmd_id=uuid.UUID(str(payload["vmd_id"])), outcomes=list(payload.get("outcomes") or []),
        concluded_at=datetime.fromisoformat(payload["concluded_at"]), actor_id=uuid.UUID(by) if by else None)
