"""JSON logs with a request id, and the process-local counters an operator alerts on.

Requests are logged by `RequestContextMiddleware` only: method, route *template* (`/api/persons/{person_id}`),
status, duration and request id. Never the raw path, the query string, bodies or names, so no codice fiscale or
surname reaches the logs. Uvicorn's own access log (which writes the raw URL) is switched off wherever the server is
started (`deploy/run.py`, the Dockerfile, the manifests: `--no-access-log`).

structlog renders the event as JSON and hands it to the standard `logging` module, which writes it to stdout: one
stream for our events and the libraries' (uvicorn, SQLAlchemy, Celery), one level setting (LOG_LEVEL).
"""
from __future__ import annotations

import logging
import re
import sys
import threading
import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.kernel.settings import get_settings

request_id_var = structlog.contextvars

# A client-supplied X-Request-ID is echoed in our headers and written to logs and audit rows: only a bounded,
# boring alphabet (no spaces, quotes, control or header-splitting characters, nothing long enough to carry data).
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{8,64}")


def configure_logging() -> None:
    s = get_settings()
    level = getattr(logging, s.log_level.upper(), logging.INFO)
    logging.basicConfig(stream=sys.stdout, level=level, format="%(message)s")
    logging.getLogger().setLevel(level)
    renderer = structlog.processors.JSONRenderer() if s.log_json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        # filter_by_level asks the standard logger, so the level is decided in one place (and tests can lower it
        # with caplog.set_level).
        processors=[structlog.stdlib.filter_by_level, structlog.contextvars.merge_contextvars,
                    structlog.processors.add_log_level, structlog.stdlib.add_logger_name,
                    structlog.processors.TimeStamper(fmt="iso", utc=True), renderer],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def current_request_id() -> str | None:
    return structlog.contextvars.get_contextvars().get("request_id")


def accepted_request_id(incoming: str | None) -> str:
    """The client's X-Request-ID when it is in the safe format, otherwise a new one."""
    if incoming and REQUEST_ID_PATTERN.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    """The matched route as declared (`/api/persons/{person_id}`), never the concrete path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return "unmatched"
    # Routers are included under /api; the matched route may keep its own path only.
    if scope.get("path", "").startswith("/api/") and not path.startswith("/api/"):
        path = "/api" + path
    return path


class RequestContextMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): sets the request id, echoes it, logs one line per request."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self.log = structlog.get_logger("api.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope.get("headers") or []:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        rid = accepted_request_id(incoming)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=rid)
        scope.setdefault("state", {})["request_id"] = rid
        start = time.perf_counter()
        status = {"code": 500}

        async def _send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", rid.encode()))
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            self.log.info("request", method=scope.get("method"), route=route_template(scope),
                          status=status["code"], ms=round((time.perf_counter() - start) * 1000, 1))


class Counter:
    """A monotonically increasing, process-local counter (Prometheus `counter` semantics: it resets only when
    the process restarts; alert on its increase)."""

    def __init__(self, name: str, help_text: str):
        self.name, self.help = name, help_text
        self._value = 0
        self._lock = threading.Lock()

    def inc(self, n: int = 1) -> None:
        with self._lock:
            self._value += n

    @property
    def value(self) -> int:
        return self._value


AUDIT_WRITE_FAILURES = Counter(
    "pua_audit_write_failures_total",
    "Righe di audit di richieste rifiutate o fallite che non è stato possibile scrivere.")
STORAGE_FULL = Counter(
    "pua_storage_full_total",
    "Richieste rifiutate con 507 perché il volume dei file (allegati, file temporanei delle esportazioni) è pieno.")
DATABASE_UNAVAILABLE = Counter(
    "pua_database_unavailable_total",
    "Richieste rifiutate con 503 perché il database non rispondeva (riavvio, arresto, timeout).")
COUNTERS = (AUDIT_WRITE_FAILURES, STORAGE_FULL, DATABASE_UNAVAILABLE)


def safe_traceback(exc: BaseException, limit: int = 30) -> list[str]:
    """Where an error happened (file:line in function, for the whole cause chain) without its message: driver and
    database messages can quote the values of a row (names, codici fiscali), which must never reach the logs."""
    import traceback

    out: list[str] = []
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        out.append(type(e).__qualname__)
        out.extend(f"{f.filename.rsplit('/site-packages/', 1)[-1]}:{f.lineno} in {f.name}"
                   for f in traceback.extract_tb(e.__traceback__)[-limit:])
        e = e.__cause__ or e.__context__
    return out
