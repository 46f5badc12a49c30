"""Regional role (issue 18): reserved step.

Revision ID: 0050_regional_role
Revises: 0049_start_residence
"""
revision = "0050_regional_role"
down_revision = "0049_start_residence"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
