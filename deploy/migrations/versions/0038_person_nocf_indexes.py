"""registry: partial indexes over the persons without a codice fiscale, which the de-duplication scores in full
against a probe that has one (a person with another codice fiscale can only match on the same birth date).

Revision ID: 0038_person_nocf_indexes
Revises: 0037_fhir_idempotency
"""
from alembic import op

revision = "0038_person_nocf_indexes"
down_revision = "0037_fhir_idempotency"
branch_labels = None
depends_on = None

WHERE = "codice_fiscale is null and status = 'active'"


def upgrade() -> None:
    op.execute(f"create index ix_person_nocf_birth_name on person (ambito_id, birth_date) include (name_search, id) "
               f"where {WHERE}")
    op.execute(f"create index ix_person_nocf_name_trgm on person using gin (name_search gin_trgm_ops) where {WHERE}")


def downgrade() -> None:
    op.drop_index("ix_person_nocf_name_trgm", table_name="person")
    op.drop_index("ix_person_nocf_birth_name", table_name="person")
