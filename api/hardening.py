"""HTTP hardening as pure ASGI middleware: request-body limits and security headers.

Body limits run before routing, so an oversized request is refused before any token is verified, any session is
opened or the body is read: a declared `Content-Length` over the limit gets 413 at once; a body without one
(chunked) is counted while the route reads it and cut off with 413 as soon as it passes the limit.
"""
from __future__ import annotations

import re
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.kernel.settings import Settings, get_settings

TOO_LARGE_DETAIL = ("Il corpo della richiesta supera la dimensione massima consentita per questa operazione "
                    "({limit} byte).")


def _attachment_upload_limit(s: Settings) -> int:
    return s.attachment_max_bytes + s.attachment_upload_overhead_bytes


def _import_upload_limit(s: Settings) -> int:
    return s.import_max_bytes + 256 * 1024 + s.attachment_upload_overhead_bytes  # the file, its mapping, the form


# (method, path pattern, limit): the first match wins; any other request gets REQUEST_MAX_BYTES.
BODY_LIMITS: list[tuple[str, re.Pattern[str], Callable[[Settings], int]]] = [
    ("POST", re.compile(r"/api/cartelle/[^/]+/attachments/?"), _attachment_upload_limit),
    ("POST", re.compile(r"/api/imports/?"), _import_upload_limit),
    ("POST", re.compile(r"/fhir/?"), lambda s: s.fhir_bundle_max_bytes),
]


def body_limit_for(method: str, path: str, settings: Settings | None = None) -> int:
    s = settings or get_settings()
    for m, pattern, limit in BODY_LIMITS:
        if m == method and pattern.fullmatch(path):
            return limit(s)
    return s.request_max_bytes


class BodyTooLarge(HTTPException):
    """Raised from `receive`: FastAPI passes HTTPExceptions raised while it reads the body on to the problem+json
    handler (any other exception would become a generic 400)."""

    def __init__(self, limit: int):
        super().__init__(413, TOO_LARGE_DETAIL.format(limit=limit))


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit_for(scope.get("method", ""), scope.get("path", ""))
        declared = None
        for name, value in scope.get("headers") or []:
            if name == b"content-length":
                declared = value
                break
        if declared is not None:
            if not declared.isdigit():
                await _problem(scope, receive, send, 400, "Intestazione Content-Length non valida.")
                return
            if int(declared) > limit:
                await _problem(scope, receive, send, 413, TOO_LARGE_DETAIL.format(limit=limit))
                return

        received = 0
        started = False

        async def _receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # a body longer than its Content-Length, or chunked
                    raise BodyTooLarge(limit)
            return message

        async def _send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, _receive, _send)
        except BodyTooLarge as e:
            # Read outside FastAPI's body parsing (a non-API route): answer here if nothing was sent yet.
            if started:
                raise
            await _problem(scope, receive, send, 413, e.detail)


_TITLES = {400: "Richiesta non valida", 413: "Contenuto troppo grande"}


async def _problem(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
    from api.errors import problem
    from api.routes import fhir

    # Connection: close, so the server does not try to read (and discard) the body we refused.
    if fhir.is_fhir_path(scope.get("path", "")):  # the FHIR façade answers with an OperationOutcome
        response = fhir.FhirResponse(fhir.outcome(status, detail), status_code=status, headers={"Connection": "close"})
    else:
        response = problem(status, _TITLES[status], detail, code=f"http-{status}", headers={"Connection": "close"})
    await response(scope, receive, send)


# Everything but the documentation pages is JSON (or a file download) and needs nothing. Swagger UI (/docs) and
# ReDoc (/redoc) load their scripts, styles and icon from this server (api/openapi.py, the fastapi-offline
# package under /docs/assets) and carry no inline script (Swagger starts from /docs/swagger-init.js), so their
# policy names no other origin: scripts from here only; styles from here plus inline <style> blocks (ReDoc's page
# has one and its components inject theirs at run time); images and fonts from here or data: URIs (their icons);
# ReDoc's search runs in a worker it starts from a blob: URL; connect-src 'self' fetches /openapi.json and sends
# "Try it out". Nothing goes to a CDN: ReDoc's "powered by" logo, which it would fetch from cdn.redoc.ly, is
# refused and ReDoc hides it; Swagger's online validator badge is switched off (validatorUrl: null).
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
# The printable pages under /api (the plan, the person's access log) are HTML with their own <style> block and no
# script: inline styles, data: images, nothing else.
PRINT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
             "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
DOCS_PATHS = ("/docs", "/redoc")


def csp_for(path: str, content_type: str = "") -> str:
    if path in DOCS_PATHS or path.startswith(tuple(p + "/" for p in DOCS_PATHS)):
        return DOCS_CSP
    if content_type.startswith("text/html"):
        return PRINT_CSP
    return API_CSP


class SecurityHeadersMiddleware:
    """nosniff and a Content-Security-Policy on every answer; `Cache-Control: no-store` on /api and /fhir answers, which
    carry personal data that must stay out of browser and proxy caches."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        add = {b"x-content-type-options": b"nosniff", b"content-security-policy": csp_for(path).encode(),
               b"referrer-policy": b"no-referrer", b"x-frame-options": b"DENY"}
        if path in ("/api", "/fhir") or path.startswith(("/api/", "/fhir/")):
            add[b"cache-control"] = b"no-store"

        async def _send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in add]
                ctype = next((v.decode("latin-1") for k, v in headers if k.lower() == b"content-type"), "")
                add[b"content-security-policy"] = csp_for(path, ctype).encode()
                message["headers"] = headers + list(add.items())
            await send(message)

        await self.app(scope, receive, _send)
