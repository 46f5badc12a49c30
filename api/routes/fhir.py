"""The FHIR R4 (4.0.1) façade at /fhir: the same use cases, access rules and audit rows as /api, spoken in FHIR.

- `application/fhir+json` in and out; every error is an OperationOutcome (the problem+json answers of api/errors.py
  are rewritten by `install`, so the two surfaces cannot drift apart), with the FHIRPath of the failing element in
  `issue.expression`.
- Every route is named `fhir:<Type>:<interaction>`; the CapabilityStatement of `GET /fhir/metadata` is built from
  those names and the routes' declared query parameters, so it lists exactly what is mounted.
- Search parameters a route does not declare are refused (`Prefer: handling=strict` is the only handling).
- A system client (ASST) needs the SMART scope of the resource and interaction on every route
  (`system/Patient.read`, `system/*.read`); a user's rights come from their roles, as on /api.
- The routes are kept out of the OpenAPI document: their contract is the CapabilityStatement, and their errors
  are not the problem+json that document promises.
"""
from __future__ import annotations

import inspect
import json
import uuid
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

import pydantic
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.responses import Response

from api.deps import Principal, Session, require
from domain.assessment import instruments
from domain.care_plan import policy as plan_policy
from domain.care_plan import queries as plan_queries
from domain.discharge import queries as discharge_queries
from domain.discharge import service as discharge_service
from domain.kernel import clock, idempotency
from domain.kernel import cursor as cursor_codec
from domain.kernel.errors import DomainError, Forbidden, Invalid, NotFound
from domain.registry import access_log, cartelle, consent, persons, queries, relations
from domain.registry.models import CartellaStatus
from domain.security import audit, scopes
from domain.security.permissions import Permission
from domain.security.principal import Principal as PrincipalT
from domain.territory import queries as territory_queries
from domain.territory import service as territory
from domain.territory.models import OrgKind
from integrations.fhir import (
    audit_event,
    care_plan,
    discharge,
    discharge_bundle,
    episode_of_care,
    organization,
    patient,
    provenance,
    questionnaire,
    r4,
    related_person,
    systems,
)
from integrations.fhir import consent as consent_fhir
from schemas.discharge import DischargePublic, DischargeSignalCreate
from schemas.persons import PersonCreate
from schemas.territory import OrganisationCreate

PREFIX = "/fhir"
ROUTE_PREFIX = "fhir:"
# SMART v1 names, and the names the system clients were first given (fhir.read / fhir.write) for every type.
LEGACY_SCOPES = {"read": "fhir.read", "write": "fhir.write"}
# The FHIR type of each search parameter we implement (CapabilityStatement.rest.resource.searchParam.type).
SEARCH_PARAM_TYPES = {"identifier": "token", "name": "string", "birthdate": "date", "patient": "reference",
                      "type": "token", "partof": "reference", "status": "token", "target": "reference"}
RESULT_PARAMETERS = {"_count", "_total", "_cursor"}
# The registry's names of the search criteria → the FHIR parameters they came from.
SEARCH_NAMES = {"q": "name", "birth_date": "birthdate", "codice_fiscale": "identifier", "limit": "_count",
                "cursor": "_cursor"}
DEFAULT_COUNT = 20


class FhirResponse(JSONResponse):
    media_type = r4.MEDIA_TYPE


def query_parameters(route: Any) -> list[str]:
    """The query parameters a route declares, its dependencies' included, in declaration order."""
    out, todo = [], [route.dependant]
    while todo:
        d = todo.pop(0)
        out += [p.alias for p in d.query_params]
        todo += d.dependencies
    return out


def _scoped(principal: PrincipalT, resource: str, mode: str) -> bool:
    return any(s in principal.scopes for s in (f"system/{resource}.{mode}", f"system/*.{mode}", LEGACY_SCOPES[mode]))


def access(resource: str, mode: str, *permissions: Permission):
    """The caller, once it holds the permissions of the /api twin and, for a system client, the SMART scope."""

    async def _check(principal: PrincipalT = require(*permissions)) -> PrincipalT:
        if principal.is_system and not _scoped(principal, resource, mode):
            raise Forbidden(f"Scope mancante: system/{resource}.{mode}", missing=[f"system/{resource}.{mode}"])
        return principal

    return Annotated[PrincipalT, Depends(_check)]


async def strict_parameters(request: Request) -> None:
    route = request.scope.get("route")
    if getattr(route, "dependant", None) is None:
        return
    declared = set(query_parameters(route))
    unknown = sorted(set(request.query_params) - declared)
    if unknown:
        raise Invalid.many([(name, "parametro non gestito da questo server (vedere GET /fhir/metadata)")
                            for name in unknown])


fhir_router = APIRouter(include_in_schema=False, default_response_class=FhirResponse,
                        dependencies=[Depends(strict_parameters)])


def is_fhir_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + PREFIX


# ---------------------------------------------------------------------------------------------------- metadata
def _fhir_routes(app: FastAPI) -> list[tuple[str, str, Any]]:
    out = []
    for route in iter_route_contexts(app.routes):
        if (route.name or "").startswith(ROUTE_PREFIX):
            _, rtype, interaction = route.name.split(":")
            out.append((rtype, interaction, route))
    return out


def capability_statement(app: FastAPI, base: str) -> dict[str, Any]:
    resources: dict[str, dict[str, Any]] = {}
    system_interactions = []
    for rtype, interaction, route in _fhir_routes(app):
        if rtype == "system":
            if interaction != "capabilities":  # metadata itself is not a rest interaction
                system_interactions.append({"code": interaction})
            continue
        entry = resources.setdefault(rtype, {"type": rtype, "interaction": [], "searchParam": []})
        if interaction.startswith("$"):  # an operation, e.g. Patient/$everything
            entry.setdefault("operation", []).append({
                "name": interaction[1:],
                "definition": f"http://hl7.org/fhir/OperationDefinition/{rtype}-{interaction[1:]}"})
            continue
        entry["interaction"].append({"code": interaction})
        if interaction == "search-type":
            for name in query_parameters(route):
                if name not in RESULT_PARAMETERS:
                    entry["searchParam"].append({"name": name, "type": SEARCH_PARAM_TYPES[name]})
    for entry in resources.values():
        entry["interaction"].sort(key=lambda i: i["code"])
        if not entry["searchParam"]:
            del entry["searchParam"]
    doc = {
        "resourceType": "CapabilityStatement", "status": "active", "date": clock.today_rome().isoformat(),
        "publisher": "Ambito distrettuale di Crema", "kind": "instance", "fhirVersion": r4.FHIR_VERSION,
        "format": [r4.MEDIA_TYPE],
        "software": {"name": "PUA Ambito di Crema", "version": app.version},
        "implementation": {"description": "Interfaccia FHIR R4 del PUA dell'Ambito di Crema", "url": base},
        "rest": [{"mode": "server",
                  "documentation": "Token Bearer (JWT). I client di sistema usano gli scope SMART "
                                   "system/<Risorsa>.read e system/<Risorsa>.write.",
                  "security": {"service": [{"coding": [{
                      "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                      "code": "SMART-on-FHIR"}]}]},
                  "resource": [resources[k] for k in sorted(resources)],
                  **({"interaction": system_interactions} if system_interactions else {})}],
    }
    return r4.dump(r4.parse(doc, expected="CapabilityStatement"))


@fhir_router.get("/metadata", name="fhir:system:capabilities")
async def metadata(request: Request, principal: Principal) -> FhirResponse:
    return FhirResponse(capability_statement(request.app, base_url(request)))


# ---------------------------------------------------------------------------------------------------- Patient
def _patient(view: dict[str, Any]) -> dict[str, Any]:
    return patient.to_json(view)


@fhir_router.get("/Patient/{person_id}", name="fhir:Patient:read")
async def read_patient(person_id: uuid.UUID, session: Session,
                       principal: access("Patient", "read", Permission.person_read)) -> FhirResponse:
    read = await persons.read_person(session, principal=principal, person_id=person_id)
    view = persons.person_view(read)
    headers = {"ETag": f'W/"{view["version"]}"'} if view.get("version") is not None else None
    return FhirResponse(_patient(view), headers=headers)


HISTORY_CURSOR = "fhir.patient.history"


def _version_view(row) -> dict[str, Any]:
    """A version of the person from its history row (the whole record as it was, kept as JSON)."""
    return {**row.data["state"], "version": row.version, "updated_at": row.at}


@fhir_router.get("/Patient/{person_id}/_history/{version}", name="fhir:Patient:vread")
async def vread_patient(person_id: uuid.UUID, version: int, session: Session,
                        principal: access("Patient", "read", Permission.person_read)) -> FhirResponse:
    rows, _ = await persons.person_history(session, principal=principal, person_id=person_id, limit=1,
                                           after_version=version - 1 if version > 0 else None)
    if rows and rows[0].version == version:
        return FhirResponse(_patient(_version_view(rows[0])), headers={"ETag": f'W/"{version}"'})
    # A person loaded in bulk has no history row for the version it was loaded with: that one is the current state.
    view = persons.person_view(await persons.read_person(session, principal=principal, person_id=person_id))
    if view.get("version") != version:
        raise NotFound("Versione non trovata.")
    return FhirResponse(_patient(view), headers={"ETag": f'W/"{version}"'})


@fhir_router.get("/Patient/{person_id}/_history", name="fhir:Patient:history-instance")
async def patient_history(request: Request, person_id: uuid.UUID, session: Session,
                          principal: access("Patient", "read", Permission.person_read),
                          count: int = Query(default=50, alias="_count", ge=1, le=100),
                          cursor: str | None = Query(default=None, alias="_cursor", max_length=300)
                          ) -> FhirResponse:
    """Every version of the person, oldest first (the registry keeps each one whole)."""
    after = _page(HISTORY_CURSOR, cursor)
    rows, nxt = await persons.person_history(session, principal=principal, person_id=person_id, limit=count,
                                             after_version=int(after) if after is not None else None)
    base = base_url(request)
    entries = [{"fullUrl": f"{base}/Patient/{person_id}", "resource": _patient(_version_view(r)),
                "request": {"method": "POST" if r.version == 1 else "PUT",
                            "url": "Patient" if r.version == 1 else f"Patient/{person_id}"},
                "response": {"status": "201 Created" if r.version == 1 else "200 OK",
                             "lastModified": r.at.isoformat()}} for r in rows]
    bundle = searchset(request, entries, cursor_codec.encode(HISTORY_CURSOR, nxt) if nxt else None, None)
    bundle["type"] = "history"
    return FhirResponse(bundle)


@fhir_router.get("/Patient", name="fhir:Patient:search-type")
async def search_patients(
        request: Request, session: Session, principal: access("Patient", "read", Permission.person_search),
        identifier: str | None = Query(default=None, max_length=200),
        name: str | None = Query(default=None, max_length=120),
        birthdate: date | None = Query(default=None),
        count: int = Query(default=DEFAULT_COUNT, alias="_count", ge=1, le=queries.MAX_LIMIT),
        total: str = Query(default="none", alias="_total", pattern="^(none|estimate|accurate)$"),
        cursor: str | None = Query(default=None, alias="_cursor", max_length=1000)) -> FhirResponse:
    codice_fiscale = other = None
    if identifier is not None:
        kind, value = patient.search_identifier(identifier)
        if kind == "codice_fiscale":
            codice_fiscale = value
        else:
            other = (kind, value)
    try:
        res = await queries.search_persons(session, principal=principal, codice_fiscale=codice_fiscale, q=name,
                                           birth_date=birthdate, limit=count, cursor=cursor,
                                           with_total=total == "accurate", other_identifier=other)
    except DomainError as e:  # the registry names its own parameters (q, limit, cursor...)
        e.errors = [{**x, "field": SEARCH_NAMES.get(x.get("field"), x.get("field"))} for x in e.errors]
        raise
    base = base_url(request)
    entries = []
    for row in res.items:
        view = dict(row._mapping)
        if res.projection != "identity":
            view = {"id": view["id"], **scopes.mask(view, res.projection)}
        entries.append({"fullUrl": f"{base}/Patient/{view['id']}", "resource": _patient(view),
                        "search": {"mode": "match"}})
    return FhirResponse(searchset(request, entries, res.next_cursor, res.total))


def searchset(request: Request, entries: list[dict[str, Any]], next_cursor: str | None,
              total: int | None) -> dict[str, Any]:
    """A searchset Bundle; `next` repeats the query with the sealed cursor of the following page."""
    here = f"{base_url(request)}{request.url.path.removeprefix(PREFIX)}"
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "_cursor"]
    links = [{"relation": "self", "url": f"{here}?{urlencode(request.query_params.multi_items())}".rstrip("?")}]
    if next_cursor:
        links.append({"relation": "next", "url": f"{here}?{urlencode([*params, ('_cursor', next_cursor)])}"})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "link": links, "entry": entries}
    if total is not None:
        bundle["total"] = total
    if not entries:
        del bundle["entry"]
    return bundle


def reference_param(value: str, resource_type: str, name: str) -> uuid.UUID:
    """A reference search parameter: `Type/<id>` or the bare id."""
    raw = value.removeprefix(f"{resource_type}/")
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise Invalid(name, f"atteso {resource_type}/<id> o l'identificativo") from None


def _page(kind: str, cursor: str | None) -> str | None:
    return cursor_codec.decode(kind, cursor, field="_cursor") if cursor else None


# ---------------------------------------------------------------------------------------------------- RelatedPerson
@fhir_router.get("/RelatedPerson/{relation_id}", name="fhir:RelatedPerson:read")
async def read_related_person(relation_id: uuid.UUID, session: Session,
                              principal: access("RelatedPerson", "read", Permission.person_read)) -> FhirResponse:
    rel = await relations.relation_record(session, relation_id)
    if rel is None:
        raise NotFound("Persona di riferimento non trovata.")
    # The relation is part of the person's social record: the same check and audit row as the /api list of them.
    person, person_access = await persons.load(session, principal, rel.person_id)
    persons.require_case(person_access)
    persons.audit_person("read", person, person_access, object_type="person_relation", object_ids=[rel.id])
    return FhirResponse(r4.dump(related_person.to_fhir(relations.relation_view(rel))))


@fhir_router.get("/RelatedPerson", name="fhir:RelatedPerson:search-type")
async def search_related_persons(request: Request, session: Session,
                                 principal: access("RelatedPerson", "read", Permission.person_read),
                                 patient_ref: str = Query(alias="patient", max_length=200)) -> FhirResponse:
    person_id = reference_param(patient_ref, "Patient", "patient")
    rows = await relations.list_relations(session, principal=principal, person_id=person_id)
    base = base_url(request)
    entries = [{"fullUrl": f"{base}/RelatedPerson/{r.id}",
                "resource": r4.dump(related_person.to_fhir(relations.relation_view(r))), "search": {"mode": "match"}}
               for r in rows]
    return FhirResponse(searchset(request, entries, None, None))


# ---------------------------------------------------------------------------------------------------- Organization
ORG_CURSOR = "fhir.organization"


@fhir_router.get("/Organization/{org_id}", name="fhir:Organization:read")
async def read_organization(org_id: uuid.UUID, session: Session,
                            principal: access("Organization", "read", Permission.territory_read)) -> FhirResponse:
    org = await territory.get_organisation(session=session, principal=principal, org_id=org_id)
    return FhirResponse(r4.dump(organization.to_fhir(org)))


@fhir_router.get("/Organization", name="fhir:Organization:search-type")
async def search_organizations(
        request: Request, session: Session, principal: access("Organization", "read", Permission.territory_read),
        identifier: str | None = Query(default=None, max_length=200),
        type_: str | None = Query(default=None, alias="type", max_length=200),
        partof: str | None = Query(default=None, max_length=200),
        count: int = Query(default=DEFAULT_COUNT, alias="_count", ge=1, le=territory.MAX_PAGE),
        cursor: str | None = Query(default=None, alias="_cursor", max_length=1000)) -> FhirResponse:
    kind = None
    if type_ is not None:
        system, _, code = type_.rpartition("|")
        if system not in ("", systems.ORGANISATION_KIND) or code not in OrgKind.__members__:
            raise Invalid("type", f"usare {systems.ORGANISATION_KIND}|<tipo>: " + ", ".join(OrgKind.__members__))
        kind = code
    part_of = reference_param(partof, "Organization", "partof") if partof is not None else None
    if identifier is not None:
        system, bar, code = identifier.partition("|")
        if not bar or system != systems.ORGANISATION_CODE:
            raise Invalid("identifier", f"usare {systems.ORGANISATION_CODE}|<codice>")
        org = await territory_queries.org_by_code(session, code)
        rows = [org] if (org is not None and org.ambito_id == principal.ambito_id
                         and (kind is None or org.kind == kind) and (part_of is None or org.part_of_id == part_of)
                         ) else []
        nxt = None
    else:
        rows, nxt = await territory.list_organisations(session=session, principal=principal, kind=kind,
                                                       part_of=part_of, limit=count,
                                                       cursor=_page(ORG_CURSOR, cursor))
    base = base_url(request)
    entries = [{"fullUrl": f"{base}/Organization/{o.id}", "resource": r4.dump(organization.to_fhir(o)),
                "search": {"mode": "match"}} for o in rows]
    return FhirResponse(searchset(request, entries, cursor_codec.encode(ORG_CURSOR, nxt) if nxt else None, None))


# ---------------------------------------------------------------------------------------------------- EpisodeOfCare
EPISODE_CURSOR = "fhir.episode_of_care"
EPISODE_STATUS = {fhir: ours for ours, fhir in episode_of_care.STATUS.items()}


@fhir_router.get("/EpisodeOfCare/{cartella_id}", name="fhir:EpisodeOfCare:read")
async def read_episode_of_care(cartella_id: uuid.UUID, session: Session,
                               principal: access("EpisodeOfCare", "read", Permission.cartella_read)) -> FhirResponse:
    c = await cartelle.get_cartella(session, principal=principal, cartella_id=cartella_id)
    return FhirResponse(r4.dump(episode_of_care.to_fhir(c)))


@fhir_router.get("/EpisodeOfCare", name="fhir:EpisodeOfCare:search-type")
async def search_episodes_of_care(
        request: Request, session: Session,
        principal: access("EpisodeOfCare", "read", Permission.cartella_read),
        patient_ref: str = Query(alias="patient", max_length=200),
        status: str | None = Query(default=None, max_length=40),
        count: int = Query(default=DEFAULT_COUNT, alias="_count", ge=1, le=cartelle.MAX_PAGE),
        cursor: str | None = Query(default=None, alias="_cursor", max_length=1000)) -> FhirResponse:
    person_id = reference_param(patient_ref, "Patient", "patient")
    if status is not None and status not in EPISODE_STATUS:
        raise Invalid("status", "valori gestiti: " + ", ".join(EPISODE_STATUS))
    after = _page(EPISODE_CURSOR, cursor)
    rows, nxt = await cartelle.list_for_person(
        session, principal=principal, person_id=person_id, limit=count,
        status=CartellaStatus(EPISODE_STATUS[status]) if status else None,
        cursor=uuid.UUID(after) if after else None)
    base = base_url(request)
    entries = [{"fullUrl": f"{base}/EpisodeOfCare/{c.id}", "resource": r4.dump(episode_of_care.to_fhir(c)),
                "search": {"mode": "match"}} for c in rows]
    return FhirResponse(searchset(request, entries, cursor_codec.encode(EPISODE_CURSOR, str(nxt)) if nxt else None,
                                  None))


# ---------------------------------------------------------------------------------------------------- Consent
@fhir_router.get("/Consent/{consent_id}", name="fhir:Consent:read")
async def read_consent(consent_id: uuid.UUID, session: Session,
                       principal: access("Consent", "read", Permission.consent_read)) -> FhirResponse:
    c = await consent.consent_record(session, consent_id)
    if c is None:
        raise NotFound("Consenso non trovato.")
    # The same check and audit row as the /api list of the person's consents.
    person = await consent.person_in_full_scope(session, principal, c.person_id)
    audit.record(action="read", object_type="consent", object_ids=[c.id], person_ids=[person.id], result_count=1)
    return FhirResponse(r4.dump(consent_fhir.to_fhir(consent.to_public(c))))


@fhir_router.get("/Consent", name="fhir:Consent:search-type")
async def search_consents(request: Request, session: Session,
                          principal: access("Consent", "read", Permission.consent_read),
                          patient_ref: str = Query(alias="patient", max_length=200)) -> FhirResponse:
    person_id = reference_param(patient_ref, "Patient", "patient")
    rows = await consent.list_for_person(session, principal=principal, person_id=person_id)
    base = base_url(request)
    entries = [{"fullUrl": f"{base}/Consent/{c.id}", "resource": r4.dump(consent_fhir.to_fhir(consent.to_public(c))),
                "search": {"mode": "match"}} for c in rows]
    return FhirResponse(searchset(request, entries, None, None))


# ---------------------------------------------------------------------------------------------------- AuditEvent
@fhir_router.get("/AuditEvent", name="fhir:AuditEvent:search-type")
async def search_audit_events(
        request: Request, session: Session,
        principal: access("AuditEvent", "read", Permission.access_log_read),
        patient_ref: str = Query(alias="patient", max_length=200),
        count: int = Query(default=100, alias="_count", ge=1, le=1000),
        cursor: str | None = Query(default=None, alias="_cursor", max_length=300)) -> FhirResponse:
    """The person's access log (who read or changed their data), newest first."""
    person_id = reference_param(patient_ref, "Patient", "patient")
    try:
        items, nxt = await access_log.access_log(session, principal=principal, person_id=person_id, limit=count,
                                                 cursor=cursor)
    except DomainError as e:
        e.errors = [{**x, "field": SEARCH_NAMES.get(x.get("field"), x.get("field"))} for x in e.errors]
        raise
    base = base_url(request)
    entries = [{"fullUrl": f"{base}/AuditEvent/{item['id']}",
                "resource": r4.dump(audit_event.to_fhir(item, person_id=person_id)), "search": {"mode": "match"}}
               for item in items]
    return FhirResponse(searchset(request, entries, nxt, None))


# ---------------------------------------------------------------------------------------------------- CarePlan
@fhir_router.get("/CarePlan/{plan_id}", name="fhir:CarePlan:read")
async def read_care_plan(plan_id: uuid.UUID, session: Session,
                         principal: access("CarePlan", "read", Permission.care_plan_read)) -> FhirResponse:
    bundle = await plan_queries.get_plan(session=session, principal=principal, plan_id=plan_id)
    return FhirResponse(r4.dump(care_plan.to_fhir(plan_policy.plan_view_for(principal, bundle))))


# ---------------------------------------------------------------------------------------------------- Questionnaire
@fhir_router.get("/Questionnaire/{questionnaire_id}", name="fhir:Questionnaire:read")
async def read_questionnaire(questionnaire_id: str, principal: access("Questionnaire", "read",
                                                                      Permission.instrument_read)) -> FhirResponse:
    try:
        code, version = questionnaire.parse_id(questionnaire_id)
        definition = instruments.get(code, version)
    except Invalid:  # not <code>-<version>: no such instrument (an unknown one is the registry's 404)
        raise NotFound("Strumento di valutazione non trovato.") from None
    return FhirResponse(r4.dump(questionnaire.to_fhir(definition)))


@fhir_router.get("/Questionnaire", name="fhir:Questionnaire:search-type")
async def search_questionnaires(request: Request, principal: access("Questionnaire", "read",
                                                                    Permission.instrument_read)) -> FhirResponse:
    """The latest active version of every instrument."""
    base = base_url(request)
    entries = []
    for code in sorted(instruments.registry().codes()):
        d = instruments.latest_active(code)
        entries.append({"fullUrl": f"{base}/Questionnaire/{questionnaire.questionnaire_id(d.code, d.version)}",
                        "resource": r4.dump(questionnaire.to_fhir(d)), "search": {"mode": "match"}})
    return FhirResponse(searchset(request, entries, None, None))


# ---------------------------------------------------------------------------------------------------- discharge
# One protected-discharge case is three resources with its id: the stay, the request to the COT, the COT's task.
def _case(v: discharge_queries.Visible) -> dict[str, Any]:
    return DischargePublic.of(v.case, v.view, v.allowed).model_dump(exclude_none=True)


async def _read_case(session, principal: PrincipalT, discharge_id: uuid.UUID) -> dict[str, Any]:
    return _case(await discharge_queries.get_case(session, principal=principal, discharge_id=discharge_id))


@fhir_router.get("/Encounter/{discharge_id}", name="fhir:Encounter:read")
async def read_encounter(discharge_id: uuid.UUID, session: Session,
                         principal: access("Encounter", "read", Permission.discharge_read)) -> FhirResponse:
    return FhirResponse(r4.dump(discharge.encounter(await _read_case(session, principal, discharge_id))))


@fhir_router.get("/ServiceRequest/{discharge_id}", name="fhir:ServiceRequest:read")
async def read_service_request(discharge_id: uuid.UUID, session: Session,
                               principal: access("ServiceRequest", "read", Permission.discharge_read)) -> FhirResponse:
    return FhirResponse(r4.dump(discharge.service_request(await _read_case(session, principal, discharge_id))))


@fhir_router.get("/Task/{discharge_id}", name="fhir:Task:read")
async def read_task(discharge_id: uuid.UUID, session: Session,
                    principal: access("Task", "read", Permission.discharge_read)) -> FhirResponse:
    return FhirResponse(r4.dump(discharge.task(await _read_case(session, principal, discharge_id))))


@fhir_router.get("/ServiceRequest", name="fhir:ServiceRequest:search-type")
async def search_service_requests(
        request: Request, session: Session,
        principal: access("ServiceRequest", "read", Permission.discharge_read),
        patient_ref: str | None = Query(default=None, alias="patient", max_length=200),
        count: int = Query(default=DEFAULT_COUNT, alias="_count", ge=1, le=discharge_queries.MAX_PAGE),
        cursor: str | None = Query(default=None, alias="_cursor", max_length=300)) -> FhirResponse:
    person_id = reference_param(patient_ref, "Patient", "patient") if patient_ref is not None else None
    try:
        items, nxt = await discharge_queries.list_cases(session, principal=principal, person_id=person_id,
                                                        limit=count, cursor=cursor)
    except DomainError as e:  # the discharge list names its own parameters
        e.errors = [{**x, "field": SEARCH_NAMES.get(x.get("field"), x.get("field"))} for x in e.errors]
        raise
    base = base_url(request)
    entries = [{"fullUrl": f"{base}/ServiceRequest/{v.case.id}",
                "resource": r4.dump(discharge.service_request(_case(v))), "search": {"mode": "match"}} for v in items]
    return FhirResponse(searchset(request, entries, nxt, None))


@fhir_router.get("/Provenance", name="fhir:Provenance:search-type")
async def search_provenance(request: Request, session: Session,
                            principal: access("Provenance", "read", Permission.discharge_read),
                            target: str = Query(max_length=200)) -> FhirResponse:
    """Where a discharge case came from: the transaction Bundle that opened it (target=ServiceRequest/<id>, or its
    Encounter or Task), for whoever may read the case."""
    rtype, _, raw = target.partition("/")
    if rtype not in ("Encounter", "ServiceRequest", "Task"):
        raise Invalid("target", "atteso ServiceRequest/<id>, Encounter/<id> o Task/<id> di una dimissione protetta")
    case_id = reference_param(raw, rtype, "target")
    await discharge_queries.get_case(session, principal=principal, discharge_id=case_id)
    rows = await idempotency.answered_with(session, ambito_id=principal.ambito_id, scope=TRANSACTION_SCOPE, fragment={
        "entry": [{"response": {"location": f"ServiceRequest/{case_id}"}}]})
    base = base_url(request)
    entries = [{"fullUrl": f"{base}/Provenance/{row.id}", "resource": r4.dump(provenance.from_transaction(row)),
                "search": {"mode": "match"}} for row in rows]
    return FhirResponse(searchset(request, entries, None, None))


# ---------------------------------------------------------------------------------------------------- $everything
EVERYTHING_MAX = 200  # per kind of record: a person's record, not an export


@fhir_router.get("/Patient/{person_id}/$everything", name="fhir:Patient:$everything")
async def patient_everything(request: Request, person_id: uuid.UUID, session: Session,
                             principal: access("Patient", "read", Permission.person_read)) -> FhirResponse:
    """The person and what the caller may read of their record: each part goes through its own service, with its
    own permission, scope, consent check and audit row; a part the caller may not read is left out."""
    read = await persons.read_person(session, principal=principal, person_id=person_id)
    pid = read.person.id
    base = base_url(request)
    entries = [{"fullUrl": f"{base}/Patient/{pid}", "resource": _patient(persons.person_view(read)),
                "search": {"mode": "match"}}]

    def add(rtype: str, id_: Any, resource: dict[str, Any]) -> None:
        entries.append({"fullUrl": f"{base}/{rtype}/{id_}", "resource": resource, "search": {"mode": "include"}})

    async def part(rtype: str, permission: Permission, fetch) -> None:
        if permission not in principal.permissions or (principal.is_system and not _scoped(principal, rtype, "read")):
            return
        try:
            await fetch()
        except (NotFound, Forbidden):  # out of the caller's scope, or the person's consent is missing
            return

    async def related() -> None:
        for r in await relations.list_relations(session, principal=principal, person_id=pid):
            add("RelatedPerson", r.id, r4.dump(related_person.to_fhir(relations.relation_view(r))))

    async def episodes() -> None:
        rows, _ = await cartelle.list_for_person(session, principal=principal, person_id=pid, limit=EVERYTHING_MAX)
        for c in rows:
            add("EpisodeOfCare", c.id, r4.dump(episode_of_care.to_fhir(c)))
        for c in rows if Permission.care_plan_read in principal.permissions else []:
            plans, _ = await plan_queries.list_for_cartella(session=session, principal=principal, cartella_id=c.id,
                                                            limit=EVERYTHING_MAX)
            for summary in plans:
                b = await plan_queries.get_plan(session=session, principal=principal, plan_id=summary.plan.id)
                add("CarePlan", b.plan.id, r4.dump(care_plan.to_fhir(plan_policy.plan_view_for(principal, b))))

    async def consents() -> None:
        for c in await consent.list_for_person(session, principal=principal, person_id=pid):
            add("Consent", c.id, r4.dump(consent_fhir.to_fhir(consent.to_public(c))))

    async def discharges() -> None:
        items, _ = await discharge_queries.list_cases(session, principal=principal, person_id=pid,
                                                      limit=EVERYTHING_MAX)
        for v in items:
            view = _case(v)
            add("Encounter", v.case.id, r4.dump(discharge.encounter(view)))
            add("ServiceRequest", v.case.id, r4.dump(discharge.service_request(view)))
            add("Task", v.case.id, r4.dump(discharge.task(view)))

    await part("RelatedPerson", Permission.person_read, related)
    await part("EpisodeOfCare", Permission.cartella_read, episodes)
    await part("Consent", Permission.consent_read, consents)
    await part("ServiceRequest", Permission.discharge_read, discharges)
    return FhirResponse(searchset(request, entries, None, None))


# ---------------------------------------------------------------------------------------------------- transaction
TRANSACTION_SCOPE = "fhir.transaction"
NEW_WARD_UNIT_TYPE = "reparto"  # a unit type that may signal (schemas/reference/discharge/eligibility.yaml)
ACCEPTED_MEDIA = {r4.MEDIA_TYPE, "application/json"}


class UnsupportedMediaType(DomainError):
    status = 415
    title = "Tipo di contenuto non supportato"
    code = "unsupported_media_type"


class BadRequest(DomainError):
    status = 400
    title = "Richiesta non valida"
    code = "bad_request"


def _remap(e: Invalid | pydantic.ValidationError, path_of, prefix: str = "") -> Invalid:
    if isinstance(e, pydantic.ValidationError):
        pairs = [(prefix + ".".join(str(x) for x in err["loc"]), str(err.get("msg", "valore non valido"))
                  .removeprefix("Value error, ")) for err in e.errors()]
    else:
        pairs = [(x["field"], x["reason"]) for x in e.errors]
    return Invalid.many([(path_of(f), reason) for f, reason in pairs])


async def _organizations(session, principal: PrincipalT, plan) -> tuple[dict[int, uuid.UUID], set[int]]:
    """The Organization entries matched on our codes. A ward we do not know becomes a provisional unit of the ASST
    it is part of, marked as received from ASST: it grants nobody access (only an administrator assigns staff)."""
    found: dict[int, Any] = {}
    for i, code in plan.organizations.items():
        org = await territory_queries.org_by_code(session, code) if code else None
        if org is not None and org.ambito_id == principal.ambito_id:
            found[i] = org
    ward = plan.ward.index
    errors = [(f"Bundle.entry[{i}].resource.identifier", "organizzazione sconosciuta nell'Ambito")
              for i in plan.organizations if i not in found and i != ward]
    created: set[int] = set()
    if ward is not None and ward not in found and not errors:
        parent_ref, at = plan.org_parents.get(ward), f"Bundle.entry[{ward}].resource.partOf"
        parent = None
        if parent_ref is not None:
            parent = found.get(parent_ref.index) if parent_ref.index is not None else (
                await territory_queries.active_org(session, parent_ref.id, principal.ambito_id))
        if parent is None or str(parent.kind) != OrgKind.asst.value:
            errors.append((at, "reparto sconosciuto: indicare in partOf l'ASST (Organization) a cui appartiene"))
        else:
            try:
                found[ward] = await territory.create_organisation(session=session, principal=principal,
                                                                  data=OrganisationCreate(
                    code=plan.organizations[ward], name=plan.org_names.get(ward) or plan.organizations[ward],
                    kind=OrgKind.asst_unit, part_of_id=parent.id, unit_type=NEW_WARD_UNIT_TYPE, provisional=True,
                    attributes={"origine": "ASST (FHIR)", "bundle": plan.key}))
                created.add(ward)
            except (pydantic.ValidationError, DomainError) as e:
                reason = "codice non utilizzabile come codice di organizzazione" if isinstance(
                    e, pydantic.ValidationError) else e.detail
                errors.append((f"Bundle.entry[{ward}].resource.identifier", reason))
    if errors:
        raise Invalid.many(errors)
    return {i: o.id for i, o in found.items()}, created


@fhir_router.post("", name="fhir:system:transaction")
async def transaction(request: Request, session: Session,
                      principal: Annotated[PrincipalT, require(Permission.discharge_signal)]) -> FhirResponse:
    """The protected-discharge signal of ASST as a transaction Bundle: all of it or nothing, once per
    Bundle.identifier (the same Bundle again gets the same answer and writes nothing)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in ACCEPTED_MEDIA:
        raise UnsupportedMediaType(f"Inviare il Bundle con Content-Type: {r4.MEDIA_TYPE}.")
    try:
        data = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequest(f"Corpo JSON non valido: {getattr(e, 'msg', 'testo non leggibile')} "
                         f"(riga {getattr(e, 'lineno', '?')}).") from None
    _, plan = discharge_bundle.read(data)
    for rtype in sorted(set(plan.types)):
        if principal.is_system and not _scoped(principal, rtype, "write"):
            raise Forbidden(f"Scope mancante: system/{rtype}.write", missing=[f"system/{rtype}.write"])
    digest = idempotency.request_hash(data)
    stored = await idempotency.claim(session, ambito_id=principal.ambito_id, scope=TRANSACTION_SCOPE, key=plan.key,
                                     request_hash=digest)
    if stored is not None:
        return FhirResponse(stored.response, status_code=stored.status)

    org_ids, created_orgs = await _organizations(session, principal, plan)
    ward_id = org_ids[plan.ward.index] if plan.ward.index is not None else plan.ward.id

    person_id, person, matched = None, None, False
    if plan.patient_index is not None:
        if plan.patient_match is not None:
            field, value = plan.patient_match
            person_id = await persons.find_by_identifier(
                session, principal=principal, codice_fiscale=value if field == "codice_fiscale" else None,
                other_identifier=None if field == "codice_fiscale" else (field, value))
            matched = person_id is not None
        if person_id is None:
            try:
                person = PersonCreate(**plan.patient)
            except pydantic.ValidationError as e:
                raise _remap(e, plan.path_of, "person.") from None
    else:
        person_id = plan.patient_ref.id
    try:
        signal = DischargeSignalCreate(person_id=person_id, person=person, ward_org_id=ward_id, **plan.signal)
        case = await discharge_service.open_signal(session, principal=principal, data=signal)
    except (Invalid, pydantic.ValidationError) as e:
        raise _remap(e, plan.path_of) from None
    except NotFound as e:  # 404 as on /api (the person may exist in another Ambito), naming the reference
        raise NotFound(e.detail, errors=[{"field": plan.path_of("person_id"),
                                          "reason": "persona non trovata su questo server"}]) from None

    entries = []
    for i, rtype in enumerate(plan.types):
        if rtype == "Organization":
            status, location = ("201 Created" if i in created_orgs else "200 OK"), f"Organization/{org_ids[i]}"
        elif rtype == "Patient":
            status, location = ("200 OK" if matched else "201 Created"), f"Patient/{case.person_id}"
        else:  # the stay, the COT request and its task are views of the one discharge case
            status, location = "201 Created", f"{rtype}/{case.id}"
        entries.append({"response": {"status": status, "location": location}})
    body = {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}
    await idempotency.remember(session, ambito_id=principal.ambito_id, scope=TRANSACTION_SCOPE, key=plan.key,
                               request_hash=digest, status=200, response=body, created_by=principal.user_id)
    return FhirResponse(body)


# ---------------------------------------------------------------------------------------------------- errors
ISSUE_CODES = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported",
               406: "not-supported", 409: "conflict", 410: "deleted", 412: "conflict", 413: "too-long",
               415: "not-supported", 422: "invalid", 429: "throttled"}
_KEEP_HEADERS = {"retry-after", "www-authenticate", "allow"}


def outcome(status: int, detail: str, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An OperationOutcome: one issue per failing element (its FHIRPath in `expression`), else one for the whole."""
    code = ISSUE_CODES.get(status, "exception" if status >= 500 else "processing")
    issues = []
    for e in errors or []:
        field, reason = str(e.get("field", "")), str(e.get("reason", ""))
        issue: dict[str, Any] = {"severity": "error", "code": code}
        if field[:1].isupper():  # a FHIRPath (Patient.name[0]); else a search parameter or a field of ours
            issue["diagnostics"] = reason
            issue["expression"] = [field]
        else:
            issue["diagnostics"] = f"{field}: {reason}" if field else reason
        issues.append(issue)
    return {"resourceType": "OperationOutcome",
            "issue": issues or [{"severity": "error", "code": code, "diagnostics": detail}]}


def _as_outcome(request: Request, response: Response) -> Response:
    try:
        body = json.loads(bytes(response.body))
    except (AttributeError, ValueError):
        body = {}
    status = response.status_code
    errors = body.get("errors") or []
    if status == 422 and errors and all(e.get("in") == "path" for e in errors):
        status = 404  # an id that cannot be one of ours names no resource
    elif status == 422 and request.method == "GET":
        status = 400  # FHIR: a search or read the server cannot process is a bad request
    detail = body.get("detail") or body.get("title") or "Errore"
    headers = {k: v for k, v in response.headers.items() if k.lower() in _KEEP_HEADERS}
    return FhirResponse(outcome(status, detail, errors), status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    """Answer /fhir errors as OperationOutcome: every exception handler of api/errors.py, rewritten on /fhir."""

    def wrap(handler):
        async def _handler(request: Request, exc: Exception) -> Response:
            response = handler(request, exc)
            if inspect.isawaitable(response):
                response = await response
            if is_fhir_path(request.url.path):
                return _as_outcome(request, response)
            return response

        return _handler

    for key, handler in list(app.exception_handlers.items()):
        app.exception_handlers[key] = wrap(handler)
