"""The R4 gate: elements, resource types and required codes that FHIR 4.0.1 does not define are refused with the
FHIRPath of the element, even where the R4B models we parse with would accept them."""
from __future__ import annotations

import pytest
from fhir.resources.R4B.patient import Patient

from domain.kernel.errors import Invalid
from integrations.fhir import r4
from integrations.fhir.r4_elements import generate

pytestmark = pytest.mark.unit

R4B_ONLY_EXTENSION = {"resourceType": "Patient",
                      "extension": [{"url": "https://example.org/x", "valueCodeableReference": {}}]}


def fields(exc: pytest.ExceptionInfo[Invalid]) -> dict[str, str]:
    return {e["field"]: e["reason"] for e in exc.value.errors}


class TestElementList:
    def test_comes_from_the_r4_source_and_its_generator(self):
        data = r4.elements()
        assert data["fhirVersion"] == "4.0.1"
        assert data["source"]["package"] == "fhir.resources" and data["source"]["version"] == "6.1.0"
        assert len(data["source"]["sha256"]) == 64

    def test_knows_r4_elements_and_not_later_ones(self):
        assert r4.element("Patient.birthDate")["type"] == "date"
        assert r4.element("Patient.contact.name")["type"] == "HumanName"
        assert r4.element("Questionnaire.item.item")["type"] == "#Questionnaire.item"
        assert r4.element("Encounter.class")["type"] == "Coding"  # a CodeableConcept list from R5 on
        assert r4.element("Encounter.plannedStartDate") is None  # R5
        assert r4.element("ServiceRequest.focus") is None  # R5
        assert r4.element("Extension.valueCodeableReference") is None  # R4B
        assert "Citation" not in r4.resource_types() and "Patient" in r4.resource_types()  # Citation: R4B

    def test_a_source_of_another_fhir_version_is_refused(self):
        with pytest.raises(SystemExit, match="not a FHIR 4.0.1 definition"):
            generate.parse_module("patient", '"""\nRelease: R4B\nVersion: 4.3.0\n"""\nclass Patient: pass\n')


class TestParse:
    def test_an_r4b_only_element_that_r4b_accepts_is_refused(self):
        Patient.model_validate(R4B_ONLY_EXTENSION)  # the R4B model alone would let it through
        with pytest.raises(Invalid) as exc:
            r4.parse(R4B_ONLY_EXTENSION)
        assert fields(exc) == {"Patient.extension[0].valueCodeableReference": "elemento non definito in FHIR R4 "
                                                                                "(4.0.1)"}

    def test_an_r5_only_element_is_refused_with_its_path(self):
        with pytest.raises(Invalid) as exc:
            r4.parse({"resourceType": "Encounter", "status": "finished", "class": {"code": "IMP"},
                      "plannedStartDate": "2026-03-01"})
        assert list(fields(exc)) == ["Encounter.plannedStartDate"]

    def test_a_resource_type_r4_does_not_have_is_refused(self):
        with pytest.raises(Invalid) as exc:
            r4.parse({"resourceType": "SubscriptionStatus"})
        assert "non definito in FHIR R4" in fields(exc)["resourceType"]

    def test_a_code_outside_a_required_value_set_is_refused(self):
        with pytest.raises(Invalid) as exc:
            r4.parse({"resourceType": "Patient", "gender": "maschio", "contact": [{"gender": "femmina"}]})
        assert set(fields(exc)) == {"Patient.gender", "Patient.contact[0].gender"}
        assert "male, female, other, unknown" in fields(exc)["Patient.gender"]

    def test_nested_repeating_elements_are_checked_at_every_depth(self):
        q = {"resourceType": "Questionnaire", "status": "active",
             "item": [{"linkId": "1", "type": "group", "item": [{"linkId": "1.1", "type": "string", "bogus": 1}]}]}
        with pytest.raises(Invalid) as exc:
            r4.parse(q)
        assert list(fields(exc)) == ["Questionnaire.item[0].item[0].bogus"]

    def test_type_errors_name_the_element_in_italian(self):
        with pytest.raises(Invalid) as exc:
            r4.parse({"resourceType": "Patient", "birthDate": "1990-13-01", "name": [{"family": 2}]})
        assert fields(exc) == {"Patient.birthDate": "data non valida: usare AAAA, AAAA-MM o AAAA-MM-GG",
                               "Patient.name[0].family": "atteso un testo (stringa JSON)"}

    def test_the_expected_type_is_enforced(self):
        with pytest.raises(Invalid) as exc:
            r4.parse({"resourceType": "Patient"}, expected="Organization")
        assert fields(exc) == {"resourceType": "atteso Organization"}

    def test_a_valid_r4_document_round_trips(self):
        doc = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1942-03-15",
               "name": [{"family": "Bianchi", "given": ["Anna"]}],
               "_birthDate": {"extension": [{"url": "https://example.org/ora", "valueTime": "08:30:00"}]}}
        assert r4.dump(r4.parse(doc)) == doc
