"""Territory readers on the discharge signal's path: the memo of a code look-up and the ASST-unit check through
the session's identity map answer what the queries answer, and forget an organisation the session changes."""
from __future__ import annotations

from contextlib import contextmanager

import sqlalchemy as sa

from domain.territory import queries
from tests.support import org


@contextmanager
def statements(engine):
    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        seen.append(statement)

    sa.event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", count)


async def test_a_unit_matched_on_its_code_is_checked_without_reading_it_again(session, app_engine):
    await session.execute(sa.text("select 1"))  # the test's transaction is open
    with statements(app_engine) as seen:  # a Bundle's organisations: one statement for all their codes
        found = await queries.orgs_by_code(session, ["asst-crema", "asst-crema-reparto-medicina", "sconosciuto"])
    assert len(seen) == 1 and sorted(found) == ["asst-crema", "asst-crema-reparto-medicina"]
    ward = found["asst-crema-reparto-medicina"]
    with statements(app_engine) as seen:
        again = await queries.org_by_code(session, "asst-crema-reparto-medicina")
        unit = await queries.asst_unit(session, ward.ambito_id, ["reparto"], ward.id)
    assert again is ward and unit is ward and seen == []
    # the same predicate as asst_units: a unit of another type, or of another Ambito, is not one
    assert await queries.asst_unit(session, ward.ambito_id, ["cot"], ward.id) is None
    cot = await org(session, "asst-crema-cot")
    assert await queries.asst_unit(session, cot.ambito_id, ["cot"], cot.id) is cot
    assert await queries.asst_unit(session, ward.id, ["reparto"], ward.id) is None
    listed = await queries.asst_units(session, ward.ambito_id, ["reparto"], ids=[ward.id, cot.id])
    assert [o.id for o in listed] == [ward.id]


async def test_the_memo_forgets_a_code_once_the_session_writes_an_organisation(session, app_engine):
    ward = await queries.org_by_code(session, "asst-crema-reparto-medicina")
    ward.active = False
    session.add(ward)
    await session.flush()  # an organisation written: what the session remembered of the territory is gone
    with statements(app_engine) as seen:
        again = await queries.org_by_code(session, "asst-crema-reparto-medicina")
    assert len(seen) == 1 and again.active is False
    assert await queries.asst_unit(session, again.ambito_id, ["reparto"], again.id) is None  # no longer active
    assert await queries.org_by_code(session, "no-such-code") is None
