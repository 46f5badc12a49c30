"""pua: the triage's suggested path on the access request; indexes for the Ambito list and the front desk.

Revision ID: 0021_pua
Revises: 0020_pua_vmd_plans
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0021_pua"
down_revision = "0020_pua_vmd_plans"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("access_request",
                  sa.Column("suggested_path", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
    op.create_index("ix_access_request_ambito_registered", "access_request", ["ambito_id", "registered_at", "id"],
                    unique=False)
    op.create_index("ix_access_request_operator", "access_request", ["operator_id", "registered_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_access_request_operator", table_name="access_request")
    op.drop_index("ix_access_request_ambito_registered", table_name="access_request")
    op.drop_column("access_request", "suggested_path")
