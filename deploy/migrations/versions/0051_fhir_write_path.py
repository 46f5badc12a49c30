"""The regional searches for the DPOs (issue 18): the audit rows of the regional helpdesk's searches, newest
first, from a partial index instead of a scan of the audit trail (every monthly partition gets its own).

(Reserved for the FHIR write path, issue 12, which needed no schema change.)

Revision ID: 0051_fhir_write_path
Revises: 0050_regional_role
"""
import sqlalchemy as sa
from alembic import op

revision = "0051_fhir_write_path"
down_revision = "0050_regional_role"
branch_labels = None
depends_on = None

WHERE = ("action = 'search' AND route IN ('GET /api/regional/persons', "
         "'POST /api/regional/persons/search')")


def upgrade() -> None:
    op.create_index("ix_audit_regional_search", "audit_event", ["at", "id"], postgresql_where=sa.text(WHERE))


def downgrade() -> None:
    op.drop_index("ix_audit_regional_search", table_name="audit_event")
