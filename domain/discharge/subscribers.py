"""Event subscribers of the discharge context (listed in deploy/composition.py HANDLER_MODULES)."""
from __future__ import annotations

import uuid

from domain.discharge import service
from domain.kernel import events


@events.subscribe("person.died")
async def close_open_discharges_on_death(session, payload: dict) -> None:
    """A person died: their open protected discharges end as deceased, their work items cancelled."""
    await service.close_open_for_death(session, person_id=uuid.UUID(str(payload["person_id"])))
