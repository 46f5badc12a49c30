"""jobs: widen job.kind for event jobs (`event:<name>:<module.qualname>`).

Revision ID: 0006_jobs
Revises: 0005_broker
"""
import sqlmodel
from alembic import op

revision = "0006_jobs"
down_revision = "0005_broker"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("job", "kind", existing_type=sqlmodel.sql.sqltypes.AutoString(length=80),
                    type_=sqlmodel.sql.sqltypes.AutoString(length=200), existing_nullable=False)


def downgrade() -> None:
    op.alter_column("job", "kind", existing_type=sqlmodel.sql.sqltypes.AutoString(length=200),
                    type_=sqlmodel.sql.sqltypes.AutoString(length=80), existing_nullable=False)
