"""Who sees which waiting-list entries, and who may act on them (deny by default; always within the Ambito).

- Comune social workers: the entries of their residents (`comune_id`): they file applications, raise urgency,
  record confirmations, withdrawals and the replies to offers; with the CdC they take the listing decision.
- Sub-ambito coordinators: the entries of the comuni of their sub-ambito; they confirm or reject urgency.
- The Ambito's services (AS d'Ambito, CdC assessors, COT, CSC): every entry of the Ambito, read (the CdC also
  decides the listing: the joint assessment is the equipe's).
- UDO operators (`rsa_operator`): only the entries that chose one of their units, with the minimal projection;
  the VMD summary (Barthel, caregiver, living alone) only with the person's `share_rsa` consent. The application
  to their unit is the legal basis of the minimal projection (the RSA accord, brief §6.4).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from domain.kernel.errors import Forbidden
from domain.registry import policy as registry_policy
from domain.security.models import Role
from domain.security.permissions import Permission
from domain.territory import queries as territory
from domain.waiting_list.models import WaitingListChoice, WaitingListEntry

View = Literal["full", "minimal"]

AMBITO_ROLES = (Role.ambito_pua_social_worker, Role.cdc_assessor, Role.cot_operator, Role.csc_operator)
UDO_ROLES = (Role.rsa_operator,)
# Which roles' scopes each kind of act uses (the permission is checked first).
DECIDERS = (Role.comune_social_worker, Role.cdc_assessor)
COMUNE = (Role.comune_social_worker,)
COORDINATORS = (Role.sub_ambito_coordinator,)
CONSENT_PURPOSE = "share_rsa"


def _orgs(principal, *roles: Role) -> list:
    return sorted({o for r in roles if principal.has_role(r) for o in principal.orgs_for(r)}, key=str)


def operator_orgs(principal) -> list:
    return _orgs(principal, *UDO_ROLES)


def operated_units(principal) -> sa.Select:
    return territory.units_operated_by(_orgs(principal, *UDO_ROLES))


def _parts(principal, roles: Iterable[Role]) -> list[ColumnElement[bool]]:
    roles = set(roles)
    parts: list[ColumnElement[bool]] = []
    if Role.comune_social_worker in roles and principal.has_role(Role.comune_social_worker):
        parts.append(WaitingListEntry.comune_id.in_(_orgs(principal, Role.comune_social_worker)))
    if Role.sub_ambito_coordinator in roles and principal.has_role(Role.sub_ambito_coordinator):
        parts.append(WaitingListEntry.comune_id.in_(
            territory.orgs_under(_orgs(principal, Role.sub_ambito_coordinator))))
    if any(principal.has_role(r) for r in roles & set(AMBITO_ROLES)):
        parts.append(sa.true())
    if Role.rsa_operator in roles and principal.has_role(Role.rsa_operator):
        parts.append(WaitingListEntry.id.in_(sa.select(WaitingListChoice.entry_id).where(
            WaitingListChoice.unit_id.in_(operated_units(principal)))))
    return parts


def scope(principal, roles: Iterable[Role]) -> ColumnElement[bool]:
    parts = _parts(principal, roles)
    if not parts:
        return sa.false()
    return sa.and_(WaitingListEntry.ambito_id == principal.ambito_id, sa.or_(*parts))


ALL_READERS = (Role.comune_social_worker, Role.sub_ambito_coordinator, *AMBITO_ROLES, *UDO_ROLES)


def row_filter(principal) -> ColumnElement[bool]:
    """The mandatory filter of every query on entries."""
    return scope(principal, ALL_READERS)


def full_view(principal) -> ColumnElement[bool]:
    """Rows the principal reads in full (everyone but a UDO operator reaching the row only as its UDO)."""
    return scope(principal, (Role.comune_social_worker, Role.sub_ambito_coordinator, *AMBITO_ROLES))


def vmd_summary_shown(principal) -> ColumnElement[bool]:
    """The VMD summary: in the full view, or for a UDO operator with the person's consent."""
    return sa.or_(full_view(principal), registry_policy.consent_active(WaitingListEntry.person_id, CONSENT_PURPOSE))


def udo_operator_only(principal) -> bool:
    return principal.has_role(*UDO_ROLES) and not any(principal.has_role(r) for r in (
        Role.comune_social_worker, Role.sub_ambito_coordinator, *AMBITO_ROLES))


def ensure(principal, permission: Permission) -> None:
    if permission not in principal.permissions:
        raise Forbidden(f"Permesso mancante: {permission}", missing=[str(permission)])
