"""fhir search: the due time a discharge signal gave (a FHIR Task's restriction), kept as sent and searchable.

Revision ID: 0041_fhir_search
Revises: 0040_fhir_outbox
"""
import sqlalchemy as sa
from alembic import op

revision = "0041_fhir_search"
down_revision = "0040_fhir_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("discharge_case", sa.Column("requested_due_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("discharge_case", "requested_due_at")
