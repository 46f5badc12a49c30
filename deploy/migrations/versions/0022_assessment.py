"""assessment: VMD request notes, cancellation, reassessment link; index for the integration indicator.

Revision ID: 0022_assessment
Revises: 0021_pua
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0022_assessment"
down_revision = "0021_pua"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("vmd", sa.Column("notes", sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=True))
    op.add_column("vmd", sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("vmd", sa.Column("cancel_reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))
    op.add_column("vmd", sa.Column("previous_vmd_id", sa.Uuid(), nullable=True))
    op.create_foreign_key("vmd_previous_vmd_id_fkey", "vmd", "vmd", ["previous_vmd_id"], ["id"])
    op.create_index("ix_vmd_concluded", "vmd", ["ambito_id", "concluded_at"], unique=False,
                    postgresql_where=sa.text("state = 'concluded'"))


def downgrade() -> None:
    op.drop_index("ix_vmd_concluded", table_name="vmd", postgresql_where=sa.text("state = 'concluded'"))
    op.drop_constraint("vmd_previous_vmd_id_fkey", "vmd", type_="foreignkey")
    op.drop_column("vmd", "previous_vmd_id")
    op.drop_column("vmd", "cancel_reason")
    op.drop_column("vmd", "cancelled_at")
    op.drop_column("vmd", "notes")
