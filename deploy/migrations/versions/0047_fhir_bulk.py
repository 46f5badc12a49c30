"""FHIR transaction throughput (issue 12): an empty step (the reserved placeholder was not needed; kept so that
databases already at this revision keep one chain).

Revision ID: 0047_fhir_bulk
Revises: 0046_regional_search
"""
revision = "0047_fhir_bulk"
down_revision = "0046_regional_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
