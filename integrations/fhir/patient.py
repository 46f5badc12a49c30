"""Patient ⇄ a person of the registry.

`to_fhir` takes the person as the registry shows it to the caller (`domain.registry.persons.person_view`, already
masked to the caller's projection), so a field outside the projection never reaches the resource. `from_fhir` gives
the fields of `schemas.persons.PersonCreate`; the registry then checks the codice fiscale (checksum, omocodia,
agreement with birth date, sex and birthplace) as for /api. `FIELD_PATHS` names, for each of those fields, the
element it came from, so that a refusal of the registry points at the FHIR element.
"""
from __future__ import annotations

from typing import Any

from fhir.resources.R4B.patient import Patient

from domain.kernel.errors import Invalid
from integrations.fhir import common, r4, systems

GENDER = {"M": "male", "F": "female"}
SEX = {v: k for k, v in GENDER.items()}
_CF_VALUE = f"Patient.identifier.where(system='{systems.CODICE_FISCALE}').value"

FIELD_PATHS = {
    "codice_fiscale": _CF_VALUE,
    "other_identifier_type": "Patient.identifier.system",
    "other_identifier": "Patient.identifier.value",
    "surname": "Patient.name.family",
    "given_name": "Patient.name.given",
    "sex": "Patient.gender",
    "birth_date": "Patient.birthDate",
    "birth_place_code": f"Patient.extension('{systems.BIRTH_PLACE}').value.extension('{systems.BELFIORE}')",
    "birth_place_name": f"Patient.extension('{systems.BIRTH_PLACE}').value.city",
    "citizenship": f"Patient.extension('{systems.CITIZENSHIP}')",
    "residence_comune_id": "Patient.address.where(use='home').extension",
    "residence_address": "Patient.address.where(use='home').line",
    "domicile_comune_id": "Patient.address.where(use='temp').extension",
    "domicile_address": "Patient.address.where(use='temp').line",
    "fictitious_residence": f"Patient.extension('{systems.FICTITIOUS_RESIDENCE}')",
    "homeless": f"Patient.extension('{systems.HOMELESS}')",
    "lives_alone": f"Patient.extension('{systems.LIVES_ALONE}')",
    "contacts": "Patient.telecom",
}


def _identifiers(v: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    if v.get("codice_fiscale"):
        out.append({"use": "official", "system": systems.CODICE_FISCALE, "value": v["codice_fiscale"],
                    "type": {"coding": [{"system": systems.IT_IDENTIFIER_TYPE, "code": "CF"}]}})
    kind, value = v.get("other_identifier_type"), v.get("other_identifier")
    if kind and value:
        system, type_system, code = systems.OTHER_IDENTIFIERS[str(kind)]
        ident: dict[str, Any] = {"use": "temp" if kind == "provisional" else "official", "system": system,
                                 "value": value}
        if type_system:
            ident["type"] = {"coding": [{"system": type_system, "code": code}]}
        out.append(ident)
    return out


def _address(kind: str, comune_id: Any, line: str | None) -> dict[str, Any] | None:
    if not comune_id and not line:
        return None
    a: dict[str, Any] = {"use": kind, "country": "IT"}
    if line:
        a["line"] = [line]
    if comune_id:
        a["extension"] = [{"url": systems.COMUNE, "valueReference": {"reference": f"Organization/{comune_id}"}}]
    return a


def to_fhir(view: dict[str, Any]) -> Patient:
    """The person as the caller may see them (a `person_view` dict: absent keys stay absent)."""
    return Patient.model_validate(_resource(view))


def to_json(view: dict[str, Any]) -> dict[str, Any]:
    """The same resource as JSON for the hot read paths: checked by the R4B model, but written from our own dict
    (the model's serialiser costs twice the validation; the two give the same document, see the tests)."""
    res = _resource(view)
    Patient.model_validate(res)
    return res


def _resource(view: dict[str, Any]) -> dict[str, Any]:
    v = view
    res: dict[str, Any] = {"resourceType": "Patient", "id": str(v["id"])}
    if v.get("version") is not None:
        res["meta"] = {"versionId": str(v["version"])}
        if v.get("updated_at"):
            res["meta"]["lastUpdated"] = common.iso(v["updated_at"])
    extensions: list[dict[str, Any]] = []
    if v.get("birth_place_code") or v.get("birth_place_name"):
        place: dict[str, Any] = {}
        if v.get("birth_place_name"):
            place["city"] = v["birth_place_name"]
        if v.get("birth_place_code"):
            place["extension"] = [{"url": systems.BELFIORE, "valueCode": v["birth_place_code"]}]
        extensions.append({"url": systems.BIRTH_PLACE, "valueAddress": place})
    if v.get("citizenship"):
        extensions.append({"url": systems.CITIZENSHIP,
                           "extension": [{"url": "code", "valueCodeableConcept": {"text": v["citizenship"]}}]})
    for key, url in (("lives_alone", systems.LIVES_ALONE), ("homeless", systems.HOMELESS),
                     ("fictitious_residence", systems.FICTITIOUS_RESIDENCE)):
        if v.get(key) is not None and key in v:
            extensions.append({"url": url, "valueBoolean": bool(v[key])})
    contacts = v.get("contacts") or {}
    if contacts.get("notes"):
        extensions.append({"url": systems.CONTACT_NOTES, "valueString": contacts["notes"]})
    if extensions:
        res["extension"] = extensions
    if identifiers := _identifiers(v):
        res["identifier"] = identifiers
    if "status" in v:
        res["active"] = v["status"] == "active"
    if v.get("surname") or v.get("given_name"):
        name: dict[str, Any] = {"use": "official"}
        if v.get("surname"):
            name["family"] = v["surname"]
        if v.get("given_name"):
            name["given"] = [v["given_name"]]
        res["name"] = [name]
    if telecom := common.telecom(contacts):
        res["telecom"] = telecom
    if v.get("sex"):
        res["gender"] = GENDER[str(v["sex"])]
    if v.get("birth_date"):
        res["birthDate"] = common.iso(v["birth_date"])
    if v.get("date_of_death"):
        res["deceasedDateTime"] = common.iso(v["date_of_death"])
    addresses = [a for a in (_address("home", v.get("residence_comune_id"), v.get("residence_address")),
                             _address("temp", v.get("domicile_comune_id"), v.get("domicile_address"))) if a]
    if addresses:
        res["address"] = addresses
    if v.get("merged_into_id"):
        res["link"] = [{"other": {"reference": f"Patient/{v['merged_into_id']}"}, "type": "replaced-by"}]
    return res


def from_fhir(data: dict[str, Any] | Patient) -> dict[str, Any]:
    """The fields of `PersonCreate` that the Patient carries (R4-checked first when given as JSON)."""
    p = data if isinstance(data, Patient) else r4.parse(data, expected="Patient")
    out: dict[str, Any] = {}
    errors: list[tuple[str, str]] = []
    for i, ident in enumerate(p.identifier or []):
        at = f"Patient.identifier[{i}]"
        if ident.system == systems.CODICE_FISCALE:
            if out.get("codice_fiscale"):
                errors.append((at, "un solo codice fiscale per persona"))
            out["codice_fiscale"] = ident.value
            continue
        kind = next((k for k, (system, _, _) in systems.OTHER_IDENTIFIERS.items() if system == ident.system), None)
        if kind is None:
            continue  # identifiers of other systems (a regional id, a hospital number) are not ours to keep
        if out.get("other_identifier_type"):
            errors.append((at, "un solo identificativo alternativo (STP, ENI, passaporto o provvisorio)"))
        out["other_identifier_type"], out["other_identifier"] = kind, ident.value
    official = next((n for n in (p.name or []) if n.use in (None, "official", "usual")), None)
    if official is not None:
        out["surname"] = official.family
        out["given_name"] = " ".join(official.given or []) or None
    if p.gender is not None:
        out["sex"] = SEX.get(p.gender)  # other / unknown: the registry records no sex
    if p.birthDate is not None:
        out["birth_date"] = p.birthDate
    if (place := common.ext(p, systems.BIRTH_PLACE)) is not None and place.valueAddress is not None:
        out["birth_place_name"] = place.valueAddress.city
        if (code := common.ext(place.valueAddress, systems.BELFIORE)) is not None:
            out["birth_place_code"] = code.valueCode
    if (cit := common.ext(p, systems.CITIZENSHIP)) is not None:
        inner = common.ext(cit, "code")
        if inner is not None and inner.valueCodeableConcept is not None:
            cc = inner.valueCodeableConcept
            out["citizenship"] = cc.text or next((c.display or c.code for c in cc.coding or []), None)
    for key, url in (("lives_alone", systems.LIVES_ALONE), ("homeless", systems.HOMELESS),
                     ("fictitious_residence", systems.FICTITIOUS_RESIDENCE)):
        if (flag := common.ext(p, url)) is not None:
            out[key] = flag.valueBoolean
    contacts = common.contacts(p.telecom)
    if (notes := common.ext(p, systems.CONTACT_NOTES)) is not None:
        contacts["notes"] = notes.valueString
    if contacts:
        out["contacts"] = contacts
    for i, a in enumerate(p.address or []):
        prefix = {"home": "residence", "temp": "domicile"}.get(a.use or "home")
        if prefix is None or f"{prefix}_address" in out or f"{prefix}_comune_id" in out:
            continue  # other uses (work, billing, old) and further addresses are not kept by the registry
        if a.line:
            out[f"{prefix}_address"] = ", ".join(a.line)
        if (comune := common.ext(a, systems.COMUNE)) is not None:
            try:
                out[f"{prefix}_comune_id"] = common.reference_id(comune.valueReference, "Organization",
                                                          f"Patient.address[{i}].extension[0].valueReference")
            except Invalid as e:
                errors.append((e.field, e.reason))
    if errors:
        raise Invalid.many(errors)
    return out


def search_identifier(token: str) -> tuple[str, str]:
    """`system|value` of the `identifier` search parameter → (registry field, value)."""
    system, bar, value = token.partition("|")
    if not bar or not value:
        raise Invalid("identifier", "usare sistema|valore (es. http://hl7.it/sid/codiceFiscale|RSSMRA...)")
    if system == systems.CODICE_FISCALE:
        return "codice_fiscale", value
    for kind, (s, _, _) in systems.OTHER_IDENTIFIERS.items():
        if system == s:
            return kind, value
    raise Invalid("identifier", "sistema non gestito: " + ", ".join(
        [systems.CODICE_FISCALE, *(s for s, _, _ in systems.OTHER_IDENTIFIERS.values())]))
