"""pua changes (owned by the pua work; empty until it needs one).

Revision ID: 0021_pua
Revises: 0020_pua_vmd_plans
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0021_pua"
down_revision = "0020_pua_vmd_plans"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
