"""Waiting-list applications on the FHIR façade (issue 11): an application filed through the domain service is read
as ServiceRequest and Task with the rules of GET /api/waiting-lists/applications/{id} (the RSA operator its
applicants only, with the minimal view), found by ?patient=, with an audit row per read."""
from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from domain.security.models import AuditEvent, UserKind
from domain.waiting_list.service import ENTITY
from integrations.fhir import r4, systems
from tests.domain.waiting_list.setup import World, applicant
from tests.domain.waiting_list.test_service import SCENARIO_NOW
from tests.support import bearer, make_user

FHIR = "application/fhir+json"


@pytest.fixture
async def world(session, clock):
    clock.set(SCENARIO_NOW)
    return await World().build(session)


def _fhir(r, status: int = 200) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(FHIR)
    body = r.json()
    r4.check_r4(body)
    return body


async def test_an_application_as_service_request_and_task(client, session, world):
    w = world
    a = await applicant(session, w, barthel=20, units=[w.x, w.y], application_date=date(2026, 5, 4),
                        listing_date=date(2026, 5, 20), caregiver="none", lives_alone=True)
    sid = a.entry.id

    # the comune of the person: the full view
    r = await client.get(f"/fhir/ServiceRequest/{sid}", headers=bearer(w.sw))
    sr = _fhir(r)
    assert (sr["resourceType"], sr["id"], sr["status"], sr["intent"]) == ("ServiceRequest", str(sid), "active", "order")
    assert sr["subject"] == {"reference": f"Patient/{a.person.id}"}
    assert sr["authoredOn"] == "2026-05-04"
    assert sr["category"][0]["coding"][0]["code"] == "accesso-udo"
    assert sr["code"]["coding"][0] == {"system": systems.UDO_TYPE, "code": "rsa"}
    assert [p["identifier"]["value"] for p in sr["performer"]] == [str(w.x.id), str(w.y.id)]  # preference order
    assert sr["requester"] == {"display": "Un familiare"}
    rows = (await session.execute(sa.select(AuditEvent.action, AuditEvent.object_type, AuditEvent.object_ids).where(
        AuditEvent.request_id == r.headers["x-request-id"]))).all()
    assert rows == [("read", ENTITY, [sid])]

    task = _fhir(await client.get(f"/fhir/Task/{sid}", headers=bearer(w.sw)))
    assert (task["id"], task["status"]) == (str(sid), "in-progress")
    assert task["focus"] == {"reference": f"ServiceRequest/{sid}"}
    assert task["for"] == {"reference": f"Patient/{a.person.id}"}
    assert task["businessStatus"]["text"] == "In lista d'attesa"
    outputs = {o["type"]["coding"][0]["code"]: o for o in task["output"]}
    assert outputs["punteggio"]["valueDecimal"] > 0
    assert {o["extension"][0]["valueReference"]["identifier"]["value"] for o in task["output"]
            if o["type"]["coding"][0]["code"] == "posizione"} == {str(w.x.id), str(w.y.id)}

    # the operator of RSA X: its applicant, its own unit only, no requester, no score (no share_rsa consent)
    sr = _fhir(await client.get(f"/fhir/ServiceRequest/{sid}", headers=bearer(w.fbc)))
    assert [p["identifier"]["value"] for p in sr["performer"]] == [str(w.x.id)] and "requester" not in sr
    task = _fhir(await client.get(f"/fhir/Task/{sid}", headers=bearer(w.fbc)))
    assert [o["type"]["coding"][0]["code"] for o in task.get("output", [])] == ["posizione"]

    # the operator of another RSA, and a comune of the other sub-ambito: outside their scope
    other = await applicant(session, w, barthel=35, units=[w.y], application_date=date(2026, 5, 6))
    for who, rtype, row in ((w.fbc, "ServiceRequest", other.entry.id), (w.fbc, "Task", other.entry.id),
                            (w.crema_sw, "ServiceRequest", sid)):
        outcome = _fhir(await client.get(f"/fhir/{rtype}/{row}", headers=bearer(who)), 404)
        assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["code"] == "not-found"

    # search by patient: the application, as each resource
    for rtype in ("ServiceRequest", "Task"):
        bundle = _fhir(await client.get(f"/fhir/{rtype}", params={"patient": f"Patient/{a.person.id}"},
                                        headers=bearer(w.fbc)))
        assert [e["resource"]["id"] for e in bundle["entry"]] == [str(sid)]
        assert bundle["entry"][0]["fullUrl"].endswith(f"/fhir/{rtype}/{sid}")
    bundle = _fhir(await client.get("/fhir/ServiceRequest", params={"patient": f"Patient/{other.person.id}"},
                                    headers=bearer(w.fbc)))
    assert "entry" not in bundle  # not an applicant of RSA X
    # status: the pending application is an active ServiceRequest and a requested Task, not an in-progress one
    bundle = _fhir(await client.get("/fhir/Task", params={"patient": other.person.id, "status": "requested"},
                                    headers=bearer(w.sw)))
    assert [e["resource"]["businessStatus"]["text"] for e in bundle["entry"]] == ["In attesa di valutazione"]
    bundle = _fhir(await client.get("/fhir/Task", params={"patient": other.person.id, "status": "in-progress"},
                                    headers=bearer(w.sw)))
    assert "entry" not in bundle
    _fhir(await client.get("/fhir/Task", params={"status": "sconosciuto"}, headers=bearer(w.sw)), 400)


async def test_pages_go_from_the_discharge_cases_to_the_applications(client, session, world):
    """The comune reads both kinds of ServiceRequest: one page of each source, the cursor naming which."""
    w = world
    a = await applicant(session, w, barthel=20, units=[w.x], application_date=date(2026, 5, 4))
    first = _fhir(await client.get("/fhir/ServiceRequest", params={"_count": "1"}, headers=bearer(w.sw)))
    seen, nxt = [e["resource"]["id"] for e in first.get("entry", [])], first
    for _ in range(10):
        link = next((x["url"] for x in nxt["link"] if x["relation"] == "next"), None)
        if link is None:
            break
        nxt = _fhir(await client.get(link.split("/fhir", 1)[1].join(["/fhir", ""]), headers=bearer(w.sw)))
        seen += [e["resource"]["id"] for e in nxt.get("entry", [])]
    assert str(a.entry.id) in seen
    bad = _fhir(await client.get("/fhir/ServiceRequest", params={"_cursor": "x.abc"}, headers=bearer(w.sw)), 400)
    assert "_cursor" in bad["issue"][0]["diagnostics"]


async def test_a_system_client_needs_the_scope(client, session, world):
    w = world
    a = await applicant(session, w, barthel=20, units=[w.x], application_date=date(2026, 5, 4))
    user = await make_user(session, "rsa_operator", "op-fbc", kind=UserKind.system, scopes=["system/Patient.read"])
    r = await client.get(f"/fhir/Task/{a.entry.id}", headers=bearer(user, scopes=["system/Patient.read"]))
    assert _fhir(r, 403)["issue"][0]["code"] == "forbidden"
    user = await make_user(session, "rsa_operator", "op-fbc", kind=UserKind.system, scopes=["system/Task.read"])
    _fhir(await client.get(f"/fhir/Task/{a.entry.id}", headers=bearer(user, scopes=["system/Task.read"])))
