"""Organization ⇄ a node of our organisation tree (Ambito, sub-ambiti, comuni, ASST and its units, CSC, ETS, UDO
operators, MMG practices), with `partOf` for the tree."""
from __future__ import annotations

from typing import Any

from fhir.resources.R4B.organization import Organization

from domain.kernel.errors import Invalid
from domain.territory.models import OrgKind
from integrations.fhir import common, r4, systems

# The FHIR organization-type of each kind, where one fits: government, healthcare provider, community group...
ORG_TYPES = {"ambito": "govt", "sub_ambito": "govt", "comune": "govt", "ufficio_di_piano": "govt", "asst": "prov",
             "asst_unit": "dept", "ats": "govt", "csc": "prov", "ets": "cg", "udo_operator": "prov",
             "mmg_practice": "prov"}


def to_fhir(o: Any) -> Organization:
    """From an `Organisation` row (or anything with its attributes)."""
    identifiers = [{"system": systems.ORGANISATION_CODE, "value": o.code}]
    if o.istat_code:
        identifiers.append({"system": systems.ISTAT_CODE, "value": o.istat_code})
    if o.belfiore_code:
        identifiers.append({"system": systems.BELFIORE_CODE, "value": o.belfiore_code})
    kind = str(o.kind)
    types = [{"system": systems.ORGANISATION_KIND, "code": kind}]
    if kind in ORG_TYPES:
        types.append({"system": systems.ORG_TYPE, "code": ORG_TYPES[kind]})
    res: dict[str, Any] = {"resourceType": "Organization", "id": str(o.id), "identifier": identifiers,
                           "active": bool(o.active), "type": [{"coding": types}], "name": o.name}
    if o.part_of_id:
        res["partOf"] = common.ref("Organization", o.part_of_id)
    return Organization.model_validate(res)


def from_fhir(data: dict[str, Any] | Organization) -> dict[str, Any]:
    """The fields of an organisation: code, name, kind, part_of_id, istat_code, belfiore_code, active."""
    org = data if isinstance(data, Organization) else r4.parse(data, expected="Organization")
    out: dict[str, Any] = {}
    for ident in org.identifier or []:
        field = {systems.ORGANISATION_CODE: "code", systems.ISTAT_CODE: "istat_code",
                 systems.BELFIORE_CODE: "belfiore_code"}.get(ident.system)
        if field:
            out[field] = ident.value
    if not org.name:
        raise Invalid("Organization.name", "obbligatorio")
    out["name"] = org.name
    kinds = [c.code for t in org.type or [] for c in t.coding or [] if c.system == systems.ORGANISATION_KIND]
    if kinds:
        if kinds[0] not in OrgKind.__members__:
            raise Invalid("Organization.type", "tipo di organizzazione sconosciuto: " + ", ".join(OrgKind.__members__))
        out["kind"] = kinds[0]
    if org.partOf is not None:
        out["part_of_id"] = common.reference_id(org.partOf, "Organization", "Organization.partOf")
    if org.active is not None:
        out["active"] = org.active
    return out
