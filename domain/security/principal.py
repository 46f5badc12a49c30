"""The principal: who acts, with which roles in which organisations, in which teams. Loaded in one query and
kept for a short time (`principal_cache_seconds`, default 30 s) so that every request does not pay for it.

What comes from the token and what from the database:
- a user (AppUser.kind == person) token carries only its subject (the user id). Roles, organisations and teams are
  read here from the database; a `scope` claim (OIDC noise such as "openid profile") is ignored, and an `act_for`
  claim is refused (a person never acts for somebody else);
- a system client (kind == system) also carries its `scope` and the practitioner it acts for (`act_for`, a
  username). Scopes must be a subset of those granted to the client (AppUser.scopes), and `act_for` must name an
  active person user of the client's Ambito; anything else is refused.

Cache invalidation: any change of users, role assignments or team members made through domain.security.service
clears this process's cache at once (and again after the commit). Other processes (other API workers) see the
change when their entries expire, i.e. within `principal_cache_seconds`.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import array as pg_array
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session as SyncSession
from sqlalchemy.orm import aliased

from domain.kernel import clock
from domain.kernel.errors import Unauthenticated
from domain.kernel.settings import get_settings
from domain.kernel.validity import active_sql
from domain.security.models import AppUser, Role, RoleAssignment, TeamMember, UserKind
from domain.security.permissions import permissions_of

MAX_CACHE_ENTRIES = 10_000


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
    acting_for_user_id: uuid.UUID | None = None
    # Filled by the access-control layer when it resolves the organisation tree.
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def roles(self) -> frozenset[Role]:
        return frozenset(g.role for g in self.grants)

    @property
    def is_system(self) -> bool:
        return self.kind == UserKind.system

    def has_role(self, *roles: Role) -> bool:
        return any(g.role in roles for g in self.grants)

    def orgs_for(self, *roles: Role) -> frozenset[uuid.UUID]:
        return frozenset(g.organisation_id for g in self.grants if not roles or g.role in roles)

    def has_scope(self, *scopes: str) -> bool:
        return all(s in self.scopes for s in scopes)

    @property
    def permissions(self):
        return permissions_of(self.roles)


_cache: dict[str, tuple[float, Principal]] = {}


def clear_principal_cache() -> None:
    _cache.clear()


def invalidate_principals(session: AsyncSession) -> None:
    """Call after changing users, role assignments or team members: clears this process's cache now and again
    when the session's transaction commits (a request that loaded the old state meanwhile is not kept)."""
    clear_principal_cache()
    session.info["clear_principal_cache"] = True


@event.listens_for(SyncSession, "after_commit")
def _clear_after_commit(session) -> None:
    if session.info.pop("clear_principal_cache", False):
        clear_principal_cache()


def _remember(key: str, p: Principal) -> None:
    if len(_cache) >= MAX_CACHE_ENTRIES:
        _cache.clear()  # crude but bounded; entries are cheap to rebuild
    _cache[key] = (time.monotonic(), p)


async def load_principal(session: AsyncSession, subject: str, *, scopes: tuple[str, ...] = (),
                         acting_for: str | None = None) -> Principal:
    """The principal of a verified token. Raises Unauthenticated (message for logs only) when refused."""
    ttl = get_settings().principal_cache_seconds
    scopes = tuple(sorted(set(scopes)))
    key = f"{subject}|{' '.join(scopes)}|{acting_for or ''}"
    hit = _cache.get(key)
    if hit and ttl > 0 and time.monotonic() - hit[0] < ttl:
        return hit[1]
    try:
        user_id = uuid.UUID(subject)
    except ValueError:
        raise Unauthenticated("token subject is not a user id") from None
    today = clock.today_rome()

    ra = (sa.select(sa.func.coalesce(
        sa.func.array_agg(pg_array([sa.cast(RoleAssignment.role, sa.Text),
                                     sa.cast(RoleAssignment.organisation_id, sa.Text)])),
        sa.text("'{}'")))
        .where(RoleAssignment.user_id == AppUser.id, RoleAssignment.effective_sql(today)).scalar_subquery())
    tm = (sa.select(sa.func.coalesce(sa.func.array_agg(sa.distinct(TeamMember.team_id)), sa.text("'{}'")))
          .where(TeamMember.user_id == AppUser.id, active_sql(TeamMember, today)).scalar_subquery())
    other = aliased(AppUser)
    acting = (sa.select(other.id).where(other.username == acting_for, other.kind == UserKind.person.value,
                                        other.active.is_(True), other.ambito_id == AppUser.ambito_id)
              .scalar_subquery())
    row = (await session.execute(
        sa.select(AppUser.id, AppUser.username, AppUser.kind, AppUser.ambito_id, AppUser.active, AppUser.scopes,
                  AppUser.profession, ra.label("grants"), tm.label("teams"),
                  (acting if acting_for else sa.null()).label("acting_id"))
        .where(AppUser.id == user_id)
    )).one_or_none()
    if row is None or not row.active:
        raise Unauthenticated("unknown or inactive user")
    acting_id = None
    if row.kind == UserKind.system:
        if not set(scopes) <= set(row.scopes or []):
            raise Unauthenticated("scope not granted to this client")
        if acting_for is not None:
            if row.acting_id is None:
                raise Unauthenticated("act_for does not name an active user of the client's Ambito")
            acting_id = row.acting_id
    else:
        if acting_for is not None:
            raise Unauthenticated("act_for is only allowed for system clients")
        scopes = ()  # a person's rights come from role assignments, never from token scopes
    grants = tuple(sorted({Grant(Role(r), uuid.UUID(o)) for r, o in (row.grants or [])},
                          key=lambda g: (g.role.value, str(g.organisation_id))))
    p = Principal(user_id=row.id, username=row.username, kind=UserKind(row.kind), ambito_id=row.ambito_id,
                  grants=grants, team_ids=tuple(sorted(row.teams or (), key=str)), scopes=scopes,
                  acting_for=acting_for, profession=row.profession, acting_for_user_id=acting_id)
    _remember(key, p)
    return p
