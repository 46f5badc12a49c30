"""Patient ⇄ person of the registry: what goes out comes back the same, identifiers use the HL7 Italia systems."""
from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime

import pytest

from domain.kernel.errors import Invalid
from integrations.fhir import patient, r4, systems

pytestmark = pytest.mark.unit

COMUNE = uuid.uuid4()
PERSON = {
    "id": uuid.uuid4(), "codice_fiscale": "BNCNNA42C55D142T", "other_identifier_type": None,
    "other_identifier": None, "surname": "Bianchi", "given_name": "Anna", "sex": "F",
    "birth_date": date(1942, 3, 15), "birth_place_code": "D142", "birth_place_name": "Crema",
    "citizenship": "italiana", "residence_comune_id": COMUNE, "residence_address": "Via Roma 1",
    "domicile_comune_id": None, "domicile_address": None, "fictitious_residence": False, "homeless": False,
    "lives_alone": True, "contacts": {"phone": "0373 256789", "mobile": "333 1234567", "email": "anna@example.org",
                                      "pec": "anna@pec.example.org", "notes": "Chiamare dopo le 18"},
    "date_of_death": None, "status": "active", "version": 3,
    "updated_at": datetime(2026, 3, 2, 8, 0, tzinfo=UTC),
}
KEPT = ("codice_fiscale", "surname", "given_name", "sex", "birth_date", "birth_place_code", "birth_place_name",
        "citizenship", "residence_comune_id", "residence_address", "fictitious_residence", "homeless", "lives_alone",
        "contacts")


def over_the_wire(view: dict) -> dict:
    """Out as FHIR JSON text and back in through the R4 gate."""
    return patient.from_fhir(json.loads(json.dumps(r4.dump(patient.to_fhir(view)))))


class TestRoundTrip:
    def test_a_person_with_codice_fiscale_comes_back_the_same(self):
        back = over_the_wire(PERSON)
        assert back == {k: PERSON[k] for k in KEPT}

    @pytest.mark.parametrize(("kind", "value", "system"), [
        ("stp", "STP0303210000123", systems.STP), ("eni", "ENI0303210000456", systems.ENI),
        ("passport", "YA1234567", systems.PASSPORT), ("provisional", "PRV-2026-0001", systems.PROVISIONAL)])
    def test_alternative_identifiers_use_their_systems(self, kind, value, system):
        view = {**PERSON, "codice_fiscale": None, "other_identifier_type": kind, "other_identifier": value}
        res = r4.dump(patient.to_fhir(view))
        assert [(i["system"], i["value"]) for i in res["identifier"]] == [(system, value)]
        if kind in ("stp", "eni"):
            assert res["identifier"][0]["type"]["coding"] == [{"system": systems.IT_IDENTIFIER_TYPE,
                                                                "code": kind.upper()}]
        back = patient.from_fhir(res)
        assert (back["other_identifier_type"], back["other_identifier"]) == (kind, value)
        assert "codice_fiscale" not in back


class TestToFhir:
    def test_the_resource_is_r4_and_carries_the_italian_identity(self):
        res = r4.dump(patient.to_fhir(PERSON))
        r4.check_r4(res)
        assert res["identifier"][0]["system"] == "http://hl7.it/sid/codiceFiscale"
        assert res["gender"] == "female" and res["birthDate"] == "1942-03-15" and res["active"] is True
        assert res["meta"] == {"versionId": "3", "lastUpdated": "2026-03-02T08:00:00Z"}
        assert res["address"][0]["extension"][0]["valueReference"] == {"reference": f"Organization/{COMUNE}"}

    def test_only_the_fields_of_the_projection_appear(self):
        minimal = {k: PERSON[k] for k in ("id", "surname", "given_name", "birth_date", "residence_comune_id")}
        res = r4.dump(patient.to_fhir({**minimal, "merged_into_id": None}))
        assert set(res) == {"resourceType", "id", "name", "birthDate", "address"}

    def test_a_merged_person_links_to_the_kept_one(self):
        kept = uuid.uuid4()
        res = r4.dump(patient.to_fhir({**PERSON, "status": "merged", "merged_into_id": kept}))
        assert res["active"] is False
        assert res["link"] == [{"other": {"reference": f"Patient/{kept}"}, "type": "replaced-by"}]

    @pytest.mark.parametrize("view", [PERSON, {**PERSON, "date_of_death": date(2026, 2, 1), "status": "merged",
                                               "merged_into_id": uuid.uuid4()},
                                      {k: PERSON[k] for k in ("id", "surname", "given_name", "birth_date")}])
    def test_the_fast_json_is_the_models_document(self, view):
        assert patient.to_json(view) == r4.dump(patient.to_fhir(view))

    def test_a_date_of_death_is_deceased_date_time(self):
        res = r4.dump(patient.to_fhir({**PERSON, "date_of_death": date(2026, 2, 1)}))
        assert res["deceasedDateTime"] == "2026-02-01"


class TestFromFhir:
    def test_unknown_identifier_systems_are_ignored(self):
        back = patient.from_fhir({"resourceType": "Patient", "identifier": [
            {"system": "urn:oid:2.16.840.1.113883.2.9.2.30.4.1", "value": "12345"},
            {"system": systems.CODICE_FISCALE, "value": "BNCNNA42C55D142T"}]})
        assert back == {"codice_fiscale": "BNCNNA42C55D142T"}

    def test_two_codici_fiscali_are_refused_at_the_second(self):
        with pytest.raises(Invalid) as exc:
            patient.from_fhir({"resourceType": "Patient", "identifier": [
                {"system": systems.CODICE_FISCALE, "value": "A"}, {"system": systems.CODICE_FISCALE, "value": "B"}]})
        assert exc.value.errors[0]["field"] == "Patient.identifier[1]"

    def test_a_comune_that_is_not_an_organization_reference_is_refused(self):
        with pytest.raises(Invalid) as exc:
            patient.from_fhir({"resourceType": "Patient", "address": [{"use": "home", "extension": [
                {"url": systems.COMUNE, "valueReference": {"reference": "Location/1"}}]}]})
        assert exc.value.errors[0]["field"] == "Patient.address[0].extension[0].valueReference"

    def test_other_genders_record_no_sex(self):
        assert patient.from_fhir({"resourceType": "Patient", "gender": "unknown"}) == {"sex": None}

    def test_another_resource_type_is_refused(self):
        with pytest.raises(Invalid, match="atteso Patient"):
            patient.from_fhir({"resourceType": "Organization"})


class TestSearchIdentifier:
    def test_systems(self):
        assert patient.search_identifier(f"{systems.CODICE_FISCALE}|X") == ("codice_fiscale", "X")
        assert patient.search_identifier(f"{systems.STP}|STP1") == ("stp", "STP1")

    @pytest.mark.parametrize("token", ["BNCNNA42C55D142T", "http://example.org/x|1", f"{systems.CODICE_FISCALE}|"])
    def test_refused(self, token):
        with pytest.raises(Invalid) as exc:
            patient.search_identifier(token)
        assert exc.value.field == "identifier"
