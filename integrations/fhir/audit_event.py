"""AuditEvent ⇐ one line of a person's access log (`domain.registry.access_log.access_log` items): who (user,
roles, organisations), what (action, object type, route), when, why (purpose, legal basis, break-glass) and the
outcome. Outbound only: the log is written by the service itself, never received."""
from __future__ import annotations

import uuid
from typing import Any

from fhir.resources.R4B.auditevent import AuditEvent

from integrations.fhir import common, systems

# AuditEvent.action (C R U D E) and outcome (0 success, 4 minor failure, 8 serious failure) of our codes.
ACTIONS = {"create": "C", "read": "R", "list": "R", "search": "E", "update": "U", "delete": "D", "export": "R"}
OUTCOMES = {"ok": "0", "denied": "4", "not_found": "4", "rejected": "4", "failed": "8"}
CAPS = 4  # organisations shown per agent


def to_fhir(item: dict[str, Any], *, person_id: uuid.UUID) -> AuditEvent:
    action = str(item.get("action") or "call")
    agent: dict[str, Any] = {"requestor": True,
                             "who": {"display": item.get("actor_label") or item.get("actor_username") or "sistema"},
                             "role": [{"coding": [{"system": systems.ROLE, "code": r, "display": label}]}
                                      for r, label in zip(item.get("roles") or [], item.get("role_labels") or [],
                                                          strict=False)]}
    if item.get("actor_username"):
        agent["altId"] = item["actor_username"]
    if item.get("purpose_label") or item.get("purpose"):
        agent["purposeOfUse"] = [{"text": item.get("purpose_label") or item["purpose"]}]
    if item.get("organisations"):  # the log keeps the organisations' names only: shown beside the user
        agent["who"]["display"] += " — " + ", ".join(item["organisations"][:CAPS])
    if not agent["role"]:
        del agent["role"]
    res: dict[str, Any] = {
        "resourceType": "AuditEvent", "id": str(item["id"]),
        "type": {"system": systems.AUDIT_EVENT_TYPE, "code": "rest", "display": "RESTful Operation"},
        "subtype": [{"system": systems.AUDIT_ACTION, "code": action, "display": item.get("action_label") or action}],
        "action": ACTIONS.get(action, "E"), "recorded": common.iso(item["at"]),
        "outcome": OUTCOMES.get(str(item.get("outcome") or "ok"), "4"),
        "agent": [agent],
        "source": {"observer": {"display": "PUA Ambito di Crema"}},
        "entity": [{"what": common.ref("Patient", person_id)}],
    }
    if item.get("outcome_label"):
        res["outcomeDesc"] = item["outcome_label"]
    if item.get("object_type"):
        res["entity"][0]["type"] = {"system": systems.AUDIT_OBJECT, "code": item["object_type"],
                                    "display": item.get("object_type_label") or item["object_type"]}
    if item.get("route"):
        res["entity"][0]["description"] = item["route"]
    if item.get("legal_basis") or item.get("break_glass"):
        res["purposeOfEvent"] = [{"text": ("accesso straordinario (break-glass): " if item.get("break_glass") else "")
                                  + (item.get("legal_basis") or "")}]
    return AuditEvent.model_validate(res)
