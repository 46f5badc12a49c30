"""The protected-discharge signal of ASST as a FHIR transaction Bundle: the same case as POST /api/discharges,
atomic, idempotent on Bundle.identifier, urn:uuid references resolved, conditional create of the Patient; every
refusal is a 4xx OperationOutcome naming the entry and element, with nothing written."""
from __future__ import annotations

import copy
import json
import uuid
from datetime import date

import pytest
import sqlalchemy as sa

from domain.discharge.models import DischargeCase
from domain.registry.models import Person
from domain.security.models import AuditEvent, UserKind
from domain.territory.models import Organisation
from integrations.fhir import r4, systems
from tests.factories.registry import encode_cf, insert_person
from tests.support import bearer, make_user

FHIR = "application/fhir+json"
WARD = "asst-crema-reparto-medicina"
CF = encode_cf("Galli", "Rosa", "F", date(1939, 5, 20), "Crema")
P, E, S, T, ORG = (f"urn:uuid:{uuid.uuid4()}" for _ in range(5))


def bundle(**changes) -> dict:
    b = {
        "resourceType": "Bundle", "type": "transaction",
        "identifier": {"system": "https://asst-crema.example/fhir/sid/segnalazioni", "value": str(uuid.uuid4())},
        "entry": [
            {"fullUrl": ORG, "resource": {"resourceType": "Organization", "name": "Medicina generale",
                                        "identifier": [{"system": systems.ORGANISATION_CODE, "value": WARD}]},
             "request": {"method": "POST", "url": "Organization",
                         "ifNoneExist": f"identifier={systems.ORGANISATION_CODE}|{WARD}"}},
            {"fullUrl": P, "resource": {
                "resourceType": "Patient", "identifier": [{"system": systems.CODICE_FISCALE, "value": CF}],
                "name": [{"family": "Galli", "given": ["Rosa"]}], "gender": "female", "birthDate": "1939-05-20"},
             "request": {"method": "POST", "url": "Patient",
                         "ifNoneExist": f"identifier={systems.CODICE_FISCALE}|{CF}"}},
            {"fullUrl": E, "resource": {"resourceType": "Encounter", "status": "in-progress",
                                        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                                  "code": "IMP"},
                                        "subject": {"reference": P}, "serviceProvider": {"reference": ORG},
                                        "period": {"start": "2026-02-24", "end": "2026-03-04"}},
             "request": {"method": "POST", "url": "Encounter"}},
            {"fullUrl": S, "resource": {
                "resourceType": "ServiceRequest", "status": "active", "intent": "order",
                "subject": {"reference": P}, "encounter": {"reference": E}, "requester": {"reference": ORG},
                "authoredOn": "2026-03-02T08:30:00+01:00",
                "reasonCode": [{"coding": [{"system": systems.DISCHARGE_CRITERION,
                                            "code": "over65_not_self_sufficient"}]}],
                "note": [{"text": "Frattura di femore operata, vive sola: serve assistenza domiciliare."}],
                "extension": [{"url": systems.SOCIAL_RISK, "valueBoolean": True}]},
             "request": {"method": "POST", "url": "ServiceRequest"}},
            {"fullUrl": T, "resource": {"resourceType": "Task", "status": "requested", "intent": "order",
                                        "focus": {"reference": S}, "for": {"reference": P},
                                        "restriction": {"period": {"end": "2026-03-04T08:30:00+01:00"}}},
             "request": {"method": "POST", "url": "Task"}},
        ]}
    for path, value in changes.items():
        *parents, last = path.split("/")
        node = b
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if value is DELETE:
            del node[int(last) if isinstance(node, list) else last]
        else:
            node[int(last) if isinstance(node, list) else last] = value
    return b


DELETE = object()


@pytest.fixture
async def ward(session):
    return bearer(await make_user(session, "ward_staff", WARD))


async def counts(session) -> tuple[int, int]:
    persons = (await session.execute(sa.select(sa.func.count()).select_from(Person))).scalar_one()
    cases = (await session.execute(sa.select(sa.func.count()).select_from(DischargeCase))).scalar_one()
    return persons, cases


async def post(client, headers, body, **kw):
    return await client.post("/fhir", content=json.dumps(body) if not isinstance(body, (bytes, str)) else body,
                             headers={**headers, "Content-Type": FHIR, **kw.pop("extra_headers", {})}, **kw)


def issues(r) -> list[dict]:
    assert r.headers["content-type"].startswith(FHIR), (r.status_code, r.text)
    body = r.json()
    assert body["resourceType"] == "OperationOutcome", body
    r4.check_r4(body)
    return body["issue"]


class TestSignal:
    async def test_a_new_patient_opens_the_same_case_as_the_api(self, client, session, ward):
        before = await counts(session)
        r = await post(client, ward, bundle())
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith(FHIR)
        res = r.json()
        r4.check_r4(res)
        assert res["type"] == "transaction-response"
        statuses = [e["response"]["status"] for e in res["entry"]]
        assert statuses == ["200 OK", "201 Created", "201 Created", "201 Created", "201 Created"]
        case_id = res["entry"][3]["response"]["location"].removeprefix("ServiceRequest/")
        assert await counts(session) == (before[0] + 1, before[1] + 1)
        # the audit rows name the route the request took, the router's own `POST /fhir` too
        routes = (await session.execute(sa.select(AuditEvent.route).where(
            AuditEvent.request_id == r.headers["x-request-id"]))).scalars().all()
        assert routes and set(routes) == {"POST /fhir"}, routes
        r = await client.get(f"/api/discharges/{case_id}", headers=ward)
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "cot_requested"
        case = await session.get(DischargeCase, uuid.UUID(case_id))
        assert case.admission_date == date(2026, 2, 24) and case.expected_discharge_date == date(2026, 3, 4)
        assert case.criteria == ["over65_not_self_sufficient"] and case.social_risk is True
        assert case.cot_requested_at.isoformat() == "2026-03-02T07:30:00+00:00"  # authoredOn, not the arrival
        person = await session.get(Person, case.person_id)
        assert person.codice_fiscale == CF and res["entry"][1]["response"]["location"] == f"Patient/{person.id}"

    async def test_a_registered_patient_is_matched_not_duplicated(self, client, session, ward):
        p = await insert_person(session, codice_fiscale=CF, surname="Galli", given_name="Rosa", sex="F",
                                birth_date=date(1939, 5, 20))
        before = await counts(session)
        r = await post(client, ward, bundle())
        assert r.status_code == 200, r.text
        assert r.json()["entry"][1]["response"] == {"status": "200 OK", "location": f"Patient/{p.id}"}
        assert await counts(session) == (before[0], before[1] + 1)

    async def test_a_server_reference_to_a_registered_patient_needs_no_patient_entry(self, client, session, ward):
        p = await insert_person(session)
        b = bundle()
        del b["entry"][1]
        for e in b["entry"]:
            for key in ("subject", "for"):
                if key in e["resource"]:
                    e["resource"][key] = {"reference": f"Patient/{p.id}"}
        r = await post(client, ward, b)
        assert r.status_code == 200, r.text
        case_id = r.json()["entry"][2]["response"]["location"].removeprefix("ServiceRequest/")
        assert (await session.get(DischargeCase, uuid.UUID(case_id))).person_id == p.id


class TestIdempotency:
    async def test_the_same_bundle_twice_creates_nothing_new_and_answers_the_same(self, client, session, ward):
        b = bundle()
        first = await post(client, ward, b)
        assert first.status_code == 200, first.text
        after_first = await counts(session)
        again = await post(client, ward, b)
        assert again.status_code == 200 and again.json() == first.json()
        assert await counts(session) == after_first

    async def test_the_same_identifier_for_another_bundle_is_409(self, client, session, ward):
        b = bundle()
        assert (await post(client, ward, b)).status_code == 200
        other = copy.deepcopy(b)
        other["entry"][3]["resource"]["note"][0]["text"] = "Altro testo"
        before = await counts(session)
        r = await post(client, ward, other)
        assert r.status_code == 409 and issues(r)[0]["code"] == "conflict"
        assert await counts(session) == before


    async def test_a_refused_bundle_keeps_no_claim_on_its_identifier(self, client, session, ward):
        bad = bundle(**{"entry/3/resource/intent": "proposal"})
        assert (await post(client, ward, bad)).status_code == 422
        good = copy.deepcopy(bad)  # corrected, sent again under the same Bundle.identifier
        good["entry"][3]["resource"]["intent"] = "order"
        r = await post(client, ward, good)
        assert r.status_code == 200, r.text
        assert [e["response"]["status"] for e in r.json()["entry"]][-1] == "201 Created"
        assert (await post(client, ward, good)).json() == r.json()

class TestRefused:
    @pytest.mark.parametrize(("changes", "status", "where"), [
        ({"type": "batch"}, 422, "Bundle.type"),
        ({"identifier": DELETE}, 422, "Bundle.identifier"),
        ({"entry/2/resource/subject": {"reference": f"urn:uuid:{uuid.uuid4()}"}}, 422,
         "Bundle.entry[2].resource.subject"),
        ({"entry/2/resource/plannedStartDate": "2026-02-24"}, 422, "Bundle.entry[2].resource.plannedStartDate"),
        ({"entry/1/resource/gender": "femmina"}, 422, "Bundle.entry[1].resource.gender"),
        ({"entry/1/resource/identifier": [{"system": systems.CODICE_FISCALE, "value": CF[:-1] + "A"}],
          "entry/1/request/ifNoneExist": DELETE}, 422,
         f"Bundle.entry[1].resource.identifier.where(system='{systems.CODICE_FISCALE}').value"),
        ({"entry/1/resource/birthDate": "2027-01-01"}, 422, "Bundle.entry[1].resource.birthDate"),
        ({"entry/3/resource/authoredOn": "2027-03-02T08:30:00+01:00"}, 422, "Bundle.entry[3].resource.authoredOn"),
        ({"entry/3/resource/intent": "proposal"}, 422, "Bundle.entry[3].resource.intent"),
        ({"entry/3/resource/reasonCode": []}, 422, "Bundle.entry[3].resource.reasonCode"),
        ({"entry/0/resource/identifier/0/value": "reparto-inesistente",
          "entry/0/request/ifNoneExist": DELETE}, 422, "Bundle.entry[0].resource.partOf"),
        ({"entry/4/resource/status": "accepted"}, 422, "Bundle.entry[4].resource.status"),
        ({"entry/1/resource/resourceType": "Practitioner", "entry/1/request/url": "Practitioner"}, 422,
         "Bundle.entry[1].resource"),
    ])
    async def test_a_bad_entry_writes_nothing_and_names_its_path(self, client, session, ward, changes, status, where):
        before = await counts(session)
        r = await post(client, ward, bundle(**changes))
        assert r.status_code == status, r.text
        assert where in [x for i in issues(r) for x in i.get("expression", [])], issues(r)
        assert await counts(session) == before

    @pytest.mark.parametrize("changes", [
        {"entry/1/resource/gender": "male"},  # the codice fiscale says female
        {"entry/1/resource/birthDate": "1939-05-21"},  # ... and born on the 20th
        {"entry/1/resource/identifier/0/value": CF[:6] + "A" + CF[7:]},  # A is no omocodia letter
        {"entry/1/resource/extension": [{"url": systems.BIRTH_PLACE, "valueAddress": {  # born in Crema, not Rome
            "city": "Roma", "extension": [{"url": systems.BELFIORE, "valueCode": "H501"}]}}]},
    ], ids=["sex", "birth-date", "omocodia", "birthplace"])
    async def test_a_codice_fiscale_that_disagrees_writes_nothing(self, client, session, ward, changes):
        b = bundle(**changes, **{"entry/1/request/ifNoneExist": DELETE})
        before = await counts(session)
        r = await post(client, ward, b)
        assert r.status_code == 422, r.text
        paths = [x for i in issues(r) for x in i.get("expression", [])]
        assert paths and all(p.startswith("Bundle.entry[1].resource") for p in paths), paths
        assert await counts(session) == before

    async def test_an_unknown_server_reference_is_4xx(self, client, session, ward):
        b = bundle()
        del b["entry"][1]
        for e in b["entry"]:
            for key in ("subject", "for"):
                if key in e["resource"]:
                    e["resource"][key] = {"reference": f"Patient/{uuid.uuid4()}"}
        before = await counts(session)
        r = await post(client, ward, b)
        assert r.status_code == 404  # as POST /api/discharges with an unknown person_id
        assert issues(r)[0]["expression"] == ["Bundle.entry[2].resource.subject"]
        assert await counts(session) == before

    @pytest.mark.parametrize("body", [b"{not json", b'{"resourceType": "Patient"}', b"[]"])
    async def test_malformed_or_not_a_bundle(self, client, ward, body):
        r = await post(client, ward, body)
        assert r.status_code in (400, 422) and issues(r)

    async def test_a_5_mb_body_is_413_before_anything(self, client, session, ward):
        b = bundle(**{"entry/3/resource/note/0/text": "x" * (5 * 1024 * 1024)})
        r = await post(client, ward, b)
        assert r.status_code == 413 and issues(r)[0]["code"] == "too-long"

    async def test_another_content_type_is_415(self, client, ward):
        r = await client.post("/fhir", content=json.dumps(bundle()), headers={**ward, "Content-Type": "text/plain"})
        assert r.status_code == 415 and issues(r)

    async def test_a_system_client_needs_write_scopes(self, client, session):
        reader = await make_user(session, "ward_staff", WARD, kind=UserKind.system, scopes=["system/*.read"])
        r = await post(client, bearer(reader, scopes=["system/*.read"]), bundle())
        assert r.status_code == 403 and "write" in issues(r)[0]["diagnostics"]
        writer = await make_user(session, "ward_staff", WARD, kind=UserKind.system, scopes=["system/*.write"])
        r = await post(client, bearer(writer, scopes=["system/*.write"]), bundle())
        assert r.status_code == 200, r.text

    async def test_a_role_that_cannot_signal_is_forbidden(self, client, session):
        analyst = bearer(await make_user(session, "analyst", "ambito-crema"))
        r = await post(client, analyst, bundle())
        assert r.status_code == 403 and issues(r)[0]["code"] == "forbidden"


async def test_metadata_lists_the_transaction(client, ward):
    cs = (await client.get("/fhir/metadata", headers=ward)).json()
    assert cs["rest"][0]["interaction"] == [{"code": "transaction"}]


class TestReadBack:
    async def test_the_locations_answer_with_the_case_in_the_callers_view(self, client, session, ward):
        r = await post(client, ward, bundle())
        locations = [e["response"]["location"] for e in r.json()["entry"]]
        patient_id = locations[1].removeprefix("Patient/")
        cot = bearer(await make_user(session, "cot_operator", "asst-crema-cot"))
        got = {}
        for loc in locations[2:]:
            r = await client.get(f"/fhir/{loc}", headers=cot)
            assert r.status_code == 200, (loc, r.text)
            r4.check_r4(r.json())
            got[r.json()["resourceType"]] = r.json()
        assert got["Encounter"]["period"] == {"start": "2026-02-24", "end": "2026-03-04"}
        assert got["Encounter"]["subject"] == {"reference": f"Patient/{patient_id}"}
        sr = got["ServiceRequest"]
        assert sr["status"] == "active" and sr["authoredOn"] == "2026-03-02T07:30:00Z"
        assert sr["reasonCode"][0]["coding"][0]["code"] == "over65_not_self_sufficient"
        assert got["Task"]["status"] == "requested"
        assert got["Task"]["restriction"]["period"]["end"] == "2026-03-04T07:30:00Z"  # 48 hours from the request
        # The ward that signalled sees the status only: no criteria, no summary.
        r = await client.get(f"/fhir/{locations[3]}", headers=ward)
        assert r.status_code == 200 and "reasonCode" not in r.json() and "note" not in r.json()
        case_id = locations[3].removeprefix("ServiceRequest/")
        for rtype in ("Encounter", "ServiceRequest", "Task"):
            r = await client.get(f"/fhir/{rtype}", params={"patient": f"Patient/{patient_id}"}, headers=cot)
            assert [(e["resource"]["resourceType"], e["resource"]["id"]) for e in r.json()["entry"]] == [
                (rtype, case_id)]
        for rtype, status, found in (("ServiceRequest", "active", [case_id]), ("ServiceRequest", "completed", []),
                                     ("Task", "requested", [case_id]), ("Encounter", "finished", [])):
            r = await client.get(f"/fhir/{rtype}", params={"patient": patient_id, "status": status}, headers=cot)
            assert [e["resource"]["id"] for e in r.json().get("entry", [])] == found, (rtype, status)
        # in-progress is a waiting-list application's listing (a Task too), never a discharge case's evaluation
        r = await client.get("/fhir/Task", params={"patient": patient_id, "status": "in-progress"}, headers=cot)
        assert r.status_code == 200 and "entry" not in r.json()
        r = await client.get("/fhir/Task", params={"status": "draft"}, headers=cot)
        assert r.status_code == 400 and issues(r)[0]["diagnostics"].startswith("status:")


class TestProvenance:
    async def test_the_case_says_which_bundle_opened_it(self, client, session, ward):
        b = bundle()
        r = await post(client, ward, b)
        locations = [e["response"]["location"] for e in r.json()["entry"]]
        r = await client.get("/fhir/Provenance", params={"target": locations[4]}, headers=ward)  # the Task
        assert r.status_code == 200, r.text
        [entry] = r.json()["entry"]
        prov = entry["resource"]
        r4.check_r4(prov)
        assert [t["reference"] for t in prov["target"]] == locations
        assert prov["entity"][0]["what"]["identifier"] == b["identifier"]
        r = await client.get("/fhir/Provenance", params={"target": f"Patient/{uuid.uuid4()}"}, headers=ward)
        assert r.status_code == 400 and issues(r)[0]["diagnostics"].startswith("target:")


class TestNewWard:
    async def test_an_unknown_ward_becomes_a_provisional_unit_of_the_sending_asst(self, client, session, ward):
        asst = f"urn:uuid:{uuid.uuid4()}"
        b = bundle(**{"entry/0/resource/identifier/0/value": "asst-crema-reparto-geriatria",
                      "entry/0/resource/name": "Geriatria", "entry/0/resource/partOf": {"reference": asst},
                      "entry/0/request/ifNoneExist": DELETE})
        b["entry"].insert(0, {"fullUrl": asst, "request": {"method": "POST", "url": "Organization"}, "resource": {
            "resourceType": "Organization", "name": "ASST di Crema",
            "identifier": [{"system": systems.ORGANISATION_CODE, "value": "asst-crema"}]}})
        r = await post(client, ward, b)
        assert r.status_code == 200, r.text
        assert [e["response"]["status"] for e in r.json()["entry"][:2]] == ["200 OK", "201 Created"]
        unit = await session.get(Organisation, uuid.UUID(r.json()["entry"][1]["response"]["location"].split("/")[1]))
        assert (unit.code, str(unit.kind), unit.provisional) == ("asst-crema-reparto-geriatria", "asst_unit", True)
        assert unit.attributes["origine"] == "ASST (FHIR)"
        parent = await session.get(Organisation, unit.part_of_id)
        assert parent.code == "asst-crema"
        again = await post(client, ward, b)  # the same Bundle: the same answer, no second unit
        assert again.json() == r.json()

    async def test_a_ward_not_under_an_asst_is_refused(self, client, session, ward):
        b = bundle(**{"entry/0/resource/identifier/0/value": "asst-crema-reparto-nuovo",
                      "entry/0/request/ifNoneExist": DELETE,
                      "entry/0/resource/partOf": {"reference": f"Organization/{uuid.uuid4()}"}})
        before = await counts(session)
        r = await post(client, ward, b)
        assert r.status_code == 422 and issues(r)[0]["expression"] == ["Bundle.entry[0].resource.partOf"]
        assert await counts(session) == before
