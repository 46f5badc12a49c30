"""`python -m api token --user USERNAME [--minutes N] [--scopes S ...] [--act-for USERNAME]`

Prints a development token for a user of the database (DATABASE_URL), signed with the local development key
(integrations.identity.jwt.issue_dev_token). It is accepted only by a service that verifies with that key (the
default when neither JWT_PUBLIC_KEY_FILE nor JWKS_URL is set). Production tokens come from the identity provider.
"""
from __future__ import annotations

import argparse
import asyncio
import sys

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from domain.kernel.settings import get_settings
from domain.security.models import AppUser, UserKind
from integrations.identity.jwt import issue_dev_token


class TokenRequestError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m api token", description="Token di sviluppo per un utente demo.")
    p.add_argument("--user", required=True, help="username (es. as.offanengo)")
    p.add_argument("--minutes", type=int, default=None, help="validità in minuti (default DEV_TOKEN_MINUTES)")
    p.add_argument("--scopes", nargs="*", default=[], help="solo client di sistema: scope richiesti")
    p.add_argument("--act-for", default=None, help="solo client di sistema: username del professionista")
    p.add_argument("--database-url", default=None, help=argparse.SUPPRESS)
    return p


async def token_for(session: AsyncSession, *, username: str, minutes: int | None = None,
                    scopes: list[str] | None = None, act_for: str | None = None) -> str:
    """Checks what the API would check (active user; scopes granted and act_for only for system clients)."""
    user = (await session.execute(sa.select(AppUser).where(AppUser.username == username))).scalar_one_or_none()
    if user is None or not user.active:
        raise TokenRequestError(f"utente '{username}' inesistente o disattivato")
    scopes = list(dict.fromkeys(scopes or []))
    if user.kind != UserKind.system and (scopes or act_for):
        raise TokenRequestError("--scopes e --act-for valgono solo per i client di sistema")
    if user.kind == UserKind.system:
        not_granted = sorted(set(scopes) - set(user.scopes or []))
        if not_granted:
            raise TokenRequestError("scope non concessi al client: " + " ".join(not_granted))
        if act_for:
            target = (await session.execute(sa.select(AppUser).where(
                AppUser.username == act_for, AppUser.kind == UserKind.person.value, AppUser.active.is_(True),
                AppUser.ambito_id == user.ambito_id))).scalar_one_or_none()
            if target is None:
                raise TokenRequestError(f"--act-for: utente '{act_for}' inesistente o non attivo nell'Ambito")
    if minutes is not None and minutes <= 0:
        raise TokenRequestError("--minutes deve essere positivo")
    try:
        return issue_dev_token(str(user.id), scopes=scopes or None, acting_for=act_for, minutes=minutes)
    except ValueError as e:  # a lifetime past JWT_MAX_LIFETIME_SECONDS: the service would refuse the token
        raise TokenRequestError(f"--minutes: {e}") from None


async def _run(args: argparse.Namespace) -> str:
    engine = create_async_engine(args.database_url or get_settings().database_url, pool_size=1)
    try:
        async with AsyncSession(engine) as session:
            return await token_for(session, username=args.user, minutes=args.minutes, scopes=args.scopes,
                                   act_for=args.act_for)
    finally:
        await engine.dispose()


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        token = asyncio.run(_run(args))
    except TokenRequestError as e:
        print(f"errore: {e}", file=sys.stderr)
        return 1
    print(token)
    return 0
