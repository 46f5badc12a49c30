"""CarePlan (with its Goals contained) ⇄ a progetto individualizzato, from the plan as the care-plan context shows
it to the caller (`domain.care_plan.policy.plan_view_for`: the full view, or the minimal one of a provider with
only its interventions and no goals). Interventions are the plan's activities; goals are contained Goal resources
referenced from `CarePlan.goal`, since they live and change only inside their plan.

`from_fhir` gives the fields of `schemas.care_plan.CarePlanCreate` (cartella from the EpisodeOfCare in
`supportingInfo`) and the goals as `GoalCreate` fields."""
from __future__ import annotations

from typing import Any

from fhir.resources.R4B.careplan import CarePlan

from domain.care_plan.models import PLAN_KIND_LABELS, PlanKind
from domain.kernel.errors import Invalid
from integrations.fhir import common, r4, systems

STATUS = {"draft": "draft", "proposed": "draft", "agreed": "draft", "active": "active", "under_review": "active",
          "suspended": "on-hold", "completed": "completed", "revoked": "revoked"}
ACTIVITY_STATUS = {"planned": "not-started", "active": "in-progress", "ended": "completed", "cancelled": "cancelled"}
# Goal: our outcome → R4 lifecycle and, where one fits, the FHIR achievement code.
GOAL_LIFECYCLE = {"open": "active", "achieved": "completed", "partly": "completed", "not_achieved": "completed",
                  "dropped": "cancelled"}
GOAL_ACHIEVED = {"open": "in-progress", "achieved": "achieved", "not_achieved": "not-achieved"}


def _goal(g: dict[str, Any], person_id: Any) -> dict[str, Any]:
    status = str(g.get("status") or "open")
    codings = [{"system": systems.GOAL_STATUS, "code": status, "display": g.get("status_label") or status}]
    if status in GOAL_ACHIEVED:
        codings.append({"system": systems.GOAL_ACHIEVEMENT, "code": GOAL_ACHIEVED[status]})
    target: dict[str, Any] = {"measure": {"text": g["indicator"]}, "detailString": g["target"]}
    if g.get("due_date"):
        target["dueDate"] = common.iso(g["due_date"])
    return {"resourceType": "Goal", "id": str(g["id"]), "lifecycleStatus": GOAL_LIFECYCLE.get(status, "active"),
            "achievementStatus": {"coding": codings}, "description": {"text": g["description"]},
            "subject": common.ref("Patient", person_id), "target": [target]}


def _activity(iv: dict[str, Any]) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "kind": "ServiceRequest", "status": ACTIVITY_STATUS.get(str(iv["status"]), "unknown"),
        "code": {"coding": [{"system": systems.SERVICE_TYPE, "code": iv["service_type"]}],
                 **({"text": iv["service_label"]} if iv.get("service_label") else {})}}
    extensions = []
    if iv.get("intensity_value") is not None:
        quantity: dict[str, Any] = {"value": iv["intensity_value"]}
        if iv.get("intensity_unit"):
            quantity["unit"] = iv["intensity_unit"]
        extensions.append({"url": systems.INTENSITY, "valueQuantity": quantity})
    if iv.get("funding_source"):
        extensions.append({"url": systems.FUNDING_SOURCE, "valueCode": iv["funding_source"]})
    if extensions:
        detail["extension"] = extensions
    if iv.get("provider_org_id"):
        detail["performer"] = [{**common.ref("Organization", iv["provider_org_id"]),
                                **({"display": iv["provider_name"]} if iv.get("provider_name") else {})}]
    period = {k: common.iso(iv[f]) for k, f in (("start", "start_date"), ("end", "end_date")) if iv.get(f)}
    if period:
        detail["scheduledPeriod"] = period
    if iv.get("notes"):
        detail["description"] = iv["notes"]
    return {"detail": detail}


def to_fhir(v: dict[str, Any]) -> CarePlan:
    kind, state = str(v["kind"]), str(v["state"])
    res: dict[str, Any] = {
        "resourceType": "CarePlan", "id": str(v["id"]), "status": STATUS.get(state, "unknown"), "intent": "plan",
        "extension": [{"url": systems.PLAN_STATE, "valueCode": state}],
        "category": [{"coding": [{"system": systems.PLAN_KIND, "code": kind,
                                  "display": PLAN_KIND_LABELS.get(kind, kind)}]}],
        "subject": common.ref("Patient", v["person_id"]),
        "supportingInfo": [common.ref("EpisodeOfCare", v["cartella_id"])],
        "author": {"identifier": {"system": systems.USER, "value": str(v["case_manager_id"])},
                   **({"display": v["case_manager_name"]} if v.get("case_manager_name") else {})},
    }
    common.versioned(res, v.get("version"))
    if v.get("title"):
        res["title"] = v["title"]
    if v.get("summary"):
        res["description"] = v["summary"]
    if v.get("created_at"):
        res["created"] = common.iso(v["created_at"])
    start = v.get("activated_at") or v.get("agreed_at")
    period = {k: common.iso(x) for k, x in (("start", start), ("end", v.get("closed_at"))) if x}
    if period:
        res["period"] = period
    goals = v.get("goals") or []
    if goals:
        res["contained"] = [_goal(g, v["person_id"]) for g in goals]
        res["goal"] = [{"reference": f"#{g['id']}"} for g in goals]
    if v.get("interventions"):
        res["activity"] = [_activity(iv) for iv in v["interventions"]]
    return CarePlan.model_validate(res)


def from_fhir(data: dict[str, Any] | CarePlan) -> dict[str, Any]:
    """`CarePlanCreate` fields (`cartella_id`, `kind`, `title`, `summary`, `case_manager_id`) and `goals`, a list of
    `GoalCreate` fields from the contained Goals the plan references."""
    cp = data if isinstance(data, CarePlan) else r4.parse(data, expected="CarePlan")
    episodes = [x for x in cp.supportingInfo or [] if (x.reference or "").startswith("EpisodeOfCare/")]
    if len(episodes) != 1:
        raise Invalid("CarePlan.supportingInfo", "indicare la cartella: un riferimento EpisodeOfCare/<id>")
    out: dict[str, Any] = {"cartella_id": common.reference_id(episodes[0], "EpisodeOfCare", "CarePlan.supportingInfo")}
    kinds = [c.code for cc in cp.category or [] for c in cc.coding or [] if c.system == systems.PLAN_KIND]
    if kinds:
        if kinds[0] not in PlanKind.__members__:
            raise Invalid("CarePlan.category", "tipo di progetto sconosciuto: " + ", ".join(PlanKind.__members__))
        out["kind"] = kinds[0]
    if cp.title:
        out["title"] = cp.title
    if cp.description:
        out["summary"] = cp.description
    author = cp.author.identifier if cp.author is not None else None
    if author is not None and author.system == systems.USER:
        out["case_manager_id"] = author.value
    contained = {r.id: r for r in cp.contained or [] if r.get_resource_type() == "Goal"}
    goals = []
    for i, ref in enumerate(cp.goal or []):
        g = contained.get((ref.reference or "").removeprefix("#"))
        if g is None:
            raise Invalid(f"CarePlan.goal[{i}]", "atteso il riferimento #id di un Goal contenuto nel progetto")
        target = (g.target or [None])[0]
        goals.append({"description": g.description.text if g.description else None,
                      "indicator": target.measure.text if target is not None and target.measure else None,
                      "target": target.detailString if target is not None else None,
                      "due_date": target.dueDate if target is not None else None})
    out["goals"] = goals
    return out
