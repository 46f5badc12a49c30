"""FHIR façade: the registry (Patient, RelatedPerson, Consent, AuditEvent), the organisation tree (Organization) and
the cartelle (EpisodeOfCare), each through the same service as its /api twin."""
from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from fastapi import Query, Request

from api.deps import Session
from api.routes.fhir import (
    DEFAULT_COUNT,
    FhirResponse,
    _page,
    _scoped,
    access,
    base_url,
    date_params,
    fhir_router,
    match,
    reference_param,
    renamed,
    searchset,
)
from api.routes.fhir_discharge import case_view
from domain.care_plan import policy as plan_policy
from domain.care_plan import queries as plan_queries
from domain.discharge import queries as discharge_queries
from domain.kernel import cursor as cursor_codec
from domain.kernel.errors import DomainError, Forbidden, Invalid, NotFound
from domain.kernel.validity import Span
from domain.registry import access_log, cartelle, consent, persons, queries, relations
from domain.registry.models import CartellaStatus
from domain.security import audit, scopes
from domain.security.permissions import Permission
from domain.territory import queries as territory_queries
from domain.territory import service as territory
from domain.territory.models import OrgKind
from integrations.fhir import (
    audit_event,
    care_plan,
    discharge,
    episode_of_care,
    organization,
    patient,
    r4,
    related_person,
    systems,
)
from integrations.fhir import consent as consent_fhir


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
        dates: dict[str, Span] = date_params("_lastUpdated"),
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
                                           with_total=total == "accurate", other_identifier=other,
                                           updated=dates.get("_lastUpdated"), with_comune_names=False)
    except DomainError as e:  # the service names its own criteria (q, limit, cursor...)
        raise renamed(e) from None
    base = base_url(request)
    entries = []
    for row in res.items:
        view = dict(row._mapping)
        if res.projection != "identity":
            view = {"id": view["id"], **scopes.mask(view, res.projection)}
        entries.append(match(base, "Patient", view["id"], _patient(view)))
    return FhirResponse(searchset(request, entries, res.next_cursor, res.total))



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
    entries = [match(base, "RelatedPerson", r.id, r4.dump(related_person.to_fhir(relations.relation_view(r))))
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
    entries = [match(base, "Organization", o.id, r4.dump(organization.to_fhir(o))) for o in rows]
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
    entries = [match(base, "EpisodeOfCare", c.id, r4.dump(episode_of_care.to_fhir(c))) for c in rows]
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
    entries = [match(base, "Consent", c.id, r4.dump(consent_fhir.to_fhir(consent.to_public(c)))) for c in rows]
    return FhirResponse(searchset(request, entries, None, None))


# ---------------------------------------------------------------------------------------------------- AuditEvent
@fhir_router.get("/AuditEvent", name="fhir:AuditEvent:search-type")
async def search_audit_events(
        request: Request, session: Session,
        principal: access("AuditEvent", "read", Permission.access_log_read),
        patient_ref: str = Query(alias="patient", max_length=200),
        dates: dict[str, Span] = date_params("date"),
        count: int = Query(default=100, alias="_count", ge=1, le=1000),
        cursor: str | None = Query(default=None, alias="_cursor", max_length=300)) -> FhirResponse:
    """The person's access log (who read or changed their data), newest first."""
    person_id = reference_param(patient_ref, "Patient", "patient")
    try:
        items, nxt = await access_log.access_log(session, principal=principal, person_id=person_id, limit=count,
                                                 cursor=cursor, at=dates.get("date"))
    except DomainError as e:  # the service names its own criteria (q, limit, cursor...)
        raise renamed(e) from None
    base = base_url(request)
    entries = [match(base, "AuditEvent", item["id"], r4.dump(audit_event.to_fhir(item, person_id=person_id)))
               for item in items]
    return FhirResponse(searchset(request, entries, nxt, None))



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
    entries = [match(base, "Patient", pid, _patient(persons.person_view(read)))]

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
            view = case_view(v)
            add("Encounter", v.case.id, r4.dump(discharge.encounter(view)))
            add("ServiceRequest", v.case.id, r4.dump(discharge.service_request(view)))
            add("Task", v.case.id, r4.dump(discharge.task(view)))

    await part("RelatedPerson", Permission.person_read, related)
    await part("EpisodeOfCare", Permission.cartella_read, episodes)
    await part("Consent", Permission.consent_read, consents)
    await part("ServiceRequest", Permission.discharge_read, discharges)
    return FhirResponse(searchset(request, entries, None, None))


