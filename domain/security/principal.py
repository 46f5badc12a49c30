"""The principal: who acts, with which roles in which organisations, in which teams. Loaded in one query and
kept for a short time (`principal_cache_seconds`) so that every request does not pay for it."""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.kernel import clock
from domain.kernel.errors import Unauthenticated
from domain.kernel.settings import get_settings
from domain.security.models import AppUser, Role, RoleAssignment, TeamMember, UserKind


@dataclass(frozen=True)
class Grant:
    role: Role
    organisation_id: uuid.UUID


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    username: str
    kind: UserKind
    ambito_id: uuid.UUID
    grants: tuple[Grant, ...]
    team_ids: tuple[uuid.UUID, ...] = ()
    scopes: tuple[str, ...] = ()
    acting_for: str | None = None
    profession: str | None = None
    # Filled by the access-control layer when it resolves the organisation tree.
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def roles(self) -> frozenset[Role]:
        return frozenset(g.role for g in self.grants)

    def has_role(self, *roles: Role) -> bool:
        return any(g.role in roles for g in self.grants)

    def orgs_for(self, *roles: Role) -> frozenset[uuid.UUID]:
        return frozenset(g.organisation_id for g in self.grants if not roles or g.role in roles)


_cache: dict[str, tuple[float, Principal]] = {}


def clear_principal_cache() -> None:
    _cache.clear()


async def load_principal(session: AsyncSession, subject: str, *, scopes: tuple[str, ...] = (),
                         acting_for: str | None = None) -> Principal:
    ttl = get_settings().principal_cache_seconds
    key = f"{subject}|{' '.join(scopes)}|{acting_for}"
    hit = _cache.get(key)
    if hit and time.monotonic() - hit[0] < ttl:
        return hit[1]
    try:
        user_id = uuid.UUID(subject)
    except ValueError:
        raise Unauthenticated("token subject is not a user id") from None
    today = clock.today_rome()
    active = lambda m: sa.and_(m.valid_from <= today, sa.or_(m.valid_to.is_(None), m.valid_to >= today))  # noqa: E731
    ra = (sa.select(sa.func.coalesce(sa.func.array_agg(sa.func.array([RoleAssignment.role, sa.cast(RoleAssignment.organisation_id, sa.String)])), sa.text("'{}'")))
          .where(RoleAssignment.user_id == AppUser.id, active(RoleAssignment)).scalar_subquery())
    tm = (sa.select(sa.func.coalesce(sa.func.array_agg(TeamMember.team_id), sa.text("'{}'")))
          .where(TeamMember.user_id == AppUser.id, active(TeamMember)).scalar_subquery())
    row = (await session.execute(
        sa.select(AppUser.id, AppUser.username, AppUser.kind, AppUser.ambito_id, AppUser.active, AppUser.scopes,
                  AppUser.profession, ra, tm).where(AppUser.id == user_id)
    )).one_or_none()
    if row is None or not row.active:
        raise Unauthenticated("unknown or inactive user")
    if row.kind == UserKind.system:
        allowed = set(row.scopes or [])
        if not set(scopes) <= allowed:
            raise Unauthenticated("scope not granted to this client")
    grants = tuple(Grant(Role(r), uuid.UUID(o)) for r, o in (row[7] or []))
    p = Principal(user_id=row.id, username=row.username, kind=UserKind(row.kind), ambito_id=row.ambito_id,
                  grants=grants, team_ids=tuple(row[8] or ()), scopes=tuple(scopes), acting_for=acting_for,
                  profession=row.profession)
    _cache[key] = (time.monotonic(), p)
    return p
