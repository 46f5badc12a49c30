"""Who sees which PUA access requests, and how much of them (row filter + view), in one place.

Rules (deny by default; always within the principal's Ambito):
- PUA roles (`asst_pua_operator`, `ambito_pua_social_worker`): every request of the Ambito, full view; they alone
  take requests in reception, triage, orient, refer, withdraw and cancel them.
- Whoever registered a request (`operator_id`: the front desk, an MMG registering online...) sees it with the
  *registration* view: what was registered and the state, not the triage answers or the orientation.
  The front desk (`asst_front_desk`) sees nothing else.
- An MMG sees the requests they referred (`referring_user_id`) with the *summary* view: state, dates, complexity.
- A comune social worker (and a sub-ambito coordinator) sees, full view, the requests of persons with a cartella
  their comune owns (or assigned to them): the registry's cartella rule (registry policy.person_has_case).
- A COT operator sees, full view, the requests referred to a COT organisation where they hold the role.
"""
from __future__ import annotations

import uuid
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from domain.kernel.errors import Forbidden
from domain.pua.models import AccessRequest
from domain.pua.states import COT_STATES
from domain.registry import policy as registry_policy
from domain.security.models import Role
from domain.security.permissions import Permission

View = Literal["full", "registration", "summary"]

PUA_ROLES = (Role.asst_pua_operator, Role.ambito_pua_social_worker)
# Roles that see requests through the cartella of the person (owning comune, assignments, break-glass).
CARTELLA_ROLES = (Role.comune_social_worker, Role.sub_ambito_coordinator)

# Fields of AccessRequestPublic each view shows (the rest is null). `full` shows everything.
SUMMARY_FIELDS = frozenset({
    "id", "person_id", "channel", "state", "registered_at", "reception_at", "first_level_at", "closed_at",
    "complexity",
})
REGISTRATION_FIELDS = SUMMARY_FIELDS | {
    "requester_kind", "requester_name", "requester_contact", "referring_user_id", "referring_org_id",
    "reported_need", "need_domains", "location_org_id", "operator_id",
}


def works_request(principal, request: AccessRequest) -> bool:
    """The principal works this request, holding pua.triage: PUA staff of its Ambito (who alone take requests in
    reception, triage and refer them), or whoever registered it or holds a role at its PUA seat."""
    works = (request.operator_id == principal.user_id or request.location_org_id in principal.orgs_for()
             or (is_pua_staff(principal) and request.ambito_id == principal.ambito_id))
    return works and Permission.pua_triage in principal.permissions


def is_pua_staff(principal) -> bool:
    return principal.has_role(*PUA_ROLES)


def ensure_pua_staff(principal) -> None:
    """Reception, triage, orientation, referral, withdrawal and cancellation are PUA work."""
    if not is_pua_staff(principal):
        raise Forbidden("Solo gli operatori PUA (ASST o assistenti sociali d'Ambito) possono lavorare le richieste.")


def ensure_can_register(principal) -> None:
    if Permission.pua_register not in principal.permissions:
        raise Forbidden("Permesso mancante: pua.register", missing=["pua.register"])


def _cot_rule(principal) -> ColumnElement[bool]:
    cot_orgs = [str(o) for o in sorted(principal.orgs_for(Role.cot_operator), key=str)]
    return sa.and_(AccessRequest.state.in_([s.value for s in COT_STATES]),
                   AccessRequest.orientation["cot_org_id"].astext.in_(cot_orgs))


def _full_parts(principal) -> list[ColumnElement[bool]]:
    parts: list[ColumnElement[bool]] = []
    if is_pua_staff(principal):
        parts.append(sa.true())
    if principal.has_role(*CARTELLA_ROLES):
        parts.append(registry_policy.person_has_case(principal, AccessRequest.person_id, roles=CARTELLA_ROLES))
    if principal.has_role(Role.cot_operator):
        parts.append(_cot_rule(principal))
    return parts


def full_view(principal) -> ColumnElement[bool]:
    """Rows the principal sees in full (triage, orientation, referral)."""
    parts = _full_parts(principal)
    if not parts:
        return sa.false()
    return sa.and_(AccessRequest.ambito_id == principal.ambito_id, sa.or_(*parts))


def row_filter(principal) -> ColumnElement[bool]:
    """The mandatory filter of every query on access requests."""
    parts: list[ColumnElement[bool]] = [AccessRequest.operator_id == principal.user_id]
    if principal.has_role(Role.mmg):
        parts.append(AccessRequest.referring_user_id == principal.user_id)
    parts += _full_parts(principal)
    return sa.and_(AccessRequest.ambito_id == principal.ambito_id, sa.or_(*parts))


def view_of(principal, request: AccessRequest, *, full: bool) -> View:
    """The view of one visible row; `full` is the value of `full_view(principal)` for it (selected with it)."""
    if full:
        return "full"
    if request.operator_id == principal.user_id:
        return "registration"
    return "summary"


def fields_of(view: View) -> frozenset[str] | None:
    """None means every field."""
    return {"full": None, "registration": REGISTRATION_FIELDS, "summary": SUMMARY_FIELDS}[view]


def author_org(principal, preferred: uuid.UUID | None = None) -> uuid.UUID:
    """The organisation a PUA operator acts for: the request's location if they hold a PUA role there."""
    orgs = principal.orgs_for(*PUA_ROLES)
    if preferred is not None and preferred in orgs:
        return preferred
    return sorted(orgs, key=str)[0]
