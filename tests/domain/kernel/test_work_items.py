"""Work items: idempotent creation, completion rules, cancellation by source, the queue (one indexed query)."""
from __future__ import annotations

import re
import uuid
from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from domain.kernel import work_items as wi
from domain.kernel.cursor import BadCursor
from domain.kernel.errors import Conflict, Invalid, NotFound
from domain.kernel.ids import new_id
from domain.kernel.models import WorkItem
from domain.security.models import AppUser, Role, Team, TeamMember, TeamType
from domain.security.principal import load_principal
from tests.support import make_user, org

T0 = datetime.fromisoformat("2026-03-02T09:00:00+01:00")


async def _team(session, code: str, members: list[AppUser], org_code: str, *, valid_to: date | None = None) -> Team:
    o = await org(session, org_code)
    t = Team(ambito_id=o.ambito_id, code=code, name=code, type=TeamType.pua, organisation_id=o.id)
    session.add(t)
    await session.flush()
    for m in members:
        session.add(TeamMember(team_id=t.id, user_id=m.id, organisation_id=o.id, valid_from=date(2024, 1, 1),
                               valid_to=valid_to))
    await session.flush()
    return t


async def _item(session, **kw) -> WorkItem:
    kw.setdefault("kind", "pua.triage")
    kw.setdefault("title", "Valutare la richiesta")
    kw.setdefault("source_type", "test")
    kw.setdefault("source_id", uuid.uuid4())
    return await wi.create(session, **kw)


async def test_create_is_idempotent_on_dedup_key_while_open(session):
    u = await make_user(session, Role.cot_operator, "asst-crema-cot")
    src = uuid.uuid4()
    a = await _item(session, assignee_user_id=u.id, source_id=src, dedup_key=f"discharge:{src}")
    b = await _item(session, assignee_user_id=u.id, source_id=src, dedup_key=f"discharge:{src}",
                    title="Un altro titolo")
    assert a.id == b.id and b.title == "Valutare la richiesta"
    n = (await session.execute(sa.select(sa.func.count()).select_from(WorkItem)
                               .where(WorkItem.dedup_key == f"discharge:{src}"))).scalar_one()
    assert n == 1
    await wi.complete(session, item_id=a.id, principal=await load_principal(session, str(u.id)))
    c = await _item(session, assignee_user_id=u.id, source_id=src, dedup_key=f"discharge:{src}")
    assert c.id != a.id and c.state == "open"  # once done, the key may be used again
    # Without a key every call creates a new item.
    d1 = await _item(session, assignee_user_id=u.id, source_id=src)
    d2 = await _item(session, assignee_user_id=u.id, source_id=src)
    assert d1.id != d2.id


async def test_create_many_writes_new_items_and_skips_an_open_key_as_create_returns_it(session):
    u = await make_user(session, Role.cot_operator, "asst-crema-cot")
    src = uuid.uuid4()
    kept = await _item(session, assignee_user_id=u.id, source_id=src, dedup_key=f"cot:{src}")
    common = {"kind": "pua.triage", "source_type": "test", "source_id": src, "assignee_user_id": u.id}
    await wi.create_many(session, [{**common, "title": "Doppione", "dedup_key": f"cot:{src}"},
                                   {**common, "title": "Nuova", "dedup_key": f"comune:{src}", "due_at": T0},
                                   {**common, "title": "Senza chiave"}])
    rows = {r.title: r for r in (await session.execute(
        sa.select(WorkItem).where(WorkItem.source_id == src))).scalars()}
    assert set(rows) == {"Valutare la richiesta", "Nuova", "Senza chiave"}  # the duplicate key wrote nothing
    assert rows["Valutare la richiesta"].id == kept.id
    assert rows["Nuova"].state == "open" and rows["Nuova"].due_at == T0 and rows["Nuova"].data == {}
    with pytest.raises(Invalid) as e:  # checked like create, before anything is written
        await wi.create_many(session, [{**common, "title": "Ok"}, {**common, "title": "Senza fuso",
                                                                   "due_at": datetime(2026, 3, 2, 9)}])
    assert e.value.field == "due_at"
    assert (await session.execute(sa.select(sa.func.count()).select_from(WorkItem)
                                  .where(WorkItem.source_id == src, WorkItem.title == "Ok"))).scalar_one() == 0


async def test_an_item_needs_an_assignee(session):
    with pytest.raises(Invalid) as e:
        await _item(session)
    assert e.value.field == "assignee"


async def test_completion_rules(session):
    owner = await make_user(session, Role.cot_operator, "asst-crema-cot")
    mate = await make_user(session, Role.asst_pua_operator, "asst-crema-pua")
    colleague = await make_user(session, Role.cot_operator, "asst-crema-cot")
    stranger = await make_user(session, Role.comune_social_worker, "comune-crema")
    former = await make_user(session, Role.asst_pua_operator, "asst-crema-pua")
    team = await _team(session, "team-wi-1", [mate], "asst-crema-pua")
    await _team(session, "team-wi-old", [former], "asst-crema-pua", valid_to=date(2025, 12, 31))
    cot = await org(session, "asst-crema-cot")

    to_user = await _item(session, assignee_user_id=owner.id)
    with pytest.raises(NotFound):
        await wi.complete(session, item_id=to_user.id, principal=await load_principal(session, str(stranger.id)))
    done = await wi.complete(session, item_id=to_user.id, principal=await load_principal(session, str(owner.id)))
    assert done.state == "done" and done.completed_by == owner.id and done.completed_at is not None
    with pytest.raises(Conflict):
        await wi.complete(session, item_id=to_user.id, principal=await load_principal(session, str(owner.id)))

    to_team = await _item(session, assignee_team_id=team.id)
    with pytest.raises(NotFound):
        # membership ended
        await wi.complete(session, item_id=to_team.id, principal=await load_principal(session, str(former.id)))
    done = await wi.complete(session, item_id=to_team.id, principal=await load_principal(session, str(mate.id)))
    assert done.state == "done"

    to_org = await _item(session, assignee_org_id=cot.id)
    with pytest.raises(NotFound):
        await wi.complete(session, item_id=to_org.id, principal=await load_principal(session, str(mate.id)))
    done = await wi.complete(session, item_id=to_org.id, principal=await load_principal(session, str(colleague.id)))
    assert done.completed_by == colleague.id

    with pytest.raises(NotFound):
        await wi.complete(session, item_id=uuid.uuid4(), principal=await load_principal(session, str(owner.id)))


async def test_close_for_source_cancels_open_items(session):
    u = await make_user(session, Role.cot_operator, "asst-crema-cot")
    src = uuid.uuid4()
    a = await _item(session, assignee_user_id=u.id, source_type="discharge", source_id=src, kind="cot.evaluate")
    b = await _item(session, assignee_user_id=u.id, source_type="discharge", source_id=src, kind="cot.setting")
    c = await _item(session, assignee_user_id=u.id, source_type="discharge", source_id=src, kind="cot.setting")
    other = await _item(session, assignee_user_id=u.id, source_type="discharge", source_id=uuid.uuid4())
    await wi.complete(session, item_id=c.id, principal=await load_principal(session, str(u.id)))
    assert await wi.close_for_source(session, source_type="discharge", source_id=src, kinds=["cot.setting"]) == 1
    assert b.state == "cancelled" and a.state == "open" and c.state == "done"
    assert await wi.close_for_source(session, source_type="discharge", source_id=src) == 1
    assert a.state == "cancelled" and other.state == "open"
    assert await wi.close_for_source(session, source_type="discharge", source_id=src) == 0


async def test_close_for_source_marks_the_work_done_by_the_actor(session):
    u = await make_user(session, Role.cot_operator, "asst-crema-cot")
    mate = await make_user(session, Role.cot_operator, "asst-crema-cot")
    src = uuid.uuid4()
    mine = await _item(session, assignee_user_id=u.id, source_type="vmd", source_id=src, kind="vmd.assessment")
    theirs = await _item(session, assignee_user_id=mate.id, source_type="vmd", source_id=src, kind="vmd.assessment")
    n = await wi.close_for_source(session, source_type="vmd", source_id=src, kinds=["vmd.assessment"], done=True,
                                  actor_id=u.id, assignee_user_id=u.id)
    assert n == 1
    assert (mine.state, mine.completed_by) == ("done", u.id) and mine.completed_at is not None
    assert theirs.state == "open" and theirs.completed_by is None


async def test_queue_holds_user_team_and_org_items_only(session, clock):
    me = await make_user(session, Role.cot_operator, "asst-crema-cot")
    other = await make_user(session, Role.comune_social_worker, "comune-crema")
    team = await _team(session, "team-wi-q", [me], "asst-crema-pua")
    other_team = await _team(session, "team-wi-q2", [other], "asst-crema-pua")
    cot = await org(session, "asst-crema-cot")
    crema = await org(session, "comune-crema")

    mine = {}
    for key, kw in [("user", {"assignee_user_id": me.id, "due_at": T0 + timedelta(days=2)}),
                    ("team", {"assignee_team_id": team.id, "due_at": T0 + timedelta(days=1)}),
                    ("org", {"assignee_org_id": cot.id}),
                    ("both", {"assignee_user_id": me.id, "assignee_team_id": team.id})]:
        clock.advance(seconds=1)  # distinct creation times: the order among undated items is by creation
        mine[key] = await _item(session, title=key, **kw)
    mine["late"] = await _item(session, assignee_org_id=cot.id, title="scaduta", due_at=T0 - timedelta(days=1))
    not_mine = [
        await _item(session, assignee_user_id=other.id),
        await _item(session, assignee_team_id=other_team.id),
        await _item(session, assignee_org_id=crema.id),
    ]
    closed = await _item(session, assignee_user_id=me.id, title="chiusa")
    await wi.complete(session, item_id=closed.id, principal=await load_principal(session, str(me.id)))

    p = await load_principal(session, str(me.id))
    items, nxt = await wi.my_queue(session, principal=p)
    ids = [i.id for i in items]
    assert nxt is None
    assert set(ids) == {i.id for i in mine.values()}  # no duplicates, nothing of others, nothing closed
    assert not {i.id for i in not_mine} & set(ids)
    # Due first (earliest first), undated last in creation order.
    assert ids == [mine["late"].id, mine["team"].id, mine["user"].id, mine["org"].id, mine["both"].id]


async def test_queue_keyset_pages_and_kind_filter(session, clock):
    me = await make_user(session, Role.cot_operator, "asst-crema-cot")
    expected = []
    for i in range(7):
        clock.advance(seconds=1)
        due = T0 + timedelta(hours=i % 3) if i < 4 else None
        expected.append(await _item(session, assignee_user_id=me.id, due_at=due,
                                    kind="a" if i % 2 else "b", title=f"item {i}"))
    p = await load_principal(session, str(me.id))
    pages, cursor = [], None
    while True:
        items, cursor = await wi.my_queue(session, principal=p, limit=2, cursor=cursor)
        pages.append([i.title for i in items])
        if cursor is None:
            break
    flat = [t for page in pages for t in page]
    assert len(pages) == 4 and len(flat) == 7 and len(set(flat)) == 7
    # item 0 and 3 share due T0; 1 at +1h; 2 at +2h; 4..6 undated.
    assert flat == ["item 0", "item 3", "item 1", "item 2", "item 4", "item 5", "item 6"]
    only_a, _ = await wi.my_queue(session, principal=p, kinds=["a"])
    assert [i.title for i in only_a] == ["item 3", "item 1", "item 5"]
    with pytest.raises(BadCursor):
        await wi.my_queue(session, principal=p, cursor="not-a-cursor")


async def test_queue_query_uses_the_partial_indexes(fresh_db):
    """A few thousand committed and analysed rows (most of them someone else's or closed): the queue query, as a
    custom plan and as the generic plan a prepared statement may settle on, reads the partial indexes by assignee
    and never scans the table."""
    app_engine = create_async_engine(fresh_db["DATABASE_URL"])
    owner_engine = create_async_engine(fresh_db["MIGRATION_DATABASE_URL"])
    try:
        async with AsyncSession(app_engine, expire_on_commit=False) as session:
            me = await make_user(session, Role.cot_operator, "asst-crema-cot")
            cot = await org(session, "asst-crema-cot")
            users = [AppUser(username=f"bulk-{i}", display_name="Bulk", ambito_id=cot.ambito_id) for i in range(40)]
            session.add_all(users)
            await session.flush()
            team = await _team(session, "team-wi-plan", [me], "asst-crema-pua")
            rows = []
            for i in range(4000):
                assignee = users[i % len(users)].id if i % 50 else me.id
                rows.append({"id": new_id(), "kind": "bulk", "title": "x", "state": "done" if i % 3 == 0 else "open",
                             "assignee_user_id": assignee, "source_type": "bulk", "source_id": uuid.uuid4(),
                             "data": {}, "created_at": T0 + timedelta(seconds=i),
                             "due_at": T0 + timedelta(hours=i % 97) if i % 4 else None})
            await session.execute(sa.insert(WorkItem), rows)
            await session.commit()
        async with owner_engine.connect() as conn:  # what autovacuum does in production
            await conn.execute(sa.text("ANALYZE work_item"))
            await conn.commit()
        async with AsyncSession(app_engine, expire_on_commit=False) as session:
            p = await load_principal(session, str(me.id))
            assert team.id in p.team_ids and cot.id in p.orgs_for()
            stmt = wi.queue_statement(user_id=p.user_id, team_ids=p.team_ids,
                                      org_ids=sorted(p.orgs_for(), key=str), limit=50)
            conn = await session.connection()
            sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
            sql = re.sub(r"ANY \(ARRAY\[([^\]]*)\]\)", r"ANY (ARRAY[\1]::uuid[])", sql)  # literal uuid arrays
            custom = "\n".join(r[0] for r in (await session.execute(sa.text("EXPLAIN " + sql))).all())
            raw = (await conn.get_raw_connection()).driver_connection
            body = str(stmt.compile(dialect=conn.dialect))
            assert "$1" in body  # really parameterised
            await raw.execute(f"PREPARE wi_queue(uuid, uuid[], uuid[], int) AS {body}")
            await raw.execute("SET plan_cache_mode = force_generic_plan")

            def arr(ids) -> str:
                return "ARRAY[" + ",".join(f"'{i}'" for i in ids) + "]::uuid[]"

            generic = "\n".join(r[0] for r in await raw.fetch(
                f"EXPLAIN EXECUTE wi_queue('{p.user_id}', {arr(p.team_ids)}, {arr(p.orgs_for())}, 51)"))
            await raw.execute("DEALLOCATE wi_queue")
            await raw.execute("RESET plan_cache_mode")
            for plan in (custom, generic):
                assert "Seq Scan on work_item" not in plan, plan
                assert "Index" in plan or "Bitmap" in plan, plan
                for index in ("ix_work_item_user_queue", "ix_work_item_team_queue", "ix_work_item_org_queue"):
                    assert index in plan, plan
                assert re.search(r"Index Cond: \(assignee_user_id = ", plan), plan
            items, _ = await wi.my_queue(session, principal=p, limit=200)
            assert len(items) == len([r for r in rows if r["assignee_user_id"] == me.id and r["state"] == "open"])
    finally:
        await app_engine.dispose()
        await owner_engine.dispose()
