"""Consent ⇄ consent of the registry (round trip, revocation kept) and AuditEvent ⇐ a line of the access log."""
from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from domain.kernel.errors import Invalid
from integrations.fhir import audit_event, consent, r4, systems

pytestmark = pytest.mark.unit

ADS_CONSENT = {"id": uuid.uuid4(), "person_id": uuid.uuid4(), "purpose": "share_asst", "grantor_kind": "ads",
               "grantor_relation_id": uuid.uuid4(), "valid_from": date(2026, 3, 2), "valid_to": date(2027, 3, 2),
               "scope_note": "Solo valutazioni per la VMD", "document_ref": "Modulo prot. 2026/145",
               "recorded_at": datetime(2026, 3, 2, 9, tzinfo=UTC), "revoked_at": None, "revocation_reason": None,
               "active": True}
CREATE = ("person_id", "purpose", "grantor_kind", "grantor_relation_id", "valid_from", "valid_to", "scope_note",
          "document_ref")


class TestConsent:
    def test_a_consent_given_by_the_ads_comes_back_the_same(self):
        res = r4.dump(consent.to_fhir(ADS_CONSENT))
        r4.check_r4(res)
        assert res["status"] == "active" and res["performer"] == [
            {"reference": f"RelatedPerson/{ADS_CONSENT['grantor_relation_id']}"}]
        assert res["provision"]["period"] == {"start": "2026-03-02", "end": "2027-03-01"}
        assert consent.from_fhir(res) == {k: ADS_CONSENT[k] for k in CREATE}

    def test_a_revoked_consent_is_inactive_and_says_when_and_why(self):
        res = r4.dump(consent.to_fhir({**ADS_CONSENT, "active": False, "revocation_reason": "Richiesta dell'AdS",
                                       "revoked_at": datetime(2026, 4, 1, 10, tzinfo=UTC)}))
        assert res["status"] == "inactive"
        [revocation] = [e for e in res["extension"] if e["url"] == systems.REVOCATION]
        assert revocation["extension"] == [{"url": "quando", "valueDateTime": "2026-04-01T10:00:00Z"},
                                           {"url": "motivo", "valueString": "Richiesta dell'AdS"}]

    def test_a_purpose_that_is_not_ours_is_refused(self):
        res = r4.dump(consent.to_fhir(ADS_CONSENT))
        res["provision"]["purpose"] = [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                                        "code": "TREAT"}]
        with pytest.raises(Invalid) as exc:
            consent.from_fhir(res)
        assert exc.value.field == "Consent.provision.purpose"


def test_an_access_log_line_is_an_r4_audit_event():
    person = uuid.uuid4()
    item = {"id": 42, "at": datetime(2026, 3, 2, 8, tzinfo=UTC), "actor_username": "as.crema",
            "actor_label": "as.crema", "roles": ["comune_social_worker"], "role_labels": ["Assistente sociale"],
            "organisations": ["Comune di Crema"], "action": "read", "action_label": "Lettura",
            "object_type": "person", "object_type_label": "Persona", "route": "GET /fhir/Patient/{person_id}",
            "purpose": "care", "purpose_label": "Presa in carico e cura", "legal_basis": None, "outcome": "ok",
            "outcome_label": "Riuscito", "break_glass": False}
    res = r4.dump(audit_event.to_fhir(item, person_id=person))
    r4.check_r4(res)
    assert res["id"] == "42" and res["action"] == "R" and res["outcome"] == "0"
    assert res["entity"][0]["what"] == {"reference": f"Patient/{person}"}
    assert res["agent"][0]["altId"] == "as.crema" and "Comune di Crema" in res["agent"][0]["who"]["display"]
