"""reporting export jobs (issue 14) (placeholder reserved so that parallel work keeps one migration chain; filled by its owner).

Revision ID: 0045_report_exports
Revises: 0044_reporting
"""
revision = "0045_report_exports"
down_revision = "0044_reporting"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
