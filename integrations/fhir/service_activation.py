"""ServiceRequest and Task ⇄ an activation order of a service (domain/services), as the services context shows it
(`schemas.services.ActivationPublic`, full view). One order, two resources with the order's id, as for the
waiting-list application (integrations/fhir/waiting_list.py):

    ServiceRequest  the order: category attivazione-servizio, code the service type of the catalogue, the provider
                    as performer, the plan it comes from (basedOn CarePlan), the intensity and the funding source as
                    extensions, the ordered period (its last day: our end is the first day without service)
    Task            its execution by the provider: status and businessStatus from the order's state, the reason of a
                    refusal, suspension or end, the execution period, and the hours or accesses delivered so far as
                    an output (the delivery log itself stays here: ASST receives the total at each change of state)
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task

from domain.services.models import ACTIVATION_STATE_LABELS, END_REASON_LABELS
from integrations.fhir import common, systems

ACTIVATION_STATE = f"{systems.BASE}/CodeSystem/stato-attivazione-servizio"
ACTIVATION_OUTPUT = f"{systems.BASE}/CodeSystem/esito-attivazione-servizio"  # erogato
CATEGORY = {"coding": [{"system": systems.REQUEST_CATEGORY, "code": "attivazione-servizio",
                        "display": "Ordine di attivazione di un servizio del progetto"}]}
UNITS = {"hours_week": ("h/wk", "ore/settimana", "h"), "accesses_week": ("{accessi}/wk", "accessi/settimana",
                                                                         "{accessi}")}
SR_STATUS = {"requested": "active", "accepted": "active", "active": "active", "suspended": "on-hold",
             "ended": "completed", "declined": "revoked"}
TASK_STATUS = {"requested": "requested", "accepted": "accepted", "declined": "rejected", "active": "in-progress",
               "suspended": "on-hold", "ended": "completed"}
UCUM = "http://unitsofmeasure.org"


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def service_request(v: dict[str, Any]) -> ServiceRequest:
    state = str(v["state"])
    code, text, _ = UNITS[v["intensity_unit"]]
    period = {"start": common.iso(v["start_date"])}
    if v.get("end_date"):  # half-open here, inclusive in FHIR: the last day of service
        period["end"] = common.iso(_day(v["end_date"]) - timedelta(days=1))
    extensions = [{"url": systems.INTENSITY, "valueQuantity": {"value": float(v["intensity_value"]), "unit": text,
                                                               "system": UCUM, "code": code}}]
    if v.get("funding_source"):
        extensions.append({"url": systems.FUNDING_SOURCE, "valueCode": v["funding_source"]})
    res: dict[str, Any] = {
        "resourceType": "ServiceRequest", "id": str(v["id"]), "status": SR_STATUS[state], "intent": "order",
        "category": [CATEGORY], "code": {"coding": [{"system": systems.SERVICE_TYPE, "code": v["service_type"]}]},
        "subject": common.ref("Patient", v["person_id"]), "occurrencePeriod": period,
        "authoredOn": common.iso(v["requested_at"]),
        "performer": [{**common.ref("Organization", v["provider_org_id"]),
                       **({"display": v["provider_name"]} if v.get("provider_name") else {})}],
        "extension": extensions}
    if v.get("plan_id"):
        res["basedOn"] = [common.ref("CarePlan", v["plan_id"])]
    if v.get("notes"):
        res["note"] = [{"text": v["notes"]}]
    common.versioned(res, v.get("version"))
    return ServiceRequest.model_validate(res)


def task(v: dict[str, Any], delivered: Any = None) -> Task:
    state = str(v["state"])
    label = ACTIVATION_STATE_LABELS[state]
    res: dict[str, Any] = {
        "resourceType": "Task", "id": str(v["id"]), "status": TASK_STATUS[state], "intent": "order",
        "focus": common.ref("ServiceRequest", v["id"]), "for": common.ref("Patient", v["person_id"]),
        "owner": common.ref("Organization", v["provider_org_id"]),
        "businessStatus": {"coding": [{"system": ACTIVATION_STATE, "code": state, "display": label}], "text": label},
        "authoredOn": common.iso(v["requested_at"])}
    reason = {"declined": v.get("decline_reason"), "suspended": v.get("suspension_reason"),
              "ended": END_REASON_LABELS.get(str(v.get("end_reason")), v.get("end_reason"))}.get(state)
    if reason:
        res["statusReason"] = {"text": reason + (f" ({v['end_note']})" if state == "ended" and v.get("end_note")
                                                 else "")}
    if v.get("started_at"):
        res["executionPeriod"] = {"start": common.iso(v["started_at"]),
                                  **({"end": common.iso(v["ended_at"])} if v.get("ended_at") else {})}
    if delivered is not None:
        _, _, unit = UNITS[v["intensity_unit"]]
        res["output"] = [{"type": {"coding": [{"system": ACTIVATION_OUTPUT, "code": "erogato"}],
                                   "text": "Ore o accessi erogati (registro delle prestazioni)"},
                          "valueQuantity": {"value": float(delivered), "system": UCUM, "code": unit,
                                            "unit": "ore" if unit == "h" else "accessi"}}]
    common.versioned(res, v.get("version"))
    return Task.model_validate(res)


def _states_of(statuses: dict[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for state, status in statuses.items():
        out.setdefault(status, []).append(state)
    return out


# The order states behind each status, for the `status` search (the statuses are functions of the state).
STATUS_STATES = {"ServiceRequest": _states_of(SR_STATUS), "Task": _states_of(TASK_STATUS)}
RESOURCES = {"ServiceRequest": service_request, "Task": task}
