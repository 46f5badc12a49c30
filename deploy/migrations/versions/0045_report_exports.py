"""reporting export jobs (issue 14): the export asked by a user (what, format, steps, progress, the file and its
expiry) and the rows each step computed until the file is written.

Revision ID: 0045_report_exports
Revises: 0044_reporting
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from domain.kernel.settings import get_settings

revision = "0045_report_exports"
down_revision = "0044_reporting"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_export",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("params", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("format", sa.String(length=10), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("steps", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("steps_done", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("error_code", sa.String(length=40), nullable=True),
        sa.Column("file_key", sa.String(length=64), nullable=True),
        sa.Column("file_name", sa.String(length=255), nullable=True),
        sa.Column("media_type", sa.String(length=120), nullable=True),
        sa.Column("file_bytes", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("app_now()"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["ambito_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["created_by"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_report_export_owner", "report_export", ["created_by", "created_at", "id"], unique=False)
    op.create_index("ix_report_export_expiry", "report_export", ["expires_at"], unique=False,
                    postgresql_where=sa.text("state = 'done'"))
    op.create_index("ix_report_export_file", "report_export", ["file_key"], unique=False,
                    postgresql_where=sa.text("file_key is not null"))
    op.create_table(
        "report_export_part",
        sa.Column("export_id", sa.Uuid(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("rows", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(["export_id"], ["report_export.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("export_id", "step"),
    )
    app = get_settings().app_db_role
    for table in ("report_export", "report_export_part"):
        op.execute(f'grant select, insert, update, delete on {table} to "{app}"')


def downgrade() -> None:
    op.drop_table("report_export_part")
    op.drop_table("report_export")
