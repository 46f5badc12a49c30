"""Kernel: the stored business clock (one row: an offset from the real clock), moved only in development mode.

Revision ID: 0033_business_clock
"""
import sqlalchemy as sa
from alembic import op

from domain.kernel.settings import get_settings

revision = "0033_business_clock"
down_revision = "0032_role_approval"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "business_clock",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("offset_seconds", sa.Float(), server_default=sa.text("0"), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("changed_by", sa.Uuid(), nullable=True),
        sa.CheckConstraint("id = 1", name="ck_business_clock_one_row"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("insert into business_clock (id, offset_seconds) values (1, 0)")
    app = get_settings().app_db_role
    # One row for ever: the application reads and moves it, never adds or removes one.
    op.execute(f'revoke insert, delete, truncate on business_clock from "{app}"')
    op.execute(f'grant select, update on business_clock to "{app}"')


def downgrade() -> None:
    op.drop_table("business_clock")
