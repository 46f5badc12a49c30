"""Who sees which measure applications, and who may act on them (deny by default; always within the Ambito).

- The comune social worker: the applications of its residents (`comune_id`): files them and moves them through
  their steps (the VMD, the eligibility the equipe decided, the project, the activation, monitoring, the end).
- The sub-ambito coordinator: the applications of the comuni of its sub-ambito, read only.
- The AS d'Ambito and the CSC (which runs the FNA measures for the Ambito): every application of the Ambito.
- Call figures (budget committed and available, counts per state) are aggregates: also the analyst.
- The catalogue and the calls: the system administrator (reference data of the Ambito).
"""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from domain.kernel.errors import Forbidden
from domain.measures.models import MeasureApplication
from domain.security.models import Role
from domain.security.permissions import Permission
from domain.territory import queries as territory

COMUNE = (Role.comune_social_worker,)
COORDINATORS = (Role.sub_ambito_coordinator,)
AMBITO_ROLES = (Role.ambito_pua_social_worker, Role.csc_operator)
WRITERS = (*COMUNE, *AMBITO_ROLES)
READERS = (*COMUNE, *COORDINATORS, *AMBITO_ROLES)


def orgs(principal, *roles: Role) -> list:
    return sorted({o for r in roles if principal.has_role(r) for o in principal.orgs_for(r)}, key=str)


def scope(principal, roles) -> ColumnElement[bool]:
    roles = set(roles)
    m = MeasureApplication
    parts: list[ColumnElement[bool]] = []
    if Role.comune_social_worker in roles and principal.has_role(Role.comune_social_worker):
        parts.append(m.comune_id.in_(orgs(principal, Role.comune_social_worker)))
    if Role.sub_ambito_coordinator in roles and principal.has_role(Role.sub_ambito_coordinator):
        parts.append(m.comune_id.in_(territory.orgs_under(orgs(principal, Role.sub_ambito_coordinator))))
    if any(principal.has_role(r) for r in roles & set(AMBITO_ROLES)):
        parts.append(sa.true())
    if not parts:
        return sa.false()
    return sa.and_(m.ambito_id == principal.ambito_id, sa.or_(*parts))


def row_filter(principal) -> ColumnElement[bool]:
    return scope(principal, READERS)


def in_write_scope(principal, ambito_id, comune_id) -> bool:
    if ambito_id != principal.ambito_id:
        return False
    if principal.has_role(*AMBITO_ROLES):
        return True
    return comune_id is not None and comune_id in orgs(principal, *COMUNE)


def ensure(principal, permission: Permission) -> None:
    if permission not in principal.permissions:
        raise Forbidden(f"Permesso mancante: {permission}", missing=[str(permission)])
