"""ServiceRequest and Task of a waiting-list application: R4-valid for every state, the status shown is the one its
`status` search finds it under, the full view names the requester and the chosen units in order, the minimal view
carries no score."""
from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from domain.waiting_list.models import ENTRY_STATE_LABELS, EntryState
from integrations.fhir import r4, systems, waiting_list

pytestmark = pytest.mark.unit


def _view(state: str, **more) -> dict:
    return {"id": uuid.uuid4(), "person_id": uuid.uuid4(), "state": state, "udo_type": "rsa", "view": "minimal",
            "application_date": date(2026, 5, 4), "version": 3, **more}


@pytest.mark.parametrize("state", [s.value for s in EntryState])
@pytest.mark.parametrize("rtype", sorted(waiting_list.RESOURCES))
def test_the_status_shown_is_the_status_searched(rtype, state):
    res = r4.dump(waiting_list.RESOURCES[rtype](_view(state)))
    r4.check_r4(res)
    [searched] = [status for status, states in waiting_list.STATUS_STATES[rtype].items() if state in states]
    assert res["status"] == searched
    if rtype == "Task":
        assert res["businessStatus"]["text"] == ENTRY_STATE_LABELS[state]


def test_the_full_view_of_a_listed_application():
    first, second, comune = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    v = _view("listed", view="full", applicant="social_worker", applicant_label="L'assistente sociale",
              comune_id=comune, unit_ids=[first, second], positions={str(first): 2, str(second): None},
              score={"total": 67.0}, listing_date=date(2026, 5, 20),
              applied_at=datetime(2026, 5, 4, 9, tzinfo=UTC))
    sr = r4.dump(waiting_list.service_request(v))
    r4.check_r4(sr)
    assert (sr["id"], sr["status"], sr["intent"], sr["authoredOn"]) == (str(v["id"]), "active", "order", "2026-05-04")
    assert sr["subject"] == {"reference": f"Patient/{v['person_id']}"}
    assert sr["category"][0]["coding"][0]["code"] == "accesso-udo"
    assert sr["code"]["coding"] == [{"system": systems.UDO_TYPE, "code": "rsa"}]
    assert sr["requester"]["reference"] == f"Organization/{comune}"
    assert [p["identifier"]["value"] for p in sr["performer"]] == [str(first), str(second)]  # preference order
    assert sr["meta"]["versionId"] == "3"

    task = r4.dump(waiting_list.task(v))
    r4.check_r4(task)
    assert (task["id"], task["status"]) == (str(v["id"]), "in-progress")
    assert task["focus"] == {"reference": f"ServiceRequest/{v['id']}"}
    assert task["for"] == {"reference": f"Patient/{v['person_id']}"}
    assert task["businessStatus"]["coding"][0] == {"system": systems.WAITING_LIST_STATE, "code": "listed",
                                                   "display": "In lista d'attesa"}
    assert task["executionPeriod"] == {"start": "2026-05-20"}
    outputs = {o["type"]["coding"][0]["code"]: o for o in task["output"]}
    assert outputs["posizione"]["valueInteger"] == 2  # no position where none was computed
    assert outputs["posizione"]["extension"][0]["valueReference"]["identifier"]["value"] == str(first)
    assert outputs["punteggio"]["valueDecimal"] == 67


def test_the_minimal_view_names_no_requester_and_shows_no_score():
    v = _view("listed", unit_ids=[uuid.uuid4()])
    sr, task = r4.dump(waiting_list.service_request(v)), r4.dump(waiting_list.task(v))
    assert "requester" not in sr and "output" not in task
    assert len(sr["performer"]) == 1
