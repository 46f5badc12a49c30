"""security changes (owned by the security work; empty until it needs one).

Revision ID: 0003_security
Revises: 0002_territory
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0003_security"
down_revision = "0002_territory"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
