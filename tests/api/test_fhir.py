"""The FHIR R4 façade over HTTP: application/fhir+json, OperationOutcome errors naming the element, a
CapabilityStatement made from the mounted routes, Patient read and search with the /api access rules and audit."""
from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa
from fastapi.routing import iter_route_contexts

from domain.assessment import instruments
from domain.security.models import AuditEvent, UserKind
from integrations.fhir import questionnaire, r4, systems
from tests.factories.registry import encode_cf, insert_person
from tests.support import bearer, make_user

FHIR = "application/fhir+json"
CF = encode_cf("Bonetti", "Carla", "F", date(1938, 7, 14), "Crema")
STP = "STP0303210000123"


@pytest.fixture
async def worker(session):
    return bearer(await make_user(session, "comune_social_worker", "comune-crema"))


@pytest.fixture
async def bonetti(session):
    return await insert_person(session, surname="Bonetti", given_name="Carla", sex="F", birth_date=date(1938, 7, 14),
                               birth_place_code="D142", birth_place_name="Crema", codice_fiscale=CF)


async def system_client(session, *scopes: str, role="cot_operator", org="asst-crema-cot"):
    user = await make_user(session, role, org, kind=UserKind.system, scopes=list(scopes))
    return bearer(user, scopes=list(scopes))


def issues(r) -> list[dict]:
    assert r.headers["content-type"].startswith(FHIR), (r.status_code, r.text)
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    r4.check_r4(body)
    return body["issue"]


class TestMetadata:
    async def test_lists_exactly_the_mounted_fhir_routes(self, client, worker, app):
        r = await client.get("/fhir/metadata", headers=worker)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith(FHIR)
        cs = r.json()
        r4.check_r4(cs)
        assert cs["fhirVersion"] == "4.0.1" and cs["format"] == [FHIR] and cs["kind"] == "instance"
        listed = {(res["type"], i["code"]) for res in cs["rest"][0]["resource"] for i in res["interaction"]}
        mounted = {tuple(r.name.split(":")[1:]) for r in iter_route_contexts(app.routes)
                   if (r.name or "").startswith("fhir:") and not r.name.startswith("fhir:system:")
                   and "$" not in r.name}
        assert listed == mounted and ("Patient", "read") in listed and ("Patient", "search-type") in listed
        [pat] = [res for res in cs["rest"][0]["resource"] if res["type"] == "Patient"]
        assert {p["name"]: p["type"] for p in pat["searchParam"]} == {"identifier": "token", "name": "string",
                                                                      "birthdate": "date", "_lastUpdated": "date"}
        # a parameter R4 does not define points to its definition; R4's own do not
        [task] = [res for res in cs["rest"][0]["resource"] if res["type"] == "Task"]
        assert {p["name"]: p.get("definition") for p in task["searchParam"]} == {
            "patient": None, "status": None, "authored-on": None, "due": f"{systems.BASE}/SearchParameter/Task-due"}
        assert pat["operation"] == [{"name": "everything",
                                     "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}]

    async def test_needs_a_token_and_answers_an_operation_outcome(self, client):
        r = await client.get("/fhir/metadata")
        assert r.status_code == 401
        assert issues(r)[0]["code"] == "login" and r.headers["www-authenticate"] == "Bearer"


class TestPatientRead:
    async def test_read_is_r4_json_with_the_codice_fiscale_and_is_audited(self, client, session, worker, bonetti):
        r = await client.get(f"/fhir/Patient/{bonetti.id}", headers=worker)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith(FHIR) and r.headers["cache-control"] == "no-store"
        res = r.json()
        r4.check_r4(res)
        assert res["resourceType"] == "Patient" and res["id"] == str(bonetti.id)
        assert {"system": systems.CODICE_FISCALE, "value": CF} == {k: res["identifier"][0][k]
                                                                 for k in ("system", "value")}
        assert r.headers["etag"] == f'W/"{bonetti.version}"'
        rows = (await session.execute(sa.select(AuditEvent.action, AuditEvent.route, AuditEvent.person_ids).where(
            AuditEvent.request_id == r.headers["x-request-id"]))).all()
        assert [(a, route) for a, route, _ in rows] == [("read", "GET /fhir/Patient/{person_id}")]
        assert rows[0][2] == [bonetti.id]

    async def test_unknown_and_malformed_ids_are_not_found(self, client, worker):
        for pid in ("00000000-0000-4000-8000-000000000000", "not-a-uuid"):
            r = await client.get(f"/fhir/Patient/{pid}", headers=worker)
            assert r.status_code == 404 and issues(r)[0]["code"] == "not-found"

    async def test_a_person_of_another_ambito_is_not_found(self, client, session, worker):
        other = await insert_person(session, ambito="ambito-cremona-test", comune=None)
        r = await client.get(f"/fhir/Patient/{other.id}", headers=worker)
        assert r.status_code == 404

    async def test_a_role_without_the_permission_is_forbidden(self, client, session, bonetti):
        analyst = bearer(await make_user(session, "analyst", "ambito-crema"))
        r = await client.get(f"/fhir/Patient/{bonetti.id}", headers=analyst)
        assert r.status_code == 403 and issues(r)[0]["code"] == "forbidden"


class TestSystemScopes:
    @pytest.mark.parametrize("scope", ["system/Patient.read", "system/*.read", "fhir.read"])
    async def test_a_read_scope_opens_read_and_search(self, client, session, bonetti, scope):
        h = await system_client(session, scope)
        assert (await client.get(f"/fhir/Patient/{bonetti.id}", headers=h)).status_code == 200
        r = await client.get("/fhir/Patient", params={"identifier": f"{systems.CODICE_FISCALE}|{CF}"}, headers=h)
        assert r.status_code == 200 and len(r.json()["entry"]) == 1

    @pytest.mark.parametrize("scope", ["system/Patient.write", "system/Organization.read"])
    async def test_another_scope_is_forbidden_whatever_the_role(self, client, session, bonetti, scope):
        h = await system_client(session, scope)
        r = await client.get(f"/fhir/Patient/{bonetti.id}", headers=h)
        assert r.status_code == 403
        assert "system/Patient.read" in issues(r)[0]["diagnostics"]


class TestPatientSearch:
    async def test_by_codice_fiscale(self, client, worker, bonetti):
        r = await client.get("/fhir/Patient", params={"identifier": f"{systems.CODICE_FISCALE}|{CF.lower()}"},
                             headers=worker)
        assert r.status_code == 200, r.text
        bundle = r.json()
        r4.check_r4(bundle)
        assert bundle["type"] == "searchset" and "total" not in bundle
        [entry] = bundle["entry"]
        assert entry["resource"]["id"] == str(bonetti.id) and entry["fullUrl"].endswith(f"/fhir/Patient/{bonetti.id}")
        assert [link["relation"] for link in bundle["link"]] == ["self"]

    async def test_by_stp(self, client, session, worker):
        p = await insert_person(session, codice_fiscale=None, other_identifier_type="stp", other_identifier=STP)
        r = await client.get("/fhir/Patient", params={"identifier": f"{systems.STP}|{STP}"}, headers=worker)
        assert [e["resource"]["id"] for e in r.json()["entry"]] == [str(p.id)]
        r = await client.get("/fhir/Patient", params={"identifier": f"{systems.ENI}|ENI0303210000123"},
                             headers=worker)
        assert r.status_code == 200 and "entry" not in r.json()

    async def test_pages_follow_next_links_and_total_only_when_asked(self, client, session, worker):
        born = date(1950, 1, 2)
        made = {str((await insert_person(session, birth_date=born, codice_fiscale=None, other_identifier_type=
                                          "provisional", other_identifier=f"PRV-{i}")).id) for i in range(3)}
        seen: list[str] = []
        url, params = "/fhir/Patient", {"birthdate": "1950-01-02", "_count": "2"}
        while url:
            r = await client.get(url, params=params, headers=worker)
            assert r.status_code == 200, r.text
            bundle = r.json()
            assert "total" not in bundle
            seen += [e["resource"]["id"] for e in bundle.get("entry", [])]
            nxt = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
            url, params = (nxt[0].removeprefix("http://test"), None) if nxt else (None, None)
        assert sorted(seen) == sorted(made)
        r = await client.get("/fhir/Patient", params={"birthdate": "1950-01-02", "_total": "accurate",
                                                      "_count": "1"}, headers=worker)
        assert r.json()["total"] == 3 and len(r.json()["entry"]) == 1

    @pytest.mark.parametrize(("params", "where"), [
        ({"family": "Rossi"}, "family"),
        ({"identifier": "BNCNNA42C55D142T"}, "identifier"),
        ({"identifier": "http://example.org/mrn|1"}, "identifier"),
        ({"identifier": f"{systems.STP}|STP1"}, "identifier"),
        ({"_count": "0", "name": "Rossi"}, "_count"),
        ({"_total": "sempre", "name": "Rossi"}, "_total"),
        ({"name": "Rossi", "_cursor": "abc"}, "_cursor"),
    ])
    async def test_bad_or_unknown_parameters_are_400(self, client, worker, params, where):
        r = await client.get("/fhir/Patient", params=params, headers=worker)
        assert r.status_code == 400, r.text
        assert any(i["diagnostics"].startswith(f"{where}:") for i in issues(r)), issues(r)


    async def test_lenient_handling_ignores_unknown_parameters(self, client, worker, bonetti):
        params = {"identifier": f"{systems.CODICE_FISCALE}|{CF}", "_elements": "name"}
        assert (await client.get("/fhir/Patient", params=params, headers=worker)).status_code == 400
        r = await client.get("/fhir/Patient", params=params, headers={**worker, "Prefer": "handling=lenient"})
        assert r.status_code == 200 and len(r.json()["entry"]) == 1


class TestErrors:
    async def test_an_unknown_fhir_path_is_an_operation_outcome(self, client, worker):
        r = await client.get("/fhir/Practitioner/1", headers=worker)
        assert r.status_code == 404 and issues(r)[0]["code"] == "not-found"

    async def test_api_errors_stay_problem_json(self, client, worker):
        r = await client.get("/api/persons/not-a-uuid", headers=worker)
        assert r.headers["content-type"].startswith("application/problem+json")


class TestRelatedPerson:
    async def test_a_relation_added_on_api_is_read_and_searched_on_fhir(self, client, session, worker, bonetti):
        r = await client.post(f"/api/persons/{bonetti.id}/cartelle", json={"area": "anziani"}, headers=worker)
        assert r.status_code == 201, r.text
        r = await client.post(f"/api/persons/{bonetti.id}/relations", headers=worker, json={
            "kind": "caregiver", "surname": "Bonetti", "given_name": "Laura", "sole_caregiver": True,
            "contacts": {"mobile": "+39 333 7654321"}})
        assert r.status_code == 201, r.text
        rel = r.json()["id"]
        r = await client.get(f"/fhir/RelatedPerson/{rel}", headers=worker)
        assert r.status_code == 200, r.text
        res = r.json()
        r4.check_r4(res)
        assert res["patient"] == {"reference": f"Patient/{bonetti.id}"} and res["name"][0]["family"] == "Bonetti"
        r = await client.get("/fhir/RelatedPerson", params={"patient": f"Patient/{bonetti.id}"}, headers=worker)
        assert [e["resource"]["id"] for e in r.json()["entry"]] == [rel]

    async def test_the_patient_parameter_is_required(self, client, worker):
        r = await client.get("/fhir/RelatedPerson", headers=worker)
        assert r.status_code == 400 and issues(r)[0]["diagnostics"].startswith("patient:")


class TestEpisodeOfCare:
    async def test_a_cartella_is_an_episode_of_care(self, client, worker, bonetti):
        r = await client.post(f"/api/persons/{bonetti.id}/cartelle", json={"area": "anziani"}, headers=worker)
        cartella = r.json()
        r = await client.get(f"/fhir/EpisodeOfCare/{cartella['id']}", headers=worker)
        assert r.status_code == 200, r.text
        res = r.json()
        r4.check_r4(res)
        assert res["status"] == "active" and res["patient"] == {"reference": f"Patient/{bonetti.id}"}
        assert res["managingOrganization"] == {"reference": f"Organization/{cartella['owning_comune_id']}"}
        for status, found in (("active", [cartella["id"]]), ("finished", [])):
            r = await client.get("/fhir/EpisodeOfCare", params={"patient": str(bonetti.id), "status": status},
                                 headers=worker)
            assert [e["resource"]["id"] for e in r.json().get("entry", [])] == found

    async def test_an_unknown_status_is_400(self, client, worker, bonetti):
        r = await client.get("/fhir/EpisodeOfCare", params={"patient": str(bonetti.id), "status": "waitlist"},
                             headers=worker)
        assert r.status_code == 400 and issues(r)[0]["diagnostics"].startswith("status:")


class TestOrganization:
    async def test_read_search_by_code_and_pages(self, client, worker):
        code = f"{systems.ORGANISATION_CODE}|comune-crema"
        r = await client.get("/fhir/Organization", params={"identifier": code}, headers=worker)
        [entry] = r.json()["entry"]
        crema = entry["resource"]
        assert crema["name"] and {"system": systems.ORGANISATION_KIND, "code": "comune"} in crema["type"][0]["coding"]
        r = await client.get(f"/fhir/Organization/{crema['id']}", headers=worker)
        assert r.status_code == 200 and r.json() == crema
        r = await client.get("/fhir/Organization", params={"type": "comune", "_count": "2"}, headers=worker)
        bundle = r.json()
        assert len(bundle["entry"]) == 2 and any(link["relation"] == "next" for link in bundle["link"])
        nxt = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
        r = await client.get(nxt.removeprefix("http://test"), headers=worker)
        assert r.status_code == 200 and {e["resource"]["id"] for e in r.json()["entry"]}.isdisjoint(
            {e["resource"]["id"] for e in bundle["entry"]})

    async def test_another_ambitos_organisation_is_not_found(self, client, worker):
        r = await client.get("/fhir/Organization", params={
            "identifier": f"{systems.ORGANISATION_CODE}|asst-cremona-test"}, headers=worker)
        assert r.status_code == 200 and "entry" not in r.json()


class TestConsentAndAuditEvent:
    async def test_a_consent_given_on_api_reads_on_fhir(self, client, worker, bonetti):
        await client.post(f"/api/persons/{bonetti.id}/cartelle", json={"area": "anziani"}, headers=worker)
        r = await client.post(f"/api/persons/{bonetti.id}/consents", headers=worker, json={
            "purpose": "share_asst", "grantor_kind": "self", "valid_from": "2026-03-02",
            "document_ref": "Modulo prot. 2026/145"})
        assert r.status_code == 201, r.text
        cid = r.json()["id"]
        r = await client.get(f"/fhir/Consent/{cid}", headers=worker)
        assert r.status_code == 200, r.text
        res = r.json()
        r4.check_r4(res)
        assert res["status"] == "active" and res["provision"]["purpose"][0]["code"] == "share_asst"
        r = await client.get("/fhir/Consent", params={"patient": str(bonetti.id)}, headers=worker)
        assert [e["resource"]["id"] for e in r.json()["entry"]] == [cid]

    async def test_the_dpo_reads_the_access_log_including_fhir_reads(self, client, session, worker, bonetti):
        r = await client.get(f"/fhir/Patient/{bonetti.id}", headers=worker)
        assert r.status_code == 200
        dpo = bearer(await make_user(session, "dpo", "ambito-crema"))
        r = await client.get("/fhir/AuditEvent", params={"patient": f"Patient/{bonetti.id}", "_count": "1"},
                             headers=dpo)
        assert r.status_code == 200, r.text
        bundle = r.json()
        r4.check_r4(bundle)
        [entry] = bundle["entry"]
        assert entry["resource"]["entity"][0]["description"] == "GET /fhir/Patient/{person_id}"
        r = await client.get("/fhir/AuditEvent", params={"patient": f"Patient/{bonetti.id}"}, headers=worker)
        assert r.status_code == 404  # not the titolare of a case yet: the log is hidden, as on /api


class TestPatientHistory:
    async def test_each_version_is_readable_and_listed(self, client, worker):
        r = await client.post("/api/persons", headers=worker, json={
            "codice_fiscale": CF, "surname": "Bonetti", "given_name": "Carla", "sex": "F", "birth_date": "1938-07-14",
            "birth_place_code": "D142"})
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        await client.post(f"/api/persons/{pid}/cartelle", json={"area": "anziani"}, headers=worker)
        r = await client.patch(f"/api/persons/{pid}", json={"lives_alone": True}, headers=worker)
        assert r.json()["version"] == 2
        v1 = (await client.get(f"/fhir/Patient/{pid}/_history/1", headers=worker))
        v2 = (await client.get(f"/fhir/Patient/{pid}/_history/2", headers=worker))
        assert v1.status_code == v2.status_code == 200, v1.text
        assert v1.json()["meta"]["versionId"] == "1" and v2.json()["meta"]["versionId"] == "2"
        lives_alone = f"{systems.BASE}/StructureDefinition/vive-solo"
        assert {"url": lives_alone, "valueBoolean": True} in v2.json()["extension"]
        assert {"url": lives_alone, "valueBoolean": True} not in v1.json().get("extension", [])
        assert (await client.get(f"/fhir/Patient/{pid}/_history/3", headers=worker)).status_code == 404
        r = await client.get(f"/fhir/Patient/{pid}/_history", params={"_count": "1"}, headers=worker)
        bundle = r.json()
        r4.check_r4(bundle)
        assert bundle["type"] == "history" and bundle["entry"][0]["response"]["status"] == "201 Created"
        nxt = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
        r = await client.get(nxt.removeprefix("http://test"), headers=worker)
        assert [e["resource"]["meta"]["versionId"] for e in r.json()["entry"]] == ["2"]


class TestCarePlan:
    async def test_a_plan_written_on_api_reads_as_a_care_plan_with_its_goals(self, client, worker, bonetti):
        r = await client.post(f"/api/persons/{bonetti.id}/cartelle", json={"area": "anziani"}, headers=worker)
        cartella = r.json()["id"]
        me = (await client.get("/api/me", headers=worker)).json()
        r = await client.post("/api/care-plans", headers=worker, json={
            "cartella_id": cartella, "case_manager_id": me["id"], "title": "Sostegno alla domiciliarità",
            "summary": "Vive sola."})
        assert r.status_code == 201, r.text
        plan = r.json()["id"]
        r = await client.post(f"/api/care-plans/{plan}/goals", headers=worker, json={
            "description": "Permanenza al domicilio in sicurezza", "indicator": "Accessi in Pronto Soccorso",
            "target": "Nessun accesso in 6 mesi", "due_date": "2026-09-01"})
        assert r.status_code == 201, r.text
        r = await client.get(f"/fhir/CarePlan/{plan}", headers=worker)
        assert r.status_code == 200, r.text
        res = r.json()
        r4.check_r4(res)
        assert res["status"] == "draft" and res["supportingInfo"] == [{"reference": f"EpisodeOfCare/{cartella}"}]
        [goal] = res["contained"]
        assert res["goal"] == [{"reference": f"#{goal['id']}"}]
        assert goal["target"][0] == {"measure": {"text": "Accessi in Pronto Soccorso"},
                                     "detailString": "Nessun accesso in 6 mesi", "dueDate": "2026-09-01"}

    async def test_the_plans_of_a_patient_searched_by_status_and_paged(self, client, session, worker, bonetti):
        me = (await client.get("/api/me", headers=worker)).json()
        plans = []
        for area in ("anziani", "disabili"):  # two cartelle, a plan on each
            r = await client.post(f"/api/persons/{bonetti.id}/cartelle", json={"area": area}, headers=worker)
            assert r.status_code == 201, r.text
            r = await client.post("/api/care-plans", headers=worker, json={
                "cartella_id": r.json()["id"], "case_manager_id": me["id"], "title": f"Progetto {area}"})
            assert r.status_code == 201, r.text
            plans.append(r.json()["id"])
        r = await client.post(f"/api/care-plans/{plans[0]}/goals", headers=worker, json={
            "description": "Permanenza al domicilio in sicurezza", "indicator": "Accessi in Pronto Soccorso",
            "target": "Nessun accesso in 6 mesi"})
        assert r.status_code == 201, r.text
        patient = f"Patient/{bonetti.id}"
        r = await client.get("/fhir/CarePlan", params={"patient": patient}, headers=worker)
        assert r.status_code == 200, r.text
        bundle = r.json()
        r4.check_r4(bundle)
        assert [e["resource"]["id"] for e in bundle["entry"]] == plans  # oldest first, each whole as its read
        assert bundle["entry"][0]["resource"] == (await client.get(f"/fhir/CarePlan/{plans[0]}",
                                                                   headers=worker)).json()
        rows = (await session.execute(sa.select(AuditEvent.object_ids).where(
            AuditEvent.request_id == r.headers["x-request-id"], AuditEvent.object_type == "care_plan"))).all()
        assert [sorted(map(str, ids)) for (ids,) in rows] == [sorted(plans)]
        r = await client.get("/fhir/CarePlan", params={"patient": patient, "_count": "1"}, headers=worker)
        nxt = next(link["url"] for link in r.json()["link"] if link["relation"] == "next")
        r = await client.get(nxt.removeprefix("http://test"), headers=worker)
        assert [e["resource"]["id"] for e in r.json()["entry"]] == [plans[1]]
        r = await client.get("/fhir/CarePlan", params={"patient": patient, "status": "active"}, headers=worker)
        assert r.json().get("entry", []) == []  # both drafts
        r = await client.get("/fhir/CarePlan", params={"patient": patient, "status": "bozza"}, headers=worker)
        assert r.status_code == 400 and issues(r)[0]["diagnostics"].startswith("status:")


class TestQuestionnaire:
    async def test_instruments_read_and_list_as_questionnaires(self, client, worker):
        r = await client.get("/fhir/Questionnaire/lawton-iadl-1", headers=worker)
        assert r.status_code == 200, r.text
        assert r.json()["url"] == f"{systems.BASE}/Questionnaire/lawton_iadl" and r.json()["version"] == "1"
        r = await client.get("/fhir/Questionnaire", headers=worker)
        assert "barthel" in {e["resource"]["name"] for e in r.json()["entry"]}
        for missing in ("barthel-99", "nessuno-1", "barthel"):
            r = await client.get(f"/fhir/Questionnaire/{missing}", headers=worker)
            assert r.status_code == 404 and issues(r)[0]["code"] == "not-found", missing


async def test_no_fhir_route_answers_without_a_valid_token(client, app):
    routes = [(m, r.path_format) for r in iter_route_contexts(app.routes) if (r.name or "").startswith("fhir:")
              for m in r.methods or () if m in ("GET", "POST")]
    assert len(routes) >= 20
    some_id = "00000000-0000-4000-8000-000000000000"
    for method, path in routes:
        url = path.replace("{questionnaire_id}", "barthel-1")
        url = "/".join(some_id if part.startswith("{") else part for part in url.split("/"))
        for headers in ({}, {"Authorization": "Bearer not-a-token"}):
            r = await client.request(method, url, headers={**headers, "Content-Type": FHIR}, content=b"{}")
            assert r.status_code == 401, (method, url, r.status_code)
            assert issues(r)[0]["code"] == "login"


class TestEverything:
    async def test_the_record_the_caller_may_read_and_nothing_else(self, client, session, worker, bonetti):
        r = await client.post(f"/api/persons/{bonetti.id}/cartelle", json={"area": "anziani"}, headers=worker)
        cartella = r.json()["id"]
        await client.post(f"/api/persons/{bonetti.id}/relations", headers=worker, json={
            "kind": "caregiver", "surname": "Bonetti", "given_name": "Laura"})
        await client.post(f"/api/persons/{bonetti.id}/consents", headers=worker, json={
            "purpose": "care", "grantor_kind": "self", "valid_from": "2026-03-02"})
        r = await client.get(f"/fhir/Patient/{bonetti.id}/$everything", headers=worker)
        assert r.status_code == 200, r.text
        bundle = r.json()
        r4.check_r4(bundle)
        kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
        assert kinds[0] == "Patient" and {"RelatedPerson", "EpisodeOfCare", "Consent"} <= set(kinds)
        assert f"EpisodeOfCare/{cartella}" in {e["fullUrl"].split("/fhir/")[1] for e in bundle["entry"]}
        # A data steward sees the identity of every person of the Ambito, not their social record.
        steward = bearer(await make_user(session, "data_steward", "ambito-crema"))
        r = await client.get(f"/fhir/Patient/{bonetti.id}/$everything", headers=steward)
        assert r.status_code == 200, r.text
        assert [e["resource"]["resourceType"] for e in r.json()["entry"]] == ["Patient"]


class TestQuestionnaireResponse:
    async def test_vmd_answers_as_the_vmd_shows_them_to_the_caller(self, client, session):
        from tests.api.test_vmd import BARTHEL_35, SOCIAL, _in_progress, _world  # the VMD journey of its own tests

        w, h = await _world(session)
        await _in_progress(client, w, h)
        by_reader = {}
        for who in ("sw", "ifec"):
            r = await client.get("/fhir/QuestionnaireResponse", params={"patient": str(w.person.id)}, headers=h[who])
            assert r.status_code == 200, r.text
            r4.check_r4(r.json())
            by_reader[who] = {e["resource"]["questionnaire"].split("/")[-1].split("|")[0]: e["resource"]
                              for e in r.json()["entry"]}
        sw, ifec = by_reader["sw"], by_reader["ifec"]
        assert set(sw) == {"barthel", "lawton_iadl", "social_risk"}
        # An ASST assessor's health answers without the share_asst consent: the scores, not the answers.
        assert "item" not in sw["barthel"] and sw["barthel"]["extension"]
        d = instruments.latest_active("social_risk")
        assert questionnaire.response_from_fhir(sw["social_risk"], d) == SOCIAL
        assert questionnaire.response_from_fhir(ifec["barthel"], instruments.latest_active("barthel")) == BARTHEL_35
