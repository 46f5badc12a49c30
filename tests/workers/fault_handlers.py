"""Test-only job handlers, loaded by real worker subprocesses through PUA_EXTRA_HANDLER_MODULES.

`test.fault.slow_effect` writes an effect row (table `fault_effect`, created by the test in its own database)
and then sleeps FAULT_HANDLER_SLEEP seconds before its transaction commits together with the `done` mark."""
from __future__ import annotations

import asyncio
import os

import sqlalchemy as sa

from domain.kernel import clock, jobs

EFFECT_TABLE_DDL = "create table fault_effect (id bigserial primary key, tag text not null, at timestamptz not null)"


@jobs.handler("test.fault.slow_effect")
async def slow_effect(session, payload):
    await session.execute(sa.text("insert into fault_effect (tag, at) values (:tag, :at)"),
                          {"tag": payload["tag"], "at": clock.now()})
    await asyncio.sleep(float(os.environ.get("FAULT_HANDLER_SLEEP", "0")))
