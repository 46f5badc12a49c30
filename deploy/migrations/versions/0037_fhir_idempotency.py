"""fhir: the answers of inbound requests that must act once (FHIR transaction Bundles by Bundle.identifier).

Revision ID: 0037_fhir_idempotency
Revises: 0036_discharge_monitoring
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0037_fhir_idempotency"
down_revision = "0036_discharge_monitoring"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotent_request",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("scope", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("app_now()"), nullable=False),
        sa.ForeignKeyConstraint(["ambito_id"], ["organisation.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ambito_id", "scope", "key"),
    )


def downgrade() -> None:
    op.drop_table("idempotent_request")
