"""Job handler of the imports context (loaded by deploy.composition.HANDLER_MODULES).

`imports.run`: one chunk of an import (a dry run whole), in the job's own transaction: the chunk's writes, its
outcomes, the import's progress and the job for the next chunk commit together, so a worker killed mid-chunk
leaves nothing of it and the retry starts from the same row.
"""
from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from domain.imports import service
from domain.kernel import jobs


@jobs.handler(service.JOB_KIND)
async def run_import(session: AsyncSession, payload: dict[str, Any]) -> None:
    await service.run_chunk(session, import_id=uuid.UUID(payload["import_id"]))
