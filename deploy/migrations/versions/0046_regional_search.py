"""registry: the fuzzy name search scales with the caller's Ambito, not the region (issue 18).

The trigram index on the name becomes a two-column GIN index, (ambito_id, name_search gin_trgm_ops), with
btree_gin for the uuid column: a search of one Ambito intersects the Ambito's posting list with the trigrams'
inside the index, so it fetches and rechecks that Ambito's candidates only, instead of every matching name of the
region. The same index serves a search across all Ambiti (a GIN index is used on any subset of its columns), so
it replaces the one-column index instead of sitting beside it. Choice and measured alternatives (one-column GIN,
GiST with btree_gist and KNN ordering, partitions by Ambito): docs/decisions/regional-search.md.

btree_gin is a trusted extension (PostgreSQL 13+), so the database owner creates it, like those of 0000.

Revision ID: 0046_regional_search
Revises: 0045_report_exports
"""
from alembic import op

revision = "0046_regional_search"
down_revision = "0045_report_exports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    op.execute("create index ix_person_ambito_name_trgm on person using gin (ambito_id, name_search gin_trgm_ops)")
    op.drop_index("ix_person_name_trgm", table_name="person")


def downgrade() -> None:
    op.execute("create index ix_person_name_trgm on person using gin (name_search gin_trgm_ops)")
    op.drop_index("ix_person_ambito_name_trgm", table_name="person")
    # btree_gin stays: another object may use it, and 0000's extensions are not dropped either.
