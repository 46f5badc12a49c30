"""Act once per key, with real transactions: two copies at once are serialised by the key's row; the second gets
the first's answer; a copy whose first rolled back takes the key itself."""
from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from domain.kernel import idempotency
from domain.kernel.errors import Conflict
from domain.kernel.models import IdempotentRequest
from domain.territory.models import Organisation

KEY = {"scope": "test.scope", "key": "https://asst.example/sid|b-1"}


@pytest.fixture
async def factory(fresh_db):
    engine = create_async_engine(fresh_db["DATABASE_URL"])
    yield async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
    await engine.dispose()


async def _ambito(factory):
    async with factory() as s:
        return (await s.execute(sa.select(Organisation.id).where(Organisation.code == "ambito-crema"))).scalar_one()


async def test_two_copies_at_once_act_once_and_answer_the_same(factory):
    ambito = await _ambito(factory)
    async with factory() as first, factory() as second:
        assert await idempotency.claim(first, ambito_id=ambito, request_hash="h", **KEY) is None  # ours: work
        waiting = asyncio.create_task(idempotency.claim(second, ambito_id=ambito, request_hash="h", **KEY))
        await asyncio.sleep(0.3)
        assert not waiting.done()  # the copy waits on the key while the first works
        await idempotency.remember(first, ambito_id=ambito, status=200, response={"ok": 1}, **KEY)
        await first.commit()
        stored = await asyncio.wait_for(waiting, 10)
        assert (stored.status, stored.response) == (200, {"ok": 1})
        await second.rollback()
        with pytest.raises(Conflict):  # another request under the key
            await idempotency.claim(second, ambito_id=ambito, request_hash="other", **KEY)


async def test_a_copy_takes_the_key_when_the_first_rolled_back(factory):
    ambito = await _ambito(factory)
    async with factory() as first, factory() as second:
        assert await idempotency.claim(first, ambito_id=ambito, request_hash="h", **KEY) is None
        waiting = asyncio.create_task(idempotency.claim(second, ambito_id=ambito, request_hash="h", **KEY))
        await asyncio.sleep(0.3)
        await first.rollback()  # the first failed: nothing of it remains
        assert await asyncio.wait_for(waiting, 10) is None  # the copy does the work
        await idempotency.remember(second, ambito_id=ambito, status=201, response={"n": 2}, **KEY)
        await second.commit()
    async with factory() as s:
        rows = (await s.execute(sa.select(IdempotentRequest.status, IdempotentRequest.response))).all()
    assert [tuple(r) for r in rows] == [(201, {"n": 2})]
