"""Who sees which protected discharges, and how much of them (row filter + view), in one place.

Rules (deny by default; always within the principal's Ambito):
- Ward staff (`ward_staff`): the cases opened from a ward where they hold the role, with the *status* view (state,
  dates, the ward, who opened it): never the clinician's summary, the criteria or the setting.
- COT operators: the cases of their COT (`cot_org_id`), full view; they work them (evaluation, project, exits).
- Comune social workers: the cases of their residents (`comune_id`, the comune notified at the COT request), full
  view; they work them too.
- Providers (ETS, RSA operators) named in the discharge project (an intervention of the plan assigned to their
  organisation): the *minimal* view, as for plans (state, expected and actual discharge, setting, services, the
  plan): never the ward's summary, the criteria or the clinical dates.
"""
from __future__ import annotations

from typing import Literal

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from domain.care_plan import queries as care_plan_queries
from domain.discharge.models import DischargeCase
from domain.kernel.errors import Forbidden
from domain.security.models import Role
from domain.security.permissions import Permission

View = Literal["full", "status", "minimal"]

WORKER_ROLES = (Role.cot_operator, Role.comune_social_worker)
PROVIDER_ROLES = (Role.ets_operator, Role.rsa_operator)

STATUS_FIELDS = frozenset({
    "id", "person_id", "state", "state_label", "ward_org_id", "opened_by", "signalled_at", "admission_date",
    "expected_discharge_date", "cot_org_id", "cot_requested_at", "evaluation_due_at", "requested_due_at",
    "evaluated_at",
    "discharged_at", "closed_at", "out_of_ambito", "allowed_actions", "version",
})


def _ids(principal, role: Role) -> list[str]:
    return sorted(principal.orgs_for(role), key=str)


def _full_parts(principal) -> list[ColumnElement[bool]]:
    parts: list[ColumnElement[bool]] = []
    if principal.has_role(Role.cot_operator):
        parts.append(DischargeCase.cot_org_id.in_(_ids(principal, Role.cot_operator)))
    if principal.has_role(Role.comune_social_worker):
        parts.append(DischargeCase.comune_id.in_(_ids(principal, Role.comune_social_worker)))
    return parts


def full_view(principal) -> ColumnElement[bool]:
    parts = _full_parts(principal)
    if not parts:
        return sa.false()
    return sa.and_(DischargeCase.ambito_id == principal.ambito_id, sa.or_(*parts))


def _provider_orgs(principal) -> list:
    return sorted({o for role in PROVIDER_ROLES if principal.has_role(role) for o in principal.orgs_for(role)},
                  key=str)


def status_view(principal) -> ColumnElement[bool]:
    """Rows the principal sees with the ward's status view (not in full)."""
    if not principal.has_role(Role.ward_staff):
        return sa.false()
    return DischargeCase.ward_org_id.in_(_ids(principal, Role.ward_staff))


def row_filter(principal) -> ColumnElement[bool]:
    """The mandatory filter of every query on discharge cases."""
    parts = _full_parts(principal)
    if principal.has_role(Role.ward_staff):
        parts.append(DischargeCase.ward_org_id.in_(_ids(principal, Role.ward_staff)))
    providers = _provider_orgs(principal)
    if providers:
        parts.append(DischargeCase.plan_id.in_(care_plan_queries.plans_naming_providers(providers)))
    if not parts:
        return sa.false()
    return sa.and_(DischargeCase.ambito_id == principal.ambito_id, sa.or_(*parts))


def signaller_filter(principal) -> ColumnElement[bool]:
    """The signals of the wards where the principal holds the ward role: what the ward may withdraw."""
    if not principal.has_role(Role.ward_staff):
        return sa.false()
    return sa.and_(DischargeCase.ambito_id == principal.ambito_id,
                   DischargeCase.ward_org_id.in_(_ids(principal, Role.ward_staff)))


def view_of(full: bool, status: bool = True) -> View:
    """The widest view a row allows: full (a worker of the case), else status (its ward), else minimal (a
    provider named in the project)."""
    return "full" if full else "status" if status else "minimal"


def ensure(principal, permission: Permission) -> None:
    if permission not in principal.permissions:
        raise Forbidden(f"Permesso mancante: {permission}", missing=[str(permission)])
