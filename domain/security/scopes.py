"""Role rules, projections and the registry of scope builders: the generic half of row-level access.

Rules are data (schemas/security/access.yaml): per role, the scopes that reach a case, the projection it gets and
the consent purpose it needs. The conditions behind each scope name are built by the context that owns the case
tables (domain.registry.policy registers "owning_org", "assigned" and "break_glass" through the composition root);
later contexts add scope kinds of their own with `register_scope` (e.g. the RSA chosen by an applicant, the ward
that opened a discharge) instead of writing filters beside these.
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
from domain.security.models import Role

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
    """Called by the composition root: the context that owns the case tables supplies the conditions."""
    _builders[name] = builder


def scope_builder(name: str) -> ScopeBuilder:
    try:
        return _builders[name]
    except KeyError:
        raise RuntimeError(f"scope {name!r} of access.yaml has no registered builder") from None


def role_orgs(principal, role: Role) -> list[uuid.UUID]:
    return sorted({g.organisation_id for g in principal.grants if g.role == role}, key=str)


def has_identity(principal) -> bool:
    """The principal holds a role that sees identity data of every person of its Ambito."""
    rules = role_rules()
    return any(rules[r].identity for r in principal.roles)


def reaches_personal_data(role: Role) -> bool:
    """Granting this role opens personal data: it needs a second administrator's approval (access.yaml approval)."""
    rule = role_rules()[role]
    extra = set(access_config().get("approval", {}).get("extra_roles") or ())
    return rule.projection != "none" or rule.identity or role.value in extra


def list_projection(principal) -> str:
    """The projection of list items for a principal without an identity role: the widest its roles give."""
    rules = role_rules()
    return max((rules[r].projection for r in principal.roles), key=PROJECTION_RANK.__getitem__, default="none")


# A name shown beside an id goes wherever the id goes: the projections list the id only.
NAME_OF = {"residence_comune_name": "residence_comune_id"}


def mask(data: dict[str, Any], projection: str) -> dict[str, Any]:
    fields = projection_fields(projection)
    if fields is None:
        return data
    return {k: v for k, v in data.items() if k in fields or NAME_OF.get(k) in fields}


