"""PUA referrals: the orchestration the PUA owns because it takes the first step (architecture: flows.py of the
initiating context). A complex need goes to a VMD (the assessment context), to the COT (a work item for the COT
of the person's domicile), on the person's cartella (the registry), opened when missing.

Each referral checks the request (a PUA operator, the state machine, the triage's suggestion), opens or reuses the
cartella, writes the PUA's cartella assignments with the PUA/VMD legal basis, calls the other contexts' exported
services, and closes the request and its triage work item, inside the caller's unit of work.
The VMD is requested with a `ReferralGrant` (assessment policy): the PUA's word that the request refers this
person, which lets the PUA operator reach the cartella through the referral itself.
"""
from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from domain.assessment import policy as assessment_policy
from domain.assessment import service as assessment
from domain.assessment.policy import ReferralGrant
from domain.kernel import clock, work_items
from domain.kernel.errors import Invalid
from domain.pua import policy
from domain.pua.models import AccessRequest
from domain.pua.service import (
    ENTITY,
    TRIAGE_KIND,
    audit_request,
    decision,
    default_area,
    load_for_work,
    pua_team,
    write_history,
)
from domain.pua.states import AccessAction, next_state
from domain.registry import assignments, cartelle, persons
from domain.registry.models import Area, AssignmentReason, CartellaStatus
from domain.security import directory
from domain.security.models import TeamType
from domain.security.principal import Principal
from domain.territory import queries as territory

COT_KIND = "cot.evaluation"
COT_EVALUATION_HOURS = 48  # the D6 indicator: COT evaluation within 48 hours of the request


# ---------------------------------------------------------------- the grant the VMD trusts
def grant_for(principal: Principal, ar: AccessRequest) -> ReferralGrant:
    """The referral of a request the caller already holds, as the assessment context's grant."""
    return ReferralGrant(access_request_id=ar.id, person_id=ar.person_id,
                         covers_cartella=policy.works_request(principal, ar))


async def vmd_referral_grant(session: AsyncSession, *, principal: Principal, access_request_id: uuid.UUID,
                             person_id: uuid.UUID) -> ReferralGrant:
    """A VMD requested through the API with `access_request_id`: the request must be of the principal's Ambito and
    about the same person (422 `access_request_id` otherwise). The grant covers the cartella only when the principal
    works the request (registered it or holds a role at its PUA seat) and holds pua.triage; anyone else still needs
    to reach the cartella."""
    ar = await session.get(AccessRequest, access_request_id)
    if ar is None or ar.ambito_id != principal.ambito_id:
        raise Invalid("access_request_id", "richiesta di accesso PUA non trovata nell'Ambito")
    if ar.person_id != person_id:
        raise Invalid("access_request_id", "la richiesta di accesso riguarda un'altra persona")
    return grant_for(principal, ar)


# ---------------------------------------------------------------- shared steps
async def _cartella_for_referral(session: AsyncSession, principal: Principal, ar: AccessRequest,
                                 area: Area | None, owning_comune_id: uuid.UUID | None):
    """The cartella a referral works on: the open one of the given area, else the one the request is linked to,
    else the open one of the default area; opened when missing (docs/decisions/pua.md §2)."""
    if area is None and ar.cartella_id is not None:
        linked = await cartelle.cartella_record(session, ar.cartella_id)
        if linked is not None and linked.status == CartellaStatus.open:
            return linked
    person = await persons.person_record(session, ar.person_id)
    area = Area(area) if area is not None else default_area(person, ar.need_domains or ())
    existing = await cartelle.open_cartella_of(session, ar.person_id, area)
    if existing is not None:
        return existing
    return await cartelle.open_cartella(session, principal=principal, person_id=ar.person_id, area=area,
                                        owning_comune_id=owning_comune_id)


async def _assign(session: AsyncSession, cartella_id: uuid.UUID, ar: AccessRequest, *, reason: AssignmentReason,
                  actor_id: uuid.UUID, **assignee: uuid.UUID) -> None:
    await assignments.assign(session, cartella_id=cartella_id, reason=reason, source_type=ENTITY, source_id=ar.id,
                          actor_id=actor_id, legal_basis=assessment_policy.LEGAL_BASIS, **assignee)


async def _assign_pua_team(session: AsyncSession, cartella_id: uuid.UUID, ar: AccessRequest,
                           principal: Principal) -> None:
    team = await pua_team(session, ambito_id=ar.ambito_id, location_org_id=ar.location_org_id)
    if team is not None:
        await _assign(session, cartella_id, ar, reason=AssignmentReason.team, actor_id=principal.user_id,
                      team_id=team.id)


async def _close_referred(session: AsyncSession, principal: Principal, ar: AccessRequest, *, target, action: str,
                          cartella, orientation: dict[str, Any]) -> AccessRequest:
    now = clock.now()
    ar.cartella_id = cartella.id
    ar.orientation = {**orientation, "area": str(cartella.area), "by": str(principal.user_id),
                      "at": now.isoformat()}
    ar.state = target
    ar.closed_at = now
    await write_history(session, ar, action, actor_id=principal.user_id)
    await work_items.close_for_source(session, source_type=ENTITY, source_id=ar.id, kinds=[TRIAGE_KIND], done=True,
                                      actor_id=principal.user_id)
    audit_request("update", ar)
    return ar


# ---------------------------------------------------------------- VMD
async def vmd_team(session: AsyncSession, ar: AccessRequest, team_id: uuid.UUID | None) -> uuid.UUID:
    """The given equipe (a VMD-capable team of the Ambito, assessment policy.EQUIPE_TEAM_TYPES), or the Ambito's
    default VMD equipe: the only active `vmd_equipe` team, or among several the one of the request's seat (or the
    seat's Casa di Comunità)."""
    if team_id is not None:
        t = await directory.get_team(session, team_id, ar.ambito_id, types=assessment_policy.EQUIPE_TEAM_TYPES)
        if t is None:
            raise Invalid("team_id", "non è un'équipe di valutazione attiva dell'Ambito")
        return t.id
    teams = await directory.teams_of_type(session, ar.ambito_id, [TeamType.vmd_equipe])
    if len(teams) == 1:
        return teams[0].id
    if teams:
        seat = await territory.get_org(session, ar.location_org_id)
        near = {ar.location_org_id, *(seat.ancestor_ids if seat else [])}
        mine = [t for t in teams if t.organisation_id in near]
        if len(mine) == 1:
            return mine[0].id
        raise Invalid("team_id", "l'Ambito ha più équipe VMD: indicare quella a cui inviare")
    raise Invalid("team_id", "nessuna équipe VMD attiva nell'Ambito: indicare l'équipe")


async def refer_vmd(session: AsyncSession, *, principal: Principal, request_id: uuid.UUID, data) -> AccessRequest:
    """Complex need: a VMD request (trigger `pua`) on the person's cartella (opened if missing) → referred_vmd.
    Writes the PUA team's and the referring MMG's cartella assignments (legal basis: the PUA/VMD LEPS)."""
    ar = await load_for_work(session, principal, request_id, data.version)
    target = next_state(ar.state, AccessAction.refer_vmd)
    chosen = decision(ar, AccessAction.refer_vmd, data.override_reason)
    team_id = await vmd_team(session, ar, data.team_id)
    if data.requested_service_type is not None:
        await territory.require_service_type(session, data.requested_service_type, field="requested_service_type")
    cartella = await _cartella_for_referral(session, principal, ar, data.area, data.owning_comune_id)
    await _assign_pua_team(session, cartella.id, ar, principal)
    if ar.referring_user_id is not None:
        await _assign(session, cartella.id, ar, reason=AssignmentReason.referring_mmg, actor_id=principal.user_id,
                      user_id=ar.referring_user_id)
    vmd = await assessment.request_vmd(
        session, principal=principal, person_id=ar.person_id, cartella_id=cartella.id, trigger="pua",
        requested_service_type=data.requested_service_type, team_id=team_id, grant=grant_for(principal, ar),
        referring_user_id=ar.referring_user_id, notes=data.notes or None)
    ar.vmd_id = vmd.id
    return await _close_referred(session, principal, ar, target=target, action="referred_vmd", cartella=cartella,
                                 orientation={**chosen, "team_id": str(team_id),
                                              "requested_service_type": data.requested_service_type,
                                              "vmd_id": str(vmd.id), "notes": data.notes or None})


# ---------------------------------------------------------------- COT
async def refer_cot(session: AsyncSession, *, principal: Principal, request_id: uuid.UUID, data) -> AccessRequest:
    """Complex need with continuity of care: a `cot.evaluation` work item for the COT (due in 48 hours) and the
    COT's cartella assignment → referred_cot. With `data.with_vmd` the same step also requests the VMD (as
    refer_vmd does) → referred_cot_vmd: both referrals are recorded, and the VMD one counts for P3. Everything is
    checked before anything is written."""
    ar = await load_for_work(session, principal, request_id, data.version)
    with_vmd = data.with_vmd
    action = AccessAction.refer_cot_vmd if with_vmd else AccessAction.refer_cot
    target = next_state(ar.state, action)
    if not with_vmd:
        for field, value in (("team_id", data.team_id), ("requested_service_type", data.requested_service_type)):
            if value is not None:
                raise Invalid(field, "indicare l'équipe e il servizio della VMD solo con with_vmd")
    chosen = decision(ar, action, data.override_reason)
    person = await persons.person_record(session, ar.person_id)
    cot = await territory.cot_for(session, ambito_id=ar.ambito_id, given=data.cot_org_id,
                                  comune_id=person.domicile_comune_id or person.residence_comune_id)
    team_id = await vmd_team(session, ar, data.team_id) if with_vmd else None
    if with_vmd and data.requested_service_type is not None:
        await territory.require_service_type(session, data.requested_service_type, field="requested_service_type")
    cartella = await _cartella_for_referral(session, principal, ar, data.area, data.owning_comune_id)
    await _assign_pua_team(session, cartella.id, ar, principal)
    await _assign(session, cartella.id, ar, reason=AssignmentReason.assessor, actor_id=principal.user_id,
                  organisation_id=cot.id)
    item = await work_items.create(
        session, kind=COT_KIND, title="Valutazione COT richiesta dal PUA", source_type=ENTITY, source_id=ar.id,
        ambito_id=ar.ambito_id, assignee_org_id=cot.id,
        due_at=clock.now() + timedelta(hours=COT_EVALUATION_HOURS), person_id=ar.person_id,
        cartella_id=cartella.id, dedup_key=f"{COT_KIND}:{ENTITY}:{ar.id}", data={"access_request_id": str(ar.id)})
    orientation = {**chosen, "cot_org_id": str(cot.id), "work_item_id": str(item.id), "notes": data.notes or None}
    if with_vmd:
        if ar.referring_user_id is not None:
            await _assign(session, cartella.id, ar, reason=AssignmentReason.referring_mmg,
                          actor_id=principal.user_id, user_id=ar.referring_user_id)
        vmd = await assessment.request_vmd(
            session, principal=principal, person_id=ar.person_id, cartella_id=cartella.id, trigger="pua",
            requested_service_type=data.requested_service_type, team_id=team_id, grant=grant_for(principal, ar),
            referring_user_id=ar.referring_user_id, notes=data.notes or None)
        ar.vmd_id = vmd.id
        orientation.update(team_id=str(team_id), requested_service_type=data.requested_service_type,
                           vmd_id=str(vmd.id))
    return await _close_referred(session, principal, ar, target=target, action=target.value, cartella=cartella,
                                 orientation=orientation)
