"""Event subscribers of the PUA context (listed in deploy/composition.py HANDLER_MODULES)."""
from __future__ import annotations

import uuid

from domain.kernel import events
from domain.pua import service


@events.subscribe("person.died")
async def withdraw_open_requests_on_death(session, payload: dict) -> None:
    """A person died: their open PUA requests are withdrawn and their triage items cancelled."""
    await service.withdraw_open_for_person(session, person_id=uuid.UUID(str(payload["person_id"])))
