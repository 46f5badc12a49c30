"""Who may do what in the case diary, and what an attachment may hang off.

- Every read and write reaches the cartella first through the registry (`registry.policy.cartella_in_scope`: 404
  outside the principal's scope, 403 consent_required), so the diary follows the cartella's row filter.
- An attachment may name its owner (`owner_type`, `owner_id`): the owner must exist and belong to the attachment's
  cartella. The diary checks its own entries; the contexts above register a checker for their records
  (`register_owner`, wired by the composition root: the care plan for `care_plan`).
- A diary entry is edited only by its author, within 24 hours of writing it; afterwards it is amended by a new
  entry that points at it (`amends_id`).
"""
from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from domain.diary.models import DiaryEntry
from domain.kernel import clock
from domain.kernel.errors import Conflict, Forbidden, Invalid
from domain.kernel.validity import active_on
from domain.registry import policy as registry_policy

EDIT_WINDOW = timedelta(hours=24)


async def cartella(session: AsyncSession, principal, cartella_id: uuid.UUID, *,
                   not_found: str = "Cartella non trovata."):
    """The cartella the diary writes to or reads from, if the principal reaches it (`not_found`: the message of the
    record that hangs off it, so an out-of-scope entry or attachment answers like a missing one)."""
    return await registry_policy.cartella_in_scope(session, principal, cartella_id, not_found=not_found)


def editable_until(entry: DiaryEntry):
    return entry.created_at + EDIT_WINDOW


def require_editable(entry: DiaryEntry, principal) -> None:
    """Only the author edits an entry, within [created_at, created_at + 24 h)."""
    if entry.author_id != principal.user_id:
        raise Forbidden("Solo l'autore può modificare la voce.")
    if not active_on(entry.created_at, editable_until(entry), clock.now()):
        raise Conflict("Trascorse 24 ore la voce non si modifica: aggiungere una rettifica.",
                       hint="POST con amends_id")


# ---------------------------------------------------------------------------------------------------- owners
# owner_type -> async check(session, owner_id) -> the cartella id the owner belongs to, or None when it does not
# exist. The diary may not import the contexts above it: they register their checker here.
OwnerChecker = Callable[[AsyncSession, uuid.UUID], Awaitable[uuid.UUID | None]]
_OWNERS: dict[str, OwnerChecker] = {}


def register_owner(owner_type: str, checker: OwnerChecker) -> None:
    _OWNERS[owner_type] = checker


def owner_types() -> list[str]:
    return sorted(_OWNERS)


async def _diary_entry_cartella(session: AsyncSession, owner_id: uuid.UUID) -> uuid.UUID | None:
    entry = await session.get(DiaryEntry, owner_id)
    return entry.cartella_id if entry is not None else None


register_owner("diary_entry", _diary_entry_cartella)


async def check_owner(session: AsyncSession, *, cartella_id: uuid.UUID, owner_type: str | None,
                      owner_id: uuid.UUID | None) -> None:
    """Both or neither of owner_type and owner_id; a known owner type; an owner that exists in this cartella
    (422 naming the field otherwise)."""
    if owner_type is None and owner_id is None:
        return
    if owner_type is None:
        raise Invalid("owner_type", "indicare il tipo del record a cui appartiene l'allegato")
    checker = _OWNERS.get(owner_type)
    if checker is None:
        raise Invalid("owner_type", f"tipo non previsto (ammessi: {', '.join(owner_types())})")
    if owner_id is None:
        raise Invalid("owner_id", "indicare il record a cui appartiene l'allegato")
    if await checker(session, owner_id) != cartella_id:
        raise Invalid("owner_id", "il record indicato non esiste o non appartiene a questa cartella")
