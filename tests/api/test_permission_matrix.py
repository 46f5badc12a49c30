"""The permission matrix: every /api and /fhir route × every role × (own / other / other Ambito / consent revoked),
one request per cell, compared with the expected matrix written in tests/api/permission_matrix.py (not derived from the
application's tables). A failing cell reads `METHOD path | role | situation: expected X got Y (status, detail)`.

ALLOW means success: the cell must answer 2xx. The scenario (tests/api/matrix_scenario.py) gives each route a
request valid for the caller and a subject in the state the action needs; the few ALLOW cells that cannot succeed
are listed with their reason in ALLOWED_NOT_2XX (they must then answer 409/422 past authorisation; a listed cell
that answers 2xx fails, so the list cannot go stale, and its length is bounded by MAX_ALLOWED_NOT_2XX).

The scenario is built once per module in a database of its own, made from the template, and committed; every cell
then runs in a transaction that is rolled back at the end of the request, so no cell changes what the next one sees
(an action that consumes its subject meets a fresh one in every cell). Every cell must also leave at least one
audit row (counted inside the request's transaction before the rollback, or in the separate transaction of a
refusal). 401 without a valid token is tested for every route in tests/api/test_auth.py
(test_no_api_route_answers_without_a_valid_token).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import pytest
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import create_async_engine

from tests.api import permission_matrix as M  # noqa: N812  (the matrix is the subject of every line here)
from tests.api.matrix_scenario import AUDITED, Scenario, build, request_for, rolled_back_session

PROBLEM = "application/problem+json"
FHIR = "application/fhir+json"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@lru_cache
def app_routes() -> frozenset[tuple[str, str]]:
    """Every /api operation of the application, as the OpenAPI document lists it, and every /fhir route (kept out
    of that document: the CapabilityStatement is their contract)."""
    from fastapi.routing import iter_route_contexts

    from api.main import create_app

    app = create_app()
    paths = app.openapi()["paths"]
    api = {(m.upper(), p) for p, ops in paths.items() if p.startswith("/api/") for m in ops if m.upper() in METHODS}
    fhir = {(m, r.path_format) for r in iter_route_contexts(app.routes) if (r.name or "").startswith("fhir:")
            for m in r.methods or () if m in METHODS}
    return frozenset(api | fhir)


def _cells() -> list:
    out = []
    for method, path in sorted(set(M.EXPECTED) & app_routes(), key=lambda k: (k[1], k[0])):
        for role in M.ROLES:
            for situation in M.SITUATIONS:
                out.append(pytest.param(method, path, role, situation, id=f"{method} {path} | {role} | {situation}"))
    return out


@dataclass
class Env:
    http: AsyncClient
    sc: Scenario


@pytest.fixture(scope="module")
async def matrix(pg_server):
    """A committed database from the template, the app on its own engine, the scenario; then every request of
    the module runs in a transaction rolled back at its end."""
    from api.deps import get_session
    from api.main import create_app
    from domain.kernel import clock as clock_mod
    from domain.kernel import db
    from tests.conftest import FIXED_NOW

    name = pg_server.create_db_from_template()
    engine = create_async_engine(pg_server.urls(name)["DATABASE_URL"], pool_size=4)
    saved_engine = (db._engine, db._sessionmaker)
    db.set_engine(engine)  # the audit rows of refused requests are written through the process engine
    saved_clock = clock_mod.get_clock()
    clock_mod.set_clock(clock_mod.FixedClock(FIXED_NOW))
    rolled_back = rolled_back_session(engine)

    app = create_app()
    try:
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://matrix") as http:
            sc = await build(engine, http)  # committed, through the app's own unit of work
            app.dependency_overrides[get_session] = rolled_back
            clock_mod.set_clock(saved_clock)
            yield Env(http, sc)
    finally:
        clock_mod.set_clock(saved_clock)
        db._engine, db._sessionmaker = saved_engine
        await engine.dispose()
        pg_server.drop_db(name)


# ALLOW cells that cannot reach 2xx, each with the reason: the action's precondition cannot hold for that caller in
# that situation. They must still get past authorisation (409/422 from state or body, never 401/403/404/5xx nor
# a request refused by the schema). A listed cell that answers 2xx fails (the list is stale: remove it), and the
# list may not grow past MAX_ALLOWED_NOT_2XX without changing that number in this file.
_NO_CARE = ("the `revoked` situation revokes the person's `care` consent (the MMG's purpose), and {what}: the "
            "case's owners reach the plan but the action is refused (409 consent_id)")
_AGREE = _NO_CARE.format(what="agreeing a plan needs a `care` consent in force")
_ACTIVATE = _NO_CARE.format(what="activating an agreed plan needs its `care` consent still in force")
_RESUME = _NO_CARE.format(what="resuming a suspended plan needs its `care` consent still in force")
_START = _NO_CARE.format(what="starting an intervention of a running plan needs its `care` consent still in force")
ALLOWED_NOT_2XX: dict[tuple[str, str, str, str], str] = {
    **{("POST", f"/api/care-plans/{{plan_id}}/{action}", role, "revoked"): reason
       for action, reason in (("agree", _AGREE), ("activate", _ACTIVATE), ("resume", _RESUME),
                              ("interventions/{intervention_id}/start", _START))
       for role in ("comune_social_worker", "ambito_pua_social_worker", "csc_operator")},
}
MAX_ALLOWED_NOT_2XX = 12


def classify(status: int) -> str:
    if status == 403:
        return M.FORBIDDEN
    if status == 404:
        return M.HIDDEN
    if status == 401:
        return "UNAUTHENTICATED"
    if status >= 500:
        return "SERVER ERROR"
    if 200 <= status < 300:
        return M.ALLOW
    return "NOT 2XX"


@pytest.mark.parametrize(("method", "path", "role", "situation"), _cells())
async def test_cell(matrix: Env, method: str, path: str, role: str, situation: str):
    cell = (method, path, role, situation)
    want = M.expected(*cell)
    url, kw = request_for(matrix.sc, *cell)
    r = await matrix.http.request(method, url, **kw)
    got = classify(r.status_code)
    detail = ""
    refusal_type = FHIR if path.split("/")[1] == "fhir" else PROBLEM  # /fhir refuses with an OperationOutcome
    if r.headers.get("content-type", "").startswith(PROBLEM):
        body = r.json()
        detail = f": {body.get('detail')}" + (f" {body['errors']}" if body.get("errors") else "")
    elif r.headers.get("content-type", "").startswith(FHIR) and r.json().get("resourceType") == "OperationOutcome":
        detail = ": " + "; ".join(i.get("diagnostics", "") for i in r.json()["issue"])
    where = f"{method} {path} | {role} | {situation}"
    if cell in ALLOWED_NOT_2XX:
        assert want == M.ALLOW, f"{where}: listed in ALLOWED_NOT_2XX but expected {want}"
        assert got != M.ALLOW, f"{where}: now answers {r.status_code}: remove it from ALLOWED_NOT_2XX"
        assert got == "NOT 2XX", f"{where}: expected ALLOW (listed: {ALLOWED_NOT_2XX[cell]}) got {got} " \
                                 f"({r.status_code}{detail})"
    else:
        assert got == want, f"{where}: expected {want} got {got} ({r.status_code}{detail})"
    if got == M.ALLOW and path.startswith("/api/regional/persons"):  # the search across Ambiti finds the person
        assert len(r.json()["items"]) == 1, f"{where}: {r.text[:300]}"
    if r.status_code == 422 and refusal_type == PROBLEM:  # the cell must reach the service, not the schema
        assert not r.json()["type"].endswith("/validation"), \
            f"{where}: the scenario's request is invalid{detail} (fix matrix_scenario)"
    rid = r.headers.get("x-request-id")
    assert AUDITED.get(rid, 0) >= 1, f"{method} {path} | {role} | {situation}: the request left no audit row"
    if got in (M.FORBIDDEN, M.HIDDEN):  # every refusal is a problem document (an OperationOutcome on /fhir)
        assert r.headers["content-type"].startswith(refusal_type), f"{method} {path}: refusal is not {refusal_type}"


async def test_allowed_not_2xx_is_short_and_names_allowed_cells():
    assert len(ALLOWED_NOT_2XX) <= MAX_ALLOWED_NOT_2XX, \
        f"ALLOWED_NOT_2XX has {len(ALLOWED_NOT_2XX)} cells, more than {MAX_ALLOWED_NOT_2XX}: make the cells reach 2xx"
    for (method, path, role, situation), reason in ALLOWED_NOT_2XX.items():
        assert (method, path) in M.EXPECTED and situation in M.SITUATIONS, (method, path, situation)
        assert M.expected(method, path, role, situation) == M.ALLOW, (method, path, role, situation)
        assert len(reason) > 20, (method, path, role, situation)


async def test_every_app_route_is_in_the_expected_matrix():
    missing = sorted(app_routes() - set(M.EXPECTED), key=lambda k: (k[1], k[0]))
    assert not missing, "routes of the application missing from tests/api/permission_matrix.py: " + ", ".join(
        f"{m} {p}" for m, p in missing)


async def test_every_expected_route_is_still_in_the_app():
    gone = sorted(set(M.EXPECTED) - app_routes(), key=lambda k: (k[1], k[0]))
    assert not gone, "routes in tests/api/permission_matrix.py that the application no longer has: " + ", ".join(
        f"{m} {p}" for m, p in gone)


async def test_expected_matrix_names_every_role_and_situation():
    assert len(M.ROLES) == 18
    for key, table in M.EXPECTED.items():
        assert set(table) == set(M.ROLES), key
        for role, row in table.items():
            assert len(row) == 3 and set(row) <= {M.ALLOW, M.FORBIDDEN, M.HIDDEN}, (key, role)
            assert M.expected(*key, role, "revoked") in {M.ALLOW, M.FORBIDDEN, M.HIDDEN}, (key, role)
    # Each role is refused somewhere (no role is an administrator of everything), and only reference data and
    # the caller's own profile are open to every role.
    for role in M.ROLES:
        assert any(M.FORBIDDEN in t[role] or M.HIDDEN in t[role] for t in M.EXPECTED.values()), role
    open_to_all = sorted(k for k in M.EXPECTED if not M.why_denied(*k))
    assert all(m == "GET" and p.startswith(("/api/me", "/api/territory/", "/api/organisations", "/api/service-units",
                                            "/api/catalogue/", "/fhir/metadata", "/fhir/Organization"))
               for m, p in open_to_all), open_to_all
