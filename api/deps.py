"""Annotated dependencies shared by every route: the unit of work, the principal, coarse permissions."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import structlog
from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.errors import is_bad_input, storage_full
from api.logging import AUDIT_WRITE_FAILURES, safe_traceback
from domain.kernel import business_clock
from domain.kernel.db import database_unavailable, sessionmaker
from domain.kernel.errors import DomainError, Forbidden, Unauthenticated
from domain.kernel.jobs import ENQUEUED_FLAG
from domain.security import audit
from domain.security.permissions import Permission, permissions_of
from domain.security.principal import Principal as PrincipalT
from domain.security.principal import load_principal
from integrations.identity.jwt import TokenError, verify_async

# One answer for every refused token (missing, malformed, expired, wrong key, unknown user...): the client learns
# nothing about why; the reason goes to the server log only.
AUTH_FAILED_DETAIL = "Token di accesso mancante, non valido o scaduto."
log = structlog.get_logger("api.auth")


def _status_of(exc: BaseException) -> int:
    if isinstance(exc, DomainError):
        return exc.status
    if is_bad_input(exc):
        return 422
    if isinstance(exc, RequestValidationError):
        return 422
    if isinstance(exc, StarletteHTTPException):
        return exc.status_code
    if database_unavailable(exc):
        return 503
    if storage_full(exc):
        return 507
    return 500


def _outcome(status: int) -> str:
    if status in (401, 403):
        return "denied"
    if status == 404:
        return "not_found"
    return "rejected" if status < 500 else "failed"


@asynccontextmanager
async def request_boundary(session: AsyncSession, request: Request, *, savepoint: bool = False):
    """The request's unit of work and its audit trail.

    Services flush; this commits once at the end together with the request's audit rows (one INSERT). On any error
    it rolls back and writes the audit rows of the denied or failed request in a transaction of its own, so the
    rollback does not erase them. `savepoint=True` nests the request in a savepoint (tests share one connection)."""
    route = getattr(request.scope.get("route"), "path", None)
    path = request.url.path
    for prefix in ("/api", "/fhir"):  # routers are included under a prefix; the matched route keeps its own path
        under = path == prefix or path.startswith(prefix + "/")  # `POST /fhir` is the router's own "" route
        if route is not None and under and route != prefix and not route.startswith(prefix + "/"):
            route = prefix + route
    audit.begin(route=route, method=request.method, request_id=getattr(request.state, "request_id", None),
                path_params=request.path_params)
    tx = await session.begin_nested() if savepoint else None
    try:
        yield session
        await audit.flush(session, status=getattr(request.scope.get("route"), "status_code", None) or 200)
        await (tx.commit() if tx else session.commit())
    except BaseException as exc:
        try:
            await (tx.rollback() if tx else session.rollback())
        except Exception as rollback_exc:
            # The connection died with the database (restart): the server has already discarded the transaction.
            # Keep the original error, which says why the request failed.
            if not database_unavailable(rollback_exc):
                raise
        status = _status_of(exc)
        try:
            await audit.flush_separately(status=status, outcome=_outcome(status))
        except Exception as audit_exc:  # noqa: BLE001  (the original error still reaches the client)
            # A refused request without its audit row must not go unnoticed: count it (alert on
            # pua_audit_write_failures_total) and log where it failed, never the message (it can quote row values).
            AUDIT_WRITE_FAILURES.inc()
            log.error("audit_write_failed", route=route, method=request.method, status=status,
                      error_type=type(audit_exc).__name__, where=safe_traceback(audit_exc))
        raise


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    await business_clock.refresh()  # the stored business clock, read at most once a second, before the unit of work
    async with sessionmaker()() as session:
        async with request_boundary(session, request):
            yield session
        if session.info.pop(ENQUEUED_FLAG, False):
            from workers import wake

            wake()  # jobs committed: ask a worker to relay them now (best effort, never blocks or fails)


# scope="function": the commit happens before the response is sent, so a failed commit is never reported as 2xx.
Session = Annotated[AsyncSession, Depends(get_session, scope="function")]


def _refuse(reason: str) -> Unauthenticated:
    log.info("auth_refused", reason=reason)
    return Unauthenticated(AUTH_FAILED_DETAIL)


async def get_principal(request: Request, session: Session) -> PrincipalT:
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _refuse("missing bearer token")
    try:
        claims = await verify_async(token)
        principal = await load_principal(session, claims.subject, scopes=claims.scopes,
                                         acting_for=claims.acting_for)
    except (TokenError, Unauthenticated) as e:
        raise _refuse(str(e)) from None
    request.state.principal = principal
    audit.set_principal(principal)
    return principal


Principal = Annotated[PrincipalT, Depends(get_principal)]


def require(*permissions: Permission):
    """Coarse check: the principal must hold every listed permission through one of its roles."""

    async def _check(principal: Principal) -> PrincipalT:
        held = permissions_of(principal.roles)
        missing = [p for p in permissions if p not in held]
        if missing:
            raise Forbidden("Permesso mancante: " + ", ".join(missing), missing=[str(m) for m in missing])
        return principal

    return Depends(_check)


def Authorized(*permissions: Permission):  # noqa: N802  (used as a type: `p: Authorized(Permission.x)`)
    return Annotated[PrincipalT, require(*permissions)]
