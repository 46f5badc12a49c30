"""imports: import jobs, their staged rows with outcomes, and the provenance of imported records.

Revision ID: 0035_imports
Revises: 0034_discharge
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from domain.kernel.settings import get_settings

revision = "0035_imports"
down_revision = "0034_discharge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "import_job",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("dry_run_of", sa.Uuid(), nullable=True),
        sa.Column("source_system", sa.String(length=60), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("file_format", sa.String(length=10), nullable=False),
        sa.Column("mapping", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("total_rows", sa.Integer(), nullable=False),
        sa.Column("rows_done", sa.Integer(), nullable=False),
        sa.Column("counts", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("busy_seconds", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("app_now()"), nullable=False),
        sa.ForeignKeyConstraint(["ambito_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["created_by"], ["app_user.id"]),
        sa.ForeignKeyConstraint(["dry_run_of"], ["import_job.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_import_job_ambito", "import_job", ["ambito_id", "created_at", "id"], unique=False)
    op.create_table(
        "import_row",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("phase", sa.Integer(), nullable=False),
        sa.Column("source_key", sa.String(length=120), nullable=True),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("person_id", sa.Uuid(), nullable=True),
        sa.Column("matched_row", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=60), nullable=True),
        sa.Column("candidate_person_ids", postgresql.ARRAY(sa.Uuid()), server_default=sa.text("'{}'"),
                  nullable=False),
        sa.Column("candidate_rows", postgresql.ARRAY(sa.Integer()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("cartella_id", sa.Uuid(), nullable=True),
        sa.Column("relation_id", sa.Uuid(), nullable=True),
        sa.Column("errors", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("notes", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["import_job.id"]),
        sa.PrimaryKeyConstraint("job_id", "row_number"),
    )
    op.create_index("ix_import_row_todo", "import_row", ["job_id", "phase", "row_number"], unique=False,
                    postgresql_where=sa.text("outcome is null"))
    op.create_index("ix_import_row_person", "import_row", ["job_id", "person_id"], unique=False,
                    postgresql_where=sa.text("person_id is not null"))
    op.create_table(
        "import_record",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("source_system", sa.String(length=60), nullable=False),
        sa.Column("source_key", sa.String(length=120), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=True),
        sa.Column("cartella_id", sa.Uuid(), nullable=True),
        sa.Column("relation_id", sa.Uuid(), nullable=True),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("app_now()"), nullable=False),
        sa.ForeignKeyConstraint(["ambito_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.ForeignKeyConstraint(["job_id"], ["import_job.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ambito_id", "source_system", "source_key", name="uq_import_record_key"),
    )
    op.create_index(op.f("ix_import_record_person_id"), "import_record", ["person_id"], unique=False)
    app = get_settings().app_db_role
    for table in ("import_job", "import_row", "import_record"):
        op.execute(f'grant select, insert, update, delete on {table} to "{app}"')


def downgrade() -> None:
    op.drop_table("import_record")
    op.drop_table("import_row")
    op.drop_table("import_job")
