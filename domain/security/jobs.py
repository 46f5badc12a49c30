"""Job handlers of the security context (loaded by deploy.composition.HANDLER_MODULES).

`security.audit_partitions` (from the beat, once a day through DAILY_ENQUEUERS): the audit trail's monthly
partitions of this month and the next AUDIT_PARTITIONS_AHEAD_MONTHS ones exist before a row needs them. The
partitions are made by the database function `audit_ensure_partitions` (0043_audit_partitions), which runs as the
owner: the application role may call it but does no DDL itself. Idempotent: a month that has its partition is
skipped.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.kernel import jobs
from domain.kernel.settings import get_settings

AUDIT_PARTITIONS = "security.audit_partitions"


async def ensure_audit_partitions(session: AsyncSession, months_ahead: int | None = None) -> int:
    """Make the missing monthly partitions up to `months_ahead` months from now; returns how many were made."""
    ahead = get_settings().audit_partitions_ahead_months if months_ahead is None else months_ahead
    return (await session.execute(sa.text("select audit_ensure_partitions(:ahead)"), {"ahead": ahead})).scalar_one()


@jobs.handler(AUDIT_PARTITIONS)
async def audit_partitions(session: AsyncSession, payload: dict[str, Any]) -> None:
    await ensure_audit_partitions(session)


async def enqueue_audit_partitions(session: AsyncSession):
    """What the beat calls (every `daily_jobs_seconds`): one job per day (dedup key)."""
    return await jobs.enqueue_periodic(session, kind=AUDIT_PARTITIONS, every="day")
