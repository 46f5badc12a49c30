"""Administration of users, system clients, role assignments and teams, and the caller's own profile (`/me`).

Rules:
- an administrator acts inside their own Ambito: users, teams and organisations of another Ambito are not found;
- a role is assigned in an organisation whose kind fits the role (ROLE_ORG_KINDS), for a period of days
  (`[valid_from, valid_to)`: valid_to is the first day it no longer applies, domain.kernel.validity); the same role
  in the same organisation cannot overlap in time;
- ending an assignment or membership without a date ends it at once (valid_to = today);
- a team member brings the organisation in which they hold a role at the start of the membership: it gives the side
  (ASST, comune, Ambito...) they represent in the team;
- every change here invalidates the principal cache of this process (see domain.security.principal).
"""
from __future__ import annotations

import uuid
from datetime import date

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.kernel import clock
from domain.kernel.errors import Conflict, Forbidden, Invalid, NotFound
from domain.kernel.validity import active_on, active_sql, overlaps_sql
from domain.security import scopes
from domain.security.models import TEAM_TYPE_LABELS, AppUser, Role, RoleAssignment, Team, TeamMember, UserKind
from domain.security.principal import Principal, invalidate_principals
from domain.territory import queries as territory
from domain.territory.models import OrgKind
from schemas.security import (
    MembershipPublic,
    MePublic,
    OrganisationRef,
    PeriodEnd,
    RoleAssignmentCreate,
    RoleAssignmentPublic,
    TeamCreate,
    TeamDetail,
    TeamMemberCreate,
    TeamMemberPublic,
    TeamPublic,
    UserCreate,
    UserDetail,
    UserPublic,
    UserUpdate,
)

# Any organisation of an Ambito. The Region (OrgKind.regione, a root above no Ambito) holds only the regional
# helpdesk, the administrators who create and approve it and the DPO who audits its searches: an Ambito's
# administrator finds no Region among its organisations, so it cannot grant the regional role
# (docs/decisions/regional-search.md).
_ANY = frozenset(OrgKind) - {OrgKind.regione}
# Which kinds of organisation a role may be held in.
ROLE_ORG_KINDS: dict[Role, frozenset[OrgKind]] = {
    Role.comune_social_worker: frozenset({OrgKind.comune, OrgKind.sub_ambito}),
    Role.sub_ambito_coordinator: frozenset({OrgKind.sub_ambito}),
    Role.ambito_pua_social_worker: frozenset({OrgKind.ambito, OrgKind.ufficio_di_piano}),
    Role.asst_pua_operator: frozenset({OrgKind.asst, OrgKind.asst_unit}),
    Role.asst_front_desk: frozenset({OrgKind.asst, OrgKind.asst_unit}),
    Role.cdc_assessor: frozenset({OrgKind.asst, OrgKind.asst_unit}),
    Role.cot_operator: frozenset({OrgKind.asst, OrgKind.asst_unit}),
    Role.ward_staff: frozenset({OrgKind.asst, OrgKind.asst_unit}),
    Role.mmg: frozenset({OrgKind.mmg_practice}),
    Role.csc_operator: frozenset({OrgKind.csc}),
    Role.analyst: frozenset({OrgKind.ufficio_di_piano, OrgKind.csc, OrgKind.ambito, OrgKind.ats}),
    Role.ets_operator: frozenset({OrgKind.ets}),
    Role.rsa_operator: frozenset({OrgKind.udo_operator}),
    Role.system_admin: frozenset(OrgKind),
    Role.dpo: frozenset(OrgKind),
    Role.data_steward: _ANY,
    Role.integration_operator: _ANY,
    Role.regional_operator: frozenset({OrgKind.regione}),
}


def _today() -> date:
    return clock.today_rome()


# ---------------------------------------------------------------------------------------------------- lookups
async def _org(session: AsyncSession, principal: Principal, *, organisation_id: uuid.UUID | None,
               organisation_code: str | None, field: str = "organisation_id"):
    org = (await territory.get_org(session, organisation_id) if organisation_id
           else await territory.org_by_code(session, organisation_code or ""))
    # An organisation of another Ambito is reported exactly like a missing one.
    if org is None or (org.ambito_id or org.id) != principal.ambito_id:
        raise Invalid(field, "organizzazione non trovata nell'Ambito")
    return org


async def _user(session: AsyncSession, principal: Principal, user_id: uuid.UUID, *, lock: bool = False) -> AppUser:
    q = sa.select(AppUser).where(AppUser.id == user_id, AppUser.ambito_id == principal.ambito_id)
    if lock:
        q = q.with_for_update()
    u = (await session.execute(q)).scalar_one_or_none()
    if u is None:
        raise NotFound("Utente non trovato.")
    return u


async def _team(session: AsyncSession, principal: Principal, team_id: uuid.UUID) -> Team:
    t = (await session.execute(sa.select(Team).where(Team.id == team_id, Team.ambito_id == principal.ambito_id))
         ).scalar_one_or_none()
    if t is None:
        raise NotFound("Équipe non trovata.")
    return t


async def _roles_of(session: AsyncSession, user_id: uuid.UUID, *, only_active_on: date | None = None
                    ) -> list[RoleAssignmentPublic]:
    q = sa.select(RoleAssignment).where(RoleAssignment.user_id == user_id)
    if only_active_on:
        q = q.where(RoleAssignment.effective_sql(only_active_on))
    rows = list((await session.execute(q)).scalars())
    orgs = await territory.get_orgs(session, (a.organisation_id for a in rows))
    rows.sort(key=lambda a: (-a.valid_from.toordinal(), str(a.role), orgs[a.organisation_id].code))
    today = _today()
    return [RoleAssignmentPublic.of(a, orgs[a.organisation_id], today=today) for a in rows]


async def _memberships_of(session: AsyncSession, user_id: uuid.UUID, *, only_active_on: date | None = None
                          ) -> list[MembershipPublic]:
    q = (sa.select(TeamMember, Team)
         .join(Team, Team.id == TeamMember.team_id)
         .where(TeamMember.user_id == user_id)
         .order_by(Team.code, TeamMember.valid_from.desc()))
    if only_active_on:
        q = q.where(active_sql(TeamMember, only_active_on), Team.active.is_(True))
    rows = (await session.execute(q)).all()
    orgs = await territory.get_orgs(session, (m.organisation_id for m, _ in rows))
    today = _today()
    return [MembershipPublic(id=m.id, team_id=t.id, team_code=t.code, team_name=t.name, team_type=t.type,
                             team_type_label=TEAM_TYPE_LABELS[str(t.type)],
                             organisation=OrganisationRef.of(orgs[m.organisation_id]),
                             role_in_team=m.role_in_team, valid_from=m.valid_from, valid_to=m.valid_to,
                             active=active_on(m.valid_from, m.valid_to, today))
            for m, t in rows]


async def _detail(session: AsyncSession, user: AppUser) -> UserDetail:
    return UserDetail(**UserPublic.of(user).model_dump(), roles=await _roles_of(session, user.id),
                      teams=await _memberships_of(session, user.id))


# ---------------------------------------------------------------------------------------------------- users
def _check_scopes(kind: UserKind, scopes: list[str]) -> list[str]:
    if scopes and kind != UserKind.system:
        raise Invalid("scopes", "gli scope si assegnano solo ai client di sistema")
    return sorted(set(scopes))


async def create_user(session: AsyncSession, *, principal: Principal, data: UserCreate) -> UserDetail:
    exists = (await session.execute(sa.select(AppUser.id).where(AppUser.username == data.username))).first()
    if exists:
        raise Conflict("Username già in uso.", field="username")
    user = AppUser(username=data.username, display_name=data.display_name, kind=data.kind,
                   profession=data.profession, email=data.email, ambito_id=principal.ambito_id,
                   scopes=_check_scopes(data.kind, data.scopes))
    session.add(user)
    await session.flush()
    for i, r in enumerate(data.roles):
        try:
            await _add_role(session, principal, user, r)
        except Invalid as e:
            raise Invalid(f"roles.{i}.{e.field}", e.reason) from None
    invalidate_principals(session)
    return await _detail(session, user)


async def list_users(session: AsyncSession, *, principal: Principal, kind: UserKind | None = None,
                     q: str | None = None, role: Role | None = None, organisation_id: uuid.UUID | None = None,
                     active: bool | None = None, limit: int = 50, cursor: str | None = None
                     ) -> tuple[list[AppUser], str | None]:
    """Users of the admin's Ambito ordered by username; keyset on username (unique)."""
    stmt = sa.select(AppUser).where(AppUser.ambito_id == principal.ambito_id)
    if kind is not None:
        stmt = stmt.where(AppUser.kind == kind.value)
    if active is not None:
        stmt = stmt.where(AppUser.active.is_(active))
    if q:
        like = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(sa.or_(AppUser.username.ilike(like + "%", escape="\\"),
                                 AppUser.display_name.ilike("%" + like + "%", escape="\\")))
    if role is not None or organisation_id is not None:
        ra = sa.select(RoleAssignment.id).where(RoleAssignment.user_id == AppUser.id,
                                                RoleAssignment.effective_sql(_today()))
        if role is not None:
            ra = ra.where(RoleAssignment.role == role.value)
        if organisation_id is not None:
            ra = ra.where(RoleAssignment.organisation_id == organisation_id)
        stmt = stmt.where(ra.exists())
    if cursor:
        stmt = stmt.where(AppUser.username > cursor)
    rows = list((await session.execute(stmt.order_by(AppUser.username).limit(limit + 1))).scalars())
    nxt = rows[limit - 1].username if len(rows) > limit else None
    return rows[:limit], nxt


async def get_user(session: AsyncSession, *, principal: Principal, user_id: uuid.UUID) -> UserDetail:
    return await _detail(session, await _user(session, principal, user_id))


async def update_user(session: AsyncSession, *, principal: Principal, user_id: uuid.UUID,
                      data: UserUpdate) -> UserDetail:
    user = await _user(session, principal, user_id, lock=True)
    changes = data.model_dump(exclude_unset=True)
    for f in ("display_name", "active"):
        if f in changes and changes[f] is None:
            raise Invalid(f, "non può essere nullo")
    if "scopes" in changes:
        changes["scopes"] = _check_scopes(UserKind(user.kind), changes["scopes"] or [])
    for k, v in changes.items():
        setattr(user, k, v)
    session.add(user)
    await session.flush()
    invalidate_principals(session)
    return await _detail(session, user)


# ---------------------------------------------------------------------------------------------------- roles
async def _add_role(session: AsyncSession, principal: Principal, user: AppUser,
                    data: RoleAssignmentCreate) -> RoleAssignmentPublic:
    org = await _org(session, principal, organisation_id=data.organisation_id,
                     organisation_code=data.organisation_code)
    allowed = ROLE_ORG_KINDS[data.role]
    if OrgKind(org.kind) not in allowed:
        raise Invalid("organisation_id", "il ruolo non si esercita in questo tipo di organizzazione "
                                         f"({', '.join(sorted(k.value for k in allowed))})")
    start = data.valid_from or _today()
    if data.valid_to is not None and data.valid_to <= start:
        raise Invalid("valid_to", "deve seguire l'inizio della validità (è il primo giorno non più valido)")
    clash = (await session.execute(sa.select(RoleAssignment.id).where(
        RoleAssignment.user_id == user.id, RoleAssignment.role == data.role.value,
        RoleAssignment.organisation_id == org.id, overlaps_sql(RoleAssignment, start, data.valid_to)))).first()
    if clash:
        raise Conflict("L'utente ha già questo ruolo in questa organizzazione nel periodo indicato.")
    a = RoleAssignment(user_id=user.id, role=data.role, organisation_id=org.id, valid_from=start,
                       valid_to=data.valid_to, pending=scopes.reaches_personal_data(data.role),
                       requested_by=principal.user_id)
    session.add(a)
    await session.flush()
    return RoleAssignmentPublic.of(a, org, today=_today())


def _not_on_oneself(principal: Principal, user_id: uuid.UUID) -> None:
    if user_id == principal.user_id:
        raise Forbidden("Un amministratore non può modificare i propri ruoli.", reason="own_roles")


async def _assignment_for_change(session: AsyncSession, principal: Principal,
                                 assignment_id: uuid.UUID) -> RoleAssignment:
    """A role assignment of the Ambito, locked, that the administrator may change: not one of its own (403)."""
    a = (await session.execute(
        sa.select(RoleAssignment).join(AppUser, AppUser.id == RoleAssignment.user_id)
        .where(RoleAssignment.id == assignment_id, AppUser.ambito_id == principal.ambito_id)
        .with_for_update(of=RoleAssignment))).scalar_one_or_none()
    if a is None:
        raise NotFound("Assegnazione di ruolo non trovata.")
    _not_on_oneself(principal, a.user_id)
    return a


async def approve_role(session: AsyncSession, *, principal: Principal, assignment_id: uuid.UUID
                       ) -> RoleAssignmentPublic:
    """A second administrator approves a grant that reaches personal data: neither the one who asked for it nor
    the user who receives it (403); an assignment that waits for nothing is a conflict (409)."""
    a = await _assignment_for_change(session, principal, assignment_id)
    if not a.pending:
        raise Conflict("L'assegnazione non attende approvazione.", state="approved", action="approve",
                       allowed_actions=[])
    if a.requested_by == principal.user_id:
        raise Forbidden("L'assegnazione va approvata da un secondo amministratore.", reason="same_administrator")
    a.pending, a.approved_by, a.approved_at = False, principal.user_id, clock.now()
    session.add(a)
    await session.flush()
    invalidate_principals(session)
    return RoleAssignmentPublic.of(a, await territory.get_org(session, a.organisation_id), today=_today())


async def add_role(session: AsyncSession, *, principal: Principal, user_id: uuid.UUID,
                   data: RoleAssignmentCreate) -> RoleAssignmentPublic:
    _not_on_oneself(principal, user_id)
    user = await _user(session, principal, user_id, lock=True)
    out = await _add_role(session, principal, user, data)
    invalidate_principals(session)
    return out


def _end_date(valid_from: date, current_end: date | None, data: PeriodEnd | None) -> date:
    today = _today()
    if current_end is not None and current_end <= today:
        raise Conflict("Già terminata.")
    end = data.valid_to if data and data.valid_to else today
    # end == valid_from is allowed: a future assignment that never takes effect.
    if end < valid_from:
        raise Invalid("valid_to", "precede l'inizio della validità")
    if current_end is not None and end >= current_end:
        raise Conflict("Termina già in quella data o prima.")
    return end


async def end_role(session: AsyncSession, *, principal: Principal, assignment_id: uuid.UUID,
                   data: PeriodEnd | None = None) -> RoleAssignmentPublic:
    a = await _assignment_for_change(session, principal, assignment_id)
    org = await territory.get_org(session, a.organisation_id)
    a.valid_to = _end_date(a.valid_from, a.valid_to, data)
    session.add(a)
    await session.flush()
    invalidate_principals(session)
    return RoleAssignmentPublic.of(a, org, today=_today())


# ---------------------------------------------------------------------------------------------------- teams
async def create_team(session: AsyncSession, *, principal: Principal, data: TeamCreate) -> TeamDetail:
    if (await session.execute(sa.select(Team.id).where(Team.code == data.code))).first():
        raise Conflict("Codice équipe già in uso.", field="code")
    org = None
    if data.organisation_id or data.organisation_code:
        org = await _org(session, principal, organisation_id=data.organisation_id,
                         organisation_code=data.organisation_code)
    team = Team(ambito_id=principal.ambito_id, code=data.code, name=data.name, type=data.type,
                organisation_id=org.id if org else None)
    session.add(team)
    await session.flush()
    return TeamDetail(**TeamPublic.of(team, org).model_dump(), members=[], sides=[])


async def list_teams(session: AsyncSession, *, principal: Principal, type: str | None = None,
                     limit: int = 50, cursor: str | None = None) -> tuple[list[TeamPublic], str | None]:
    stmt = sa.select(Team).where(Team.ambito_id == principal.ambito_id)
    if type:
        stmt = stmt.where(Team.type == str(type))
    if cursor:
        stmt = stmt.where(Team.code > cursor)
    rows = list((await session.execute(stmt.order_by(Team.code).limit(limit + 1))).scalars())
    nxt = rows[limit - 1].code if len(rows) > limit else None
    rows = rows[:limit]
    orgs = await territory.get_orgs(session, (t.organisation_id for t in rows))
    return [TeamPublic.of(t, orgs.get(t.organisation_id)) for t in rows], nxt


async def get_team(session: AsyncSession, *, principal: Principal, team_id: uuid.UUID) -> TeamDetail:
    team = await _team(session, principal, team_id)
    org = await territory.get_org(session, team.organisation_id)
    rows = (await session.execute(
        sa.select(TeamMember, AppUser)
        .join(AppUser, AppUser.id == TeamMember.user_id)
        .where(TeamMember.team_id == team.id)
        .order_by(AppUser.username, TeamMember.valid_from))).all()
    orgs = await territory.get_orgs(session, (m.organisation_id for m, _ in rows))
    today = _today()
    members = [_member_public(m, u, orgs[m.organisation_id], today) for m, u in rows]
    sides = sorted({m.organisation.side for m in members if m.active})
    return TeamDetail(**TeamPublic.of(team, org).model_dump(), members=members, sides=sides)


def _member_public(m: TeamMember, user: AppUser, org, today: date | None = None) -> TeamMemberPublic:
    return TeamMemberPublic(id=m.id, team_id=m.team_id, user_id=user.id, username=user.username,
                            display_name=user.display_name, organisation=OrganisationRef.of(org),
                            role_in_team=m.role_in_team, valid_from=m.valid_from, valid_to=m.valid_to,
                            active=active_on(m.valid_from, m.valid_to, today or _today()))


async def add_member(session: AsyncSession, *, principal: Principal, team_id: uuid.UUID,
                     data: TeamMemberCreate) -> TeamMemberPublic:
    team = await _team(session, principal, team_id)
    try:
        user = await _user(session, principal, data.user_id)
    except NotFound:
        raise Invalid("user_id", "utente non trovato nell'Ambito") from None
    if not user.active:
        raise Invalid("user_id", "utente disattivato")
    start = data.valid_from or _today()
    if data.valid_to is not None and data.valid_to <= start:
        raise Invalid("valid_to", "deve seguire l'inizio della validità (è il primo giorno non più valido)")
    # The organisations in which the user holds a role when the membership starts.
    held = list((await territory.get_orgs(session, (await session.execute(
        sa.select(RoleAssignment.organisation_id)
        .where(RoleAssignment.user_id == user.id, RoleAssignment.effective_sql(start)))).scalars())).values())
    if data.organisation_id or data.organisation_code:
        org = await _org(session, principal, organisation_id=data.organisation_id,
                         organisation_code=data.organisation_code)
        if org.id not in {o.id for o in held}:
            raise Invalid("organisation_id", "l'utente non ha un ruolo in questa organizzazione alla data di inizio")
    elif len(held) == 1:
        org = held[0]
    else:
        raise Invalid("organisation_id", "indicare l'organizzazione che il membro rappresenta"
                      if held else "l'utente non ha ruoli attivi alla data di inizio")
    clash = (await session.execute(sa.select(TeamMember.id).where(
        TeamMember.team_id == team.id, TeamMember.user_id == user.id,
        overlaps_sql(TeamMember, start, data.valid_to)))).first()
    if clash:
        raise Conflict("L'utente è già membro dell'équipe nel periodo indicato.")
    m = TeamMember(team_id=team.id, user_id=user.id, organisation_id=org.id, role_in_team=data.role_in_team,
                   valid_from=start, valid_to=data.valid_to)
    session.add(m)
    await session.flush()
    invalidate_principals(session)
    return _member_public(m, user, org)


async def end_member(session: AsyncSession, *, principal: Principal, member_id: uuid.UUID,
                     data: PeriodEnd | None = None) -> TeamMemberPublic:
    row = (await session.execute(
        sa.select(TeamMember, AppUser)
        .join(Team, Team.id == TeamMember.team_id)
        .join(AppUser, AppUser.id == TeamMember.user_id)
        .where(TeamMember.id == member_id, Team.ambito_id == principal.ambito_id)
        .with_for_update(of=TeamMember))).one_or_none()
    if row is None:
        raise NotFound("Membro dell'équipe non trovato.")
    m, u = row
    o = await territory.get_org(session, m.organisation_id)
    m.valid_to = _end_date(m.valid_from, m.valid_to, data)
    session.add(m)
    await session.flush()
    invalidate_principals(session)
    return _member_public(m, u, o)


# ---------------------------------------------------------------------------------------------------- me
async def me(session: AsyncSession, *, principal: Principal) -> MePublic:
    user = await session.get(AppUser, principal.user_id)
    ambito = await territory.get_org(session, principal.ambito_id)
    today = _today()
    return MePublic(
        id=user.id, username=user.username, display_name=user.display_name, kind=user.kind,
        profession=user.profession, ambito=OrganisationRef.of(ambito),
        roles=await _roles_of(session, user.id, only_active_on=today),
        teams=await _memberships_of(session, user.id, only_active_on=today),
        permissions=sorted(str(p) for p in principal.permissions),
        scopes=list(principal.scopes), acting_for=principal.acting_for,
    )
