"""audit trail partitioned by month on `at`, append-only in every partition for the application role.

- `audit_event` becomes `PARTITION BY RANGE (at)`; its key becomes (id, at) (a partitioned table's key must hold
  the partition key); ids keep coming from the same sequence, so they stay unique and increasing.
- One partition per calendar month (bounds at midnight of the 1st in TIMEZONE, Europe/Rome), named `audit_event_pYYYY_MM`, plus `audit_event_default` for
  a row whose month has no partition yet (it should stay empty: partitions are made ahead).
- `audit_ensure_partitions(months_ahead)` makes the partitions of the current month and the next `months_ahead`
  ones. It is SECURITY DEFINER (it runs as the owner, who alone may do DDL) and the application role may only
  EXECUTE it: the daily job `security.audit_partitions` (deploy.composition.DAILY_ENQUEUERS) calls it. Rows of
  such a month already waiting in the default partition are moved into the new partition in the same transaction.
  Every partition it makes is append-only for the application role (SELECT and INSERT, never UPDATE, DELETE or
  TRUNCATE), like the parent table, because the default privileges of 0000_roles would grant it more.
- The existing rows are copied into their months.

Retention and archiving (DETACH PARTITION, dump, DROP) are the owner's, by hand: docs/operations.md.

Revision ID: 0043_audit_partitions
Revises: 0042_services
"""
from alembic import op

from domain.kernel.settings import get_settings

revision = "0043_audit_partitions"
down_revision = "0042_services"
branch_labels = None
depends_on = None

COLUMNS = ("id, at, request_id, actor_id, actor_username, acting_for, roles, organisation_ids, action, route, "
           "object_type, object_ids, person_ids, purpose, legal_basis, result_count, status, outcome, break_glass")
INDEXES = (("ix_audit_person_ids", "using gin (person_ids)"), ("ix_audit_actor_at", "(actor_id, at)"),
           ("ix_audit_request", "(request_id)"))
MONTHS_AHEAD = 3


def _append_only(table: str, app: str) -> None:
    op.execute(f'revoke all on {table} from "{app}"')
    op.execute(f'grant select, insert on {table} to "{app}"')


def upgrade() -> None:
    app, tz = get_settings().app_db_role, get_settings().timezone
    op.execute("alter table audit_event rename to audit_event_unpartitioned")
    op.execute("alter table audit_event_unpartitioned rename constraint audit_event_pkey to audit_event_unpartitioned_pkey")
    for name, _ in INDEXES:
        op.execute(f"alter index {name} rename to {name}_unpartitioned")
    op.execute("alter sequence audit_event_id_seq owned by none")  # kept: the new table draws from it
    op.execute("""
        create table audit_event (like audit_event_unpartitioned including defaults including constraints)
        partition by range (at)
    """)
    op.execute("alter table audit_event add constraint audit_event_pkey primary key (id, at)")
    op.execute("alter sequence audit_event_id_seq owned by audit_event.id")
    for name, how in INDEXES:
        op.execute(f"create index {name} on audit_event {how}")
    op.execute("create table audit_event_default partition of audit_event default")
    _append_only("audit_event", app)
    _append_only("audit_event_default", app)
    op.execute(f"""
        create or replace function audit_ensure_partitions(months_ahead integer default {MONTHS_AHEAD},
                                                           from_month timestamptz default null)
        returns integer language plpgsql security definer set search_path = public, pg_temp as $$
        declare
            first_month timestamptz := date_trunc('month', greatest(coalesce(from_month, now()),
                                                                    now() - interval '10 years') at time zone '{tz}')
                                       at time zone '{tz}';
            last_month timestamptz := (date_trunc('month', now() at time zone '{tz}')
                                       + make_interval(months => greatest(months_ahead, 0))) at time zone '{tz}';
            m timestamptz;
            upper_bound timestamptz;
            part text;
            made integer := 0;
        begin
            if months_ahead is null or months_ahead > 120 then
                raise exception 'months_ahead must be between 0 and 120';
            end if;
            -- one creator at a time (two workers on the same day): the second finds the partitions there
            perform pg_advisory_xact_lock(hashtext('audit_ensure_partitions'));
            m := first_month;
            while m <= last_month loop
                upper_bound := ((m at time zone '{tz}') + interval '1 month') at time zone '{tz}';
                part := 'audit_event_p' || to_char(m at time zone '{tz}', 'YYYY_MM');
                if to_regclass(part) is null then
                    if exists (select 1 from audit_event_default where at >= m and at < upper_bound) then
                        -- rows of this month arrived before its partition: move them in with it
                        execute format('create table %I (like audit_event including defaults including constraints)',
                                       part);
                        execute format('with moved as (delete from audit_event_default where at >= %L and at < %L '
                                       'returning *) insert into %I select * from moved', m, upper_bound, part);
                        execute format('alter table audit_event attach partition %I for values from (%L) to (%L)',
                                       part, m, upper_bound);
                    else
                        execute format('create table %I partition of audit_event for values from (%L) to (%L)',
                                       part, m, upper_bound);
                    end if;
                    execute format('revoke all on %I from %I', part, '{app}');
                    execute format('grant select, insert on %I to %I', part, '{app}');
                    made := made + 1;
                end if;
                m := upper_bound;
            end loop;
            return made;
        end
        $$
    """)
    op.execute("revoke all on function audit_ensure_partitions(integer, timestamptz) from public")
    op.execute(f'grant execute on function audit_ensure_partitions(integer, timestamptz) to "{app}"')
    # Partitions from the oldest row's month (or this month) to MONTHS_AHEAD ahead, then the rows into them.
    op.execute("select audit_ensure_partitions(%d, (select min(at) from audit_event_unpartitioned))" % MONTHS_AHEAD)
    op.execute(f"insert into audit_event ({COLUMNS}) select {COLUMNS} from audit_event_unpartitioned")
    op.execute("drop table audit_event_unpartitioned")


def downgrade() -> None:
    app = get_settings().app_db_role
    op.execute("drop function if exists audit_ensure_partitions(integer, timestamptz)")
    op.execute("alter table audit_event rename to audit_event_partitioned")
    op.execute("alter table audit_event_partitioned rename constraint audit_event_pkey to audit_event_partitioned_pkey")
    for name, _ in INDEXES:
        op.execute(f"alter index {name} rename to {name}_partitioned")
    op.execute("alter sequence audit_event_id_seq owned by none")
    op.execute("create table audit_event (like audit_event_partitioned including defaults including constraints)")
    op.execute("alter table audit_event add constraint audit_event_pkey primary key (id)")
    op.execute("alter sequence audit_event_id_seq owned by audit_event.id")
    for name, how in INDEXES:
        op.execute(f"create index {name} on audit_event {how}")
    op.execute(f"insert into audit_event ({COLUMNS}) select {COLUMNS} from audit_event_partitioned")
    op.execute("drop table audit_event_partitioned")  # and every partition with it
    op.execute(f'revoke update, delete, truncate on audit_event from "{app}"')
    op.execute(f'grant select, insert on audit_event to "{app}"')
