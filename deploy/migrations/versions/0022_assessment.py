"""assessment changes (owned by the assessment work; empty until it needs one).

Revision ID: 0022_assessment
Revises: 0021_pua
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0022_assessment"
down_revision = "0021_pua"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
