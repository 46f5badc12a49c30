"""The audit trail partitioned by month (0043_audit_partitions): partitions made ahead by the daily job as the
application role (through the owner's SECURITY DEFINER function), append-only in every partition for that role,
rows of a month that had no partition yet moved into it, and the migration down and up keeping every row."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from domain.security.jobs import ensure_audit_partitions
from integrations.postgres import devpg

ROME = ZoneInfo("Europe/Rome")


def _conn(db: dict[str, str], user: str) -> psycopg.Connection:
    url = db["DATABASE_URL"]
    port, name = int(url.rsplit(":", 1)[1].split("/")[0]), url.rsplit("/", 1)[1]
    return psycopg.connect(host="127.0.0.1", port=port, user=user, dbname=name, autocommit=True)


def _partitions(c: psycopg.Connection) -> list[str]:
    return [r[0] for r in c.execute(
        "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid "
        "where i.inhparent = 'audit_event'::regclass order by 1").fetchall()]


def _month_name(months_from_now: int) -> str:
    now = datetime.now(ROME)
    y, m = divmod(now.year * 12 + now.month - 1 + months_from_now, 12)
    return f"audit_event_p{y:04d}_{m + 1:02d}"


async def _ensure(db: dict[str, str], ahead: int) -> int:
    engine = create_async_engine(db["DATABASE_URL"])  # the application role, as the worker runs the job
    async with AsyncSession(engine) as s:
        made = await ensure_audit_partitions(s, months_ahead=ahead)
        await s.commit()
    await engine.dispose()
    return made


def _insert(c: psycopg.Connection, at: datetime) -> int:
    return c.execute("insert into audit_event (at, roles, organisation_ids, action, object_ids, person_ids, outcome, "
                     "break_glass) values (%s, '{}', '{}', 'read', '{}', '{}', 'ok', false) returning id",
                     (at,)).fetchone()[0]


async def test_partitions_are_made_ahead_by_the_application_role_and_stay_append_only(fresh_db):
    with _conn(fresh_db, devpg.SUPERUSER) as su:
        assert su.execute("select relkind from pg_class where relname = 'audit_event'").fetchone()[0] == "p"
        made_by_migration = _partitions(su)
    assert "audit_event_default" in made_by_migration
    assert {_month_name(k) for k in range(4)} <= set(made_by_migration)

    assert await _ensure(fresh_db, 6) == 3  # the job: three more months
    assert await _ensure(fresh_db, 6) == 0  # idempotent
    with _conn(fresh_db, devpg.SUPERUSER) as su:
        assert {_month_name(k) for k in range(7)} <= set(_partitions(su))

    with _conn(fresh_db, "pua_app") as app:
        row = _insert(app, datetime.now(UTC))
        assert app.execute("select count(*) from audit_event where id = %s", (row,)).fetchone()[0] == 1
        # Append-only through the parent and in every partition, old or new, and in the default one.
        for table in ("audit_event", _month_name(0), _month_name(6), "audit_event_default"):
            for sql in (f"update {table} set outcome = 'x'", f"delete from {table}", f"truncate {table}"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    app.execute(sql)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute(f"alter table {table} add column x int")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute(f"alter table audit_event detach partition {_month_name(0)}")


async def test_rows_waiting_in_the_default_partition_move_into_their_new_month(fresh_db):
    far = datetime.now(ROME).replace(day=15, hour=12)
    y, m = divmod(far.year * 12 + far.month - 1 + 10, 12)
    far = far.replace(year=y, month=m + 1)
    with _conn(fresh_db, "pua_app") as app:
        row = _insert(app, far)  # ten months ahead: no partition yet
    with _conn(fresh_db, devpg.SUPERUSER) as su:
        assert su.execute("select tableoid::regclass::text from audit_event where id = %s",
                          (row,)).fetchone()[0] == "audit_event_default"
    assert await _ensure(fresh_db, 10) >= 1
    with _conn(fresh_db, devpg.SUPERUSER) as su:
        where = su.execute("select tableoid::regclass::text from audit_event where id = %s", (row,)).fetchone()[0]
        assert where == _month_name(10)
        assert su.execute("select count(*) from audit_event_default").fetchone()[0] == 0
        assert set(su.execute(f"select privilege_type from information_schema.role_table_grants where "
                              f"table_name = '{where}' and grantee = 'pua_app'").fetchall()) == {("SELECT",),
                                                                                                ("INSERT",)}


async def test_migration_down_and_up_keeps_every_audit_row(fresh_db):
    from alembic import command
    from alembic.config import Config

    from deploy.migrate import ROOT

    with _conn(fresh_db, "pua_app") as app:
        for at in (datetime(2026, 3, 2, 8, tzinfo=UTC), datetime.now(UTC)):
            _insert(app, at)
    query = "select id, at, action from audit_event order by id"
    with _conn(fresh_db, devpg.SUPERUSER) as su:
        before = su.execute(query).fetchall()
    cfg = Config(str(ROOT / "deploy" / "alembic.ini"))
    cfg.attributes["url"] = fresh_db["MIGRATION_DATABASE_URL"]
    await asyncio.to_thread(command.downgrade, cfg, "0042_services")
    with _conn(fresh_db, devpg.SUPERUSER) as su:
        assert su.execute("select relkind from pg_class where relname = 'audit_event'").fetchone()[0] == "r"
        assert su.execute(query).fetchall() == before
    await asyncio.to_thread(command.upgrade, cfg, "head")
    with _conn(fresh_db, devpg.SUPERUSER) as su:
        assert su.execute("select relkind from pg_class where relname = 'audit_event'").fetchone()[0] == "p"
        assert su.execute(query).fetchall() == before
        assert "audit_event_p2026_03" in _partitions(su)  # the oldest row's month got its partition
    with _conn(fresh_db, "pua_app") as app:
        new = _insert(app, datetime.now(UTC))
        assert new > before[-1][0]  # the same sequence goes on
