"""Public contracts of the work queue."""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from domain.kernel.models import WORK_ITEM_STATE_LABELS, WorkItemState


class WorkItemPublic(BaseModel):
    id: uuid.UUID
    kind: str
    title: str
    state: WorkItemState
    state_label: str
    due_at: datetime | None
    overdue: bool
    assignee_user_id: uuid.UUID | None
    assignee_team_id: uuid.UUID | None
    assignee_org_id: uuid.UUID | None
    assigned_via: list[Literal["user", "team", "organisation"]] = Field(
        default_factory=list, description="Perché l'attività è nella mia coda: a me, alla mia équipe, alla mia "
                                          "organizzazione.")
    source_type: str
    source_id: uuid.UUID
    person_id: uuid.UUID | None
    cartella_id: uuid.UUID | None
    data: dict[str, Any]
    created_at: datetime
    completed_at: datetime | None
    completed_by: uuid.UUID | None

    @classmethod
    def of(cls, w: Any, *, now: datetime, principal: Any | None = None) -> WorkItemPublic:
        via: list[str] = []
        if principal is not None:
            if w.assignee_user_id == principal.user_id:
                via.append("user")
            if w.assignee_team_id is not None and w.assignee_team_id in principal.team_ids:
                via.append("team")
            if w.assignee_org_id is not None and w.assignee_org_id in principal.orgs_for():
                via.append("organisation")
        state = str(w.state)
        return cls(id=w.id, kind=w.kind, title=w.title, state=w.state, state_label=WORK_ITEM_STATE_LABELS[state],
                   due_at=w.due_at, overdue=bool(w.due_at and w.due_at < now and state in ("open", "in_progress")),
                   assignee_user_id=w.assignee_user_id, assignee_team_id=w.assignee_team_id,
                   assignee_org_id=w.assignee_org_id, assigned_via=via, source_type=w.source_type,
                   source_id=w.source_id, person_id=w.person_id, cartella_id=w.cartella_id, data=w.data or {},
                   created_at=w.created_at, completed_at=w.completed_at, completed_by=w.completed_by)


class WorkItemPage(BaseModel):
    items: list[WorkItemPublic]
    next_cursor: str | None = Field(default=None, description="Da passare come `cursor` per la pagina successiva.")

    @classmethod
    def of(cls, items, next_cursor: str | None, *, principal, now) -> WorkItemPage:
        """A page of a queue as the principal sees it (overdue flags computed at `now`)."""
        return cls(items=[WorkItemPublic.of(w, now=now, principal=principal) for w in items], next_cursor=next_cursor)
