"""Every error leaves /api as RFC 9457 application/problem+json, mapped here once."""
from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.logging import safe_traceback
from domain.kernel.errors import DomainError

PROBLEM = "application/problem+json"
TYPE_BASE = "https://pua.ambito-crema.example/problems/"
log = structlog.get_logger("api.errors")

_HTTP_TITLES = {
    400: "Richiesta non valida", 401: "Autenticazione richiesta", 403: "Operazione non consentita",
    404: "Risorsa non trovata", 405: "Metodo non consentito", 406: "Formato non accettabile",
    409: "Conflitto con lo stato attuale", 413: "Contenuto troppo grande", 415: "Tipo di contenuto non supportato",
    422: "Dati non validi", 500: "Errore interno",
}


_RESERVED = {"type", "title", "status", "detail", "errors", "instance"}


def problem(status: int, title: str, detail: str | None = None, *, code: str = "error",
            errors: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None,
            extra: dict[str, Any] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": TYPE_BASE + code, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    # Extension members (RFC 9457 §3.2) never overwrite the standard ones.
    body.update({k: (str(v) if not isinstance(v, (int, float, bool, list, dict, type(None))) else v)
                 for k, v in (extra or {}).items() if k not in _RESERVED})
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _field_path(loc: tuple | list) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or str(loc[0] if loc else "body")


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for e in exc.errors():
        loc = e.get("loc", ())
        reason = e.get("msg", "non valido")
        if e.get("type") == "extra_forbidden":
            reason = "campo non previsto"
        elif e.get("type") == "json_invalid":
            reason = "JSON non valido"
        elif e.get("type") == "missing":
            reason = "campo obbligatorio"
        out.append({"field": _field_path(loc), "reason": reason, "in": str(loc[0]) if loc else "body"})
    return out


# SQLSTATEs for values the client sent that the database cannot take: bad input (422), not a server fault (500).
# 22021/22P05: text with a NUL character or a byte sequence invalid in UTF-8; 22003: number out of the column's
# range; 22000: a query argument the driver cannot encode (asyncpg: "value out of int32 range").
BAD_INPUT_SQLSTATES = {"22021": ("invalid-character", "Il testo contiene caratteri non ammessi (ad esempio il "
                                                      "carattere nullo)."),
                       "22P05": ("invalid-character", "Il testo contiene caratteri non ammessi."),
                       "22003": ("out-of-range", "Un valore numerico della richiesta è fuori dall'intervallo "
                                                 "consentito."),
                       "22000": ("out-of-range", "Un valore della richiesta è fuori dall'intervallo consentito.")}


def is_bad_input(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in BAD_INPUT_SQLSTATES


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return problem(exc.status, exc.title, exc.detail, code=exc.code, errors=exc.errors or None,
                       headers=headers, extra=exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = validation_errors(exc)
        return problem(422, _HTTP_TITLES[422], "; ".join(f"{e['field']}: {e['reason']}" for e in errors),
                       code="validation", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        title = _HTTP_TITLES.get(exc.status_code, "Errore")
        detail = exc.detail if isinstance(exc.detail, str) else None
        return problem(exc.status_code, title, detail, code=f"http-{exc.status_code}",
                       headers=getattr(exc, "headers", None))

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError):
        if is_bad_input(exc):
            code, detail = BAD_INPUT_SQLSTATES[exc.orig.sqlstate]
            return problem(422, _HTTP_TITLES[422], detail, code=code)
        return await _unhandled(request, exc)

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception):
        log.error("unhandled_error", error_type=type(exc).__name__, where=safe_traceback(exc))
        return problem(500, _HTTP_TITLES[500], "Errore interno: il problema è stato registrato.", code="internal")
