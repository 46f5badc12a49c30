"""Database functions and privileges every later migration relies on.

Revision ID: 0000_roles
Revises: 0000_extensions
"""
from alembic import op

from domain.kernel.settings import get_settings

revision = "0000_roles"
down_revision = "0000_extensions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    app = get_settings().app_db_role
    # The business clock reaches column defaults: a fixed clock sets app.now for the transaction.
    op.execute("""
        create or replace function app_now() returns timestamptz language sql stable as $$
            select coalesce(nullif(current_setting('app.now', true), '')::timestamptz, now())
        $$
    """)
    op.execute(f'grant usage on schema public to "{app}"')
    op.execute(f'alter default privileges in schema public grant select, insert, update, delete on tables to "{app}"')
    op.execute(f'alter default privileges in schema public grant usage, select on sequences to "{app}"')
    op.execute(f'grant execute on function app_now() to "{app}"')


def downgrade() -> None:
    app = get_settings().app_db_role
    op.execute(f'alter default privileges in schema public revoke select, insert, update, delete on tables from "{app}"')
    op.execute(f'alter default privileges in schema public revoke usage, select on sequences from "{app}"')
    op.execute("drop function if exists app_now()")
