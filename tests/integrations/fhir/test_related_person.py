"""RelatedPerson ⇄ relation of the registry: kind, decree, the registered person and the validity period survive
the round trip; FHIR's inclusive period end is our exclusive valid_to."""
from __future__ import annotations

import json
import uuid
from datetime import date

import pytest

from domain.kernel.errors import Invalid
from integrations.fhir import r4, related_person, systems

pytestmark = pytest.mark.unit

ADS = {"id": uuid.uuid4(), "person_id": uuid.uuid4(), "kind": "ads", "related_person_id": uuid.uuid4(),
       "surname": "Ferrari", "given_name": "Paolo", "contacts": {"mobile": "+39 333 7654321"}, "sole_caregiver": False,
       "cohabiting": False, "decree_reference": "R.G. 1234/2025", "decree_scope": ["care_health", "assets"],
       "court": "Tribunale di Cremona", "valid_from": date(2025, 11, 3), "valid_to": date(2026, 11, 3),
       "active": True}
CREATE_FIELDS = ("person_id", "kind", "related_person_id", "surname", "given_name", "contacts", "cohabiting",
                 "decree_reference", "decree_scope", "court", "valid_from", "valid_to")


def test_an_ads_comes_back_the_same():
    res = r4.dump(related_person.to_fhir(ADS))
    r4.check_r4(res)
    assert res["patient"] == {"reference": f"Patient/{ADS['person_id']}"}
    assert res["period"] == {"start": "2025-11-03", "end": "2026-11-02"}  # the last day it applies
    assert {"system": systems.V3_ROLE_CODE, "code": "GUARD"} in res["relationship"][0]["coding"]
    back = related_person.from_fhir(json.loads(json.dumps(res)))
    assert back == {k: ADS[k] for k in CREATE_FIELDS}  # sole_caregiver false: the default, not written


def test_a_sole_caregiver_without_registration_comes_back_the_same():
    v = {"id": uuid.uuid4(), "person_id": uuid.uuid4(), "kind": "caregiver", "related_person_id": None,
         "surname": "Bianchi", "given_name": "Laura", "contacts": {"phone": "0373 111222"}, "sole_caregiver": True,
         "cohabiting": True, "decree_reference": None, "decree_scope": [], "court": None, "valid_from": None,
         "valid_to": None, "active": True}
    back = related_person.from_fhir(r4.dump(related_person.to_fhir(v)))
    assert back == {"person_id": v["person_id"], "kind": "caregiver", "surname": "Bianchi", "given_name": "Laura",
                    "contacts": {"phone": "0373 111222"}, "sole_caregiver": True, "cohabiting": True}


@pytest.mark.parametrize("relationship", [[], [{"coding": [{"system": systems.RELATION_KIND, "code": "vicino"}]}],
                                          [{"coding": [{"system": systems.V3_ROLE_CODE, "code": "GUARD"}]}]])
def test_the_kind_must_be_one_of_ours(relationship):
    with pytest.raises(Invalid) as exc:
        related_person.from_fhir({"resourceType": "RelatedPerson", "patient": {"reference": f"Patient/{uuid.uuid4()}"},
                                  "relationship": relationship})
    assert exc.value.field == "RelatedPerson.relationship"


def test_the_patient_must_be_ours():
    with pytest.raises(Invalid) as exc:
        related_person.from_fhir({"resourceType": "RelatedPerson", "patient": {"reference": "Patient/abc"}})
    assert exc.value.field == "RelatedPerson.patient"


def test_a_history_snapshot_with_dates_as_text_is_read_too():
    # relations.relation_view builds on history.snapshot, which keeps dates as ISO text.
    res = r4.dump(related_person.to_fhir({**ADS, "valid_from": "2025-11-03", "valid_to": "2026-11-03"}))
    assert res["period"] == {"start": "2025-11-03", "end": "2026-11-02"}
