"""Alembic runs as the owner role (MIGRATION_DATABASE_URL, else DATABASE_URL)."""
import asyncio

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import domain.models  # noqa: F401  (fills the metadata)
from domain.kernel.settings import get_settings

config = context.config
target_metadata = SQLModel.metadata


def _include_object(obj, name, type_, reflected, compare_to):
    # Broker tables belong to kombu/Celery; they are created by their own migration, not compared.
    if type_ == "table" and (name.startswith("kombu_") or name.startswith("celery_")):
        return False
    # The audit trail's monthly partitions (0043_audit_partitions) are made by the database, not by a model.
    if type_ == "table" and name.startswith(("audit_event_p", "audit_event_default")):
        return False
    return True


def do_run_migrations(connection):
    context.configure(connection=connection, target_metadata=target_metadata, include_object=_include_object,
                      compare_type=True, transaction_per_migration=False)
    with context.begin_transaction():
        context.run_migrations()


async def run_async() -> None:
    url = config.attributes.get("url") or get_settings().owner_database_url
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        await conn.run_sync(do_run_migrations)
        await conn.commit()
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported")
asyncio.run(run_async())
