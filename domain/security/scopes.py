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
    now = clock.now()
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
    now = clock.now()
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


def role_cartella_filter(principal, role: Role) -> ColumnElement[bool]:
    rule = role_rules()[role]
    orgs = _role_orgs(principal, role)
    parts = [_builders[s](principal, role, orgs) for s in rule.scopes]
    if not parts:
        return sa.false()
    return sa.and_(Cartella.ambito_id == principal.ambito_id, sa.or_(*parts))


def cartella_filter(principal) -> ColumnElement[bool]:
    """The row filter for cartelle and everything that hangs off them: deny by default."""
    parts = [role_cartella_filter(principal, r) for r in sorted(principal.roles)]
    return sa.or_(*parts) if parts else sa.false()


def person_case_filter(principal, person_id_col=Person.id) -> ColumnElement[bool]:
    """True when some cartella of the person is within the principal's scope, or a break-glass grant is active."""
    return sa.exists().where(Cartella.person_id == person_id_col, cartella_filter(principal))


def consent_active(person_id_col, purpose: str) -> ColumnElement[bool]:
    today = clock.today_rome()
    return sa.exists().where(
        Consent.person_id == person_id_col, Consent.purpose == purpose, Consent.revoked_at.is_(None),
        Consent.valid_from <= today, sa.or_(Consent.valid_to.is_(None), Consent.valid_to >= today),
    )


def _legal_basis_assignment(principal, role: Role, person_id_col) -> ColumnElement[bool]:
    now = clock.now()
    orgs = _role_orgs(principal, role)
    who = [CartellaAssignment.user_id == principal.user_id]
    if principal.team_ids:
        who.append(CartellaAssignment.team_id.in_(list(principal.team_ids)))
    if orgs:
        who.append(CartellaAssignment.organisation_id.in_(orgs))
    return sa.exists().where(
        CartellaAssignment.cartella_id == Cartella.id, Cartella.person_id == person_id_col,
        CartellaAssignment.legal_basis.is_not(None), CartellaAssignment.valid_from <= now,
        sa.or_(CartellaAssignment.valid_to.is_(None), CartellaAssignment.valid_to > now), sa.or_(*who),
    )


@dataclass(frozen=True)
class PersonAccess:
    """What a principal may see of one person, and why."""

    projection: str  # none | minimal | identity | full
    in_scope: bool
    consent_missing: bool
    break_glass: bool
    purpose: str | None = None

    @property
    def allowed(self) -> bool:
        return self.projection != "none"


async def person_access(session, principal, person_id: uuid.UUID, person_ambito_id: uuid.UUID) -> PersonAccess:
    """One round trip: per role, is the person in scope and, where the role needs it, is consent there."""
    if person_ambito_id != principal.ambito_id:
        return PersonAccess("none", False, False, False)
    rules = role_rules()
    roles = sorted(principal.roles)
    pid = sa.literal(person_id, sa.Uuid())
    cols = []
    for r in roles:
        scope = sa.exists().where(Cartella.person_id == pid, role_cartella_filter(principal, r))
        cols.append(scope)
        purpose = rules[r].consent_purpose
        cols.append(sa.or_(consent_active(pid, purpose), _legal_basis_assignment(principal, r, pid))
                    if purpose else sa.true())
    cols.append(break_glass_active(principal, pid))
    row = (await session.execute(sa.select(*[c.label(f"c{i}") for i, c in enumerate(cols)]))).one()
    best, in_scope, consent_missing, purpose = "none", False, False, None
    for i, r in enumerate(roles):
        rule = rules[r]
        scoped, consented = row[2 * i], row[2 * i + 1]
        if rule.identity and PROJECTION_RANK["identity"] > PROJECTION_RANK[best]:
            best = "identity"
        if scoped:
            if consented:
                in_scope = True
                if PROJECTION_RANK[rule.projection] > PROJECTION_RANK[best]:
                    best, purpose = rule.projection, rule.consent_purpose
            else:
                consent_missing = True
    glass = bool(row[-1])
    if glass and not in_scope:
        best, in_scope = "full", True
    return PersonAccess(best, in_scope, consent_missing and not in_scope, glass, purpose)


def mask(data: dict[str, Any], projection: str) -> dict[str, Any]:
    fields = projection_fields(projection)
    if fields is None:
        return data
    return {k: v for k, v in data.items() if k in fields}


async def cartella_in_scope(session, principal, cartella_id: uuid.UUID, *, for_update: bool = False) -> Cartella:
    """The cartella if the row filter reaches it (404 otherwise, so existence is not revealed), checking consent
    when the principal reaches it only through a role that needs one (403 consent_required)."""
    from domain.kernel.errors import NotFound
    from domain.security.consent import ConsentRequired

    q = sa.select(Cartella).where(Cartella.id == cartella_id, cartella_filter(principal))
    if for_update:
        q = q.with_for_update(of=Cartella)
    cartella = (await session.execute(q)).scalar_one_or_none()
    if cartella is None:
        raise NotFound("Cartella non trovata.")
    access = await person_access(session, principal, cartella.person_id, cartella.ambito_id)
    if not access.in_scope:
        if access.consent_missing:
            raise ConsentRequired("Consenso della persona assente o revocato per questa finalità.")
        raise NotFound("Cartella non trovata.")
    return cartella
