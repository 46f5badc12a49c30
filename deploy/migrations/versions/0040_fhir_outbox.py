"""fhir outbox: outbound messages to ASST (the FHIR transaction Bundle, its basis, its delivery) and the
integration_operator role. The role column is a plain string (no enum type, no check), so the new role needs no
schema change; its permissions live in schemas/security/permissions.yaml.

Revision ID: 0040_fhir_outbox
Revises: 0039_waiting_list
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from domain.kernel.settings import get_settings

revision = "0040_fhir_outbox"
down_revision = "0039_waiting_list"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox_message",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("event", sa.String(length=60), nullable=False),
        sa.Column("source_type", sa.String(length=60), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=False),
        sa.Column("source_state", sa.String(length=40), nullable=True),
        sa.Column("dedup_key", sa.String(length=200), nullable=False),
        sa.Column("idempotency_key", sa.String(length=80), nullable=False),
        sa.Column("resource_types", sa.ARRAY(sa.String(length=40)), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("basis", sa.String(length=300), nullable=True),
        sa.Column("basis_kind", sa.String(length=20), nullable=True),
        sa.Column("withheld_reason", sa.String(length=300), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), server_default=sa.text("app_now()"),
                  nullable=False),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("retried_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("app_now()"), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dead_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("state in ('pending', 'sent', 'withheld', 'dead')", name="ck_outbox_message_state"),
        sa.ForeignKeyConstraint(["ambito_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedup_key"),
        sa.UniqueConstraint("idempotency_key"),
    )
    op.create_index("ix_outbox_message_person_id", "outbox_message", ["person_id"], unique=False)
    op.create_index("ix_outbox_message_ready", "outbox_message", ["next_attempt_at", "id"], unique=False,
                    postgresql_where=sa.text("state = 'pending'"))
    op.create_index("ix_outbox_message_list", "outbox_message", ["ambito_id", "state", "created_at", "id"],
                    unique=False)
    op.create_index("ix_outbox_message_all", "outbox_message", ["ambito_id", "created_at", "id"], unique=False)
    op.create_index("ix_outbox_message_source", "outbox_message", ["source_id", "created_at"], unique=False)
    op.execute(f'grant select, insert, update on outbox_message to "{get_settings().app_db_role}"')


def downgrade() -> None:
    op.drop_table("outbox_message")
