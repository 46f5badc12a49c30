"""Event subscribers of the waiting-list context (listed in deploy/composition.py HANDLER_MODULES)."""
from __future__ import annotations

import uuid
from datetime import datetime

from domain.kernel import events
from domain.waiting_list import service


@events.subscribe("person.died")
async def leave_lists_on_death(session, payload: dict) -> None:
    """A person died: they leave every list (open offers withdrawn, temporary plans closed)."""
    await service.close_for_death(session, person_id=uuid.UUID(str(payload["person_id"])))


@events.subscribe("vmd.concluded")
async def assessed_on_vmd_concluded(session, payload: dict) -> None:
    """The joint VMD of an application concluded: the entry is assessed at that time (R2)."""
    if payload.get("trigger") not in service.VMD_TRIGGERS:
        return
    await service.record_assessed(session, vmd_id=uuid.UUID(str(payload["vmd_id"])),
                                  concluded_at=datetime.fromisoformat(payload["concluded_at"]))
