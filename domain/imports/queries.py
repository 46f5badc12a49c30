"""Read side of imports: the steward's list of imports and the row-by-row report."""
from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.imports.models import ROW_OUTCOME_LABELS, ImportJob, ImportRow
from domain.kernel import cursor
from domain.security.principal import Principal

LIST_KIND = "imports"
REPORT_HEADERS = ("riga", "id_origine", "esito", "descrizione_esito", "persona", "riga_corrispondente", "motivo",
                  "persone_candidate", "righe_candidate", "cartella", "relazione", "campo", "errore", "note")
REPORT_BATCH = 5_000


async def list_imports(session: AsyncSession, *, principal: Principal, limit: int = 20,
                       token: str | None = None) -> tuple[list[ImportJob], str | None]:
    """The Ambito's imports, newest first (keyset on created_at, id)."""
    stmt = cursor.newest_first(sa.select(ImportJob).where(ImportJob.ambito_id == principal.ambito_id),
                               ImportJob.created_at, ImportJob.id, LIST_KIND, token, limit)
    rows = list((await session.execute(stmt)).scalars())
    return rows[:limit], cursor.next_token(LIST_KIND, rows, limit, lambda j: (j.created_at, j.id))


def report_line(r: ImportRow) -> list[Any]:
    first = r.errors[0] if r.errors else {}
    return [r.row_number, r.source_key or "", r.outcome or "", ROW_OUTCOME_LABELS.get(r.outcome or "", ""),
            str(r.person_id or ""), r.matched_row or "", r.reason or "",
            " ".join(str(x) for x in r.candidate_person_ids), " ".join(str(x) for x in r.candidate_rows),
            str(r.cartella_id or ""), str(r.relation_id or ""), first.get("field", ""),
            "; ".join(f"{e['field']}: {e['reason']}" for e in r.errors), "; ".join(r.notes or [])]


async def report_lines(session: AsyncSession, job_id: uuid.UUID) -> AsyncIterator[list[Any]]:
    """Every row of an import's report in file order, read in keyset batches (a 30,000-row report never sits in
    memory as ORM objects all at once)."""
    after = 0
    while True:
        batch = list((await session.execute(
            sa.select(ImportRow).where(ImportRow.job_id == job_id, ImportRow.row_number > after)
            .order_by(ImportRow.row_number).limit(REPORT_BATCH))).scalars())
        for r in batch:
            yield report_line(r)
        if len(batch) < REPORT_BATCH:
            return
        after = batch[-1].row_number
        session.expunge_all()
