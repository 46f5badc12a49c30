"""ServiceRequest and Task ⇄ a waiting-list application, as the waiting-list context shows it to the caller
(`schemas.waiting_list.EntryPublic`: `full` for the comune and the Ambito's services, `minimal` for a UDO operator,
whose preferences, positions and score are already cut to what it may see). One application, two resources with
the application's id, as for the discharge case (integrations/fhir/discharge.py):

    ServiceRequest  the application for access to a UDO type (category accesso-udo, code the UDO type), the chosen
                    units in order of preference as performers, authoredOn the application date
    Task            its processing: the joint assessment, the listing, the offers; businessStatus the Italian label
                    of the state; position in each chosen unit's list and score as outputs, when the caller sees them
"""
from __future__ import annotations

from typing import Any

from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task

from domain.waiting_list.models import ENTRY_STATE_LABELS, EntryState
from integrations.fhir import common, systems

CATEGORY = {"coding": [{"system": systems.REQUEST_CATEGORY, "code": "accesso-udo",
                        "display": "Domanda di accesso a unità d'offerta (lista d'attesa)"}]}

# The entry states behind each status, for the `status` search (the statuses shown are functions of the state).
_OPEN = [EntryState.assessment_pending.value, EntryState.listed.value, EntryState.suspended.value]
_GONE = [EntryState.withdrawn.value, EntryState.deceased.value, EntryState.admitted_elsewhere.value]
STATUS_STATES = {
    "ServiceRequest": {"active": _OPEN, "completed": [EntryState.admitted.value],
                       "revoked": [EntryState.not_listed.value, *_GONE]},
    "Task": {"requested": [EntryState.assessment_pending.value], "in-progress": [EntryState.listed.value],
             "on-hold": [EntryState.suspended.value],
             "completed": [EntryState.admitted.value, EntryState.not_listed.value], "cancelled": _GONE},
}


def _status(rtype: str, state: str) -> str:
    return next(k for k, states in STATUS_STATES[rtype].items() if state in states)


def _unit(unit_id: Any) -> dict[str, Any]:
    return {"type": "HealthcareService", "identifier": {"system": systems.SERVICE_UNIT, "value": str(unit_id)}}


def _requester(v: dict[str, Any]) -> dict[str, Any] | None:
    """Who filed the application (full view only): the person, the comune's social worker, or the named signer."""
    applicant = v.get("applicant")
    if applicant == "person":
        return common.ref("Patient", v["person_id"])
    if applicant == "social_worker" and v.get("comune_id"):
        return {**common.ref("Organization", v["comune_id"]), "display": v.get("applicant_label")}
    if applicant:
        return {"display": v.get("applicant_name") or v.get("applicant_label")}
    return None


def service_request(v: dict[str, Any]) -> ServiceRequest:
    res: dict[str, Any] = {"resourceType": "ServiceRequest", "id": str(v["id"]),
                           "status": _status("ServiceRequest", str(v["state"])), "intent": "order",
                           "category": [CATEGORY],
                           "code": {"coding": [{"system": systems.UDO_TYPE, "code": v["udo_type"]}]},
                           "subject": common.ref("Patient", v["person_id"]),
                           "authoredOn": common.iso(v["application_date"])}
    if (requester := _requester(v)) is not None:
        res["requester"] = requester
    if v.get("unit_ids"):  # in order of preference
        res["performer"] = [_unit(u) for u in v["unit_ids"]]
    common.versioned(res, v.get("version"))
    return ServiceRequest.model_validate(res)


def _output(code: str, text: str, **value: Any) -> dict[str, Any]:
    return {"type": {"coding": [{"system": systems.WAITING_LIST_OUTPUT, "code": code}], "text": text}, **value}


def task(v: dict[str, Any]) -> Task:
    state = str(v["state"])
    label = ENTRY_STATE_LABELS[state]
    res: dict[str, Any] = {"resourceType": "Task", "id": str(v["id"]), "status": _status("Task", state),
                           "intent": "order", "focus": common.ref("ServiceRequest", v["id"]),
                           "for": common.ref("Patient", v["person_id"]),
                           "businessStatus": {"coding": [{"system": systems.WAITING_LIST_STATE, "code": state,
                                                          "display": label}], "text": label},
                           "authoredOn": common.iso(v.get("applied_at") or v["application_date"])}
    if v.get("assessment_due_at") and state == EntryState.assessment_pending.value:
        res["restriction"] = {"period": {"end": common.iso(v["assessment_due_at"])}}
    start = v.get("listing_date")
    end = (v.get("admitted_at") or v.get("exited_at") or v.get("decided_at")) if state not in _OPEN else None
    if start or end:
        res["executionPeriod"] = {k: common.iso(x) for k, x in (("start", start), ("end", end)) if x}
    outputs = [{**_output("posizione", "Posizione in lista (calcolata alla lettura)", valueInteger=pos),
                "extension": [{"url": systems.SERVICE_UNIT_EXTENSION, "valueReference": _unit(unit_id)}]}
               for unit_id, pos in (v.get("positions") or {}).items() if pos is not None]
    if v.get("score"):  # only for whoever sees the VMD summary (EntryPublic drops it otherwise)
        outputs.append(_output("punteggio", "Punteggio", valueDecimal=v["score"]["total"]))
    if outputs:
        res["output"] = outputs
    common.versioned(res, v.get("version"))
    return Task.model_validate(res)


RESOURCES = {"ServiceRequest": service_request, "Task": task}
