"""CarePlan with contained Goals ⇄ progetto individualizzato: the round trip of what a plan is created with, the
mapping of states, and the minimal view of a provider (no goals, only its interventions)."""
from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from domain.kernel.errors import Invalid
from integrations.fhir import care_plan, r4, systems

pytestmark = pytest.mark.unit

GOAL = {"id": uuid.uuid4(), "description": "Recuperare l'autonomia nell'igiene personale",
        "indicator": "Indice di Barthel", "target": "Barthel ≥ 60", "due_date": date(2026, 9, 30), "status": "open",
        "status_label": "Aperto", "position": 0}
SAD = {"id": uuid.uuid4(), "service_type": "sad", "service_label": "Servizio di assistenza domiciliare",
       "provider_org_id": uuid.uuid4(), "provider_name": "Coop. Nuova", "intensity_value": 6.0,
       "intensity_unit": "ore/settimana", "start_date": date(2026, 3, 9), "end_date": date(2026, 9, 30),
       "funding_source": "fna", "status": "active", "notes": "Tre accessi settimanali."}
PLAN = {"id": uuid.uuid4(), "cartella_id": uuid.uuid4(), "person_id": uuid.uuid4(), "kind": "ordinary",
        "state": "active", "title": "Sostegno al domicilio dopo la caduta",
        "summary": "Anziana che vive sola, autonomia ridotta.", "case_manager_id": uuid.uuid4(),
        "case_manager_name": "Anna Rossi", "agreed_at": datetime(2026, 3, 2, 9, tzinfo=UTC),
        "activated_at": datetime(2026, 3, 9, 9, tzinfo=UTC), "closed_at": None, "version": 5,
        "created_at": datetime(2026, 2, 20, 9, tzinfo=UTC), "goals": [GOAL], "interventions": [SAD]}


def test_the_fields_a_plan_is_created_with_come_back_the_same():
    res = r4.dump(care_plan.to_fhir(PLAN))
    r4.check_r4(res)
    assert res["status"] == "active" and res["goal"] == [{"reference": f"#{GOAL['id']}"}]
    assert res["contained"][0]["achievementStatus"]["coding"][1] == {"system": systems.GOAL_ACHIEVEMENT,
                                                                      "code": "in-progress"}
    activity = res["activity"][0]["detail"]
    assert activity["status"] == "in-progress" and activity["performer"][0]["reference"] == \
        f"Organization/{SAD['provider_org_id']}"
    back = care_plan.from_fhir(res)
    assert back == {"cartella_id": PLAN["cartella_id"], "kind": "ordinary", "title": PLAN["title"],
                    "summary": PLAN["summary"], "case_manager_id": str(PLAN["case_manager_id"]),
                    "goals": [{k: GOAL[k] for k in ("description", "indicator", "target", "due_date")}]}


@pytest.mark.parametrize(("state", "status"), [("proposed", "draft"), ("agreed", "draft"), ("suspended", "on-hold"),
                                               ("completed", "completed"), ("revoked", "revoked")])
def test_states_map_to_the_r4_status_and_stay_in_the_extension(state, status):
    res = r4.dump(care_plan.to_fhir({**PLAN, "state": state}))
    assert res["status"] == status and res["extension"] == [{"url": systems.PLAN_STATE, "valueCode": state}]


def test_the_minimal_view_has_no_goals_nor_title():
    minimal = {k: PLAN[k] for k in ("id", "cartella_id", "person_id", "kind", "state", "case_manager_id",
                                    "activated_at", "version")}
    res = r4.dump(care_plan.to_fhir({**minimal, "interventions": [{**SAD, "notes": None}]}))
    assert not {"goal", "contained", "title", "description"} & set(res)
    assert "description" not in res["activity"][0]["detail"]


def test_a_goal_reference_that_is_not_contained_is_refused():
    res = r4.dump(care_plan.to_fhir(PLAN))
    res["goal"] = [{"reference": "Goal/123"}]
    with pytest.raises(Invalid) as exc:
        care_plan.from_fhir(res)
    assert exc.value.field == "CarePlan.goal[0]"
