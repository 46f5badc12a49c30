"""jobs changes (owned by the jobs work; empty until it needs one).

Revision ID: 0006_jobs
Revises: 0005_broker
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0006_jobs"
down_revision = "0005_broker"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
