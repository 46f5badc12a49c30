"""broker changes (owned by the broker work; empty until it needs one).

Revision ID: 0005_broker
Revises: 0004_registry
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0005_broker"
down_revision = "0004_registry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
