"""RelatedPerson ⇄ a relation of the registry (caregiver, family member, parent, tutore, curatore, AdS, foster
family), from `domain.registry.relations.relation_view`. `from_fhir` gives the fields of
`schemas.persons.RelationCreate` and the person the relation belongs to."""
from __future__ import annotations

from typing import Any

from fhir.resources.R4B.relatedperson import RelatedPerson

from domain.kernel.errors import Invalid
from domain.registry.models import RELATION_LABELS, RelationKind
from integrations.fhir import common, r4, systems

# The HL7 v3 role of the kinds that have one: a second coding that systems outside Italy understand.
V3_ROLES = {"family_member": "FAMMEMB", "parent_responsibility": "PRN", "tutore": "GUARD", "ads": "GUARD",
            "curatore": "GUARD"}


def to_fhir(v: dict[str, Any]) -> RelatedPerson:
    kind = str(v["kind"])
    codings = [{"system": systems.RELATION_KIND, "code": kind, "display": RELATION_LABELS.get(kind, kind)}]
    if kind in V3_ROLES:
        codings.append({"system": systems.V3_ROLE_CODE, "code": V3_ROLES[kind]})
    res: dict[str, Any] = {"resourceType": "RelatedPerson", "id": str(v["id"]),
                           "patient": common.ref("Patient", v["person_id"]), "relationship": [{"coding": codings}]}
    if "active" in v:
        res["active"] = bool(v["active"])
    extensions: list[dict[str, Any]] = []
    if v.get("related_person_id"):
        extensions.append({"url": systems.REGISTERED_PERSON,
                           "valueReference": common.ref("Patient", v["related_person_id"])})
    if v.get("cohabiting") is not None:
        extensions.append({"url": systems.COHABITING, "valueBoolean": bool(v["cohabiting"])})
    if v.get("sole_caregiver"):
        extensions.append({"url": systems.SOLE_CAREGIVER, "valueBoolean": True})
    if v.get("decree_reference") or v.get("court") or v.get("decree_scope"):
        parts = []
        if v.get("decree_reference"):
            parts.append({"url": "riferimento", "valueString": v["decree_reference"]})
        if v.get("court"):
            parts.append({"url": "tribunale", "valueString": v["court"]})
        parts += [{"url": "ambito", "valueCode": str(s)} for s in v.get("decree_scope") or ()]
        extensions.append({"url": systems.DECREE, "extension": parts})
    if extensions:
        res["extension"] = extensions
    if v.get("surname") or v.get("given_name"):
        name: dict[str, Any] = {}
        if v.get("surname"):
            name["family"] = v["surname"]
        if v.get("given_name"):
            name["given"] = [v["given_name"]]
        res["name"] = [name]
    if tel := common.telecom(v.get("contacts")):
        res["telecom"] = tel
    if p := common.period(v.get("valid_from"), v.get("valid_to")):
        res["period"] = p
    return RelatedPerson.model_validate(res)


def from_fhir(data: dict[str, Any] | RelatedPerson) -> dict[str, Any]:
    """`RelationCreate` fields plus `person_id` (whose relation it is)."""
    rp = data if isinstance(data, RelatedPerson) else r4.parse(data, expected="RelatedPerson")
    out: dict[str, Any] = {"person_id": common.reference_id(rp.patient, "Patient", "RelatedPerson.patient")}
    kinds = [c.code for cc in rp.relationship or [] for c in cc.coding or [] if c.system == systems.RELATION_KIND]
    if len(kinds) != 1 or kinds[0] not in RelationKind.__members__:
        raise Invalid("RelatedPerson.relationship", "indicare un solo tipo di relazione del sistema "
                                                    f"{systems.RELATION_KIND}: " + ", ".join(RelationKind.__members__))
    out["kind"] = kinds[0]
    if (reg := common.ext(rp, systems.REGISTERED_PERSON)) is not None:
        out["related_person_id"] = common.reference_id(reg.valueReference, "Patient",
                                                       f"RelatedPerson.extension('{systems.REGISTERED_PERSON}')")
    if (flag := common.ext(rp, systems.COHABITING)) is not None:
        out["cohabiting"] = flag.valueBoolean
    if (flag := common.ext(rp, systems.SOLE_CAREGIVER)) is not None:
        out["sole_caregiver"] = bool(flag.valueBoolean)
    if (decree := common.ext(rp, systems.DECREE)) is not None:
        if (x := common.ext(decree, "riferimento")) is not None:
            out["decree_reference"] = x.valueString
        if (x := common.ext(decree, "tribunale")) is not None:
            out["court"] = x.valueString
        out["decree_scope"] = [x.valueCode for x in common.exts(decree, "ambito")]
    if rp.name:
        out["surname"] = rp.name[0].family
        out["given_name"] = " ".join(rp.name[0].given or []) or None
    if c := common.contacts(rp.telecom):
        out["contacts"] = c
    start, end = common.validity(rp.period, "RelatedPerson.period")
    if start is not None:
        out["valid_from"] = start
    if end is not None:
        out["valid_to"] = end
    return out
