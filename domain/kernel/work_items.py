"""Work items: everything someone must do, in one table, so "my queue" is one indexed query.

An item is assigned to a user, a team and/or an organisation. The queue of a user holds the open/in-progress
items assigned to them, to any team they are an active member of, or to any organisation in which they hold an
active role, sorted by due date (undated last) then creation; keyset-paginated.

`create` is idempotent on `dedup_key`: while an item with that key is open (or in progress) the same item is
returned (INSERT ... ON CONFLICT on the partial unique index, safe under concurrency). Once done or cancelled,
the key can be used again.
"""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.kernel import clock
from domain.kernel import cursor as cursor_codec
from domain.kernel.errors import Conflict, Invalid, NotFound
from domain.kernel.ids import new_id
from domain.kernel.models import WorkItem, WorkItemState

OPEN_STATES = (WorkItemState.open.value, WorkItemState.in_progress.value)
# Literal, not bound parameters: the planner must see the partial indexes' predicate to use them.
_OPEN_SQL = "work_item.state in ('open','in_progress')"
_DEDUP_WHERE = sa.text("dedup_key is not null and state in ('open','in_progress')")
MAX_LIMIT = 200


def _values(*, kind: str, title: str, source_type: str, source_id: uuid.UUID, ambito_id: uuid.UUID | None = None,
            assignee_user_id: uuid.UUID | None = None, assignee_team_id: uuid.UUID | None = None,
            assignee_org_id: uuid.UUID | None = None, due_at: datetime | None = None,
            person_id: uuid.UUID | None = None, cartella_id: uuid.UUID | None = None, dedup_key: str | None = None,
            data: dict[str, Any] | None = None) -> dict[str, Any]:
    """The row of a new open item: every column, so rows of one statement share their keys."""
    if assignee_user_id is None and assignee_team_id is None and assignee_org_id is None:
        raise Invalid("assignee", "un'attività deve essere assegnata a un utente, un'équipe o un'organizzazione")
    if due_at is not None and due_at.tzinfo is None:
        raise Invalid("due_at", "serve una data con fuso orario")
    return {"id": new_id(), "ambito_id": ambito_id, "kind": kind, "title": title[:200],
            "state": WorkItemState.open.value, "assignee_user_id": assignee_user_id,
            "assignee_team_id": assignee_team_id, "assignee_org_id": assignee_org_id, "due_at": due_at,
            "source_type": source_type, "source_id": source_id, "person_id": person_id, "cartella_id": cartella_id,
            "dedup_key": dedup_key, "data": data or {}, "created_at": clock.now(), "completed_at": None,
            "completed_by": None}


# The insert that skips an open item's dedup_key: `create_many` runs it as is (cache key computed once), `create`
# with one row's values and the row back.
_INSERT_MANY = pg_insert(WorkItem.__table__).on_conflict_do_nothing(index_elements=["dedup_key"],
                                                                    index_where=_DEDUP_WHERE)


async def create(session: AsyncSession, **item: Any) -> WorkItem:
    """One item (keywords of `_values`), returned: the open item with the same `dedup_key` if there is one."""
    values = _values(**item)
    await session.flush()  # pending items first, so the ON CONFLICT below sees them
    if values["dedup_key"] is None:
        row = WorkItem(**values)
        session.add(row)
        await session.flush()
        return row
    stmt = _INSERT_MANY.values(values).returning(*WorkItem.__table__.c)
    inserted = (await session.execute(sa.select(WorkItem).from_statement(stmt))).scalar_one_or_none()
    if inserted is not None:  # the new row came back whole: no second round trip
        return inserted
    existing = (await session.execute(
        sa.select(WorkItem).where(WorkItem.dedup_key == values["dedup_key"], sa.text(_OPEN_SQL)))).scalar_one()
    return existing


async def create_many(session: AsyncSession, items: list[dict[str, Any]]) -> None:
    """Several items (keywords of `create`) in one statement, when the caller needs none of them back; an item
    whose `dedup_key` is open already is skipped, as `create` would return that one."""
    rows = [_values(**item) for item in items]
    if rows:
        await session.flush()
        await session.execute(_INSERT_MANY, rows)


def _assigned_to(principal) -> sa.ColumnElement[bool]:
    """The item (work_item row) is assigned to the principal: directly, to one of its active teams, or to an
    organisation where it holds an active role (the principal carries only active memberships and grants)."""
    parts = [WorkItem.assignee_user_id == principal.user_id]
    if principal.team_ids:
        parts.append(WorkItem.assignee_team_id.in_(list(principal.team_ids)))
    orgs = sorted(principal.orgs_for(), key=str)
    if orgs:
        parts.append(WorkItem.assignee_org_id.in_(orgs))
    return sa.or_(*parts)


async def complete(session: AsyncSession, *, item_id: uuid.UUID, principal) -> WorkItem:
    """Only someone the item is assigned to may complete it; to anyone else it does not exist (404, so ids of
    other people's work are not confirmed); a done or cancelled item cannot be completed (409)."""
    row = (await session.execute(
        sa.select(WorkItem, _assigned_to(principal).label("mine"))
        .where(WorkItem.id == item_id).with_for_update(of=WorkItem))).one_or_none()
    if row is None or not row[1]:
        raise NotFound("Attività non trovata.")
    item = row[0]
    if item.state not in OPEN_STATES:
        raise Conflict("L'attività è già chiusa.", state=str(item.state), action="complete", allowed_actions=[])
    item.state = WorkItemState.done
    item.completed_at = clock.now()
    item.completed_by = principal.user_id
    session.add(item)
    await session.flush()
    return item


async def close_for_source(session: AsyncSession, *, source_type: str, source_id: uuid.UUID,
                           kinds: list[str] | tuple[str, ...] | None = None, done: bool = False,
                           actor_id: uuid.UUID | None = None, assignee_user_id: uuid.UUID | None = None) -> int:
    """The one way a context closes the open items its own records raised: `done=True` when the work was done
    (a triage recorded, a signature given: `actor_id` did it, and the context's own policy already allowed them),
    otherwise cancelled (the source was closed, withdrawn, merged). Returns how many items were closed."""
    stmt = (sa.update(WorkItem)
            .where(WorkItem.source_type == source_type, WorkItem.source_id == source_id, sa.text(_OPEN_SQL))
            .values(state=(WorkItemState.done if done else WorkItemState.cancelled).value,
                    completed_at=clock.now(), completed_by=actor_id if done else None)
            .execution_options(synchronize_session="fetch"))  # loaded instances see the new state
    if kinds:
        stmt = stmt.where(WorkItem.kind.in_(list(kinds)))
    if assignee_user_id is not None:
        stmt = stmt.where(WorkItem.assignee_user_id == assignee_user_id)
    res = await session.execute(stmt)
    return res.rowcount or 0


async def start_for_source(session: AsyncSession, *, source_type: str, source_id: uuid.UUID,
                           kinds: list[str] | tuple[str, ...]) -> None:
    """Open items of a source become in progress (someone took the work)."""
    await session.execute(
        sa.update(WorkItem)
        .where(WorkItem.source_type == source_type, WorkItem.source_id == source_id, WorkItem.kind.in_(list(kinds)),
               WorkItem.state == WorkItemState.open.value)
        .values(state=WorkItemState.in_progress.value)
        .execution_options(synchronize_session="fetch"))


# ---------------------------------------------------------------------------------------------------- queue
CURSOR_KIND = "work_items.queue"


def encode_cursor(item: WorkItem) -> str:
    return cursor_codec.encode(CURSOR_KIND, [item.due_at, item.created_at, item.id])


def decode_cursor(token: str) -> tuple[datetime | None, datetime, uuid.UUID]:
    due, created, id_ = cursor_codec.decode(CURSOR_KIND, token)
    return (datetime.fromisoformat(due) if due is not None else None), datetime.fromisoformat(created), uuid.UUID(id_)


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
