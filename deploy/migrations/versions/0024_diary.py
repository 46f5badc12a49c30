"""diary changes (owned by the diary work; empty until it needs one).

Revision ID: 0024_diary
Revises: 0023_care_plan
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0024_diary"
down_revision = "0023_care_plan"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
