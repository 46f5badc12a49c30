"""FHIR transaction write path (issue 12): reserved step.

Revision ID: 0051_fhir_write_path
Revises: 0050_regional_role
"""
revision = "0051_fhir_write_path"
down_revision = "0050_regional_role"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
