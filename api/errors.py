"""Every error leaves /api as RFC 9457 application/problem+json, mapped here once.

One problem type per kind of failure, and one title per type (schemas/problem.py is the contract): schema and
domain validation are both `…/problems/invalid` ("Dati non validi"), Starlette's 401/403/404/409 take the domain's
types. Every message a person can act on is Italian: pydantic's and Starlette's English texts are translated here,
with how to fix the input (the expected format, the limit, the missing Content-Type)."""
from __future__ import annotations

import errno
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.logging import DATABASE_UNAVAILABLE, STORAGE_FULL, safe_traceback
from domain.kernel.db import database_unavailable
from domain.kernel.errors import DomainError
from domain.kernel.settings import get_settings

PROBLEM = "application/problem+json"
TYPE_BASE = "https://pua.ambito-crema.example/problems/"
log = structlog.get_logger("api.errors")

_HTTP_TITLES = {
    400: "Richiesta non valida", 401: "Autenticazione richiesta", 403: "Operazione non consentita",
    404: "Risorsa non trovata", 405: "Metodo non consentito", 406: "Formato non accettabile",
    409: "Conflitto con lo stato attuale", 413: "Contenuto troppo grande", 415: "Tipo di contenuto non supportato",
    422: "Dati non validi", 500: "Errore interno", 503: "Servizio temporaneamente non disponibile",
    507: "Spazio di archiviazione esaurito",
}
# Starlette's errors share the domain's problem types where they mean the same thing (one title per type).
_HTTP_CODES = {401: "unauthenticated", 403: "forbidden", 404: "not_found", 409: "conflict", 422: "invalid"}
# Starlette's own English details, replaced by what a person can do about them.
_HTTP_DETAILS = {
    400: "Richiesta non leggibile: controllare il corpo e l'intestazione Content-Type.",
    401: "Token di accesso mancante, non valido o scaduto.",
    403: "Operazione non consentita.",
    404: "Nessuna risorsa a questo indirizzo: controllare il percorso (le API sono sotto /api).",
    406: "Il formato richiesto nell'intestazione Accept non è disponibile.",
    413: "Il corpo della richiesta è troppo grande.",
    415: "Tipo di contenuto non supportato: inviare Content-Type: application/json.",
    500: "Errore interno: il problema è stato registrato.",
}
BODY_NOT_PARSED = "There was an error parsing the body"  # FastAPI: a JSON body that is not UTF-8 text, among others
_STARLETTE_ENGLISH = {BODY_NOT_PARSED}

VALIDATION_CODE = "invalid"  # the same type as domain.kernel.errors.Invalid
VALIDATION_TITLE = "Dati non validi"

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


# ---------------------------------------------------------------------------------------------------- validation
DATE_HINT = "usare il formato AAAA-MM-GG (es. 2026-03-02)"
DATETIME_HINT = "usare il formato AAAA-MM-GGThh:mm:ss con fuso orario (es. 2026-03-02T09:30:00+01:00, o Z per UTC)"
UUID_HINT = "atteso un UUID (es. 3fa85f64-5717-4562-b3fc-2c963f66afa6)"
JSON_BODY_HINT = "inviare un oggetto JSON con l'intestazione Content-Type: application/json"

# What the parser of dates and numbers said, in Italian (pydantic's `ctx.error`).
_PARSE_DETAILS = (
    ("day value is outside expected range", "giorno inesistente in quel mese"),
    ("month value is outside expected range", "mese inesistente (1-12)"),
    ("year", "anno non valido"),
    ("hour value is outside expected range", "ora fuori intervallo (0-23)"),
    ("minute value is outside expected range", "minuti fuori intervallo (0-59)"),
    ("second value is outside expected range", "secondi fuori intervallo (0-59)"),
    ("timezone offset", "fuso orario non valido"),
    ("input is too short", "troppo corto"),
    ("unexpected extra characters", "caratteri in più alla fine"),
    ("invalid character", "carattere non valido"),
    ("invalid date separator", "separatore non valido: usare '-'"),
    ("invalid length", "lunghezza errata"),
)
_JSON_DETAILS = (
    ("Expecting property name enclosed in double quotes", "i nomi dei campi vanno tra virgolette doppie (\")"),
    ("Expecting value", "manca un valore"),
    ("Expecting ',' delimiter", "manca una virgola tra due elementi"),
    ("Expecting ':' delimiter", "mancano i due punti dopo il nome del campo"),
    ("Extra data", "testo in più dopo la fine del JSON"),
    ("Unterminated string", "testo tra virgolette non chiuso"),
    ("Invalid control character", "carattere di controllo non ammesso in un testo"),
    ("Invalid \\escape", "sequenza di escape non valida"),
)
# Patterns of our schemas, explained.
_PATTERNS = {
    r"^[A-Za-z][0-9]{3}$": "codice catastale (Belfiore) non valido: una lettera e tre cifre (es. D142)",
    r"^[a-z0-9][a-z0-9_-]{1,79}$": "codice non valido: lettere minuscole, cifre, '-' e '_' (da 2 a 80 caratteri, "
                                   "es. ets-nuova-coop)",
    r"^[a-z0-9][a-z0-9-]{1,79}$": "codice non valido: lettere minuscole, cifre e '-' (da 2 a 80 caratteri, "
                                  "es. team-vmd-crema)",
    r"^[a-z0-9_]{2,40}$": "codice non valido: lettere minuscole, cifre e '_' (da 2 a 40 caratteri, es. sad)",
    r"^[a-z0-9][a-z0-9._-]{1,119}$": "username non valido: lettere minuscole, cifre, '.', '_' e '-' (es. "
                                     "as.offanengo)",
    r"^[^@\s]+@[^@\s]+\.[^@\s]+$": "indirizzo di posta non valido (es. nome@comune.crema.cr.it)",
}


def _translated(text: str, table) -> str | None:
    for english, italian in table:
        if english.lower() in text.lower():
            return italian
    return None


def _with(reason: str, detail: str | None) -> str:
    return f"{reason} ({detail})" if detail else reason


def _one_of(expected: Any) -> str:
    return str(expected).replace(" or ", " o ")


def _items(n: Any) -> str:
    return "elemento" if n == 1 else "elementi"


def _chars(n: Any) -> str:
    return "carattere" if n == 1 else "caratteri"


def reason_for(e: dict[str, Any]) -> str:
    """One pydantic error (`RequestValidationError.errors()` item) as an Italian reason saying how to fix it."""
    kind = str(e.get("type", ""))
    ctx = e.get("ctx") or {}
    loc = tuple(e.get("loc") or ())
    whole_body = loc in (("body",), ())
    value = e.get("input")
    parse = _translated(str(ctx.get("error", "")), _PARSE_DETAILS)

    if kind == "missing":
        if whole_body:
            return "corpo della richiesta mancante: " + JSON_BODY_HINT
        return "parametro obbligatorio" if loc and loc[0] in ("query", "header", "path") else "campo obbligatorio"
    if kind == "extra_forbidden":
        return "campo non previsto"
    if kind == "json_invalid":
        position = loc[1] if len(loc) > 1 else None
        where = f" alla posizione {position}" if position is not None else ""
        return _with(f"corpo JSON non valido{where}", _translated(str(ctx.get("error", "")), _JSON_DETAILS))
    if kind in ("model_attributes_type", "model_type", "dict_type", "mapping_type", "dataclass_type"):
        if whole_body and isinstance(value, (bytes, str)):
            return "il corpo non è stato letto come JSON: manca l'intestazione Content-Type: application/json"
        return "atteso un oggetto JSON ({...})" + (": " + JSON_BODY_HINT if whole_body else "")
    if kind in ("value_error", "assertion_error"):
        message = str(e.get("msg", ""))
        for prefix in ("Value error, ", "Assertion failed, "):
            message = message.removeprefix(prefix)
        return message or "valore non valido"
    if kind in ("uuid_parsing", "uuid_type"):
        return "identificativo non valido: " + UUID_HINT
    if kind == "uuid_version":
        return f"identificativo non valido: atteso un UUID versione {ctx.get('expected_version')}"
    if kind == "date_from_datetime_inexact":
        return "data non valida: indicare solo la data, senza orario (" + DATE_HINT + ")"
    if kind in ("date_type", "date_parsing", "date_from_datetime_parsing"):
        return _with("data non valida", parse) + ": " + DATE_HINT
    if kind in ("datetime_type", "datetime_parsing", "datetime_from_date_parsing", "datetime_object_invalid"):
        return _with("data e ora non valide", parse) + ": " + DATETIME_HINT
    if kind == "timezone_aware":
        return "manca il fuso orario: " + DATETIME_HINT
    if kind == "timezone_naive":
        return "data e ora senza fuso orario (es. 2026-03-02T09:30:00)"
    if kind == "timezone_offset":
        return f"fuso orario non ammesso: atteso {ctx.get('tz_expected')}"
    if kind in ("date_future", "datetime_future"):
        return "deve essere nel futuro"
    if kind in ("date_past", "datetime_past"):
        return "deve essere nel passato"
    if kind in ("time_type", "time_parsing"):
        return _with("ora non valida", parse) + ": usare il formato hh:mm[:ss] (es. 09:30)"
    if kind in ("time_delta_type", "time_delta_parsing"):
        return "durata non valida: usare il formato ISO 8601 (es. PT2H) o un numero di secondi"
    if kind in ("string_type", "string_sub_type"):
        return "atteso un testo (stringa JSON tra virgolette)"
    if kind == "string_too_short":
        n = ctx.get("min_length")
        return "non può essere vuoto" if n == 1 else f"troppo corto: almeno {n} {_chars(n)}"
    if kind == "string_too_long":
        n = ctx.get("max_length")
        return f"troppo lungo: al massimo {n} {_chars(n)}"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        return _PATTERNS.get(pattern, f"formato non valido: deve rispettare l'espressione {pattern}")
    if kind in ("string_unicode", "string_not_ascii", "bytes_invalid_encoding"):
        return "testo non valido: caratteri non ammessi"
    if kind in ("int_type", "int_parsing"):
        return "atteso un numero intero"
    if kind == "int_from_float":
        return "atteso un numero intero, senza decimali"
    if kind == "int_parsing_size":
        return "numero troppo grande"
    if kind in ("float_type", "float_parsing", "complex_type", "complex_str_parsing", "fraction_type",
                "fraction_parsing"):
        return "atteso un numero (con il punto per i decimali, es. 6.5)"
    if kind == "finite_number":
        return "atteso un numero finito"
    if kind in ("decimal_type", "decimal_parsing"):
        return "atteso un numero decimale (con il punto, es. 6.5)"
    if kind == "decimal_max_digits":
        return f"troppe cifre: al massimo {ctx.get('max_digits')}"
    if kind == "decimal_max_places":
        return f"troppi decimali: al massimo {ctx.get('decimal_places')}"
    if kind == "decimal_whole_digits":
        return f"troppe cifre prima della virgola: al massimo {ctx.get('whole_digits')}"
    if kind in ("bool_type", "bool_parsing"):
        return "atteso un valore vero o falso (true o false)"
    if kind == "greater_than":
        return f"deve essere maggiore di {ctx.get('gt')}"
    if kind == "greater_than_equal":
        return f"deve essere almeno {ctx.get('ge')}"
    if kind == "less_than":
        return f"deve essere minore di {ctx.get('lt')}"
    if kind == "less_than_equal":
        return f"deve essere al massimo {ctx.get('le')}"
    if kind == "multiple_of":
        return f"deve essere un multiplo di {ctx.get('multiple_of')}"
    if kind == "too_short":
        n = ctx.get("min_length")
        return f"troppo pochi elementi: almeno {n} {_items(n)}"
    if kind == "too_long":
        n = ctx.get("max_length")
        return f"troppi elementi: al massimo {n} {_items(n)}"
    if kind in ("bytes_too_short",):
        return f"troppo corto: almeno {ctx.get('min_length')} byte"
    if kind in ("bytes_too_long",):
        return f"troppo lungo: al massimo {ctx.get('max_length')} byte"
    if kind in ("list_type", "tuple_type", "set_type", "frozen_set_type", "iterable_type", "deque_type"):
        return "atteso un elenco (array JSON, es. [\"a\", \"b\"])"
    if kind in ("enum", "literal_error"):
        return "valore non ammesso: usare " + _one_of(ctx.get("expected", ""))
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return "tipo non riconosciuto: valori ammessi " + _one_of(ctx.get("expected_tags", ""))
    if kind in ("url_type", "url_parsing", "url_syntax_violation", "url_too_long", "url_scheme"):
        return "indirizzo web (URL) non valido"
    if kind == "none_required":
        return "deve essere null"
    if kind == "set_item_not_hashable":
        return "elemento non ammesso in un insieme"
    if kind in ("recursion_loop", "recursion_depth_exceeded"):
        return "struttura troppo annidata"
    return "valore non valido"


def _field_path(loc: tuple | list) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or str(loc[0] if loc else "body")


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for e in exc.errors():
        loc = tuple(e.get("loc") or ())
        where = str(loc[0]) if loc else "body"
        # An invalid JSON is reported by position (`("body", 17)`): the field is the body, not "17".
        field = "body" if e.get("type") == "json_invalid" else _field_path(loc)
        out.append({"field": field, "reason": reason_for(e), "in": where})
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
BAD_INPUT_TITLES = {"invalid-character": "Caratteri non ammessi", "out-of-range": "Valore fuori intervallo"}


def is_bad_input(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in BAD_INPUT_SQLSTATES


UNAVAILABLE_DETAIL = ("Il database non risponde (riavvio o manutenzione): la richiesta non è stata registrata. "
                      "Riprovare tra qualche secondo.")


def unavailable() -> JSONResponse:
    """503 for a request the database could not serve (down, restarting, unreachable, too slow): nothing of it was
    committed, the client may send it again after Retry-After seconds."""
    return problem(503, _HTTP_TITLES[503], UNAVAILABLE_DETAIL, code="unavailable",
                   headers={"Retry-After": str(get_settings().db_retry_after_seconds)})


STORAGE_FULL_DETAIL = ("Spazio su disco esaurito sul server: il file non è stato prodotto né salvato. Riprovare più "
                       "tardi; il problema è stato segnalato.")
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


DISK_FULL_SQLSTATE = "53100"  # the database could not extend a file: its volume (or a tablespace's) is full


def storage_full(exc: BaseException | None) -> bool:
    """A write that failed because a volume is full: attachments, an export's scratch files in TMPDIR, or the
    database's own files (SQLSTATE 53100; the transaction was rolled back by the server)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS:
            return True
        if getattr(exc, "sqlstate", None) == DISK_FULL_SQLSTATE:
            return True
        exc = getattr(exc, "orig", None) if isinstance(exc, DBAPIError) else (exc.__cause__ or exc.__context__)
    return False


def _http_detail(request: Request, exc: StarletteHTTPException) -> str | None:
    status = exc.status_code
    detail = exc.detail if isinstance(exc.detail, str) else None
    try:
        english = detail == HTTPStatus(status).phrase or detail in _STARLETTE_ENGLISH
    except ValueError:
        english = False
    if detail and not english:
        return detail
    if status == 405:
        allowed = (getattr(exc, "headers", None) or {}).get("Allow") or (getattr(exc, "headers", None) or {}).get(
            "allow")
        tail = f": metodi ammessi {allowed}" if allowed else ""
        return f"Metodo {request.method} non consentito su questo indirizzo{tail}."
    return _HTTP_DETAILS.get(status)


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError):
        if exc.status == 507:
            STORAGE_FULL.inc()
            log.error("storage_full", error_type=type(exc).__name__)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if exc.headers:
            headers = {**(headers or {}), **exc.headers}
        return problem(exc.status, exc.title, exc.detail, code=exc.code, errors=exc.errors or None,
                       headers=headers, extra=exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = validation_errors(exc)
        return problem(422, VALIDATION_TITLE, "; ".join(f"{e['field']}: {e['reason']}" for e in errors),
                       code=VALIDATION_CODE, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        status = exc.status_code
        if status == 400:
            # The framework's 400s are all bodies it could not parse (JSON that is not UTF-8, broken multipart):
            # bad input like a JSON syntax error, reported the same way (our own 400, a bad cursor, is a DomainError).
            ctype = request.headers.get("content-type", "")
            reason = ("corpo JSON non valido: il testo non è codificato in UTF-8" if "json" in ctype else
                      "corpo multipart/form-data non valido: inviare il file come campo `file` di un modulo "
                      "multipart ben formato" if "multipart" in ctype else "corpo della richiesta illeggibile")
            errors = [{"field": "body", "reason": reason, "in": "body"}]
            return problem(422, VALIDATION_TITLE, "body: " + reason, code=VALIDATION_CODE, errors=errors)
        title = _HTTP_TITLES.get(status, "Errore")
        return problem(status, title, _http_detail(request, exc), code=_HTTP_CODES.get(status, f"http-{status}"),
                       headers=getattr(exc, "headers", None))

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError):
        if is_bad_input(exc):
            code, detail = BAD_INPUT_SQLSTATES[exc.orig.sqlstate]
            return problem(422, BAD_INPUT_TITLES[code], detail, code=code)
        return await _unhandled(request, exc)

    # A database that is down or restarting shows up as these (refused, reset, connect/pool/statement timeout):
    # handled here, inside the app, so the answer is a 503 and not a logged 500.
    @app.exception_handler(OSError)
    @app.exception_handler(SQLAlchemyTimeoutError)
    async def _connection(request: Request, exc: Exception):
        return await _unhandled(request, exc)

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception):
        if storage_full(exc):
            STORAGE_FULL.inc()
            log.error("storage_full", error_type=type(exc).__name__)
            return problem(507, _HTTP_TITLES[507], STORAGE_FULL_DETAIL, code="insufficient_storage")
        if database_unavailable(exc):
            DATABASE_UNAVAILABLE.inc()
            log.warning("database_unavailable", error_type=type(exc).__name__)
            return unavailable()
        log.error("unhandled_error", error_type=type(exc).__name__, where=safe_traceback(exc))
        return problem(500, _HTTP_TITLES[500], _HTTP_DETAILS[500], code="internal")
