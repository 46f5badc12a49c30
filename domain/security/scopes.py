"""Row scopes: the mandatory filter every query on case data applies, and the projection a principal gets.

Rules are data (schemas/security/access.yaml). Scopes resolve through role assignments (with the organisation
tree: a role held on a sub-ambito reaches its comuni), team membership, cartella assignments and break-glass
grants. Later contexts add scope kinds of their own with `register_scope` (e.g. the RSA chosen by an applicant,
the ward that opened a discharge) instead of writing filters beside this one.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from sqlalchemy.sql.elements import ColumnElement

from domain.kernel import clock
from domain.registry.models import Cartella, CartellaAssignment, Organisation, Person
from domain.security.models import BreakGlassGrant, Consent, Role

ACCESS_FILE = Path(__file__).resolve().parents[2] / "schemas" / "security" / "access.yaml"
PROJECTION_RANK = {"none": 0, "minimal": 1, "identity": 2, "full": 3}


@dataclass(frozen=True)
class RoleRule:
    scopes: tuple[str, ...]
    projection: str
    identity: bool
    consent_purpose: str | None


@lru_cache
def access_config() -> dict[str, Any]:
    return yaml.safe_load(ACCESS_FILE.read_text())


@lru_cache
def role_rules() -> dict[Role, RoleRule]:
    doc = access_config()["roles"]
    rules = {Role(r): RoleRule(tuple(v.get("scopes") or ()), v.get("projection", "none"), bool(v.get("identity")),
                               v.get("consent_purpose")) for r, v in doc.items()}
    missing = set(Role) - set(rules)
    if missing:
        raise RuntimeError(f"access.yaml lacks roles: {sorted(missing)}")
    return rules


def projection_fields(name: str) -> set[str] | None:
    """None means every field."""
    value = access_config()["projections"].get(name)
    if value == "*":
        return None
    return set(value or ())


# The clock, as parameters evaluated when a statement executes: the filters of a principal are built once and kept
# on it (`principal.extra`, for as long as the principal itself is cached), and still compare with the clock of
# every request. Scope builders must use these, never clock.now() directly.
NOW = sa.bindparam("access_now", callable_=lambda: clock.now(), type_=sa.DateTime(timezone=True))
TODAY = sa.bindparam("access_today", callable_=lambda: clock.today_rome(), type_=sa.Date())
# The person (or cartella) a single check is about, bound at execution.
PERSON_ID = sa.bindparam("access_person_id", type_=sa.Uuid())
CARTELLA_ID = sa.bindparam("access_cartella_id", type_=sa.Uuid())
_ONE = sa.literal_column("1")


def memo(principal, key: str, anchor: Any, build: Callable[[], Any]) -> Any:
    """Build once per principal (and per anchor object, compared by identity): filters and whole statements that
    depend only on the principal. A statement object reused this way also keeps its SQLAlchemy cache key, so the
    hot path neither builds nor walks the expression again; values come from parameters at execution."""
    cache = principal.extra
    hit = cache.get((key, id(anchor)))
    if hit is not None and hit[0] is anchor:
        return hit[1]
    value = build()
    cache[(key, id(anchor))] = (anchor, value)
    return value


# A scope builder receives (principal, role, org_ids of that role) and returns a condition on Cartella.
ScopeBuilder = Callable[[Any, Role, list[uuid.UUID]], ColumnElement[bool]]
_builders: dict[str, ScopeBuilder] = {}


def register_scope(name: str, builder: ScopeBuilder) -> None:
    _builders[name] = builder


def _owning_org(principal, role, org_ids) -> ColumnElement[bool]:
    orgs = sa.select(Organisation.id).where(
        sa.or_(Organisation.id.in_(org_ids), Organisation.ancestor_ids.overlap(sa.cast(org_ids, Organisation.ancestor_ids.type)))
    )
    return Cartella.owning_comune_id.in_(orgs)


def _active_assignment(principal, org_ids) -> ColumnElement[bool]:
    now = NOW
    who = [CartellaAssignment.user_id == principal.user_id]
    if principal.team_ids:
        who.append(CartellaAssignment.team_id.in_(list(principal.team_ids)))
    if org_ids:
        who.append(CartellaAssignment.organisation_id.in_(org_ids))
    return sa.exists().where(
        CartellaAssignment.cartella_id == Cartella.id,
        CartellaAssignment.valid_from <= now,
        sa.or_(CartellaAssignment.valid_to.is_(None), CartellaAssignment.valid_to > now),
        sa.or_(*who),
    )


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


register_scope("owning_org", _owning_org)
register_scope("assigned", _assigned)
register_scope("break_glass", _break_glass)


def _role_orgs(principal, role: Role) -> list[uuid.UUID]:
    return sorted({g.organisation_id for g in principal.grants if g.role == role}, key=str)


def role_cartella_filter(principal, role: Role, *, with_break_glass: bool = True) -> ColumnElement[bool]:
    rule = role_rules()[role]
    orgs = _role_orgs(principal, role)
    parts = [_builders[s](principal, role, orgs) for s in rule.scopes if with_break_glass or s != "break_glass"]
    if not parts:
        return sa.false()
    return sa.and_(Cartella.ambito_id == principal.ambito_id, sa.or_(*parts))


def owner_filter(principal) -> ColumnElement[bool]:
    """Cartelle the principal reaches as their owner (the `owning_org` scope: the comune that holds the social
    function, or a level above it): acts of the owner such as closing or transferring need it."""
    return memo(principal, "owner_filter", None, lambda: _owner_filter(principal))


def _owner_filter(principal) -> ColumnElement[bool]:
    rules = role_rules()
    parts = [_owning_org(principal, r, _role_orgs(principal, r)) for r in sorted(principal.roles)
             if "owning_org" in rules[r].scopes]
    return sa.and_(Cartella.ambito_id == principal.ambito_id, sa.or_(*parts)) if parts else sa.false()


def cartella_filter(principal) -> ColumnElement[bool]:
    """The row filter for cartelle and everything that hangs off them: deny by default."""
    return memo(principal, "cartella_filter", None, lambda: _cartella_filter(principal))


def _cartella_filter(principal) -> ColumnElement[bool]:
    parts = [role_cartella_filter(principal, r) for r in sorted(principal.roles)]
    return sa.or_(*parts) if parts else sa.false()


def person_case_filter(principal, person_id_col=Person.id) -> ColumnElement[bool]:
    """True when some cartella of the person is within the principal's scope, or a break-glass grant is active."""
    return _person_cartelle(person_id_col, cartella_filter(principal))


def consent_active(person_id_col, purpose: str) -> ColumnElement[bool]:
    today = TODAY
    return sa.exists().where(
        Consent.person_id == person_id_col, Consent.purpose == purpose, Consent.revoked_at.is_(None),
        Consent.valid_from <= today, sa.or_(Consent.valid_to.is_(None), Consent.valid_to >= today),
    )


def _legal_basis_assignment(principal, role: Role, person_id_col) -> ColumnElement[bool]:
    now = NOW
    orgs = _role_orgs(principal, role)
    who = [CartellaAssignment.user_id == principal.user_id]
    if principal.team_ids:
        who.append(CartellaAssignment.team_id.in_(list(principal.team_ids)))
    if orgs:
        who.append(CartellaAssignment.organisation_id.in_(orgs))
    return (sa.select(_ONE).select_from(CartellaAssignment).join(Cartella, Cartella.id == CartellaAssignment.cartella_id)
            .where(Cartella.person_id == person_id_col, CartellaAssignment.legal_basis.is_not(None),
                   CartellaAssignment.valid_from <= now,
                   sa.or_(CartellaAssignment.valid_to.is_(None), CartellaAssignment.valid_to > now), sa.or_(*who))
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


def has_identity(principal) -> bool:
    """The principal holds a role that sees identity data of every person of its Ambito."""
    rules = role_rules()
    return any(rules[r].identity for r in principal.roles)


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


def list_projection(principal) -> str:
    """The projection of list items for a principal without an identity role: the widest its roles give."""
    rules = role_rules()
    return max((rules[r].projection for r in principal.roles), key=PROJECTION_RANK.__getitem__, default="none")


def mask(data: dict[str, Any], projection: str) -> dict[str, Any]:
    fields = projection_fields(projection)
    if fields is None:
        return data
    return {k: v for k, v in data.items() if k in fields}


# The person of the cartella of a single check, as an init-plan sub-query: the access columns then look at all the
# person's cartelle (never correlated to the outer query on cartella).
_CARTELLA_PERSON = (sa.select(Cartella.person_id).where(Cartella.id == CARTELLA_ID).correlate_except(Cartella)
                    .scalar_subquery())


async def cartella_in_scope(session, principal, cartella_id: uuid.UUID, *, for_update: bool = False) -> Cartella:
    """The cartella if the row filter reaches it (404 otherwise, so existence is not revealed), checking consent
    when the principal reaches it only through a role that needs one (403 consent_required)."""
    from domain.kernel.errors import NotFound
    from domain.security.consent import ConsentRequired

    q = memo(principal, "cartella_in_scope", None, lambda: sa.select(
        Cartella, *access_columns(principal, _CARTELLA_PERSON)).where(
        Cartella.id == CARTELLA_ID, cartella_filter(principal)))
    if for_update:
        q = q.with_for_update(of=Cartella)
    row = (await session.execute(q, {"access_cartella_id": cartella_id})).one_or_none()
    if row is None:
        raise NotFound("Cartella non trovata.")
    access = decide(principal, tuple(row)[1:])
    if not access.in_scope:
        if access.consent_missing:
            raise ConsentRequired("Consenso della persona assente o revocato per questa finalità.")
        raise NotFound("Cartella non trovata.")
    return row[0]
