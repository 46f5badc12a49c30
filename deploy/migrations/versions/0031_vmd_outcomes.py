"""VMD: several outcomes of one assessment (eligible for a measure AND a project proposed...), and the date of the
application that starts the clock (the RSA 30 days run from "l'inserimento della domanda", seed L11631).

Existing rows: `outcomes` takes the single `outcome` (which stays, as the first outcome, for its readers);
`application_date` takes the day of the request (Europe/Rome), the default for new requests too.

Revision ID: 0031_vmd_outcomes
Revises: 0030_registry_decrees
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0031_vmd_outcomes"
down_revision = "0030_registry_decrees"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("vmd", sa.Column("outcomes", ARRAY(sa.String(30)), nullable=False, server_default=sa.text("'{}'")))
    op.execute("update vmd set outcomes = array[outcome] where outcome is not null")
    op.add_column("vmd", sa.Column("application_date", sa.Date(), nullable=True))
    op.execute("update vmd set application_date = (requested_at at time zone 'Europe/Rome')::date")


def downgrade() -> None:
    op.drop_column("vmd", "application_date")
    op.drop_column("vmd", "outcomes")
