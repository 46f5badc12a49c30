"""Versions of an entity: rows taken from a row in memory and written in one statement, uniqueness per version."""
from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError

from domain.kernel import clock, history
from domain.kernel.models import EntityHistory


class Item(BaseModel):  # any versioned row: an id, a version, its state
    id: uuid.UUID
    version: int
    title: str


async def _versions(session, entity_id):
    return await history.versions(session, entity_type="test.item", entity_id=entity_id)


async def test_two_versions_of_a_row_not_yet_written_are_taken_in_memory_and_written_once(session):
    row = Item(id=uuid.uuid4(), version=1, title="Prima")
    first = history.entry(row, entity_type="test.item", action="opened", actor_id=None)
    row.title, row.version = "Seconda", 2
    second = history.entry(row, entity_type="test.item", action="renamed", actor_id=None, detail={"why": "x"})
    await history.write(session, [first, second])
    got = await _versions(session, row.id)
    assert [(h.version, h.action, h.data["state"]["title"]) for h in got] == [
        (1, "opened", "Prima"), (2, "renamed", "Seconda")]
    assert got[1].data["detail"] == {"why": "x"} and "detail" not in got[0].data
    assert got[0].data["state"]["id"] == str(row.id)  # JSON-safe: the uuid as text


async def test_the_same_version_twice_fails_the_unit_of_work(session):
    entity_id = uuid.uuid4()
    await history.record(session, entity_type="test.item", entity_id=entity_id, version=1, action="a", data={})
    await session.flush()
    row = {"entity_type": "test.item", "entity_id": entity_id, "version": 1, "action": "b", "data": {},
           "actor_id": None, "request_id": None, "at": clock.now()}
    with pytest.raises(IntegrityError):
        async with session.begin_nested():
            await history.write(session, [row])
    assert [h.action for h in await _versions(session, entity_id)] == ["a"]
    assert (await session.execute(sa.select(sa.func.count()).select_from(EntityHistory)
                                  .where(EntityHistory.entity_id == entity_id))).scalar_one() == 1
