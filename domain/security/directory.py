"""Who is who, for the other contexts: the readers they use instead of selecting users, role assignments, teams
and memberships themselves. Every "active on this day" check goes through domain.kernel.validity."""
from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.kernel import clock, session_memo
from domain.kernel.errors import Invalid
from domain.kernel.validity import active_sql
from domain.security.models import AppUser, Role, RoleAssignment, Team, TeamMember, TeamType, UserKind
from domain.security.permissions import Permission, permissions_of
from domain.territory import queries as territory


def _ids(values: Iterable[uuid.UUID | None]) -> list[uuid.UUID]:
    return sorted({v for v in values if v is not None}, key=str)


for _table in ("app_user", "role_assignment"):
    session_memo.watch(_table, "security.operator")

# ---------------------------------------------------------------------------------------------------- users
@dataclass(frozen=True)
class UserCard:
    id: uuid.UUID
    display_name: str
    profession: str | None


async def user_cards(session: AsyncSession, ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, UserCard]:
    wanted = _ids(ids)
    if not wanted:
        return {}
    rows = (await session.execute(sa.select(AppUser.id, AppUser.display_name, AppUser.profession)
                                  .where(AppUser.id.in_(wanted)))).all()
    return {r.id: UserCard(r.id, r.display_name, r.profession) for r in rows}


async def active_users(session: AsyncSession, ids: Iterable[uuid.UUID | None], ambito_id: uuid.UUID, *,
                       roles: Iterable[Role] | None = None) -> set[uuid.UUID]:
    """Those of `ids` who are active users of the Ambito (holding, today, one of `roles` when given)."""
    wanted = _ids(ids)
    if not wanted:
        return set()
    q = sa.select(AppUser.id).where(AppUser.id.in_(wanted), AppUser.active.is_(True), AppUser.ambito_id == ambito_id)
    if roles is not None:
        q = q.where(sa.exists().where(RoleAssignment.user_id == AppUser.id,
                                      RoleAssignment.role.in_([Role(r).value for r in roles]),
                                      RoleAssignment.effective_sql(clock.today_rome())))
    return set((await session.execute(q)).scalars())


async def is_active_user(session: AsyncSession, user_id: uuid.UUID, ambito_id: uuid.UUID, *,
                         roles: Iterable[Role] | None = None) -> bool:
    return user_id in await active_users(session, [user_id], ambito_id, roles=roles)


async def require_operator(session: AsyncSession, user_id: uuid.UUID, ambito_id: uuid.UUID, *,
                           field: str) -> UserCard:
    """An active person user of the Ambito holding, today, a role on one of its organisations (a case manager,
    a participant): else Invalid naming `field`."""
    today = clock.today_rome()

    async def load() -> UserCard | None:
        row = (await session.execute(
            sa.select(AppUser.id, AppUser.display_name, AppUser.profession)
            .where(AppUser.id == user_id, AppUser.active.is_(True), AppUser.kind == UserKind.person.value,
                   AppUser.ambito_id == ambito_id,
                   sa.exists().where(RoleAssignment.user_id == AppUser.id,
                                     RoleAssignment.organisation_id.in_(territory.orgs_under([ambito_id])),
                                     RoleAssignment.effective_sql(today)))
        )).first()
        return None if row is None else UserCard(row.id, row.display_name, row.profession)

    # once per session: an import names the same case managers on thousands of rows
    card = await session_memo.get(session, ("security.operator", user_id, ambito_id, today), load)
    if card is None:
        raise Invalid(field, "non è un operatore attivo con un ruolo nell'Ambito")
    return card


async def user_ids_by_username(session: AsyncSession, usernames: Iterable[str | None],
                               ambito_id: uuid.UUID) -> dict[str, uuid.UUID]:
    """The person users of the Ambito with these usernames (an import names case managers by username)."""
    wanted = sorted({u for u in usernames if u})
    if not wanted:
        return {}
    rows = (await session.execute(sa.select(AppUser.username, AppUser.id).where(
        AppUser.username.in_(wanted), AppUser.ambito_id == ambito_id, AppUser.kind == UserKind.person.value))).all()
    return {r.username: r.id for r in rows}


async def user_organisations(session: AsyncSession, user_id: uuid.UUID, day: date | None = None) -> set[uuid.UUID]:
    """The organisations where the user holds an effective role on `day` (today by default)."""
    return set((await session.execute(
        sa.select(RoleAssignment.organisation_id).where(
            RoleAssignment.user_id == user_id, RoleAssignment.effective_sql(day or clock.today_rome()))
    )).scalars())


async def user_roles(session: AsyncSession, user_id: uuid.UUID, day: date | None = None) -> frozenset[Role]:
    rows = (await session.execute(
        sa.select(RoleAssignment.role).where(RoleAssignment.user_id == user_id,
                                             RoleAssignment.effective_sql(day or clock.today_rome())).distinct()
    )).scalars().all()
    return frozenset(Role(r) for r in rows)


async def user_permissions(session: AsyncSession, user_id: uuid.UUID) -> frozenset[Permission]:
    """What another user (not the caller) may do today, e.g. whether a proposed assessor may assess."""
    return permissions_of(await user_roles(session, user_id))


# ---------------------------------------------------------------------------------------------------- teams
async def get_team(session: AsyncSession, team_id: uuid.UUID, ambito_id: uuid.UUID, *,
                   types: Iterable[TeamType] | None = None) -> Team | None:
    """The team if it is active, of the Ambito, and (when given) of one of `types`."""
    q = sa.select(Team).where(Team.id == team_id, Team.ambito_id == ambito_id, Team.active.is_(True))
    if types is not None:
        q = q.where(Team.type.in_([TeamType(t).value for t in types]))
    return (await session.execute(q)).scalar_one_or_none()


async def teams_of_type(session: AsyncSession, ambito_id: uuid.UUID, types: Iterable[TeamType]) -> list[Team]:
    """The active teams of the Ambito of these types, by code."""
    return list((await session.execute(
        sa.select(Team).where(Team.ambito_id == ambito_id, Team.active.is_(True),
                              Team.type.in_([TeamType(t).value for t in types])).order_by(Team.code)
    )).scalars())


async def active_membership(session: AsyncSession, team_id: uuid.UUID, user_id: uuid.UUID) -> TeamMember | None:
    """The user's membership of an active team that applies today (the latest, when several do)."""
    return (await session.execute(
        sa.select(TeamMember).join(Team, Team.id == TeamMember.team_id)
        .where(TeamMember.team_id == team_id, TeamMember.user_id == user_id, Team.active.is_(True),
               active_sql(TeamMember, clock.today_rome()))
        .order_by(TeamMember.valid_from.desc()).limit(1)
    )).scalar_one_or_none()
