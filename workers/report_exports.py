"""Job handlers of the report exports (loaded by deploy.composition.HANDLER_MODULES): here rather than in the domain
because a step that finishes an export writes the file with the writers of integrations/.

`reporting.export`: the next step of an export, in the job's own transaction (its rows, the progress and the next
step's job, or the file, commit together; a worker killed mid-step loses only that step).
`reporting.export_expiry`: expired files marked and their bytes removed (enqueued with the periodic jobs).
"""
from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from domain.kernel import jobs
from domain.reporting import exports
from integrations.tabular import report_files


@jobs.handler(exports.JOB_KIND)
async def run_export_step(session: AsyncSession, payload: dict[str, Any]) -> None:
    await exports.run_step(session, export_id=uuid.UUID(payload["export_id"]), render=report_files.render)


@jobs.handler(exports.EXPIRY_KIND)
async def expire_exports(session: AsyncSession, payload: dict[str, Any]) -> None:
    await exports.expire(session)
