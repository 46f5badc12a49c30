"""Registry: the scope of an amministratore di sostegno's decree (what the AdS represents the person in).

Existing AdS relations keep the meaning they had (they could consent for the person): care and health.

Revision ID: 0030_registry_decrees
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0030_registry_decrees"
down_revision = "0023_care_plan"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("person_relation", sa.Column("decree_scope", ARRAY(sa.String(20)), nullable=False,
                                               server_default=sa.text("'{}'")))
    op.execute("update person_relation set decree_scope = '{care_health}' where kind = 'ads'")


def downgrade() -> None:
    op.drop_column("person_relation", "decree_scope")
