"""The protected-discharge signal ASST sends as a FHIR `transaction` Bundle, read into what
`domain.discharge.service.open_signal` takes (the same call as POST /api/discharges).

    Organization*  the ward (and the ASST, the COT): matched on our organisation code; a ward we do not know is
                   registered as a provisional unit of the ASST it is `partOf` (received from ASST)
    Patient?       conditional create (`ifNoneExist: identifier=system|value`): matched, or registered through the
                   registry's de-duplication; absent when the ServiceRequest names a Patient/<id> we hold
    Encounter      the inpatient stay: period.start = admission date, period.end = expected discharge date
    ServiceRequest the COT evaluation (`intent: order`): reasonCode = eligibility criteria, note = the ward's summary
                   of needs, authoredOn = the time of the COT request, requester = the ward
    Task           `status: requested`, focus = the ServiceRequest; its due time is given back as sent

`read` checks the structure and resolves `urn:uuid:` references inside the Bundle; it touches no database. Every
failure names the entry and element (`Bundle.entry[3].resource.authoredOn`); `path_of` turns the field names of
the domain's refusals into the same kind of path, so the answer points at what ASST sent.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from domain.kernel.errors import Invalid
from integrations.fhir import patient as patient_fhir
from integrations.fhir import r4, systems

SUPPORTED = ("Organization", "Patient", "Encounter", "ServiceRequest", "Task")
ONE_EACH = ("Encounter", "ServiceRequest", "Task")


@dataclass
class Ref:
    """A reference as sent: to an entry of the Bundle (`index`), or to a resource the server holds (`id`)."""

    resource_type: str
    index: int | None = None
    id: uuid.UUID | None = None


@dataclass
class DischargeBundle:
    key: str  # Bundle.identifier as system|value: the idempotency key
    types: list[str]  # resourceType of each entry, in order
    organizations: dict[int, str | None] = field(default_factory=dict)  # entry index -> our organisation code
    org_names: dict[int, str | None] = field(default_factory=dict)
    org_parents: dict[int, Ref | None] = field(default_factory=dict)  # partOf: a ward's ASST
    patient_index: int | None = None
    patient: dict[str, Any] = field(default_factory=dict)  # PersonCreate fields of the Patient entry
    patient_match: tuple[str, str] | None = None  # (registry field, value) of its ifNoneExist
    patient_ref: Ref | None = None
    ward: Ref | None = None
    signal: dict[str, Any] = field(default_factory=dict)  # the DischargeSignalCreate fields but person and ward
    indexes: dict[str, int] = field(default_factory=dict)  # resourceType -> entry index (one each)

    def path_of(self, field_name: str) -> str:
        """The FHIRPath in the Bundle of a field the discharge service or the registry refused."""
        enc, sr, task = (f"Bundle.entry[{self.indexes.get(t)}].resource" for t in ("Encounter", "ServiceRequest",
                                                                                       "Task"))
        if field_name.startswith("person.") and self.patient_index is not None:
            inner = patient_fhir.FIELD_PATHS.get(field_name.removeprefix("person."), "Patient")
            return f"Bundle.entry[{self.patient_index}].resource" + inner.removeprefix("Patient")
        if field_name in ("person", "person_id"):
            return (f"Bundle.entry[{self.patient_index}].resource" if self.patient_index is not None
                    else f"{sr}.subject")
        if field_name.startswith("criteria."):
            return f"{sr}.reasonCode[{field_name.split('.', 1)[1]}]"
        return {"admission_date": f"{enc}.period.start", "expected_discharge_date": f"{enc}.period.end",
                "criteria": f"{sr}.reasonCode", "clinician_summary": f"{sr}.note",
                "cot_requested_at": f"{sr}.authoredOn",
                "requested_due_at": f"{task}.restriction.period.end", "ward_org_id": f"{sr}.requester",
                "social_risk": f"{sr}.extension('{systems.SOCIAL_RISK}')"}.get(field_name, "Bundle")


def _date(value: Any, where: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    raise Invalid(where, "indicare una data completa (AAAA-MM-GG)")


def read(data: Any) -> tuple[Bundle, DischargeBundle]:
    """The Bundle checked against R4 and read into a discharge signal; `Invalid` (FHIRPath) otherwise."""
    bundle = r4.parse(data, expected="Bundle")
    if bundle.type != "transaction":
        raise Invalid("Bundle.type", "atteso transaction: il segnale di dimissione si invia come transazione "
                                     "atomica (batch non gestito)")
    ident = bundle.identifier
    if ident is None or not ident.system or not ident.value:
        raise Invalid("Bundle.identifier", "obbligatorio (system e value): rende idempotente l'invio")
    entries = bundle.entry or []
    errors: list[tuple[str, str]] = []
    full_urls: dict[str, int] = {}
    types: list[str] = []
    for i, e in enumerate(entries):
        at = f"Bundle.entry[{i}]"
        rtype = e.resource.get_resource_type() if e.resource is not None else None
        types.append(rtype or "")
        if rtype is None:
            errors.append((f"{at}.resource", "obbligatorio"))
            continue
        if rtype not in SUPPORTED:
            errors.append((f"{at}.resource", f"{rtype} non gestito nel segnale di dimissione (ammessi: "
                                             + ", ".join(SUPPORTED) + ")"))
        if e.request is None or e.request.method != "POST" or (e.request.url or "").split("?")[0] != rtype:
            errors.append((f"{at}.request", f"atteso method POST e url {rtype}"))
        if e.fullUrl:
            if not e.fullUrl.startswith("urn:uuid:"):
                errors.append((f"{at}.fullUrl", "usare urn:uuid:<uuid> per le risorse nuove"))
            elif e.fullUrl in full_urls:
                errors.append((f"{at}.fullUrl", f"già usato da Bundle.entry[{full_urls[e.fullUrl]}]"))
            else:
                full_urls[e.fullUrl] = i
    for t in ONE_EACH:
        n = types.count(t)
        if n != 1:
            errors.append(("Bundle.entry", f"serve esattamente una risorsa {t} (trovate {n})"))
    if types.count("Patient") > 1:
        errors.append(("Bundle.entry", "al più un Patient"))
    if errors:
        raise Invalid.many(errors)

    out = DischargeBundle(key=f"{ident.system}|{ident.value}", types=types,
                          indexes={t: types.index(t) for t in ONE_EACH})

    def ref(reference: Any, where: str, *allowed: str) -> Ref | None:
        text = reference.reference if reference is not None else None
        if not text:
            return None
        if text.startswith("urn:uuid:"):
            if text not in full_urls:
                errors.append((where, "riferimento urn:uuid non presente nel Bundle"))
                return None
            index = full_urls[text]
            if types[index] not in allowed:
                errors.append((where, f"atteso un riferimento a {' o '.join(allowed)}"))
                return None
            return Ref(types[index], index=index)
        kind, _, raw = text.partition("/")
        try:
            if kind not in allowed:
                raise ValueError
            return Ref(kind, id=uuid.UUID(raw))
        except ValueError:
            errors.append((where, f"atteso urn:uuid:<uuid> di una voce del Bundle o {' o '.join(allowed)}/<id>"))
            return None

    for i, e in enumerate(entries):
        res, at = e.resource, f"Bundle.entry[{i}].resource"
        if types[i] == "Organization":
            code = next((x.value for x in res.identifier or [] if x.system == systems.ORGANISATION_CODE), None)
            match = _if_none_exist(e, i, errors)
            if match is not None:
                system, value = match
                if system != systems.ORGANISATION_CODE:
                    errors.append((f"Bundle.entry[{i}].request.ifNoneExist",
                                   f"usare identifier={systems.ORGANISATION_CODE}|<codice>"))
                code = value
            if not code:
                errors.append((f"{at}.identifier", "serve il codice dell'organizzazione "
                                                   f"({systems.ORGANISATION_CODE})"))
            out.organizations[i] = code
            out.org_names[i] = res.name
            out.org_parents[i] = ref(res.partOf, f"{at}.partOf", "Organization")
        elif types[i] == "Patient":
            out.patient_index = i
            try:
                out.patient = patient_fhir.from_fhir(res)
            except Invalid as exc:
                errors.extend((x["field"].replace("Patient", at, 1), x["reason"]) for x in exc.errors)
            match = _if_none_exist(e, i, errors)
            if match is not None:
                try:
                    out.patient_match = patient_fhir.search_identifier("|".join(match))
                except Invalid as exc:
                    errors.append((f"Bundle.entry[{i}].request.ifNoneExist", exc.reason))
        elif types[i] == "Encounter":
            if res.period is None or res.period.start is None or res.period.end is None:
                errors.append((f"{at}.period", "servono start (ricovero) ed end (dimissione prevista)"))
            else:
                try:
                    out.signal["admission_date"] = _date(res.period.start, f"{at}.period.start")
                    out.signal["expected_discharge_date"] = _date(res.period.end, f"{at}.period.end")
                except Invalid as exc:
                    errors.append((exc.field, exc.reason))
            subject = ref(res.subject, f"{at}.subject", "Patient")
            out.patient_ref = out.patient_ref or subject
            provider = ref(res.serviceProvider, f"{at}.serviceProvider", "Organization")
            out.ward = out.ward or provider
        elif types[i] == "ServiceRequest":
            if res.intent != "order":
                errors.append((f"{at}.intent", "atteso order (richiesta di valutazione alla COT)"))
            subject = ref(res.subject, f"{at}.subject", "Patient")
            if subject is None and not any(x[0] == f"{at}.subject" for x in errors):
                errors.append((f"{at}.subject", "obbligatorio"))
            out.patient_ref = subject or out.patient_ref
            requester = ref(res.requester, f"{at}.requester", "Organization")
            out.ward = requester or out.ward
            ref(res.encounter, f"{at}.encounter", "Encounter")
            criteria = [c.code for cc in res.reasonCode or [] for c in cc.coding or []
                        if c.system == systems.DISCHARGE_CRITERION]
            out.signal["criteria"] = criteria
            out.signal["clinician_summary"] = "\n".join(n.text for n in res.note or [] if n.text)
            risk = next((x for x in res.extension or [] if x.url == systems.SOCIAL_RISK), None)
            out.signal["social_risk"] = bool(risk.valueBoolean) if risk is not None else False
            if res.authoredOn is not None:
                if not isinstance(res.authoredOn, datetime) or res.authoredOn.tzinfo is None:
                    errors.append((f"{at}.authoredOn", "indicare data, ora e fuso orario della richiesta alla COT"))
                else:
                    out.signal["cot_requested_at"] = res.authoredOn
        elif types[i] == "Task":
            if res.status != "requested":
                errors.append((f"{at}.status", "atteso requested"))
            ref(res.focus, f"{at}.focus", "ServiceRequest")
            ref(res.for_fhir, f"{at}.for", "Patient")
            due = res.restriction.period.end if res.restriction is not None and res.restriction.period else None
            if due is not None:
                if not isinstance(due, datetime) or due.tzinfo is None:
                    errors.append((f"{at}.restriction.period.end", "indicare data, ora e fuso orario della scadenza"))
                else:
                    out.signal["requested_due_at"] = due
    if out.ward is None and not errors:
        errors.append((f"Bundle.entry[{out.indexes['ServiceRequest']}].resource.requester",
                       "indicare il reparto che segnala (Organization)"))
    if out.patient_ref is not None and out.patient_ref.index is None and out.patient_index is not None:
        errors.append((f"Bundle.entry[{out.indexes['ServiceRequest']}].resource.subject",
                       f"deve riferirsi al Patient della voce {out.patient_index}"))
    if out.patient_ref is None and out.patient_index is None and not errors:
        errors.append(("Bundle.entry", "manca la persona: un Patient nel Bundle o un riferimento Patient/<id>"))
    if errors:
        raise Invalid.many(errors)
    return bundle, out


def _if_none_exist(entry: Any, index: int, errors: list[tuple[str, str]]) -> tuple[str, str] | None:
    """`identifier=system|value` (the only criterion of a conditional create here) → (system, value)."""
    text = entry.request.ifNoneExist if entry.request is not None else None
    if not text:
        return None
    name, _, value = text.partition("=")
    system, bar, code = value.partition("|")
    if name != "identifier" or not bar or not system or not code or "&" in value:
        errors.append((f"Bundle.entry[{index}].request.ifNoneExist", "usare identifier=<system>|<valore>"))
        return None
    return system, code
