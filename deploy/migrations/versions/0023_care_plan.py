"""care_plan changes: the plan version the consent was given to.

Revision ID: 0023_care_plan
Revises: 0022_assessment
"""
import sqlalchemy as sa
from alembic import op

revision = "0023_care_plan"
down_revision = "0022_assessment"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("care_plan", sa.Column("agreed_version", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("care_plan", "agreed_version")
