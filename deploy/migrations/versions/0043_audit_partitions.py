"""audit trail partitioned by month (placeholder reserved so that parallel work keeps one migration chain; filled by
its owner).

Revision ID: 0043_audit_partitions
Revises: 0042_services
"""
revision = "0043_audit_partitions"
down_revision = "0042_services"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
