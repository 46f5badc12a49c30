"""fhir outbox: outbound messages to ASST, integration_operator role (placeholder reserved so that parallel work keeps one migration chain; filled by its owner).

Revision ID: 0040_fhir_outbox
Revises: 0039_waiting_list
"""
revision = "0040_fhir_outbox"
down_revision = "0039_waiting_list"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
