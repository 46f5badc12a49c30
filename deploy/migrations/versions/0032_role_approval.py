"""Security: a role that reaches personal data, granted by an administrator, waits for a second administrator.

Existing assignments are approved (they were given before the rule).

Revision ID: 0032_role_approval
"""
import sqlalchemy as sa
from alembic import op

revision = "0032_role_approval"
down_revision = "0031_vmd_outcomes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("role_assignment", sa.Column("pending", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("role_assignment", sa.Column("requested_by", sa.Uuid(), nullable=True))
    op.add_column("role_assignment", sa.Column("approved_by", sa.Uuid(), nullable=True))
    op.add_column("role_assignment", sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for column in ("approved_at", "approved_by", "requested_by", "pending"):
        op.drop_column("role_assignment", column)
