"""territory changes (owned by the territory work; empty until it needs one).

Revision ID: 0002_territory
Revises: 0001_foundation
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0002_territory"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
