"""regional registry and search (issue 18) (placeholder reserved so that parallel work keeps one migration chain; filled by its owner).

Revision ID: 0046_regional_search
Revises: 0045_report_exports
"""
revision = "0046_regional_search"
down_revision = "0045_report_exports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
