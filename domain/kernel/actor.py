"""What the kernel and the lower contexts need to know of whoever acts, without knowing how roles are modelled
(domain.security.principal.Principal is the implementation)."""
from __future__ import annotations

import uuid
from typing import Any, Protocol


class Actor(Protocol):
    user_id: uuid.UUID
    username: str
    ambito_id: uuid.UUID
    team_ids: tuple[uuid.UUID, ...]

    def orgs_for(self, *roles: Any) -> frozenset[uuid.UUID]: ...
