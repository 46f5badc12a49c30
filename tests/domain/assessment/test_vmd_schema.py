"""The assessment tables as migrated (0020 + 0022_assessment) match the models: no drift."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import domain.models  # noqa: F401  (every table on the metadata)

TABLES = {"vmd", "vmd_assessor", "instrument_response", "equipe_meeting"}


async def test_assessment_tables_match_the_models(session):
    def diff(sync_conn):
        def include(obj, name, type_, reflected, compare_to):
            table = obj if type_ == "table" else getattr(obj, "table", None)
            return (name if type_ == "table" else getattr(table, "name", None)) in TABLES

        ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True, "include_object": include})
        return compare_metadata(ctx, SQLModel.metadata)

    conn = await session.connection()
    assert await conn.run_sync(diff) == []
