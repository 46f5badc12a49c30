"""Reporting (issue 14): the comune of residence at the start event, recorded on the PUA access request (at its
registration) and on the VMD (at its request), so the indicators stratify by where the person lived then, not where
they live now (docs/indicators.md, counting rules). Existing rows get the person's current residence: the best
this database knows of them.

Revision ID: 0049_start_residence
Revises: 0048_reporting_indexes
"""
import sqlalchemy as sa
from alembic import op

revision = "0049_start_residence"
down_revision = "0048_reporting_indexes"
branch_labels = None
depends_on = None

TABLES = ("access_request", "vmd")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("residence_comune_id", sa.Uuid(), nullable=True))
        op.create_foreign_key(f"fk_{table}_residence_comune_id", table, "organisation", ["residence_comune_id"],
                              ["id"])
        op.execute(f"UPDATE {table} t SET residence_comune_id = p.residence_comune_id FROM person p "
                   f"WHERE p.id = t.person_id")


def downgrade() -> None:
    for table in TABLES:
        op.drop_constraint(f"fk_{table}_residence_comune_id", table, type_="foreignkey")
        op.drop_column(table, "residence_comune_id")
