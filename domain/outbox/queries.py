"""Read side of the outbox: an Ambito's messages, newest first, optionally in one state (keyset pages, no count)."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.kernel import cursor
from domain.outbox.models import MessageState, OutboxMessage
from domain.security.principal import Principal

LIST_KIND = "outbox"


async def list_messages(session: AsyncSession, *, principal: Principal, state: MessageState | None = None,
                        limit: int = 50, token: str | None = None) -> tuple[list[OutboxMessage], str | None]:
    stmt = sa.select(OutboxMessage).where(OutboxMessage.ambito_id == principal.ambito_id)
    kind = LIST_KIND
    if state is not None:
        stmt = stmt.where(OutboxMessage.state == state.value)
        kind = f"{LIST_KIND}:{state.value}"  # a cursor of one state's list does not page another's
    if limit < 1:
        return [], None
    rows = list((await session.execute(cursor.newest_first(stmt, OutboxMessage.created_at, OutboxMessage.id, kind,
                                                           token, limit))).scalars())
    return rows[:limit], cursor.next_token(kind, rows, limit, lambda m: (m.created_at, m.id))
