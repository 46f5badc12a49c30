"""HTTP hardening: body limits refused before authentication, security headers, the request-id format, the
startup guard on signing keys, no personal data in the logs, and a refused request whose audit row cannot be
written is counted and logged."""
from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import uuid
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from domain.kernel.settings import get_settings
from domain.security.models import Role
from tests.factories.cartelle import create_cartella, create_person
from tests.support import bearer, make_user

ROOT = Path(__file__).resolve().parents[2]
PROBLEM = "application/problem+json"
MIB = 1024 * 1024


def _pdf(size: int) -> bytes:
    head = b"%PDF-1.4\n"
    tail = b"\n%%EOF\n"
    return head + b"0" * (size - len(head) - len(tail)) + tail


async def _uploader(session):
    person = await create_person(session, comune="comune-offanengo")
    cartella = await create_cartella(session, person=person)
    author = await make_user(session, Role.comune_social_worker, "comune-offanengo")
    return cartella, author


# ------------------------------------------------------------------------------------------------ body limits
class TestBodyLimits:
    async def test_json_route_over_the_default_limit_is_413_before_authentication(self, client):
        assert get_settings().request_max_bytes == MIB
        body = b'{"surname": "' + b"x" * MIB + b'"}'
        # No token at all: a 413 (not 401) proves the body was refused before any authentication work.
        r = await client.post("/api/persons", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 413, r.text
        assert r.headers["content-type"].startswith(PROBLEM)
        problem = r.json()
        assert problem["status"] == 413 and problem["title"] == "Contenuto troppo grande"
        assert str(MIB) in problem["detail"]
        # Just under the limit: it reaches authentication.
        r = await client.post("/api/persons", content=b"{}", headers={"Content-Type": "application/json"})
        assert r.status_code == 401

    async def test_a_body_without_content_length_is_cut_off_while_it_is_read(self, client, monkeypatch):
        monkeypatch.setattr(get_settings(), "request_max_bytes", 4096)
        chunks_sent = []

        async def chunks():
            for i in range(64):  # 64 KiB in 1 KiB chunks, far over the limit
                chunks_sent.append(i)
                yield b"x" * 1024

        r = await client.post("/api/persons", content=chunks(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413, r.text
        assert r.headers["content-type"].startswith(PROBLEM)
        assert "4096" in r.json()["detail"]

    async def test_attachment_upload_gets_its_own_limit(self, client, session, tmp_path, monkeypatch):
        s = get_settings()
        monkeypatch.setattr(s, "attachments_dir", tmp_path)
        cartella, author = await _uploader(session)
        url = f"/api/cartelle/{cartella.id}/attachments"
        # A 1.5 MiB PDF is over the JSON default but fine for the upload route (ATTACHMENT_MAX_BYTES = 10 MB).
        big = _pdf(int(1.5 * MIB))
        r = await client.post(url, headers=bearer(author), files={"file": ("referto.pdf", big, "application/pdf")},
                              data={"kind": "other"})
        assert r.status_code == 201, r.text
        assert r.json()["size_bytes"] == len(big)
        # The upload limit follows ATTACHMENT_MAX_BYTES (plus the multipart overhead).
        monkeypatch.setattr(s, "attachment_max_bytes", MIB)
        over = _pdf(MIB + s.attachment_upload_overhead_bytes + 1)
        r = await client.post(url, headers=bearer(author), files={"file": ("grande.pdf", over, "application/pdf")},
                              data={"kind": "other"})
        assert r.status_code == 413, r.text
        assert r.headers["content-type"].startswith(PROBLEM)
        # Refused before authentication too.
        r = await client.post(url, files={"file": ("grande.pdf", over, "application/pdf")}, data={"kind": "other"})
        assert r.status_code == 413


# ------------------------------------------------------------------------------------------------ headers
class _Assets(HTMLParser):
    """What a page asks the browser to load or run, by the CSP directive that governs it: (directive, URL) of each
    script, stylesheet, icon and image, and the inline scripts, <style> blocks and style attributes."""

    def __init__(self):
        super().__init__()
        self.urls: list[tuple[str, str]] = []
        self.inline: list[tuple[str, str]] = []
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.urls.append(("script-src", a["src"]))
        elif tag in ("script", "style"):
            self._in = tag
        if tag == "link" and a.get("rel") == "stylesheet":
            self.urls.append(("style-src", a["href"]))
        if tag == "link" and "icon" in (a.get("rel") or ""):
            self.urls.append(("img-src", a["href"]))
        if tag == "img" and a.get("src"):
            self.urls.append(("img-src", a["src"]))
        if a.get("style"):
            self.inline.append(("style-src", a["style"]))
        if any(k.startswith("on") for k in a):  # an event handler attribute is an inline script
            self.inline.append(("script-src", tag))

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in and data.strip():
            self.inline.append(("script-src" if self._in == "script" else "style-src", data.strip()[:40]))


def _csp(header: str) -> dict[str, list[str]]:
    out = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


class TestHeaders:
    async def test_api_answers_are_not_cached_not_sniffed_and_run_nothing(self, client, session):
        user = await make_user(session, Role.comune_social_worker, "comune-offanengo")
        for r in (await client.get("/api/me", headers=bearer(user)), await client.get("/api/me")):
            assert r.status_code in (200, 401)
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["cache-control"] == "no-store"
            csp = _csp(r.headers["content-security-policy"])
            assert csp["default-src"] == ["'none'"] and csp["frame-ancestors"] == ["'none'"]
        health = await client.get("/health/live")
        assert health.headers["x-content-type-options"] == "nosniff"
        assert "content-security-policy" in health.headers

    async def test_refused_bodies_carry_the_headers_too(self, client):
        r = await client.post("/api/persons", content=b"x" * (MIB + 1), headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["cache-control"] == "no-store"

    @pytest.mark.parametrize("page", ["/docs", "/redoc"])
    async def test_docs_pages_get_a_policy_that_allows_their_own_assets(self, client, page):
        r = await client.get(page)
        assert r.status_code == 200
        csp = _csp(r.headers["content-security-policy"])
        assert csp["default-src"] == ["'none'"]
        parser = _Assets()
        parser.feed(r.text)
        assert parser.urls, "the page loads no script: the check below would prove nothing"
        for directive, url in parser.urls:
            allowed = csp.get(directive, [])
            origin = "{0.scheme}://{0.netloc}".format(urlsplit(url)) if urlsplit(url).netloc else "'self'"
            assert origin in allowed, (directive, url, allowed)
            if origin == "'self'":  # served here, really
                assert (await client.get(url)).status_code == 200, url
        for directive, snippet in parser.inline:
            assert "'unsafe-inline'" in csp.get(directive, []), (directive, snippet)
        assert (await client.get("/openapi.json")).status_code == 200

    async def test_docs_pages_run_no_inline_script_and_reach_no_other_site(self, client):
        """Issue 15: the pages load everything from here, so the policy names no CDN and no inline script."""
        for page in ("/docs", "/redoc"):
            r = await client.get(page)
            csp = _csp(r.headers["content-security-policy"])
            assert (csp["script-src"], csp["style-src"], csp["img-src"], csp["font-src"], csp["worker-src"]) == (
                ["'self'"], ["'self'", "'unsafe-inline'"], ["'self'", "data:"], ["'self'", "data:"],
                ["'self'", "blob:"]), page
            assert csp["connect-src"] == ["'self'"]  # the OpenAPI document and "Try it out"
            named = [w for words in csp.values() for w in words if "." in w or "://" in w or w in ("https:", "*")]
            assert named == [], (page, named)
            parser = _Assets()
            parser.feed(r.text)
            assert [x for x in parser.inline if x[0] == "script-src"] == [], page
        init = await client.get("/docs/swagger-init.js")
        assert init.status_code == 200 and '"validatorUrl": null' in init.text  # no badge from validator.swagger.io


# ------------------------------------------------------------------------------------------------ request id
class TestRequestId:
    async def test_a_safe_client_request_id_is_kept(self, client):
        for rid in ("abcd1234", "req-2026.12.07_0001", "A" * 64, str(uuid.uuid4())):
            r = await client.get("/health/live", headers={"X-Request-ID": rid})
            assert r.headers["x-request-id"] == rid

    async def test_anything_else_is_replaced_by_a_new_one(self, client):
        seen = set()
        for rid in ("short", "A" * 65, "con spazi dentro", "<script>alert(1)</script>", "a/b/../../etc",
                    "RSSMRA80A01H501U;drop", "àccentato123", "%0d%0aSet-Cookie:x"):
            r = await client.get("/health/live", headers={"X-Request-ID": rid.encode()})
            got = r.headers["x-request-id"]
            assert got != rid and re.fullmatch(r"[0-9a-f]{32}", got), (rid, got)
            seen.add(got)
        assert len(seen) == 8  # a new one every time


# ------------------------------------------------------------------------------------------------ startup guard
def _start_app(env_over: dict[str, str | None]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DEV_MODE", "JWKS_URL", "JWT_PUBLIC_KEY_FILE")}
    env.update({k: v for k, v in env_over.items() if v is not None})
    return subprocess.run([sys.executable, "-c", "from api.main import create_app; create_app(); print('started')"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


async def test_the_service_refuses_to_start_on_development_keys_outside_dev_mode(tmp_path):
    from integrations.identity.jwt import ensure_dev_keys

    refused = _start_app({})
    assert refused.returncode != 0 and "started" not in refused.stdout
    assert "JWKS_URL o JWT_PUBLIC_KEY_FILE" in refused.stderr
    assert _start_app({"DEV_MODE": "false"}).returncode != 0
    # A real key source, or the explicit development switch, and it starts.
    public = ensure_dev_keys()[1]
    assert _start_app({"JWT_PUBLIC_KEY_FILE": str(public)}).stdout.strip() == "started"
    assert _start_app({"JWKS_URL": "https://idp.example.org/certs"}).stdout.strip() == "started"
    assert _start_app({"DEV_MODE": "true"}).stdout.strip() == "started"


# ------------------------------------------------------------------------------------------------ logs
CF = "BNZTRS40A41D142X"
SURNAME = "Bonizzetti"


async def test_requests_are_logged_by_route_template_without_personal_data(client, session, caplog, capsys):
    user = await make_user(session, Role.comune_social_worker, "comune-offanengo")
    caplog.set_level(logging.INFO)  # production level: every request line is written
    calls = [
        ("GET", f"/api/persons?codice_fiscale={CF}", bearer(user)),
        ("GET", f"/api/persons?q={SURNAME}%20Teresa", bearer(user)),
        ("GET", f"/api/persons?q={SURNAME}", {}),  # refused: 401
        ("GET", f"/api/persons/{CF}", bearer(user)),  # not a UUID: 422 that names the path
        ("GET", f"/api/persons/{uuid.uuid4()}?note={SURNAME}", bearer(user)),  # 404
        ("GET", f"/api/inesistente/{CF}/{SURNAME}", bearer(user)),  # no route at all
        ("POST", "/api/persons", bearer(user)),
    ]
    statuses = []
    for method, url, headers in calls:
        body = {"surname": SURNAME, "given_name": "Teresa", "codice_fiscale": CF} if method == "POST" else None
        r = await client.request(method, url, headers={**headers, "X-Request-ID": f"trace-{len(statuses):04d}"},
                                 json=body)
        statuses.append(r.status_code)
    assert statuses[:6] == [200, 200, 401, 422, 404, 404], statuses

    captured = capsys.readouterr()
    # Everything the service wrote (httpx's own lines are the test client's, not the service's).
    service_records = [rec for rec in caplog.records if not rec.name.startswith(("httpx", "httpcore"))]
    everything = "\n".join(rec.getMessage() for rec in service_records) + captured.out + captured.err
    for secret in (CF, SURNAME, SURNAME.lower(), "codice_fiscale=", "q="):
        assert secret not in everything, secret

    access = [json.loads(rec.getMessage()) for rec in caplog.records if rec.name == "api.access"]
    assert [(a["method"], a["route"], a["status"]) for a in access] == [
        ("GET", "/api/persons", 200), ("GET", "/api/persons", 200), ("GET", "/api/persons", 401),
        ("GET", "/api/persons/{person_id}", 422), ("GET", "/api/persons/{person_id}", 404),
        ("GET", "unmatched", 404), ("POST", "/api/persons", statuses[6])]
    assert [a["request_id"] for a in access] == [f"trace-{i:04d}" for i in range(len(calls))]
    assert all(isinstance(a["ms"], float) for a in access)


# ------------------------------------------------------------------------------------------------ audit failures
async def test_a_refused_request_whose_audit_row_cannot_be_written_is_counted_and_logged(client, caplog):
    from sqlalchemy.ext.asyncio import create_async_engine

    from domain.kernel import db
    from integrations.postgres.devpg import free_port

    def counter(text: str) -> int:
        return int(next(line for line in text.splitlines()
                        if line.startswith("pua_audit_write_failures_total ")).split()[1])

    before = counter((await client.get("/health/metrics")).text)
    caplog.set_level(logging.INFO)
    previous = db.get_engine()
    # The audit row of a refused request is written in a transaction of its own: make that connection fail.
    dead = create_async_engine(f"postgresql+asyncpg://pua_app@127.0.0.1:{free_port()}/pua")
    db.set_engine(dead)
    try:
        r = await client.get(f"/api/persons?codice_fiscale={CF}")
    finally:
        db.set_engine(previous)
        await dead.dispose()
    assert r.status_code == 401  # the client still gets its answer

    assert counter((await client.get("/health/metrics")).text) == before + 1
    ready = (await client.get("/health/ready")).json()
    assert ready["counters"]["pua_audit_write_failures_total"] == before + 1
    events = [json.loads(rec.getMessage()) for rec in caplog.records if rec.name == "api.auth"]
    failed = [e for e in events if e["event"] == "audit_write_failed"]
    assert len(failed) == 1
    assert failed[0]["level"] == "error" and failed[0]["route"] == "/api/persons" and failed[0]["status"] == 401
    assert failed[0]["error_type"]
    service_text = "\n".join(rec.getMessage() for rec in caplog.records if not rec.name.startswith("httpx"))
    assert CF not in service_text and "127.0.0.1" not in service_text
