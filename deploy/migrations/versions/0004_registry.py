"""registry changes: other identifiers unique per Ambito, merge-chain index, de-duplication index, one legal
guardian at a time.

Revision ID: 0004_registry
Revises: 0001_foundation
"""
import sqlalchemy as sa
from alembic import op

revision = "0004_registry"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # STP / ENI / passport / provisional identifiers are unique among the active persons of an Ambito.
    op.create_index("uq_person_other_id", "person", ["ambito_id", "other_identifier_type", "other_identifier"],
                    unique=True, postgresql_where=sa.text("other_identifier is not null and status = 'active'"))
    # A merge re-points earlier merges into the merged person: needs an index on merged_into_id.
    op.create_index("ix_person_merged_into", "person", ["merged_into_id"],
                    postgresql_where=sa.text("merged_into_id is not null"))
    # De-duplication reads the names of one birth year with an index-only scan (similarity on the included name).
    op.create_index("ix_person_birth_name", "person", ["ambito_id", "birth_date"],
                    postgresql_include=["name_search", "id"], postgresql_where=sa.text("status = 'active'"))
    # At most one tutore or amministratore di sostegno per person in any period ([valid_from, valid_to)).
    # (btree_gist is created by the superuser with the database, like pg_trgm.)
    op.execute(
        "ALTER TABLE person_relation ADD CONSTRAINT ex_relation_one_legal_guardian "
        "EXCLUDE USING gist (person_id WITH =, daterange(valid_from, valid_to, '[)') WITH &&) "
        "WHERE (kind in ('ads', 'tutore'))"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE person_relation DROP CONSTRAINT IF EXISTS ex_relation_one_legal_guardian")
    op.drop_index("ix_person_birth_name", table_name="person")
    op.drop_index("ix_person_merged_into", table_name="person")
    op.drop_index("uq_person_other_id", table_name="person")
