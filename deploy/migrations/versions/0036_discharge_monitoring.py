"""discharge: the monitoring step after the discharge (monitoring_at); cancelled signals and the monitoring state
need no schema change (state is a string).

Revision ID: 0036_discharge_monitoring
Revises: 0035_imports
"""
import sqlalchemy as sa
from alembic import op

revision = "0036_discharge_monitoring"
down_revision = "0035_imports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("discharge_case", sa.Column("monitoring_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("discharge_case", "monitoring_at")
