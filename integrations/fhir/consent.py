"""Consent ⇄ a consent of the registry: the purpose (our code system), who gave it (the person, or the relation of
the parent, tutore or AdS), the validity, the signed form's reference, and the revocation (an inactive Consent that
keeps when and why). From `domain.registry.consent.to_public`; `from_fhir` gives `schemas.access.ConsentCreate`."""
from __future__ import annotations

from typing import Any

from fhir.resources.R4B.consent import Consent

from domain.kernel.errors import Invalid
from domain.registry.models import CONSENT_PURPOSE_LABELS, ConsentPurpose, GrantorKind
from integrations.fhir import common, r4, systems


def to_fhir(c: dict[str, Any]) -> Consent:
    purpose = str(c["purpose"])
    res: dict[str, Any] = {
        "resourceType": "Consent", "id": str(c["id"]),
        "status": "active" if c.get("active") else "inactive",
        "scope": {"coding": [{"system": systems.CONSENT_SCOPE, "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": systems.LOINC, "code": "59284-0", "display": "Patient Consent"}]}],
        "patient": common.ref("Patient", c["person_id"]),
        "dateTime": common.iso(c["recorded_at"]),
        "performer": [common.ref("RelatedPerson", c["grantor_relation_id"]) if c.get("grantor_relation_id")
                      else common.ref("Patient", c["person_id"])],
        "provision": {"type": "permit", "purpose": [{"system": systems.CONSENT_PURPOSE, "code": purpose,
                                                     "display": CONSENT_PURPOSE_LABELS.get(purpose, purpose)}]},
        "extension": [{"url": systems.GRANTOR_KIND, "valueCode": str(c["grantor_kind"])}],
    }
    if p := common.period(c.get("valid_from"), c.get("valid_to")):
        res["provision"]["period"] = p
    if c.get("document_ref"):
        res["sourceAttachment"] = {"title": c["document_ref"]}
    if c.get("scope_note"):
        res["policyRule"] = {"text": c["scope_note"]}
    if c.get("revoked_at"):
        parts = [{"url": "quando", "valueDateTime": common.iso(c["revoked_at"])}]
        if c.get("revocation_reason"):
            parts.append({"url": "motivo", "valueString": c["revocation_reason"]})
        res["extension"].append({"url": systems.REVOCATION, "extension": parts})
    return Consent.model_validate(res)


def from_fhir(data: dict[str, Any] | Consent) -> dict[str, Any]:
    """`ConsentCreate` fields plus `person_id`."""
    c = data if isinstance(data, Consent) else r4.parse(data, expected="Consent")
    out: dict[str, Any] = {"person_id": common.reference_id(c.patient, "Patient", "Consent.patient")}
    purposes = [p.code for p in (c.provision.purpose if c.provision else None) or []
                if p.system == systems.CONSENT_PURPOSE]
    if len(purposes) != 1 or purposes[0] not in ConsentPurpose.__members__:
        raise Invalid("Consent.provision.purpose", f"indicare una finalità del sistema {systems.CONSENT_PURPOSE}: "
                                                   + ", ".join(ConsentPurpose.__members__))
    out["purpose"] = purposes[0]
    kind = common.ext(c, systems.GRANTOR_KIND)
    out["grantor_kind"] = kind.valueCode if kind is not None else "self"
    if out["grantor_kind"] not in GrantorKind.__members__:
        raise Invalid(f"Consent.extension('{systems.GRANTOR_KIND}')", "valori ammessi: "
                      + ", ".join(GrantorKind.__members__))
    performer = (c.performer or [None])[0]
    if performer is not None and (performer.reference or "").startswith("RelatedPerson/"):
        out["grantor_relation_id"] = common.reference_id(performer, "RelatedPerson", "Consent.performer[0]")
    start, end = common.validity(c.provision.period if c.provision else None, "Consent.provision.period")
    if start is None:
        raise Invalid("Consent.provision.period.start", "obbligatorio: il primo giorno di validità")
    out["valid_from"] = start
    if end is not None:
        out["valid_to"] = end
    if c.sourceAttachment is not None and c.sourceAttachment.title:
        out["document_ref"] = c.sourceAttachment.title
    if c.policyRule is not None and c.policyRule.text:
        out["scope_note"] = c.policyRule.text
    return out
