"""registry changes (owned by the registry work; empty until it needs one).

Revision ID: 0004_registry
Revises: 0003_security
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0004_registry"
down_revision = "0003_security"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
