"""Encounter, ServiceRequest and Task ⇄ a protected-discharge case, as the discharge context shows it to the caller
(`schemas.discharge.DischargePublic` in the caller's view: `full` for the COT and the comune, `status` for the
ward, `minimal` for a provider). One case, three resources with the case's id:

    Encounter       the inpatient stay: admission date → expected (or actual) discharge
    ServiceRequest  the request to the COT: criteria, the ward's summary, social risk (full view only)
    Task            the COT's evaluation, due within the protocol's hours from the request

The inbound direction (the Bundle ASST sends) is `integrations.fhir.discharge_bundle`.
"""
from __future__ import annotations

from typing import Any

from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task

from domain.discharge.models import DischargeState
from integrations.fhir import common, systems

V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ENDED = {"discharged", "monitoring", "closed", "not_eligible", "deceased", "discharged_without_project"}


# The case states behind each status, for the `status` search (the statuses above are functions of the state).
_ALL_STATES = tuple(s.value for s in DischargeState)
_STAY_ENDED = ("discharged", "monitoring", "closed", "discharged_without_project", "deceased")
STATUS_STATES = {
    "Encounter": {"cancelled": ["cancelled"], "finished": list(_STAY_ENDED),
                  "in-progress": [s for s in _ALL_STATES if s not in _STAY_ENDED and s != "cancelled"]},
    "ServiceRequest": {"revoked": ["cancelled"], "completed": sorted(ENDED),
                       "active": [s for s in _ALL_STATES if s not in ENDED and s != "cancelled"]},
    "Task": {"cancelled": ["cancelled"], "requested": ["signalled", "cot_requested"],
             "completed": [s for s in _ALL_STATES if s not in ("signalled", "cot_requested", "cancelled")]},
}


def _day(value: Any) -> str | None:
    if value is None:
        return None
    return value.date().isoformat() if hasattr(value, "date") and callable(value.date) else common.iso(value)


def encounter(v: dict[str, Any]) -> Encounter:
    state = str(v["state"])
    status = next(k for k, states in STATUS_STATES["Encounter"].items() if state in states)
    res: dict[str, Any] = {"resourceType": "Encounter", "id": str(v["id"]), "status": status,
                           "class": {"system": V3_ACT_CODE, "code": "IMP", "display": "ricovero"},
                           "subject": common.ref("Patient", v["person_id"])}
    period = {}
    if v.get("admission_date"):
        period["start"] = common.iso(v["admission_date"])
    end = _day(v.get("discharged_at")) or common.iso(v.get("expected_discharge_date"))
    if end:
        period["end"] = end
    if period:
        res["period"] = period
    if v.get("ward_org_id"):
        res["serviceProvider"] = common.ref("Organization", v["ward_org_id"])
    common.versioned(res, v.get("version"))
    return Encounter.model_validate(res)


def service_request(v: dict[str, Any]) -> ServiceRequest:
    state = str(v["state"])
    status = "revoked" if state == "cancelled" else "completed" if state in ENDED else "active"
    res: dict[str, Any] = {"resourceType": "ServiceRequest", "id": str(v["id"]), "status": status, "intent": "order",
                           "subject": common.ref("Patient", v["person_id"]),
                           "encounter": common.ref("Encounter", v["id"])}
    if v.get("ward_org_id"):
        res["requester"] = common.ref("Organization", v["ward_org_id"])
    if v.get("cot_org_id"):
        res["performer"] = [common.ref("Organization", v["cot_org_id"])]
    if v.get("cot_requested_at"):
        res["authoredOn"] = common.iso(v["cot_requested_at"])
    if v.get("criteria"):
        res["reasonCode"] = [{"coding": [{"system": systems.DISCHARGE_CRITERION, "code": c}]} for c in v["criteria"]]
    if v.get("clinician_summary"):
        res["note"] = [{"text": v["clinician_summary"]}]
    if "social_risk" in v and v["social_risk"] is not None:
        res["extension"] = [{"url": systems.SOCIAL_RISK, "valueBoolean": bool(v["social_risk"])}]
    return ServiceRequest.model_validate(res)


def task(v: dict[str, Any]) -> Task:
    state = str(v["state"])
    status = ("cancelled" if state == "cancelled" else "completed" if v.get("evaluated_at") or state in ENDED
              else "requested")
    res: dict[str, Any] = {"resourceType": "Task", "id": str(v["id"]), "status": status, "intent": "order",
                           "focus": common.ref("ServiceRequest", v["id"]), "for": common.ref("Patient", v["person_id"])}
    if v.get("cot_org_id"):
        res["owner"] = common.ref("Organization", v["cot_org_id"])
    if v.get("cot_requested_at"):
        res["authoredOn"] = common.iso(v["cot_requested_at"])
    due = v.get("requested_due_at") or v.get("evaluation_due_at")  # the requester's own, else the protocol's
    if due:
        res["restriction"] = {"period": {"end": common.iso(due)}}
    if v.get("evaluated_at"):
        res["executionPeriod"] = {"end": common.iso(v["evaluated_at"])}
    return Task.model_validate(res)
