"""Login at the HTTP boundary: every refused token gives the same 401 problem+json; no /api route answers
without a valid token; system clients carry only granted scopes and act for a known practitioner."""
from __future__ import annotations

import re
import time
import uuid

import pytest
import sqlalchemy as sa

from api.deps import AUTH_FAILED_DETAIL
from domain.kernel.settings import Settings
from domain.security.models import AppUser, Role, UserKind
from integrations.identity import jwt as idjwt
from integrations.identity.jwt import DEV_KID, KeySet, issue_dev_token
from tests.integrations.identity.keys import JwksServer, SigningKey, claims, dev_signed, hs256_token, unsigned_token
from tests.support import bearer, make_user

PROBLEM = "application/problem+json"


def _ts(minutes: float) -> int:
    return int(time.time() + minutes * 60)  # token times are wall-clock times, not the frozen business clock


@pytest.fixture
async def worker(session):
    return await make_user(session, Role.comune_social_worker, "comune-offanengo", username="as.test.auth")


@pytest.fixture
async def gateway(session):
    user = await make_user(session, Role.asst_pua_operator, "asst-crema-pua", username="gw.test",
                           kind=UserKind.system, scopes=["fhir.read", "fhir.write"])
    return user


def _bad_headers(user_id: str) -> dict[str, dict[str, str]]:
    """Every way to present a wrong token for an existing, active user."""
    pub = idjwt.ensure_dev_keys()[1].read_bytes()
    sub = str(user_id)

    def b(tok: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tok}"}

    return {
        "missing header": {},
        "empty bearer": {"Authorization": "Bearer "},
        "basic scheme": {"Authorization": "Basic dXNlcjpwYXNz"},
        "expired": b(dev_signed(claims(sub=sub, exp=_ts(-5)))),
        "not yet valid": b(dev_signed(claims(sub=sub, nbf=_ts(10)))),
        "wrong audience": b(dev_signed(claims(sub=sub, aud="another-api"))),
        "wrong issuer": b(dev_signed(claims(sub=sub, iss="https://evil.example/auth"))),
        "alg none": b(unsigned_token(claims(sub=sub), {"alg": "none", "typ": "JWT", "kid": DEV_KID})),
        "hs256 with public key": b(hs256_token(claims(sub=sub), pub, kid=DEV_KID)),
        "unknown kid": b(dev_signed(claims(sub=sub), {"kid": "not-our-key"})),
        "garbage": b("not.a.token"),
        "foreign signer": b(SigningKey("RS256", kid=DEV_KID).sign(claims(sub=sub))),
        "unknown user": b(issue_dev_token(str(uuid.uuid4()))),
        "subject not a user id": b(issue_dev_token("as.test.auth")),
        "person with act_for": b(issue_dev_token(sub, acting_for="as.test.auth")),
    }


async def test_every_refused_token_gets_the_same_uniform_401(client, worker):
    uid = worker.id  # (a refused request rolls the session back and expires loaded rows)
    ok = await client.get("/api/me", headers=bearer(uid))
    assert ok.status_code == 200, ok.text  # the same user with a good token gets in
    bodies = set()
    for case, headers in _bad_headers(uid).items():
        r = await client.get("/api/me", headers=headers)
        assert r.status_code == 401, case
        assert r.headers["content-type"].startswith(PROBLEM), case
        assert r.headers.get("www-authenticate") == "Bearer", case
        body = r.json()
        assert body["detail"] == AUTH_FAILED_DETAIL, case
        assert set(body) == {"type", "title", "status", "detail"}, case
        assert "as.test.auth" not in r.text and str(uid) not in r.text, case
        bodies.add(r.text)
    assert len(bodies) == 1  # nothing tells the cases apart


async def test_inactive_user_is_refused(client, session, worker):
    uid = worker.id
    headers = bearer(uid)
    assert (await client.get("/api/me", headers=headers)).status_code == 200
    await session.execute(sa.update(AppUser).where(AppUser.id == uid).values(active=False))
    r = await client.get("/api/me", headers=headers)
    assert r.status_code == 401 and r.json()["detail"] == AUTH_FAILED_DETAIL


async def test_valid_token_reaches_data(client, worker):
    r = await client.get("/api/me", headers=bearer(worker))
    assert r.status_code == 200
    me = r.json()
    assert me["username"] == "as.test.auth"
    assert [(x["role"], x["organisation"]["code"]) for x in me["roles"]] == [
        ("comune_social_worker", "comune-offanengo")]
    assert me["scopes"] == [] and me["acting_for"] is None


async def test_user_token_scopes_are_ignored(client, worker):
    r = await client.get("/api/me", headers=bearer(worker, scopes=["openid", "fhir.write"]))
    assert r.status_code == 200
    assert r.json()["scopes"] == []  # a person's rights come from role assignments only


async def test_system_client_scopes_and_act_for(client, session, gateway):
    gw = gateway.id
    await make_user(session, Role.asst_pua_operator, "asst-crema-pua", username="ifec.test")
    r = await client.get("/api/me", headers=bearer(gw, scopes=["fhir.read"], acting_for="ifec.test"))
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["kind"] == "system" and me["scopes"] == ["fhir.read"] and me["acting_for"] == "ifec.test"
    refused = {
        "scope not granted": bearer(gw, scopes=["fhir.read", "admin.all"]),
        "act_for unknown": bearer(gw, scopes=["fhir.read"], acting_for="nobody.here"),
        "act_for a system client": bearer(gw, acting_for="gw.test"),
    }
    for case, headers in refused.items():
        r = await client.get("/api/me", headers=headers)
        assert r.status_code == 401, case
        assert r.json()["detail"] == AUTH_FAILED_DETAIL, case


async def test_act_for_a_user_of_another_ambito_is_refused(client, session, gateway):
    await make_user(session, Role.asst_pua_operator, "asst-cremona-test", username="ifec.cremona")
    r = await client.get("/api/me", headers=bearer(gateway, acting_for="ifec.cremona"))
    assert r.status_code == 401


async def test_es256_token_from_a_jwks_endpoint_reaches_data(client, worker):
    uid = str(worker.id)
    es = SigningKey("ES256")
    rs = SigningKey("RS256")
    with JwksServer(rs, es) as server:
        previous = idjwt._keyset
        idjwt.use_keyset(KeySet(Settings(jwks_url=server.url)))
        try:
            r1 = await client.get("/api/me", headers={"Authorization": f"Bearer {es.sign(claims(sub=uid))}"})
            r2 = await client.get("/api/me", headers={"Authorization": f"Bearer {rs.sign(claims(sub=uid))}"})
            r3 = await client.get("/api/me", headers=bearer(uid))  # the dev key is not in this JWKS
        finally:
            idjwt.use_keyset(previous)
    assert r1.status_code == 200 and r1.json()["username"] == "as.test.auth"
    assert r2.status_code == 200
    assert r3.status_code == 401
    assert server.requests == 1  # fetched once, then cached


# ------------------------------------------------------------------ no /api route answers without a valid token
def _api_routes(app) -> list[tuple[str, str]]:
    found: set[tuple[str, str]] = set()

    def walk(routes):
        for r in routes:
            if hasattr(r, "effective_candidates"):  # FastAPI's included router
                walk(r.effective_candidates())
                walk(r.effective_low_priority_routes())
                continue
            path = getattr(r, "path", None)
            for m in getattr(r, "methods", None) or ():
                if path and path.startswith("/api") and m not in ("HEAD", "OPTIONS"):
                    found.add((m, path))

    walk(app.routes)
    return sorted(found)


async def test_route_walker_sees_every_documented_api_route(app):
    walked = set(_api_routes(app))
    documented = {(m.upper(), p) for p, ops in app.openapi()["paths"].items() if p.startswith("/api")
                  for m in ops if m.upper() in ("GET", "POST", "PUT", "PATCH", "DELETE")}
    assert documented <= walked
    assert ("GET", "/api/me") in walked and ("GET", "/api/work-items/mine") in walked


async def test_no_api_route_answers_without_a_valid_token(client, app):
    routes = _api_routes(app)
    assert len(routes) >= 10
    some_id = str(uuid.uuid4())
    failures = []
    for method, path in routes:
        url = re.sub(r"\{[^}]+\}", some_id, path)
        for headers in ({}, {"Authorization": "Bearer garbage"},
                        {"Authorization": f"Bearer {dev_signed(claims(exp=_ts(-1)))}"}):
            r = await client.request(method, url, headers=headers, json={} if method != "GET" else None)
            if r.status_code != 401 or not r.headers.get("content-type", "").startswith(PROBLEM) \
                    or r.json().get("detail") != AUTH_FAILED_DETAIL:
                failures.append((method, path, bool(headers), r.status_code))
    assert failures == []
