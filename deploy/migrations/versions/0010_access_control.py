"""Access control: consent, break-glass grants, append-only audit trail.

Revision ID: 0010_access_control
Revises: 0006_jobs
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

from domain.kernel.settings import get_settings

revision = "0010_access_control"
down_revision = "0006_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consent",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=30), nullable=False),
        sa.Column("grantor_kind", sa.String(length=30), nullable=False),
        sa.Column("grantor_relation_id", sa.Uuid(), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("scope_note", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("document_ref", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("recorded_by", sa.Uuid(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=sa.text("app_now()"), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.Uuid(), nullable=True),
        sa.Column("revocation_reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.ForeignKeyConstraint(["grantor_relation_id"], ["person_relation.id"]),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.ForeignKeyConstraint(["recorded_by"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_consent_person_purpose", "consent", ["person_id", "purpose"])
    op.create_index(op.f("ix_consent_grantor_relation_id"), "consent", ["grantor_relation_id"])
    op.create_table(
        "break_glass_grant",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.text("app_now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_break_glass_active", "break_glass_grant", ["user_id", "person_id", "expires_at"])
    op.create_index(op.f("ix_break_glass_grant_person_id"), "break_glass_grant", ["person_id"])
    op.create_table(
        "audit_event",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("app_now()"), nullable=False),
        sa.Column("request_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("actor_username", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
        sa.Column("acting_for", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
        sa.Column("roles", postgresql.ARRAY(sa.String(length=40)), nullable=False),
        sa.Column("organisation_ids", postgresql.ARRAY(sa.Uuid()), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("route", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("object_type", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=True),
        sa.Column("object_ids", postgresql.ARRAY(sa.Uuid()), nullable=False),
        sa.Column("person_ids", postgresql.ARRAY(sa.Uuid()), nullable=False),
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=True),
        sa.Column("legal_basis", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("result_count", sa.Integer(), nullable=True),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("break_glass", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_person_ids", "audit_event", ["person_ids"], postgresql_using="gin")
    op.create_index("ix_audit_actor_at", "audit_event", ["actor_id", "at"])
    op.create_index("ix_audit_request", "audit_event", ["request_id"])
    op.add_column("cartella_assignment", sa.Column("legal_basis", sqlmodel.sql.sqltypes.AutoString(length=200),
                                                   nullable=True))
    app = get_settings().app_db_role
    # Append-only for the application: it may add and read audit rows, never change or remove them.
    op.execute(f'revoke update, delete, truncate on audit_event from "{app}"')
    op.execute(f'grant select, insert on audit_event to "{app}"')


def downgrade() -> None:
    op.drop_column("cartella_assignment", "legal_basis")
    op.drop_table("audit_event")
    op.drop_table("break_glass_grant")
    op.drop_table("consent")
