"""Annotated dependencies shared by every route: the unit of work, the principal, coarse permissions."""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from domain.kernel.db import sessionmaker
from domain.kernel.errors import Forbidden, Unauthenticated
from domain.security.permissions import Permission, permissions_of
from domain.security.principal import Principal as PrincipalT
from domain.security.principal import load_principal
from integrations.identity.jwt import TokenError, verify


async def get_session() -> AsyncIterator[AsyncSession]:
    """The request's unit of work: services flush, this commits once at the end or rolls back on error."""
    async with sessionmaker()() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


# scope="function": the commit happens before the response is sent, so a failed commit is never reported as 2xx.
Session = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_principal(request: Request, session: Session) -> PrincipalT:
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("Token di accesso mancante.")
    try:
        claims = verify(token.strip())
    except TokenError:
        # The reason stays on the server: the client learns only that the token was refused.
        raise Unauthenticated("Token di accesso non valido o scaduto.") from None
    principal = await load_principal(session, claims.subject, scopes=claims.scopes, acting_for=claims.acting_for)
    request.state.principal = principal
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
