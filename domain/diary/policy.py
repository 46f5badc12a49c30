"""Who may do what in the case diary, and what an attachment may hang off.

- Every read and write reaches the cartella first through the registry (`registry.policy.cartella_in_scope`: 404
  outside the principal's scope, 403 consent_required), so the diary follows the cartella's row filter.
- A diary entry is edited only by its author, within 24 hours of writing it; afterwards it is amended by a new
  entry that points at it (`amends_id`).
"""
from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from domain.diary.models import DiaryEntry
from domain.kernel import clock
from domain.kernel.errors import Conflict, Forbidden
from domain.kernel.validity import active_on
from domain.registry import policy as registry_policy

EDIT_WINDOW = timedelta(hours=24)


async def cartella(session: AsyncSession, principal, cartella_id: uuid.UUID):
    """The cartella the diary writes to or reads from, if the principal reaches it."""
    return await registry_policy.cartella_in_scope(session, principal, cartella_id)


def editable_until(entry: DiaryEntry):
    return entry.created_at + EDIT_WINDOW


def require_editable(entry: DiaryEntry, principal) -> None:
    """Only the author edits an entry, within [created_at, created_at + 24 h)."""
    if entry.author_id != principal.user_id:
        raise Forbidden("Solo l'autore può modificare la voce.")
    if not active_on(entry.created_at, editable_until(entry), clock.now()):
        raise Conflict("Trascorse 24 ore la voce non si modifica: aggiungere una rettifica.",
                       hint="POST con amends_id")
