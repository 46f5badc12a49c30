"""The PostgreSQL extensions the schema uses, created by the migrations themselves (owner role).

pg_trgm (trigram indexes for fuzzy name search, 0001), btree_gist (exclusion constraint on relation periods, 0004)
and unaccent (accent-insensitive search) are *trusted* extensions (PostgreSQL 13+): the database owner may create
them without being a superuser. On a managed Postgres they must also be allow-listed (docs/operations.md).

This is the first revision of the chain, not the last: 0001 already builds a trigram index, so on a fresh database
the extensions must exist before it. Databases migrated before this revision existed are past it already and have
the extensions (created then by the superuser); `IF NOT EXISTS` keeps it harmless anywhere.

Revision ID: 0000_extensions
Revises:
"""
from alembic import op

revision = "0000_extensions"
down_revision = None
branch_labels = None
depends_on = None

EXTENSIONS = ("pg_trgm", "btree_gist", "unaccent")


def upgrade() -> None:
    for name in EXTENSIONS:
        op.execute(f"CREATE EXTENSION IF NOT EXISTS {name}")


def downgrade() -> None:
    # Kept: they may have been created by an administrator, be used by other schemas, or be owned by another role.
    pass
