"""Migration 0005_broker creates exactly the tables kombu and Celery would create, and the application role (which
cannot create tables) may use them."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

TABLES = {"kombu_queue", "kombu_message", "celery_taskmeta", "celery_tasksetmeta"}
SEQUENCES = {"queue_id_sequence", "message_id_sequence", "task_id_sequence", "taskset_id_sequence"}


def _library_metadata() -> sa.MetaData:
    import celery.backends.database.models  # noqa: F401  (TaskExtended widens celery_taskmeta)
    from celery.backends.database.session import ResultModelBase
    from kombu.transport.sqlalchemy import Channel
    from kombu.transport.sqlalchemy import metadata as kombu_metadata

    Channel.__new__(Channel)._configure_entity_tablenames({})  # declares kombu_queue / kombu_message
    md = sa.MetaData()
    for source in (kombu_metadata, ResultModelBase.metadata):
        for table in source.tables.values():
            table.to_metadata(md)
    assert set(md.tables) == TABLES
    return md


async def test_migrated_broker_tables_match_kombu_and_celery_models(session):
    expected = _library_metadata()

    def diff(sync_conn):
        ctx = MigrationContext.configure(sync_conn, opts={
            "compare_type": True,
            "include_object": lambda obj, name, type_, reflected, compare_to: type_ != "table" or name in TABLES,
        })
        return compare_metadata(ctx, expected)

    conn = await session.connection()
    assert await conn.run_sync(diff) == []
    seqs = set((await session.execute(sa.text(
        "select relname from pg_class where relkind = 'S' and relname like any(array['%queue_id_sequence',"
        "'%message_id_sequence', 'task%_id_sequence'])"))).scalars())
    assert seqs == SEQUENCES


async def test_application_role_may_use_broker_tables_but_not_create_tables(session):
    assert (await session.execute(sa.text("select current_user"))).scalar_one() == "pua_app"
    for table in sorted(TABLES):
        ok = (await session.execute(sa.text(
            "select has_table_privilege(:t, 'select,insert,update,delete')"), {"t": table})).scalar_one()
        assert ok, table
    for seq in sorted(SEQUENCES):
        ok = (await session.execute(sa.text("select has_sequence_privilege(:s, 'usage,update')"),
                                    {"s": seq})).scalar_one()
        assert ok, seq
    nxt = (await session.execute(sa.text("select nextval('queue_id_sequence')"))).scalar_one()
    assert nxt >= 1
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
        async with session.begin_nested():
            await session.execute(sa.text("create table kombu_other (id int)"))
