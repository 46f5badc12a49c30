"""Who reaches which person and cartella: the row filters every query on case data applies, the projection a
principal gets of a person, and the consent and break-glass checks behind them.

Identity data is shared inside one Ambito and never across two: every person query filters on the principal's
Ambito, and a person of another Ambito is reported as not found (404), never as forbidden, so that its existence
does not leak. Within the Ambito, the role rules of access.yaml (domain.security.scopes) say which scopes reach a
cartella; the conditions behind them are here (`SCOPE_BUILDERS`, registered by the composition root): the owning
comune through the organisation tree (a role held on a sub-ambito reaches its comuni), assignments to the user,
its teams or its organisations, and break-glass grants.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from domain.kernel.errors import Forbidden, NotFound
from domain.kernel.validity import active_sql
from domain.registry.models import (
    BreakGlassGrant,
    Cartella,
    CartellaAssignment,
    Consent,
    GrantorKind,
    Person,
    PersonRelation,
    PersonStatus,
)
from domain.security import audit
from domain.security.models import Role
from domain.security.principal import Principal
from domain.security.scopes import NOW, PROJECTION_RANK, TODAY, memo, role_orgs, role_rules, scope_builder
from domain.territory import queries as territory

_ONE = sa.literal_column("1")
BREAK_GLASS_BASIS = "accesso straordinario (break-glass)"
_ADULT_AT = sa.literal_column("interval '18 years'", sa.Interval)


class ConsentRequired(Forbidden):
    code = "consent_required"
    title = "Consenso necessario"


def visible(principal: Principal) -> sa.ColumnElement[bool]:
    """Persons the principal may see at all: those of its Ambito."""
    return Person.ambito_id == principal.ambito_id


def active(principal: Principal) -> sa.ColumnElement[bool]:
    return sa.and_(visible(principal), Person.status == PersonStatus.active.value)


# The person (or cartella) a single check is about, bound at execution.
PERSON_ID = sa.bindparam("access_person_id", type_=sa.Uuid())
CARTELLA_ID = sa.bindparam("access_cartella_id", type_=sa.Uuid())

def owning_org(principal, role, org_ids) -> ColumnElement[bool]:
    return Cartella.owning_comune_id.in_(territory.orgs_under(org_ids))


def _active_assignment(principal, org_ids) -> ColumnElement[bool]:
    now = NOW
    who = [CartellaAssignment.user_id == principal.user_id]
    if principal.team_ids:
        who.append(CartellaAssignment.team_id.in_(list(principal.team_ids)))
    if org_ids:
        who.append(CartellaAssignment.organisation_id.in_(org_ids))
    return sa.exists().where(CartellaAssignment.cartella_id == Cartella.id, active_sql(CartellaAssignment, now),
                             sa.or_(*who))


def _assigned(principal, role, org_ids) -> ColumnElement[bool]:
    return _active_assignment(principal, org_ids)


def break_glass_active(principal, person_id_col) -> ColumnElement[bool]:
    now = NOW
    return sa.exists().where(
        BreakGlassGrant.user_id == principal.user_id, BreakGlassGrant.person_id == person_id_col,
        BreakGlassGrant.expires_at > now, BreakGlassGrant.ended_at.is_(None),
    )


def _break_glass(principal, role, org_ids) -> ColumnElement[bool]:
    return break_glass_active(principal, Cartella.person_id)


# The conditions behind the scope names of access.yaml; the composition root registers them with
# domain.security.scopes.register_scope.
SCOPE_BUILDERS = {"owning_org": owning_org, "assigned": _assigned, "break_glass": _break_glass}

def role_cartella_filter(principal, role: Role, *, with_break_glass: bool = True) -> ColumnElement[bool]:
    rule = role_rules()[role]
    orgs = role_orgs(principal, role)
    parts = [scope_builder(s)(principal, role, orgs) for s in rule.scopes if with_break_glass or s != "break_glass"]
    if not parts:
        return sa.false()
    return sa.and_(Cartella.ambito_id == principal.ambito_id, sa.or_(*parts))


def owns_cases(principal) -> bool:
    """The principal holds a role that owns cases (the `owning_org` scope: a comune, or a level above it)."""
    rules = role_rules()
    return any("owning_org" in rules[r].scopes for r in principal.roles)


def owner_filter(principal) -> ColumnElement[bool]:
    """Cartelle the principal reaches as their owner (the `owning_org` scope: the comune that holds the social
    function, or a level above it): acts of the owner such as closing or transferring need it."""
    return memo(principal, "owner_filter", None, lambda: _owner_filter(principal))


def _owner_filter(principal) -> ColumnElement[bool]:
    rules = role_rules()
    parts = [owning_org(principal, r, role_orgs(principal, r)) for r in sorted(principal.roles)
             if "owning_org" in rules[r].scopes]
    return sa.and_(Cartella.ambito_id == principal.ambito_id, sa.or_(*parts)) if parts else sa.false()


def cartella_filter(principal) -> ColumnElement[bool]:
    """The row filter for cartelle and everything that hangs off them: deny by default."""
    return memo(principal, "cartella_filter", None, lambda: _cartella_filter(principal))


def _cartella_filter(principal) -> ColumnElement[bool]:
    parts = [role_cartella_filter(principal, r) for r in sorted(principal.roles)]
    return sa.or_(*parts) if parts else sa.false()


def consent_in_force(at=TODAY) -> ColumnElement[bool]:
    """A consent row (Consent) is in force on `at`: not revoked, within its period, and its basis still holds — a
    parent's consent only while the person is a minor, a tutore's or an AdS's only while the appointment runs.
    Reads and plan activation use this one predicate, so a consent lapses for both on the same day."""
    person, rel = sa.orm.aliased(Person), sa.orm.aliased(PersonRelation)
    minor = (sa.select(_ONE).select_from(person)
             .where(person.id == Consent.person_id,
                    sa.or_(person.birth_date.is_(None), person.birth_date + _ADULT_AT > at))
             .correlate(Consent).exists())
    appointed = (sa.select(_ONE).select_from(rel)
                 .where(rel.id == Consent.grantor_relation_id, active_sql(rel, at)).correlate(Consent).exists())
    return sa.and_(
        Consent.revoked_at.is_(None), active_sql(Consent, at),
        sa.or_(Consent.grantor_kind == GrantorKind.self.value,
               sa.and_(Consent.grantor_kind == GrantorKind.parent_responsibility.value, minor),
               sa.and_(Consent.grantor_kind.in_([GrantorKind.tutore.value, GrantorKind.ads.value]), appointed)))


def consent_active(person_id_col, purpose: str) -> ColumnElement[bool]:
    return sa.exists().where(Consent.person_id == person_id_col, Consent.purpose == purpose, consent_in_force())


def _legal_basis_assignment(principal, role: Role, person_id_col) -> ColumnElement[bool]:
    now = NOW
    orgs = role_orgs(principal, role)
    who = [CartellaAssignment.user_id == principal.user_id]
    if principal.team_ids:
        who.append(CartellaAssignment.team_id.in_(list(principal.team_ids)))
    if orgs:
        who.append(CartellaAssignment.organisation_id.in_(orgs))
    return (sa.select(_ONE).select_from(CartellaAssignment)
            .join(Cartella, Cartella.id == CartellaAssignment.cartella_id)
            .where(Cartella.person_id == person_id_col, CartellaAssignment.legal_basis.is_not(None),
                   active_sql(CartellaAssignment, now), sa.or_(*who))
            .correlate_except(Cartella, CartellaAssignment).exists())


def _person_cartelle(person_id_col, *where) -> ColumnElement[bool]:
    """EXISTS a cartella of the person matching `where`. The cartella is always the sub-query's own FROM (never
    correlated to an enclosing query on cartella), so the check is about the person, whatever query it sits in."""
    return (sa.select(_ONE).select_from(Cartella).where(Cartella.person_id == person_id_col, *where)
            .correlate_except(Cartella).exists())


@dataclass(frozen=True)
class PersonAccess:
    """What a principal may see of one person, and why."""

    projection: str  # none | minimal | identity | full
    in_scope: bool
    consent_missing: bool
    break_glass: bool  # the access rests on an active break-glass grant (no scope would give it)
    purpose: str | None = None
    unowned: bool = False  # no cartella yet: the registry record is managed by the registering (identity) roles

    @property
    def allowed(self) -> bool:
        return self.projection != "none"


def access_columns(principal, person_id_col) -> list[ColumnElement]:
    return memo(principal, "access_columns", person_id_col, lambda: _access_columns(principal, person_id_col))


def _access_columns(principal, person_id_col) -> list[ColumnElement]:
    """The columns `decide` needs, as correlated sub-queries on `person_id_col`: add them to the query that loads
    the person and the whole check costs no extra round trip. Per role: in scope, consent (or legal basis);
    then an active break-glass grant and whether the person has any cartella at all."""
    rules = role_rules()
    cols: list[ColumnElement] = []
    for r in sorted(principal.roles):
        # break-glass has a column of its own below, so `decide` knows when the access rests on it
        cols.append(_person_cartelle(person_id_col, role_cartella_filter(principal, r, with_break_glass=False)))
        purpose = rules[r].consent_purpose
        cols.append(sa.or_(consent_active(person_id_col, purpose), _legal_basis_assignment(principal, r, person_id_col))
                    if purpose else sa.true())
    cols.append(break_glass_active(principal, person_id_col))
    cols.append(_person_cartelle(person_id_col))
    return [c.label(f"_acc{i}") for i, c in enumerate(cols)]


def decide(principal, values) -> PersonAccess:
    """The projection from the values of `access_columns` (same order)."""
    rules = role_rules()
    roles = sorted(principal.roles)
    best, in_scope, consent_missing, purpose = "none", False, False, None
    for i, r in enumerate(roles):
        rule = rules[r]
        scoped, consented = values[2 * i], values[2 * i + 1]
        if rule.identity and PROJECTION_RANK["identity"] > PROJECTION_RANK[best]:
            best = "identity"
        if scoped:
            if consented:
                in_scope = True
                if PROJECTION_RANK[rule.projection] > PROJECTION_RANK[best]:
                    best, purpose = rule.projection, rule.consent_purpose
            else:
                consent_missing = True
    glass, has_cartella = bool(values[2 * len(roles)]), bool(values[2 * len(roles) + 1])
    via_glass = glass and not in_scope  # break_glass below: the access rests on the grant
    if via_glass:
        best, in_scope = "full", True
    unowned = False
    if not has_cartella and not in_scope and best == "identity":
        # Nobody has the person in charge yet: the record holds only what was typed in at registration, and the
        # registering roles of the Ambito keep it (correct it, add relations and consent, open the first cartella).
        best, unowned = "full", True
    return PersonAccess(best, in_scope, consent_missing and not in_scope, via_glass, purpose, unowned)


async def person_access(session, principal, person_id: uuid.UUID, person_ambito_id: uuid.UUID) -> PersonAccess:
    """One round trip: per role, is the person in scope and, where the role needs it, is consent there."""
    if person_ambito_id != principal.ambito_id:
        return PersonAccess("none", False, False, False)
    stmt = memo(principal, "person_access", None, lambda: sa.select(*access_columns(principal, PERSON_ID)))
    row = (await session.execute(stmt, {"access_person_id": person_id})).one()
    return decide(principal, tuple(row))


def case_access_filter(principal, person_id_col=Person.id) -> ColumnElement[bool]:
    """Persons some role of the principal reaches with its own projection (in scope and, for the roles that need
    it, with consent or a legal basis), or opened through break-glass: the row filter of lists for principals
    without an identity role. Same Ambito is implied by the cartella filter."""
    return memo(principal, "case_access_filter", person_id_col, lambda: _case_access_filter(principal, person_id_col))


def _case_access_filter(principal, person_id_col) -> ColumnElement[bool]:
    rules = role_rules()
    parts: list[ColumnElement[bool]] = []
    for r in sorted(principal.roles):
        scope = _person_cartelle(person_id_col, role_cartella_filter(principal, r))
        purpose = rules[r].consent_purpose
        parts.append(sa.and_(scope, sa.or_(consent_active(person_id_col, purpose),
                                           _legal_basis_assignment(principal, r, person_id_col)))
                     if purpose else scope)
    parts.append(break_glass_active(principal, person_id_col))
    return sa.or_(*parts)



# The person of the cartella of a single check, as an init-plan sub-query: the access columns then look at all the
# person's cartelle (never correlated to the outer query on cartella).
_CARTELLA_PERSON = (sa.select(Cartella.person_id).where(Cartella.id == CARTELLA_ID).correlate_except(Cartella)
                    .scalar_subquery())


async def cartella_in_scope(session, principal, cartella_id: uuid.UUID, *, for_update: bool = False,
                            not_found: str = "Cartella non trovata.") -> Cartella:
    """The cartella if the row filter reaches it (404 otherwise, so existence is not revealed), checking consent
    when the principal reaches it only through a role that needs one (403 consent_required). A caller checking a
    record that hangs off the cartella (a VMD, a plan, an attachment) passes that record's own `not_found`, so an
    out-of-scope record answers exactly like a missing one."""
    q = memo(principal, "cartella_in_scope", None, lambda: sa.select(
        Cartella, *access_columns(principal, _CARTELLA_PERSON)).where(
        Cartella.id == CARTELLA_ID, cartella_filter(principal)))
    if for_update:
        q = q.with_for_update(of=Cartella)
    row = (await session.execute(q, {"access_cartella_id": cartella_id})).one_or_none()
    access = decide(principal, tuple(row)[1:]) if row is not None else None
    if access is None or not access.in_scope:
        # A denied attempt is about a person too: the person's access log and the DPO must see it.
        person_id = row[0].person_id if row is not None else (await session.execute(
            sa.select(Cartella.person_id).where(Cartella.id == cartella_id))).scalar_one_or_none()
        audit.record(action="denied", object_type="cartella", object_ids=[cartella_id], person_ids=[person_id])
        if access is not None and access.consent_missing:
            raise ConsentRequired("Consenso della persona assente o revocato per questa finalità.")
        raise NotFound(not_found)
    c = row[0]
    audit.note_grounds(c.person_id, purpose=access.purpose, break_glass=access.break_glass,
                       legal_basis=BREAK_GLASS_BASIS if access.break_glass else None)
    return c


# ---------------------------------------------------------------- for the contexts above (added with the PUA/VMD
# reshape): row filters other contexts apply to their own rows, so that nobody outside selects cartelle.
def person_has_case(principal, person_id_col, *, roles=None) -> ColumnElement[bool]:
    """EXISTS a cartella of the person (`person_id_col`, e.g. AccessRequest.person_id) that the principal reaches
    through one of `roles` (every role it holds when None): owning comune, assignments, break-glass."""
    chosen = sorted(principal.roles) if roles is None else [r for r in roles if principal.has_role(r)]
    if not chosen:
        return sa.false()
    return _person_cartelle(person_id_col, sa.or_(*[role_cartella_filter(principal, r) for r in chosen]))


def readable_cartella_ids(principal, *, person_id: uuid.UUID | None = None) -> sa.Select:
    """The ids of the cartelle the principal reaches (of one person, when given), for `X.cartella_id.in_(...)`."""
    q = sa.select(Cartella.id).where(cartella_filter(principal))
    return q.where(Cartella.person_id == person_id) if person_id is not None else q
