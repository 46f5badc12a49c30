"""Work items: everything someone must do, in one table, so "my queue" is one indexed query.

An item is assigned to a user, a team and/or an organisation. The queue of a user holds the open/in-progress
items assigned to them, to any team they are an active member of, or to any organisation in which they hold an
active role, sorted by due date (undated last) then creation; keyset-paginated.

`create` is idempotent on `dedup_key`: while an item with that key is open (or in progress) the same item is
returned (INSERT ... ON CONFLICT on the partial unique index, safe under concurrency). Once done or cancelled,
the key can be used again.
"""
from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.kernel import clock
from domain.kernel.errors import Conflict, Invalid, NotFound
from domain.kernel.models import WorkItem, WorkItemState
from domain.security.models import RoleAssignment, TeamMember

OPEN_STATES = (WorkItemState.open.value, WorkItemState.in_progress.value)
# Literal, not bound parameters: the planner must see the partial indexes' predicate to use them.
_OPEN_SQL = "work_item.state in ('open','in_progress')"
_DEDUP_WHERE = sa.text("dedup_key is not null and state in ('open','in_progress')")
MAX_LIMIT = 200


async def create(session: AsyncSession, *, kind: str, title: str, source_type: str, source_id: uuid.UUID,
                 ambito_id: uuid.UUID | None = None, assignee_user_id: uuid.UUID | None = None,
                 assignee_team_id: uuid.UUID | None = None, assignee_org_id: uuid.UUID | None = None,
                 due_at: datetime | None = None, person_id: uuid.UUID | None = None,
                 cartella_id: uuid.UUID | None = None, dedup_key: str | None = None,
                 data: dict[str, Any] | None = None) -> WorkItem:
    if assignee_user_id is None and assignee_team_id is None and assignee_org_id is None:
        raise Invalid("assignee", "un'attività deve essere assegnata a un utente, un'équipe o un'organizzazione")
    if due_at is not None and due_at.tzinfo is None:
        raise Invalid("due_at", "serve una data con fuso orario")
    item = WorkItem(kind=kind, title=title[:200], source_type=source_type, source_id=source_id,
                    ambito_id=ambito_id, assignee_user_id=assignee_user_id, assignee_team_id=assignee_team_id,
                    assignee_org_id=assignee_org_id, due_at=due_at, person_id=person_id, cartella_id=cartella_id,
                    dedup_key=dedup_key, data=data or {}, created_at=clock.now())
    await session.flush()  # pending items first, so the ON CONFLICT below sees them
    if dedup_key is None:
        session.add(item)
        await session.flush()
        return item
    values = {c.name: getattr(item, c.name) for c in WorkItem.__table__.columns}
    stmt = (pg_insert(WorkItem).values(values)
            .on_conflict_do_nothing(index_elements=["dedup_key"], index_where=_DEDUP_WHERE)
            .returning(WorkItem.id))
    inserted = (await session.execute(stmt)).scalar_one_or_none()
    if inserted is not None:
        return await session.get(WorkItem, inserted)
    existing = (await session.execute(
        sa.select(WorkItem).where(WorkItem.dedup_key == dedup_key, sa.text(_OPEN_SQL)))).scalar_one()
    return existing


def _assigned_to(actor_id: uuid.UUID, day) -> sa.ColumnElement[bool]:
    """The item (work_item row) is assigned to the actor: directly, through an active team, through an org role."""
    in_team = sa.select(TeamMember.id).where(
        TeamMember.team_id == WorkItem.assignee_team_id, TeamMember.user_id == actor_id,
        TeamMember.valid_from <= day, sa.or_(TeamMember.valid_to.is_(None), TeamMember.valid_to >= day)).exists()
    in_org = sa.select(RoleAssignment.id).where(
        RoleAssignment.organisation_id == WorkItem.assignee_org_id, RoleAssignment.user_id == actor_id,
        RoleAssignment.valid_from <= day,
        sa.or_(RoleAssignment.valid_to.is_(None), RoleAssignment.valid_to >= day)).exists()
    return sa.or_(WorkItem.assignee_user_id == actor_id, in_team, in_org)


async def complete(session: AsyncSession, *, item_id: uuid.UUID, actor_id: uuid.UUID) -> WorkItem:
    """Only someone the item is assigned to may complete it; to anyone else it does not exist (404, so ids of
    other people's work are not confirmed); a done or cancelled item cannot be completed (409)."""
    row = (await session.execute(
        sa.select(WorkItem, _assigned_to(actor_id, clock.today_rome()).label("mine"))
        .where(WorkItem.id == item_id).with_for_update(of=WorkItem))).one_or_none()
    if row is None:
        raise NotFound("Attività non trovata.")
    item, mine = row
    if not mine:
        raise NotFound("Attività non trovata.")
    if item.state not in OPEN_STATES:
        raise Conflict("L'attività è già chiusa.", state=str(item.state))
    item.state = WorkItemState.done
    item.completed_at = clock.now()
    item.completed_by = actor_id
    session.add(item)
    await session.flush()
    return item


async def cancel_for_source(session: AsyncSession, *, source_type: str, source_id: uuid.UUID,
                            kinds: list[str] | tuple[str, ...] | None = None) -> int:
    """Cancels the open items raised by a source (e.g. a closed case); returns how many."""
    stmt = (sa.update(WorkItem)
            .where(WorkItem.source_type == source_type, WorkItem.source_id == source_id, sa.text(_OPEN_SQL))
            .values(state=WorkItemState.cancelled.value, completed_at=clock.now())
            .execution_options(synchronize_session="fetch"))  # loaded instances see the new state
    if kinds:
        stmt = stmt.where(WorkItem.kind.in_(list(kinds)))
    res = await session.execute(stmt)
    return res.rowcount or 0


# ---------------------------------------------------------------------------------------------------- queue
def encode_cursor(item: WorkItem) -> str:
    raw = json.dumps([item.due_at.isoformat() if item.due_at else None, item.created_at.isoformat(), str(item.id)])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime | None, datetime, uuid.UUID]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        due, created, id_ = raw
        due_dt = datetime.fromisoformat(due) if due is not None else None
        created_dt = datetime.fromisoformat(created)
        if (due_dt and due_dt.tzinfo is None) or created_dt.tzinfo is None:
            raise ValueError
        return due_dt, created_dt, uuid.UUID(id_)
    except (ValueError, TypeError, json.JSONDecodeError, UnicodeDecodeError):
        raise Invalid("cursor", "cursore non valido") from None


def queue_statement(*, user_id: uuid.UUID, team_ids, org_ids, kinds=None, limit: int = 50,
                    cursor: str | None = None) -> sa.Select:
    """The queue as ONE statement: a BitmapOr over the three partial indexes (user, team, org queues)."""
    w = WorkItem
    assigned = [w.assignee_user_id == user_id]
    if team_ids:
        assigned.append(w.assignee_team_id == sa.any_(sa.bindparam("queue_team_ids", list(team_ids),
                                                                   type_=ARRAY(sa.Uuid()))))
    if org_ids:
        assigned.append(w.assignee_org_id == sa.any_(sa.bindparam("queue_org_ids", list(org_ids),
                                                                  type_=ARRAY(sa.Uuid()))))
    stmt = sa.select(w).where(sa.text(_OPEN_SQL), sa.or_(*assigned))
    if kinds:
        stmt = stmt.where(w.kind.in_(list(kinds)))
    if cursor:
        due, created, id_ = decode_cursor(cursor)
        after_same_due = sa.tuple_(w.created_at, w.id) > sa.tuple_(sa.literal(created), sa.literal(id_))
        if due is None:  # already among the undated items (they come last)
            stmt = stmt.where(w.due_at.is_(None), after_same_due)
        else:
            stmt = stmt.where(sa.or_(
                w.due_at > due,
                sa.and_(w.due_at == due, after_same_due),
                w.due_at.is_(None),
            ))
    return stmt.order_by(w.due_at.asc().nulls_last(), w.created_at, w.id).limit(limit + 1)


async def my_queue(session: AsyncSession, *, principal, kinds=None, limit: int = 50,
                   cursor: str | None = None) -> tuple[list[WorkItem], str | None]:
    """The principal's queue: (items, next_cursor). Teams and organisations come from the principal, which holds
    only active memberships and role assignments."""
    limit = max(1, min(int(limit), MAX_LIMIT))
    stmt = queue_statement(user_id=principal.user_id, team_ids=principal.team_ids,
                           org_ids=sorted(principal.orgs_for(), key=str), kinds=kinds, limit=limit, cursor=cursor)
    rows = list((await session.execute(stmt)).scalars())
    nxt = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], nxt
