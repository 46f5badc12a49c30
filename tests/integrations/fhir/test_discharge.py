"""Encounter, ServiceRequest and Task of a discharge case: the status each resource shows is the one its `status`
search finds it under, for every state of the case."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from domain.discharge.models import DischargeState
from integrations.fhir import discharge, r4

pytestmark = pytest.mark.unit
CONVERT = {"Encounter": discharge.encounter, "ServiceRequest": discharge.service_request, "Task": discharge.task}


@pytest.mark.parametrize("state", [s.value for s in DischargeState])
@pytest.mark.parametrize("rtype", sorted(CONVERT))
def test_the_status_shown_is_the_status_searched(rtype, state):
    evaluated = state not in ("signalled", "cot_requested", "cancelled")
    view = {"id": uuid.uuid4(), "person_id": uuid.uuid4(), "state": state,
            "evaluated_at": datetime(2026, 3, 3, 9, tzinfo=UTC) if evaluated else None}
    res = r4.dump(CONVERT[rtype](view))
    r4.check_r4(res)
    [searched] = [status for status, states in discharge.STATUS_STATES[rtype].items() if state in states]
    assert res["status"] == searched
