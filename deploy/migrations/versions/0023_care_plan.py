"""care_plan changes (owned by the care_plan work; empty until it needs one).

Revision ID: 0023_care_plan
Revises: 0022_assessment
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0023_care_plan"
down_revision = "0022_assessment"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
