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
    # The audit trail's monthly partitions (0043) are made by the database, not declared by a model.
    table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", "")
    return not (table or "").startswith(("kombu_", "celery_", "audit_event_p", "audit_event_default"))


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


async def test_migrations_create_the_extensions_on_a_bare_database(pg_server):
    """What a managed Postgres gives us: a database owned by the (non-superuser) owner role, no extensions. The
    migrations, run as that owner, create pg_trgm, btree_gist and unaccent themselves."""
    import uuid

    import psycopg

    from deploy.migrate import upgrade
    from integrations.postgres import devpg
    OWNER, APP_ROLE = "pua_owner", "pua_app"  # noqa: N806  (the roles the test server has, as in tests/conftest.py)
    name = f"t_bare_{uuid.uuid4().hex[:10]}"
    admin = dict(host="127.0.0.1", port=pg_server.port, user=devpg.SUPERUSER, autocommit=True)
    with psycopg.connect(dbname="postgres", **admin) as c:
        c.execute(f'CREATE DATABASE "{name}" OWNER "{OWNER}" TEMPLATE template0')
        c.execute(f'GRANT CONNECT ON DATABASE "{name}" TO "{APP_ROLE}"')

    def extensions() -> set[str]:
        with psycopg.connect(dbname=name, **admin) as c:
            return {r[0] for r in c.execute("select extname from pg_extension")}

    try:
        assert not {"pg_trgm", "btree_gist", "unaccent"} & extensions()
        with psycopg.connect(dbname="postgres", **admin) as c:
            assert c.execute("select rolsuper from pg_roles where rolname = %s", (OWNER,)).fetchone() == (False,)
        await asyncio.to_thread(upgrade, pg_server.urls(name)["MIGRATION_DATABASE_URL"])
        assert {"pg_trgm", "btree_gist", "unaccent"} <= extensions()
    finally:
        pg_server.drop_db(name)
