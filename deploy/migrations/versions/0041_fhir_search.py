"""fhir search: Task due time, indexes for date and _lastUpdated (placeholder reserved so that parallel work keeps one migration chain; filled by its owner).

Revision ID: 0041_fhir_search
Revises: 0040_fhir_outbox
"""
revision = "0041_fhir_search"
down_revision = "0040_fhir_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
