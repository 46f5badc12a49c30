"""ServiceRequest and Task ⇄ the PUA's referral: an access request closed by sending the person to the VMD, to the
COT, or to both (domain/pua/flows.py), as the PUA context shows it to the caller (`schemas.pua.AccessRequestPublic`:
the orientation — COT, equipe, requested service, notes — in the full view only). One referral, two resources with
the request's id, as for the discharge case and the waiting-list application:

    ServiceRequest  the referral: category invio-vmd and/or invio-cot, code the service asked of the VMD, the PUA
                    seat as requester, the COT and the VMD equipe as performers, authoredOn when it was decided,
                    the cartella it was filed on as supportingInfo
    Task            its taking in charge by the COT or the equipe: owner the COT, due (restriction.period.end) the
                    48 hours of the COT evaluation, the VMD it requested as an output
Requests closed otherwise (oriented, withdrawn, cancelled) or still open are not referrals: no resource.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task

from domain.pua.flows import COT_EVALUATION_HOURS
from domain.pua.models import ACCESS_STATE_LABELS, AccessState
from integrations.fhir import common, systems

_VMD = {"coding": [{"system": systems.REQUEST_CATEGORY, "code": "invio-vmd",
                    "display": "Invio del PUA alla valutazione multidimensionale"}]}
_COT = {"coding": [{"system": systems.REQUEST_CATEGORY, "code": "invio-cot",
                    "display": "Invio del PUA alla Centrale Operativa Territoriale"}]}
CATEGORIES = {AccessState.referred_vmd.value: [_VMD], AccessState.referred_cot.value: [_COT],
              AccessState.referred_cot_vmd.value: [_COT, _VMD]}
REFERRED = list(CATEGORIES)
COT_STATES = [AccessState.referred_cot.value, AccessState.referred_cot_vmd.value]

# A referral stands once decided: what the COT or the equipe do next lives in their own resources (the discharge
# case, the VMD), so the statuses are constant and the `status` search knows only these.
STATUS_STATES = {"ServiceRequest": {"active": REFERRED}, "Task": {"requested": REFERRED}}


def cot_due(closed_at: datetime) -> datetime:
    """When the COT's evaluation of a PUA referral is due (the work item `pua.flows` writes has the same time)."""
    return closed_at + timedelta(hours=COT_EVALUATION_HOURS)


def _orientation(v: dict[str, Any]) -> dict[str, Any]:
    return v.get("orientation") or {}


def service_request(v: dict[str, Any]) -> ServiceRequest:
    state, o = str(v["state"]), _orientation(v)
    res: dict[str, Any] = {
        "resourceType": "ServiceRequest", "id": str(v["id"]), "status": "active", "intent": "order",
        "category": CATEGORIES[state], "subject": common.ref("Patient", v["person_id"])}
    if v.get("closed_at"):  # rows written before the referral kept its time have none
        res["authoredOn"] = common.iso(v["closed_at"])
    if o.get("requested_service_type"):
        res["code"] = {"coding": [{"system": systems.SERVICE_TYPE, "code": o["requested_service_type"]}]}
    if v.get("location_org_id"):
        res["requester"] = common.ref("Organization", v["location_org_id"])
    performers = []
    if o.get("cot_org_id"):
        performers.append(common.ref("Organization", o["cot_org_id"]))
    if o.get("team_id"):
        performers.append({"type": "CareTeam", "identifier": {"system": systems.TEAM, "value": o["team_id"]}})
    if performers:
        res["performer"] = performers
    if v.get("cartella_id"):
        res["supportingInfo"] = [common.ref("EpisodeOfCare", v["cartella_id"])]
    if o.get("notes"):
        res["note"] = [{"text": o["notes"]}]
    common.versioned(res, v.get("version"))
    return ServiceRequest.model_validate(res)


def task(v: dict[str, Any]) -> Task:
    state, o = str(v["state"]), _orientation(v)
    label = ACCESS_STATE_LABELS[state]
    res: dict[str, Any] = {
        "resourceType": "Task", "id": str(v["id"]), "status": "requested", "intent": "order",
        "focus": common.ref("ServiceRequest", v["id"]), "for": common.ref("Patient", v["person_id"]),
        "businessStatus": {"coding": [{"system": f"{systems.BASE}/CodeSystem/stato-richiesta-accesso",
                                       "code": state, "display": label}], "text": label}}
    if o.get("cot_org_id"):
        res["owner"] = common.ref("Organization", o["cot_org_id"])
    closed = v.get("closed_at")
    if closed:
        closed = closed if isinstance(closed, datetime) else datetime.fromisoformat(str(closed))
        res["authoredOn"] = common.iso(closed)
        if state in COT_STATES:
            res["restriction"] = {"period": {"end": common.iso(cot_due(closed))}}
    if v.get("vmd_id"):
        res["output"] = [{"type": {"text": "Valutazione multidimensionale richiesta"},
                          "valueIdentifier": {"system": systems.VMD, "value": str(v["vmd_id"])}}]
    common.versioned(res, v.get("version"))
    return Task.model_validate(res)


RESOURCES = {"ServiceRequest": service_request, "Task": task}
