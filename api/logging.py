"""JSON logs with a request id. Only route templates, status codes and ids are logged: never query strings,
bodies or names, so no personal data reaches the logs."""
from __future__ import annotations

import logging
import sys
import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.kernel.settings import get_settings

request_id_var = structlog.contextvars


def configure_logging() -> None:
    s = get_settings()
    level = getattr(logging, s.log_level.upper(), logging.INFO)
    logging.basicConfig(stream=sys.stdout, level=level, format="%(message)s")
    renderer = structlog.processors.JSONRenderer() if s.log_json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso", utc=True), renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )


def current_request_id() -> str | None:
    return structlog.contextvars.get_contextvars().get("request_id")


class RequestContextMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): sets the request id, echoes it, logs one line per request."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self.log = structlog.get_logger("api.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if incoming and len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
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
            route = scope.get("route")
            self.log.info("request", method=scope.get("method"), route=getattr(route, "path", "unmatched"),
                          status=status["code"], ms=round((time.perf_counter() - start) * 1000, 1))


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
