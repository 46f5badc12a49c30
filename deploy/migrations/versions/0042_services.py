"""services and measures: activations, deliveries, accreditations, measures, calls, applications (placeholder reserved so that parallel work keeps one migration chain; filled by its owner).

Revision ID: 0042_services
Revises: 0041_fhir_search
"""
revision = "0042_services"
down_revision = "0041_fhir_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
