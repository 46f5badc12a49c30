"""The date search parameters of the FHIR façade: Patient `_lastUpdated`, ServiceRequest `authored`, Task
`authored-on` and `due` (the Task's due time kept as ASST sent it), AuditEvent `date`; each filters the rows the
caller could already see, repeats in the next link, and a value that is not one window is a 400 naming it."""
from __future__ import annotations

from datetime import date, datetime

import pytest
import sqlalchemy as sa

from domain.discharge.models import DischargeCase
from domain.registry import cartelle
from domain.registry.models import ConsentPurpose
from domain.waiting_list import service as waiting_list
from schemas.waiting_list import ApplicationCreate
from tests.api.test_fhir_transaction import CF as GALLI_CF
from tests.api.test_fhir_transaction import DELETE, WARD, bundle, counts, issues, post
from tests.api.test_fhir_transaction import ward as ward  # the ward staff fixture
from tests.domain.waiting_list.setup import World, applicant, create_person, give_consent
from tests.domain.waiting_list.test_service import SCENARIO_NOW
from tests.factories.registry import encode_cf, insert_person, org
from tests.support import bearer, make_user

FHIR = "application/fhir+json"


def ids(r) -> list[str]:
    assert r.status_code == 200, r.text
    return [e["resource"]["id"] for e in r.json().get("entry", [])]


class TestPatientLastUpdated:
    async def test_last_updated_keeps_the_persons_changed_in_the_window(self, client, session):
        worker = bearer(await make_user(session, "asst_front_desk", "asst-crema"))
        old = await insert_person(session, surname="Ferrari", given_name="Anna", sex="F", birth_date=date(1940, 1, 1),
                                  codice_fiscale=encode_cf("Ferrari", "Anna", "F", date(1940, 1, 1), "Crema"),
                                  updated_at=datetime.fromisoformat("2026-01-15T10:00:00+01:00"))
        new = await insert_person(session, surname="Ferrari", given_name="Bruna", sex="F", birth_date=date(1941, 1, 1),
                                  codice_fiscale=encode_cf("Ferrari", "Bruna", "F", date(1941, 1, 1), "Crema"),
                                  updated_at=datetime.fromisoformat("2026-03-01T23:30:00+01:00"))
        search = {"name": "Ferrari"}
        assert ids(await client.get("/fhir/Patient", params=search, headers=worker)) == [str(old.id), str(new.id)]
        for window, found in ((["ge2026-02"], [new]), (["lt2026-02"], [old]), (["2026-03-01"], [new]),
                              (["2026-03-02"], []), (["ge2026-01-15T10:00:00+01:00", "le2026-01-15"], [old]),
                              (["2026"], [old, new])):
            r = await client.get("/fhir/Patient", params={**search, "_lastUpdated": window}, headers=worker)
            assert ids(r) == [str(p.id) for p in found], window

    async def test_the_next_page_keeps_the_window(self, client, session):
        worker = bearer(await make_user(session, "asst_front_desk", "asst-crema"))
        for i, given in enumerate(("Carla", "Dora", "Elsa")):
            await insert_person(session, surname="Moretti", given_name=given, sex="F", birth_date=date(1940, 1, 1 + i),
                                codice_fiscale=encode_cf("Moretti", given, "F", date(1940, 1, 1 + i), "Crema"),
                                updated_at=datetime.fromisoformat(f"2026-0{1 + i}-10T10:00:00+01:00"))
        r = await client.get("/fhir/Patient", params={"name": "Moretti", "_lastUpdated": "ge2026-02", "_count": "1"},
                             headers=worker)
        [first] = r.json()["entry"]
        [nxt] = [link["url"] for link in r.json()["link"] if link["relation"] == "next"]
        assert "_lastUpdated=ge2026-02" in nxt
        r = await client.get("/fhir" + nxt.split("/fhir", 1)[1], headers=worker)
        assert [e["resource"]["name"][0]["given"] for e in [first, *r.json()["entry"]]] == [["Dora"], ["Elsa"]]
        for link in r.json()["link"]:  # a name search may offer one more page: it holds nobody else
            if link["relation"] == "next":
                assert "entry" not in (await client.get("/fhir" + link["url"].split("/fhir", 1)[1],
                                                        headers=worker)).json()

    @pytest.mark.parametrize("value, reason", [("ne2026-03-01", "ne"), ("2026-03-01,2026-03-02", "virgola"),
                                               ("2026-02-30", "inesistente"), ("ieri", "atteso")])
    async def test_a_value_that_is_not_one_window_is_400_naming_the_parameter(self, client, session, value, reason):
        worker = bearer(await make_user(session, "asst_front_desk", "asst-crema"))
        r = await client.get("/fhir/Patient", params={"name": "Ferrari", "_lastUpdated": value}, headers=worker)
        assert r.status_code == 400
        [issue] = issues(r)
        assert issue["diagnostics"].startswith("_lastUpdated:") and reason in issue["diagnostics"]


class TestDischargeDates:
    async def test_the_task_due_time_is_kept_as_sent_and_searchable(self, client, session, ward):
        # the ward asks for the evaluation by the evening of 3 March, earlier than the protocol's 48 hours
        r = await post(client, ward, bundle(**{"entry/4/resource/restriction/period/end": "2026-03-03T18:00:00+01:00"}))
        assert r.status_code == 200, r.text
        case_id = r.json()["entry"][3]["response"]["location"].removeprefix("ServiceRequest/")
        case = (await session.execute(sa.select(DischargeCase).where(DischargeCase.id == case_id))).scalar_one()
        assert case.requested_due_at.isoformat() == "2026-03-03T17:00:00+00:00"
        assert case.evaluation_due_at.isoformat() == "2026-03-04T07:30:00+00:00"  # the protocol's clock is unmoved
        cot = bearer(await make_user(session, "cot_operator", "asst-crema-cot"))
        task = (await client.get(f"/fhir/Task/{case_id}", headers=cot)).json()
        assert task["restriction"]["period"]["end"] == "2026-03-03T17:00:00Z"
        api = (await client.get(f"/api/discharges/{case_id}", headers=cot)).json()
        assert api["requested_due_at"].startswith("2026-03-03T17:00:00")

        # a second signal says no due time: its Task shows the protocol's
        other = bundle(**{"entry/4/resource/restriction": DELETE})
        r = await post(client, ward, other)
        assert r.status_code == 200, r.text
        other_id = r.json()["entry"][3]["response"]["location"].removeprefix("ServiceRequest/")

        for params, found in (({"due": "2026-03-03"}, [case_id]), ({"due": "2026-03-04"}, [other_id]),
                              ({"due": "le2026-03-04"}, [other_id, case_id]),
                              ({"due": ["ge2026-03-03T17:00:00Z", "lt2026-03-03T17:00:01Z"]}, [case_id]),
                              ({"authored-on": "2026-03-02"}, [other_id, case_id]),
                              ({"authored-on": "lt2026-03-02"}, [])):
            assert ids(await client.get("/fhir/Task", params=params, headers=cot)) == found, params
        assert ids(await client.get("/fhir/ServiceRequest", params={"authored": "2026-03"}, headers=cot)) == [
            other_id, case_id]
        assert ids(await client.get("/fhir/ServiceRequest", params={"authored": "gt2026-03-02"}, headers=cot)) == []
        # a parameter of another type is not one of ServiceRequest's
        r = await client.get("/fhir/ServiceRequest", params={"due": "2026-03-03"}, headers=cot)
        assert r.status_code == 400 and issues(r)[0]["diagnostics"].startswith("due:")

    @pytest.mark.parametrize("due, reason", [("2026-03-03", "fuso orario"),
                                             ("2026-03-02T08:00:00+01:00", "precede la richiesta")])
    async def test_a_due_time_without_zone_or_before_the_request_writes_nothing(self, client, session, ward,
                                                                                due, reason):
        before = await counts(session)
        r = await post(client, ward, bundle(**{"entry/4/resource/restriction/period/end": due}))
        assert r.status_code == 422, r.text
        [issue] = [i for i in issues(r) if i.get("expression") == ["Bundle.entry[4].resource.restriction.period.end"]]
        assert reason in issue["diagnostics"]
        assert await counts(session) == before

    async def test_the_api_door_takes_the_same_due_time(self, client, session, ward):
        person = await insert_person(session, surname="Galli", given_name="Rosa", sex="F", birth_date=date(1939, 5, 20),
                                     codice_fiscale=GALLI_CF)
        body = {"person_id": str(person.id), "ward_org_id": str((await org(session, WARD)).id),
                "admission_date": "2026-02-24", "expected_discharge_date": "2026-03-04",
                "criteria": ["over65_not_self_sufficient"], "clinician_summary": "Serve assistenza domiciliare.",
                "requested_due_at": "2026-03-01T10:00:00+01:00"}
        r = await client.post("/api/discharges", json=body, headers=ward)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "requested_due_at"
        r = await client.post("/api/discharges", json={**body, "requested_due_at": "2026-03-03T12:00:00+01:00"},
                              headers=ward)
        assert r.status_code == 201, r.text
        assert datetime.fromisoformat(r.json()["requested_due_at"]) == datetime.fromisoformat("2026-03-03T11:00:00Z")


class TestWaitingListDates:
    async def test_applications_by_date_and_the_assessment_due_time(self, client, session, clock):
        clock.set(SCENARIO_NOW)
        w = await World().build(session)
        listed = await applicant(session, w, barthel=20, units=[w.x], application_date=date(2026, 5, 4),
                                 listing_date=date(2026, 5, 20))
        sw = await w.p(session, w.sw)
        person = await create_person(session, comune="comune-offanengo", birth_date=date(1937, 2, 2))
        cartella = await cartelle.open_cartella(session, principal=sw, person_id=person.id, area="anziani")
        await give_consent(session, person, w.sw, purpose=ConsentPurpose.care)
        pending = await waiting_list.apply(session, principal=sw, data=ApplicationCreate(
            person_id=person.id, udo_type="rsa", unit_ids=[w.x.id], applicant="relative", applicant_name="Un figlio",
            application_date=date(2026, 6, 8), cartella_id=cartella.id, team_id=w.team.id))
        await session.flush()
        due = pending.assessment_due_at
        assert due is not None
        headers = bearer(w.sw)
        for params, found in (({"authored": "2026-05-04"}, [listed.entry.id]),
                              ({"authored": "ge2026-06"}, [pending.id]),
                              ({"authored": "2026"}, [pending.id, listed.entry.id])):
            got = ids(await client.get("/fhir/ServiceRequest", params=params, headers=headers))
            assert got == [str(x) for x in found], params
        # the due time of a pending assessment; a listed application has none
        day = due.date().isoformat()
        assert ids(await client.get("/fhir/Task", params={"due": day}, headers=headers)) == [str(pending.id)]
        assert ids(await client.get("/fhir/Task", params={"due": "lt2026-06-01"}, headers=headers)) == []
        assert ids(await client.get("/fhir/Task", params={"authored-on": "2026-06-10"}, headers=headers)) == [
            str(pending.id), str(listed.entry.id)]  # both recorded today, newest first


class TestAuditEventDate:
    async def test_the_access_log_by_date(self, client, session, clock):
        person = await insert_person(session, surname="Bonetti", given_name="Carla", sex="F",
                                     birth_date=date(1938, 7, 14),
                                     codice_fiscale=encode_cf("Bonetti", "Carla", "F", date(1938, 7, 14), "Crema"))
        worker = bearer(await make_user(session, "comune_social_worker", "comune-crema"))
        assert (await client.get(f"/fhir/Patient/{person.id}", headers=worker)).status_code == 200
        dpo = bearer(await make_user(session, "dpo", "ambito-crema"))
        pat = f"Patient/{person.id}"
        everything = ids(await client.get("/fhir/AuditEvent", params={"patient": pat}, headers=dpo))
        assert everything
        # the clock is frozen at 09:00 in Rome: every row of the log is of that day and that minute (08:00Z); each
        # read of the log is logged too, so a later answer holds the earlier rows and the reads in between
        for value, found in (("2026-03-02", True), ("lt2026-03-02", False), ("2026-03-02T08:00Z", True),
                             ("2026-03-02T08:01Z", False), ("ge2026-03-03", False)):
            r = await client.get("/fhir/AuditEvent", params={"patient": pat, "date": value}, headers=dpo)
            got = ids(r)
            assert (set(everything) <= set(got) and len(got) > len(everything)) if found else got == [], value
