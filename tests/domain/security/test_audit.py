"""The audit trail: append-only for the application role; one row per access with who, what and the request id,
written in one batch with the request; denied and failed requests audited in a transaction of their own."""
from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from domain.kernel import clock
from domain.registry.models import Consent
from domain.security import audit
from domain.security.models import AuditEvent, Role
from tests.domain.security.access_setup import add_consent, audit_rows, person_with_cartella, relation, years_ago
from tests.support import bearer, make_user, org


# ---------------------------------------------------------------- append-only, proved on the database
async def test_app_role_can_insert_and_select_but_not_change_audit_rows(fresh_db):
    engine = create_async_engine(fresh_db["DATABASE_URL"])
    try:
        async with engine.begin() as conn:
            assert (await conn.execute(sa.text("select current_user"))).scalar() == "pua_app"
            new_id = (await conn.execute(sa.insert(AuditEvent).values(
                action="read", roles=[], organisation_ids=[], object_ids=[], person_ids=[], outcome="ok",
                break_glass=False, request_id="append-only").returning(AuditEvent.id))).scalar_one()
        async with engine.connect() as conn:
            found = (await conn.execute(sa.select(AuditEvent.action).where(AuditEvent.id == new_id))).scalar_one()
            assert found == "read"
        statements = {
            "update": sa.update(AuditEvent).where(AuditEvent.id == new_id).values(action="changed"),
            "delete": sa.delete(AuditEvent).where(AuditEvent.id == new_id),
            "truncate": sa.text("truncate audit_event"),
        }
        for name, stmt in statements.items():
            async with engine.connect() as conn:
                with pytest.raises(DBAPIError) as e:
                    await conn.execute(stmt)
                assert "permission denied" in str(e.value).lower(), name
                await conn.rollback()
        async with engine.connect() as conn:  # still there, unchanged
            action = (await conn.execute(sa.select(AuditEvent.action).where(AuditEvent.id == new_id))).scalar_one()
            assert action == "read"
    finally:
        await engine.dispose()


# ---------------------------------------------------------------- the context itself
async def test_record_outside_a_request_is_a_no_op():
    audit._current.set(None)
    audit.record(action="read", object_type="person", object_ids=[uuid.uuid4()])
    assert audit.current() is None


async def test_flush_writes_all_entries_in_one_statement(session, app_engine):
    user = await make_user(session, Role.comune_social_worker, "comune-crema")
    from domain.security.principal import load_principal

    p = await load_principal(session, str(user.id))
    ctx = audit.begin(route="/api/x/{person_id}", method="GET", request_id="batch-" + uuid.uuid4().hex[:8],
                      path_params={"person_id": str(uuid.uuid4()), "other": "not-a-uuid"})
    ctx.principal = p
    a, b = uuid.uuid4(), uuid.uuid4()
    audit.record(action="read", object_type="person", object_ids=[a], person_ids=[a], result_count=1)
    audit.record(action="list", object_type="cartella", object_ids=[b, None], person_ids=[a, None, a],
                 result_count=1, purpose="care")
    statements: list[str] = []

    def count(conn, cursor, statement, params, context, executemany):
        if "audit_event" in statement.lower() and statement.lower().startswith("insert"):
            statements.append(statement)

    event.listen(app_engine.sync_engine, "before_cursor_execute", count)
    try:
        assert await audit.flush(session) == 2
    finally:
        event.remove(app_engine.sync_engine, "before_cursor_execute", count)
    assert len(statements) == 1
    rows = await audit_rows(session, ctx.request_id)
    assert [r.action for r in rows] == ["read", "list"]
    assert {r.at for r in rows} == {clock.now()}
    assert rows[1].object_ids == [b] and rows[1].person_ids == [a] and rows[1].purpose == "care"
    for r in rows:
        assert (r.actor_id, r.actor_username, r.route, r.status, r.outcome) == (
            user.id, user.username, "GET /api/x/{person_id}", 200, "ok")
        assert r.roles == ["comune_social_worker"]
        assert r.organisation_ids == [(await org(session, "comune-crema")).id]
    # a second flush does not repeat them
    assert await audit.flush(session) == 0


async def test_a_request_that_recorded_nothing_still_leaves_a_row(session):
    ctx = audit.begin(route="/api/x/{person_id}", method="PATCH", request_id="nothing-" + uuid.uuid4().hex[:8],
                      path_params={"person_id": (pid := uuid.uuid4())})
    assert await audit.flush(session) == 1
    [row] = await audit_rows(session, ctx.request_id)
    assert (row.action, row.object_ids, row.person_ids, row.actor_id) == ("update", [pid], [pid], None)


# ---------------------------------------------------------------- through the API
async def test_successful_request_rows_carry_request_actor_objects_and_count(client, session):
    user = await make_user(session, Role.comune_social_worker, "comune-crema")
    person, _ = await person_with_cartella(session)
    c1 = await add_consent(session, person, "share_asst", recorded_by=user.id)
    c2 = await add_consent(session, person, "share_ets", recorded_by=user.id)
    r = await client.get(f"/api/persons/{person.id}/consents", headers=bearer(user))
    assert r.status_code == 200, r.text
    rid = r.headers["x-request-id"]
    [row] = await audit_rows(session, rid)
    assert (row.actor_id, row.action, row.object_type, row.result_count, row.status, row.outcome) == (
        user.id, "read", "consent", 2, 200, "ok")
    assert set(row.object_ids) == {c1.id, c2.id} and row.person_ids == [person.id]
    assert row.roles == ["comune_social_worker"]
    assert row.route.startswith("GET ") and row.route.endswith("/persons/{person_id}/consents")


async def test_client_supplied_request_id_is_kept(client, session):
    user = await make_user(session, Role.comune_social_worker, "comune-crema")
    person, _ = await person_with_cartella(session)
    rid = "req-" + uuid.uuid4().hex
    r = await client.get(f"/api/persons/{person.id}/consents", headers={**bearer(user), "X-Request-ID": rid})
    assert r.headers["x-request-id"] == rid
    assert len(await audit_rows(session, rid)) == 1


async def test_denied_requests_are_audited(client, session):
    ets = await make_user(session, Role.ets_operator, "ets-igea")
    stranger = await make_user(session, Role.comune_social_worker, "comune-offanengo")
    person, _ = await person_with_cartella(session)

    r = await client.get(f"/api/persons/{person.id}/consents", headers=bearer(ets))  # no consent.read
    assert r.status_code == 403
    [row] = await audit_rows(session, r.headers["x-request-id"])
    assert (row.actor_id, row.status, row.outcome, row.person_ids) == (ets.id, 403, "denied", [person.id])
    assert row.roles == ["ets_operator"]

    r = await client.get(f"/api/persons/{person.id}/consents", headers=bearer(stranger))  # outside the scope
    assert r.status_code == 404
    [row] = await audit_rows(session, r.headers["x-request-id"])
    assert (row.actor_id, row.status, row.outcome) == (stranger.id, 404, "not_found")

    r = await client.get(f"/api/persons/{person.id}/consents")  # no token
    assert r.status_code == 401
    [row] = await audit_rows(session, r.headers["x-request-id"])
    assert (row.actor_id, row.status, row.outcome) == (None, 401, "denied")


async def test_failed_requests_are_audited_although_they_rolled_back(client, session):
    user = await make_user(session, Role.comune_social_worker, "comune-crema")
    minor, _ = await person_with_cartella(session, birth_date=years_ago(10))
    body = {"purpose": "care", "grantor_kind": "self", "valid_from": clock.today_rome().isoformat()}
    r = await client.post(f"/api/persons/{minor.id}/consents", json=body, headers=bearer(user))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "grantor_kind"
    [row] = await audit_rows(session, r.headers["x-request-id"])
    assert (row.actor_id, row.status, row.outcome, row.person_ids) == (user.id, 422, "rejected", [minor.id])
    count = (await session.execute(sa.select(sa.func.count()).select_from(Consent)
                                   .where(Consent.person_id == minor.id))).scalar_one()
    assert count == 0

    rel = await relation(session, minor, "parent_responsibility")
    ok = await client.post(f"/api/persons/{minor.id}/consents", headers=bearer(user),
                           json={**body, "grantor_kind": "parent_responsibility", "grantor_relation_id": str(rel.id)})
    assert ok.status_code == 201, ok.text
    cid = ok.json()["id"]
    [row] = await audit_rows(session, ok.headers["x-request-id"])
    assert (row.action, row.object_type, row.object_ids, row.outcome) == ("create", "consent", [uuid.UUID(cid)], "ok")
    first = await client.post(f"/api/persons/{minor.id}/consents/{cid}/revoke", json={"reason": "revocato"},
                              headers=bearer(user))
    assert first.status_code == 200
    again = await client.post(f"/api/persons/{minor.id}/consents/{cid}/revoke", json={"reason": "revocato"},
                              headers=bearer(user))
    assert again.status_code == 409
    [row] = await audit_rows(session, again.headers["x-request-id"])
    assert (row.status, row.outcome, row.actor_id) == (409, "rejected", user.id)
    assert uuid.UUID(cid) in row.object_ids


async def test_schema_errors_are_audited(client, session):
    user = await make_user(session, Role.comune_social_worker, "comune-crema")
    person, _ = await person_with_cartella(session)
    r = await client.post(f"/api/persons/{person.id}/consents", json={"purpose": "care", "unknown": 1},
                          headers=bearer(user))
    assert r.status_code == 422
    [row] = await audit_rows(session, r.headers["x-request-id"])
    assert (row.status, row.outcome) == (422, "rejected")


async def test_every_api_route_leaves_an_audit_row_even_when_refused(client, session):
    """Walk every route under /api without a token: each answer is 401 and each leaves its audit row."""
    import re

    from api.routes import _api_modules

    seen = 0
    for module in _api_modules():
        for route in module.router.routes:
            for method in sorted(getattr(route, "methods", None) or ()):
                if method in ("HEAD", "OPTIONS"):
                    continue
                path = "/api" + re.sub(r"\{([^}:]+)(:[^}]*)?\}",
                                       lambda m: "1" if m.group(1) in ("version", "number") else str(uuid.uuid4()),
                                       route.path)
                r = await client.request(method, path)
                assert r.status_code == 401, (method, route.path, r.status_code)
                rows = await audit_rows(session, r.headers["x-request-id"])
                assert len(rows) == 1 and rows[0].outcome == "denied", (method, route.path)
                seen += 1
    assert seen > 50


# ---------------------------------------------------------------- the words of the access log
def _recorded_actions() -> set[str]:
    """Every action string the code passes to the audit trail: `audit.record(action=...)`, the helpers that wrap it
    (`audit_plan("update", ...)`, ...), and the functions that hand their own `action` parameter on to one of
    those (`_owner_act(..., "close", ...)`), found by walking the source of domain/ and api/."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    trees = [ast.parse(p.read_text()) for d in ("domain", "api") for p in sorted((root / d).rglob("*.py"))]
    calls = [n for t in trees for n in ast.walk(t) if isinstance(n, ast.Call)]
    defs = [n for t in trees for n in ast.walk(t) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]

    def name(call: ast.Call) -> str:
        f = call.func
        return f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")

    # wrapper name -> position of its `action` parameter; `record` is audit.record (keyword-only)
    wrappers: dict[str, int] = {"record": -1}

    def audited_action(call: ast.Call) -> ast.expr | None:
        """The expression a call hands to the audit trail as its action, if it is such a call."""
        if name(call) not in wrappers or (name(call) == "record" and not (
                isinstance(call.func, ast.Attribute) and getattr(call.func.value, "id", "") == "audit")):
            return None  # history.record and friends are not the audit trail
        kw = next((k.value for k in call.keywords if k.arg == "action"), None)
        position = wrappers[name(call)]
        return kw if kw is not None else (call.args[position] if 0 <= position < len(call.args) else None)

    changed = True
    while changed:
        changed = False
        for fn in defs:
            params = [a.arg for a in fn.args.args]
            if fn.name in wrappers or "action" not in params:
                continue
            if any(isinstance(a := audited_action(c), ast.Name) and a.id == "action"
                   for c in ast.walk(fn) if isinstance(c, ast.Call)):
                wrappers[fn.name] = params.index("action")
                changed = True
    return {a.value for c in calls if isinstance(a := audited_action(c), ast.Constant) and isinstance(a.value, str)}


def test_every_recorded_action_outcome_and_role_has_its_italian_label():
    import typing

    from api.deps import _outcome
    from domain.security.models import ROLE_LABELS
    from schemas.persons import MatchDecision

    actions = _recorded_actions()
    assert {"read", "search", "list", "create", "update", "denied", "break_glass", "close", "print"} <= actions
    outcomes = {_outcome(s) for s in range(400, 600)} | {"ok"}
    actions |= set(audit._METHOD_ACTION.values()) | {"call"} | (outcomes - {"ok"})  # a refused call's own row
    actions |= set(typing.get_args(MatchDecision.model_fields["decision"].annotation))  # a steward's decision
    assert actions - set(audit.ACTION_LABELS) == set()
    assert outcomes - set(audit.OUTCOME_LABELS) == set()
    assert {str(r) for r in Role} - set(ROLE_LABELS) == set()


def test_every_audited_object_type_has_its_italian_label():
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    found = {"care_plan", "access_request"}  # recorded through the contexts' OBJECT / ENTITY constants
    found.add("discharge_case")  # domain.discharge.service.ENTITY
    for p in [*(root / "domain").rglob("*.py"), *(root / "api").rglob("*.py")]:
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, ast.keyword) and n.arg == "object_type" and isinstance(n.value, ast.Constant):
                found.add(n.value.value)
            if (isinstance(n, ast.Call) and getattr(n.func, "id", getattr(n.func, "attr", "")) == "_audit_matches"
                    and isinstance(n.args[1], ast.Constant)):
                found.add(n.args[1].value)
    assert {"person", "consent", "possible_match", "vmd"} <= found
    assert found - {None} - set(audit.OBJECT_TYPE_LABELS) == set()
