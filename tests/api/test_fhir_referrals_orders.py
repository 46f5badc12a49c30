"""The PUA's referrals and the services' activation orders on the FHIR façade (issue 12: ServiceRequest + Task for
the PUA referral, as for the COT evaluation and the waiting-list application; issue 13's orders, which already go to
ASST through the outbox, readable here too): each read with the rules of its /api twin
(GET /api/pua/requests/{id}, GET /api/services/activations/{id}), found by ?patient=, status and dates, audited."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from domain.pua import flows
from domain.pua.service import ENTITY as PUA_ENTITY
from domain.security.models import AuditEvent
from domain.services import service as services
from integrations.fhir import r4, systems
from schemas.pua import ReferCotIn
from schemas.services import ActivationCreate
from tests.domain.pua.helpers import complex_answers, elderly_woman, setup_pua, triaged
from tests.domain.services.setup import MONDAY, build_case
from tests.support import bearer

FHIR = "application/fhir+json"


def _fhir(r, status: int = 200) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(FHIR)
    body = r.json()
    r4.check_r4(body)  # nothing R4 does not define leaves the server
    return body


def _ids(bundle: dict) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", [])]


def _fhir_instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
async def referral(session, clock):
    """An MMG's referral triaged as complex and sent by the PUA operator to the COT and the VMD together."""
    pua = await setup_pua(session)
    person = await elderly_woman(session)
    ar, _, op = await triaged(session, pua, person, complex_answers())
    ar = await flows.refer_cot(session, principal=op, request_id=ar.id, data=ReferCotIn(
        with_vmd=True, requested_service_type="adi_cdom", notes="Dimissione venerdì; serve anche la VMD.",
        override_reason="Dimissione imminente dal reparto: serve anche la COT"))
    return pua, person, ar


async def test_a_pua_referral_as_service_request_and_task(client, session, referral):
    pua, person, ar = referral
    rid = ar.id
    r = await client.get(f"/fhir/ServiceRequest/{rid}", headers=bearer(pua.operator))
    sr = _fhir(r)
    assert (sr["id"], sr["status"], sr["intent"]) == (str(rid), "active", "order")
    assert [c["coding"][0]["code"] for c in sr["category"]] == ["invio-cot", "invio-vmd"]
    assert sr["code"]["coding"][0] == {"system": systems.SERVICE_TYPE, "code": "adi_cdom"}
    assert sr["subject"] == {"reference": f"Patient/{person.id}"}
    assert sr["requester"] == {"reference": f"Organization/{pua.pua_org.id}"}
    assert sr["performer"] == [{"reference": f"Organization/{pua.cot_org.id}"},
                               {"type": "CareTeam", "identifier": {"system": systems.TEAM,
                                                                   "value": str(pua.vmd_team.id)}}]
    assert sr["supportingInfo"] == [{"reference": f"EpisodeOfCare/{ar.cartella_id}"}]
    assert sr["note"] == [{"text": "Dimissione venerdì; serve anche la VMD."}]
    assert _fhir_instant(sr["authoredOn"]) == ar.closed_at
    rows = (await session.execute(sa.select(AuditEvent.action, AuditEvent.object_type, AuditEvent.object_ids).where(
        AuditEvent.request_id == r.headers["x-request-id"]))).all()
    assert rows == [("read", PUA_ENTITY, [rid])]

    task = _fhir(await client.get(f"/fhir/Task/{rid}", headers=bearer(pua.operator)))
    assert (task["status"], task["focus"], task["for"]) == (
        "requested", {"reference": f"ServiceRequest/{rid}"}, {"reference": f"Patient/{person.id}"})
    assert task["owner"] == {"reference": f"Organization/{pua.cot_org.id}"}
    assert _fhir_instant(task["restriction"]["period"]["end"]) == ar.closed_at + timedelta(hours=48)
    assert task["output"][0]["valueIdentifier"] == {"system": systems.VMD, "value": str(ar.vmd_id)}
    assert task["businessStatus"]["coding"][0]["code"] == "referred_cot_vmd"

    # the social worker of the person's comune reads it as /api does; the other comune's does not find it
    assert _fhir(await client.get(f"/fhir/ServiceRequest/{rid}", headers=bearer(pua.comune_sw)))["id"] == str(rid)
    outcome = _fhir(await client.get(f"/fhir/ServiceRequest/{rid}", headers=bearer(pua.other_comune_sw)), 404)
    assert outcome["issue"][0]["code"] == "not-found"


async def test_a_request_not_referred_is_no_service_request(client, session, clock):
    pua = await setup_pua(session)
    person = await elderly_woman(session)
    ar, _, _ = await triaged(session, pua, person, complex_answers())  # triaged, not yet referred
    for rtype in ("ServiceRequest", "Task"):
        # not a referral: the read falls through to the discharge case, which the PUA operator may not read (403
        # as on GET /api/discharges/{id})
        r = await client.get(f"/fhir/{rtype}/{ar.id}", headers=bearer(pua.operator))
        outcome = _fhir(r, 403)
        assert "discharge.read" in outcome["issue"][0]["diagnostics"]
        read = (await session.execute(sa.select(AuditEvent.object_ids).where(  # nothing was shown: no read
            AuditEvent.request_id == r.headers["x-request-id"], AuditEvent.action == "read"))).scalars().all()
        assert [ar.id] not in read
        bundle = _fhir(await client.get(f"/fhir/{rtype}", params={"patient": f"Patient/{person.id}"},
                                        headers=bearer(pua.operator)))
        assert str(ar.id) not in _ids(bundle)


async def test_referrals_searched_by_patient_status_and_dates(client, session, referral):
    pua, person, ar = referral
    h = bearer(pua.operator)
    patient = f"Patient/{person.id}"
    due = ar.closed_at + timedelta(hours=48)

    async def task_ids(**params) -> list[str]:
        return _ids(_fhir(await client.get("/fhir/Task", params={"patient": patient, **params}, headers=h)))

    async def sr_ids(**params) -> list[str]:
        return _ids(_fhir(await client.get("/fhir/ServiceRequest", params={"patient": patient, **params},
                                           headers=h)))

    assert await sr_ids() == [str(ar.id)]
    assert await sr_ids(status="active") == [str(ar.id)]
    assert await sr_ids(status="completed") == []
    assert await task_ids(status="requested") == [str(ar.id)]
    day = ar.closed_at.astimezone(ZoneInfo("Europe/Rome")).date()
    assert await sr_ids(authored=day.isoformat()) == [str(ar.id)]
    assert await sr_ids(authored=f"lt{(day - timedelta(days=1)).isoformat()}") == []
    # the COT's 48 hours: due after 47 h, not after 49 h
    assert await task_ids(due=f"gt{(due - timedelta(hours=1)).isoformat()}") == [str(ar.id)]
    assert await task_ids(due=f"gt{(due + timedelta(hours=1)).isoformat()}") == []


@pytest.fixture
async def order(session, clock):
    clock.set(MONDAY)
    c = await build_case(session, clock)
    sw = await c.p(session, c.w.sw)
    a = await services.order(session, principal=sw, data=ActivationCreate(intervention_id=c.sad.id))
    return c, a


async def test_an_activation_order_as_service_request_and_task(client, session, order):
    c, a = order
    r = await client.get(f"/fhir/ServiceRequest/{a.id}", headers=bearer(c.w.sw))
    sr = _fhir(r)
    assert (sr["id"], sr["status"], sr["intent"]) == (str(a.id), "active", "order")
    assert sr["category"][0]["coding"][0]["code"] == "attivazione-servizio"
    assert sr["code"]["coding"][0] == {"system": systems.SERVICE_TYPE, "code": "sad"}
    assert sr["performer"][0]["reference"] == f"Organization/{c.igea.id}"
    assert sr["basedOn"] == [{"reference": f"CarePlan/{c.plan.id}"}]
    assert sr["subject"] == {"reference": f"Patient/{c.w.person.id}"}
    rows = (await session.execute(sa.select(AuditEvent.object_type, AuditEvent.object_ids).where(
        AuditEvent.request_id == r.headers["x-request-id"], AuditEvent.action == "read"))).all()
    assert rows == [("service_activation", [a.id])]

    task = _fhir(await client.get(f"/fhir/Task/{a.id}", headers=bearer(c.w.sw)))
    assert (task["status"], task["owner"]) == ("requested", {"reference": f"Organization/{c.igea.id}"})

    # the provider the order is addressed to reads it (its view); another provider does not find it
    assert _fhir(await client.get(f"/fhir/Task/{a.id}", headers=bearer(c.coop)))["id"] == str(a.id)
    _fhir(await client.get(f"/fhir/ServiceRequest/{a.id}", headers=bearer(c.other_coop)), 404)

    # found by patient and status, for the provider too
    for who in (c.w.sw, c.coop):
        bundle = _fhir(await client.get("/fhir/Task", params={"patient": f"Patient/{c.w.person.id}",
                                                              "status": "requested"}, headers=bearer(who)))
        assert str(a.id) in _ids(bundle)
    bundle = _fhir(await client.get("/fhir/Task", params={"patient": f"Patient/{c.w.person.id}",
                                                          "status": "completed"}, headers=bearer(c.coop)))
    assert str(a.id) not in _ids(bundle)
    # an order has no due time: a due search finds none
    bundle = _fhir(await client.get("/fhir/Task", params={"patient": f"Patient/{c.w.person.id}",
                                                          "due": "ge2020-01-01"}, headers=bearer(c.coop)))
    assert str(a.id) not in _ids(bundle)
