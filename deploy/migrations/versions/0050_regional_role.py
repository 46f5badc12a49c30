"""Regional role (issue 18): the Region as an organisation of its own, where the regional helpdesk is held.

`regione-lombardia` is a root of its own (no Ambito, no parent) and no Ambito hangs under it: nothing of an Ambito
is reached through it. A user held there has it as `app_user.ambito_id`, so every Ambito-scoped query finds
nothing for that user, and only an administrator held there may create such users or grant them roles
(docs/decisions/regional-search.md). Kind and side are plain strings, so no type changes. And a btree on the
name of the active persons, for the regional search's exact-name page.

Revision ID: 0050_regional_role
Revises: 0049_start_residence
"""
import sqlalchemy as sa
from alembic import op

revision = "0050_regional_role"
down_revision = "0049_start_residence"
branch_labels = None
depends_on = None

REGIONE_CODE = "regione-lombardia"


def upgrade() -> None:
    # The regional search's exact-name page (domain/registry/queries.py `_exact_name_first`): the persons with
    # exactly this "surname given name" in every Ambito, one probe.
    op.create_index("ix_person_name_exact", "person", ["name_search"],
                    postgresql_where=sa.text("status = 'active'"))
    op.execute(sa.text(
        "insert into organisation (id, ambito_id, code, name, kind, side, part_of_id, ancestor_ids, istat_code, "
        "provisional, attributes, active) values (gen_random_uuid(), null, :code, 'Regione Lombardia', 'regione', "
        "'regione', null, '{}', null, false, '{}'::jsonb, true) on conflict (code) do nothing"
    ).bindparams(code=REGIONE_CODE))


def downgrade() -> None:
    op.drop_index("ix_person_name_exact", table_name="person")
    # Users and role assignments held there must be ended and removed by hand first (foreign keys).
    op.execute(sa.text("delete from organisation where code = :code").bindparams(code=REGIONE_CODE))
