"""Helpers for tests: users with role assignments, bearer headers, organisations by code."""
from __future__ import annotations

import uuid
from datetime import date

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.security.models import AppUser, Role, RoleAssignment, UserKind
from domain.territory.models import Organisation
from integrations.identity.jwt import issue_dev_token


async def org(session: AsyncSession, code: str) -> Organisation:
    found = (await session.execute(sa.select(Organisation).where(Organisation.code == code))).scalar_one_or_none()
    if found is None:
        raise LookupError(f"no organisation with code {code}")
    return found


async def make_user(session: AsyncSession, role: Role | str, org_code: str | list[str], *,
                    username: str | None = None, kind: UserKind = UserKind.person,
                    scopes: list[str] | None = None, profession: str | None = None) -> AppUser:
    codes = [org_code] if isinstance(org_code, str) else org_code
    orgs = [await org(session, c) for c in codes]
    ambito_id = orgs[0].ambito_id or orgs[0].id
    user = AppUser(username=username or f"u-{uuid.uuid4().hex[:10]}", display_name="Utente di prova",
                   kind=kind, ambito_id=ambito_id, scopes=scopes or [], profession=profession)
    session.add(user)
    await session.flush()
    for o in orgs:
        session.add(RoleAssignment(user_id=user.id, role=Role(role), organisation_id=o.id,
                                   valid_from=date(2020, 1, 1)))
    await session.flush()
    return user


def bearer(user: AppUser | uuid.UUID | str, **kw) -> dict[str, str]:
    if isinstance(user, AppUser):
        # The identity key survives a rollback that expired the instance (a request that failed did one).
        ident = sa.inspect(user).identity
        sub = str(ident[0] if ident else user.id)
    else:
        sub = str(user)
    return {"Authorization": f"Bearer {issue_dev_token(sub, **kw)}"}
