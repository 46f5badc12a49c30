"""reporting: an empty step (the export jobs landed in 0045_report_exports; kept so that databases already at
this revision keep one chain).

Revision ID: 0044_reporting
Revises: 0043_audit_partitions
"""
revision = "0044_reporting"
down_revision = "0043_audit_partitions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
