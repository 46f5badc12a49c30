"""Who sees which activation orders, and who may act on them (deny by default; always within the Ambito).

- The comune social worker: the orders of its residents (`comune_id`, the residence when the order was made):
  orders, starts, suspends and ends them, reads the delivery log, the summaries and the cost of the plan.
- The sub-ambito coordinator: the orders of the comuni of its sub-ambito, read only.
- The AS d'Ambito and the CSC: every order of the Ambito (joint cases, CSC-run services), read and write.
- The provider (ETS, RSA operators): only the orders addressed to its organisation, with the minimal view (the
  service, the dates, the intensity; no cost, no plan); it accepts or declines, starts, suspends and ends, and
  writes only its own delivery log. The order under the signed plan is the legal basis of that view (art. 9.2.h
  GDPR, as for the provider's assignment of an intervention): consent does not gate it.
"""
from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from domain.kernel.errors import Forbidden
from domain.security.models import Role
from domain.security.permissions import Permission
from domain.services.models import Activation
from domain.territory import queries as territory

COMUNE = (Role.comune_social_worker,)
COORDINATORS = (Role.sub_ambito_coordinator,)
AMBITO_ROLES = (Role.ambito_pua_social_worker, Role.csc_operator)
PROVIDERS = (Role.ets_operator, Role.rsa_operator)
CASE_SIDE = (*COMUNE, *AMBITO_ROLES)  # who orders and manages
READERS = (*COMUNE, *COORDINATORS, *AMBITO_ROLES)  # the full view


def orgs(principal, *roles: Role) -> list:
    return sorted({o for r in roles if principal.has_role(r) for o in principal.orgs_for(r)}, key=str)


def _parts(principal, roles: Iterable[Role], comune_col, provider_col) -> list[ColumnElement[bool]]:
    roles = set(roles)
    parts: list[ColumnElement[bool]] = []
    if Role.comune_social_worker in roles and principal.has_role(Role.comune_social_worker):
        parts.append(comune_col.in_(orgs(principal, Role.comune_social_worker)))
    if Role.sub_ambito_coordinator in roles and principal.has_role(Role.sub_ambito_coordinator):
        parts.append(comune_col.in_(territory.orgs_under(orgs(principal, Role.sub_ambito_coordinator))))
    if any(principal.has_role(r) for r in roles & set(AMBITO_ROLES)):
        parts.append(sa.true())
    if provider_col is not None and roles & set(PROVIDERS) and principal.has_role(*PROVIDERS):
        parts.append(provider_col.in_(orgs(principal, *PROVIDERS)))
    return parts


def scope(principal, roles: Iterable[Role], model=Activation) -> ColumnElement[bool]:
    parts = _parts(principal, roles, model.comune_id, getattr(model, "provider_org_id", None))
    if not parts:
        return sa.false()
    return sa.and_(model.ambito_id == principal.ambito_id, sa.or_(*parts))


def row_filter(principal) -> ColumnElement[bool]:
    """The mandatory filter of every query on activation orders."""
    return scope(principal, (*READERS, *PROVIDERS))


def full_view(principal) -> ColumnElement[bool]:
    return scope(principal, READERS)


def provider_only(principal) -> bool:
    return principal.has_role(*PROVIDERS) and not principal.has_role(*READERS)


def ensure(principal, *permissions: Permission) -> None:
    """At least one of `permissions` (a route open to both sides names both)."""
    if not any(p in principal.permissions for p in permissions):
        raise Forbidden("Permesso mancante: " + " o ".join(str(p) for p in permissions),
                        missing=[str(p) for p in permissions])


def acting_roles(principal, *permissions: Permission) -> tuple[Role, ...]:
    """The roles whose scope an act uses: the case side with services.order, the provider with services.provide."""
    roles: list[Role] = []
    if Permission.services_order in permissions and Permission.services_order in principal.permissions:
        roles += CASE_SIDE
    if Permission.services_provide in permissions and Permission.services_provide in principal.permissions:
        roles += PROVIDERS
    return tuple(roles)


async def reads_comune(session, principal, ambito_id, comune_id) -> bool:
    """Whether the principal reads in full a row of this Ambito and residence comune (a plan without orders yet)."""
    if ambito_id != principal.ambito_id:
        return False
    if principal.has_role(*AMBITO_ROLES):
        return True
    if comune_id is None:
        return False
    if comune_id in orgs(principal, *COMUNE):
        return True
    if principal.has_role(*COORDINATORS):
        under = territory.orgs_under(orgs(principal, *COORDINATORS))
        return comune_id in set((await session.execute(under)).scalars())
    return False
