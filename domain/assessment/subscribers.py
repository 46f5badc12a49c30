"""Event subscribers of the assessment context (listed in deploy/composition.py HANDLER_MODULES)."""
from __future__ import annotations

import uuid

from domain.assessment import service
from domain.kernel import events


@events.subscribe("person.died")
async def cancel_open_vmds_on_death(session, payload: dict) -> None:
    """A person died: their open VMDs are cancelled ("Decesso della persona"), work items closed, the VMD's
    cartella assignments ended. Runs in the event job's own transaction; idempotent on retry."""
    await service.cancel_open_for_person(session, person_id=uuid.UUID(str(payload["person_id"])))
