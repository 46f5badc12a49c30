"""Every schema change goes through Alembic: the migrated database matches the models exactly, and the chain
downgrades to nothing and upgrades back."""
from __future__ import annotations

import asyncio

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import domain.models  # noqa: F401  (every table on the metadata)


def _include(obj, name, type_, reflected, compare_to):
    # kombu/Celery tables are created by 0005_broker from the libraries' own models and checked in tests/workers.
    table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", "")
    return not (table or "").startswith(("kombu_", "celery_"))


async def test_migrated_schema_matches_the_models(session):
    def diff(sync_conn):
        ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True, "include_object": _include})
        return compare_metadata(ctx, SQLModel.metadata)

    conn = await session.connection()
    assert await conn.run_sync(diff) == []


async def test_downgrade_to_base_and_upgrade_again(fresh_db):
    from alembic import command
    from alembic.config import Config

    from deploy.migrate import ROOT

    cfg = Config(str(ROOT / "deploy" / "alembic.ini"))
    cfg.attributes["url"] = fresh_db["MIGRATION_DATABASE_URL"]

    async def tables() -> set[str]:
        engine = create_async_engine(fresh_db["MIGRATION_DATABASE_URL"])
        async with engine.connect() as c:
            names = await c.run_sync(lambda s: set(sa.inspect(s).get_table_names()))
        await engine.dispose()
        return names

    before = await tables()
    await asyncio.to_thread(command.downgrade, cfg, "base")
    assert await tables() <= {"alembic_version"}
    await asyncio.to_thread(command.upgrade, cfg, "head")
    assert await tables() == before
