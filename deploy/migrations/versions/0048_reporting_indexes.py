"""Reporting (issue 14): the person's residence and merge target beside its id, so the indicators' join from a
year's facts to the person is an index-only look-up instead of a scan of the whole registry (bench/reporting.py:
on 1,000,000 persons the PUA indicators read every person row once each).

Revision ID: 0048_reporting_indexes
Revises: 0047_fhir_bulk
"""
from alembic import op

revision = "0048_reporting_indexes"
down_revision = "0047_fhir_bulk"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_person_reporting", "person", ["id"], unique=False,
                    postgresql_include=["residence_comune_id", "merged_into_id"])


def downgrade() -> None:
    op.drop_index("ix_person_reporting", table_name="person")
