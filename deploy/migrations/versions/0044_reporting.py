"""reporting: export jobs and their files (placeholder reserved so that parallel work keeps one migration chain;
filled by its owner).

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
