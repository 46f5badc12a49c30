"""FHIR façade: the protected-discharge case (Encounter, ServiceRequest, Task, its Provenance) and the discharge signal
ASST sends as a transaction Bundle (`POST /fhir`), through the same services as /api/discharges; read-only, through
the reads of their /api twins, the other rows shown as ServiceRequest and Task: the waiting-list application, the
PUA's referral to the VMD or the COT, the activation order of a service."""
from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

import pydantic
from fastapi import Query, Request

from api.deps import Session, require
from api.routes.fhir import (
    DEFAULT_COUNT,
    FhirResponse,
    _scoped,
    access,
    any_access_dependency,
    base_url,
    date_params,
    fhir_router,
    match,
    reference_param,
    renamed,
    searchset,
)
from domain.discharge import queries as discharge_queries
from domain.discharge import service as discharge_service
from domain.discharge.models import DischargeState
from domain.kernel import idempotency
from domain.kernel.errors import DomainError, Forbidden, Invalid, NotFound
from domain.kernel.validity import Span
from domain.pua import queries as pua_queries
from domain.registry import persons
from domain.security.permissions import Permission
from domain.security.principal import Principal as PrincipalT
from domain.services import queries as services_queries
from domain.territory import queries as territory_queries
from domain.territory import service as territory
from domain.territory.models import OrgKind
from domain.waiting_list import queries as waiting_list_queries
from integrations.fhir import (
    discharge,
    discharge_bundle,
    provenance,
    pua_referral,
    r4,
    service_activation,
    waiting_list,
)
from schemas.discharge import DischargePublic, DischargeSignalCreate
from schemas.persons import PersonCreate
from schemas.pua import AccessRequestPublic
from schemas.services import ActivationPublic
from schemas.territory import OrganisationCreate
from schemas.waiting_list import EntryPublic


# ---------------------------------------------------------------------------------------------------- discharge
# One protected-discharge case is three resources with its id: the stay, the request to the COT, the COT's task.
def case_view(v: discharge_queries.Visible) -> dict[str, Any]:
    return DischargePublic.of(v.case, v.view, v.allowed).model_dump(exclude_none=True)


async def _read_case(session, principal: PrincipalT, discharge_id: uuid.UUID) -> dict[str, Any]:
    return case_view(await discharge_queries.get_case(session, principal=principal, discharge_id=discharge_id))


@fhir_router.get("/Encounter/{discharge_id}", name="fhir:Encounter:read")
async def read_encounter(discharge_id: uuid.UUID, session: Session,
                         principal: access("Encounter", "read", Permission.discharge_read)) -> FhirResponse:
    return FhirResponse(r4.dump(discharge.encounter(await _read_case(session, principal, discharge_id))))


# ServiceRequest and Task name four kinds of rows, each with its own id and the rules of its /api twin: the waiting-list
# application (integrations/fhir/waiting_list.py, GET /api/waiting-lists/applications/{id}), the PUA's referral to
# the VMD or the COT (integrations/fhir/pua_referral.py, GET /api/pua/requests/{id}), the activation order of a
# service (integrations/fhir/service_activation.py, GET /api/services/activations/{id}) and the discharge case
# (GET /api/discharges/{id}). A read tries the rows the caller's permissions reach, the discharge case first (a
# caller that may not read cases gets its 403 when no other row matched); the search lists all of them, one source
# after the other.
PUA_READ = (Permission.pua_read, Permission.pua_register)  # as GET /api/pua/requests


async def _wl_view(session, principal: PrincipalT, row_id: uuid.UUID) -> dict[str, Any]:
    return entry_view(await waiting_list_queries.get_entry(session, principal=principal, entry_id=row_id))


async def _referral_view(session, principal: PrincipalT, row_id: uuid.UUID) -> dict[str, Any]:
    # an access request not (or not yet) referred is not found, and its read not recorded
    visible, _ = await pua_queries.get_request(session, principal=principal, request_id=row_id,
                                               states=pua_referral.REFERRED)
    return referral_view(visible)


async def _order_view(session, principal: PrincipalT, row_id: uuid.UUID) -> dict[str, Any]:
    return order_view(await services_queries.get_activation(session, principal=principal, activation_id=row_id))


# (permissions, the row's view by id (NotFound outside the caller's reach), converters by type)
SHARED_ROWS = ((PUA_READ, _referral_view, pua_referral.RESOURCES),
               ((Permission.waiting_list_read,), _wl_view, waiting_list.RESOURCES),
               ((Permission.services_read,), _order_view, service_activation.RESOURCES))
SHARED = (Permission.discharge_read, *(p for perms, *_ in SHARED_ROWS for p in perms))


async def _read_shared(session, principal: PrincipalT, rtype: str, row_id: uuid.UUID) -> FhirResponse:
    missing: NotFound | None = None
    if Permission.discharge_read in principal.permissions:  # the case first: what ASST reads most
        try:
            return FhirResponse(r4.dump(CASE_RESOURCES[rtype](await _read_case(session, principal, row_id))))
        except NotFound as e:
            missing = e
    for perms, view_of, resources in SHARED_ROWS:
        if any(p in principal.permissions for p in perms):
            try:
                return FhirResponse(r4.dump(resources[rtype](await view_of(session, principal, row_id))))
            except NotFound:
                pass  # not a row of this kind the caller reaches: the next kind, or nothing
    if missing is None:  # 403 as on /api/discharges for the other readers
        raise Forbidden(f"Permesso mancante: {Permission.discharge_read}", missing=[str(Permission.discharge_read)])
    raise missing


@fhir_router.get("/ServiceRequest/{discharge_id}", name="fhir:ServiceRequest:read")
async def read_service_request(discharge_id: uuid.UUID, session: Session,
                               principal: PrincipalT = any_access_dependency("ServiceRequest", "read", *SHARED)
                               ) -> FhirResponse:
    return await _read_shared(session, principal, "ServiceRequest", discharge_id)


@fhir_router.get("/Task/{discharge_id}", name="fhir:Task:read")
async def read_task(discharge_id: uuid.UUID, session: Session,
                    principal: PrincipalT = any_access_dependency("Task", "read", *SHARED)) -> FhirResponse:
    return await _read_shared(session, principal, "Task", discharge_id)


CASE_RESOURCES = {"Encounter": discharge.encounter, "ServiceRequest": discharge.service_request,
                  "Task": discharge.task}


def entry_view(v: waiting_list_queries.EntryView) -> dict[str, Any]:
    return EntryPublic.of(v).model_dump(exclude_none=True)


def referral_view(v: pua_queries.Visible) -> dict[str, Any]:
    return AccessRequestPublic.of(v.request, v.view).model_dump(exclude_none=True)


def order_view(v: dict[str, Any]) -> dict[str, Any]:
    return ActivationPublic.of(v).model_dump(exclude_none=True)


async def _cases(session, principal, person_id, states, count, cursor, dates):
    # ServiceRequest.authoredOn and Task.authoredOn are both the COT request; the Task's due time is what it shows
    items, nxt = await discharge_queries.list_cases(
        session, principal=principal, person_id=person_id, states=[DischargeState(x) for x in states or []] or None,
        limit=count, cursor=cursor, requested=dates.get("authored") or dates.get("authored-on"),
        due=dates.get("due"))
    return [(v.case.id, case_view(v)) for v in items], nxt


async def _entries(session, principal, person_id, states, count, cursor, dates):
    # ServiceRequest.authoredOn is the application's date, Task.authoredOn the instant it was recorded
    items, nxt = await waiting_list_queries.list_entries(
        session, principal=principal, person_id=person_id, states=states, limit=count, cursor=cursor,
        application_date=dates.get("authored"), applied=dates.get("authored-on"), assessment_due=dates.get("due"))
    return [(v.entry.id, entry_view(v)) for v in items], nxt


async def _referrals(session, principal, person_id, states, count, cursor, dates):
    # ServiceRequest.authoredOn and Task.authoredOn are both the referral's time (the request closed by it)
    items, nxt, _ = await pua_queries.list_requests(
        session, principal=principal, person_id=person_id, states=states or pua_referral.REFERRED, limit=count,
        cursor=cursor, closed=dates.get("authored") or dates.get("authored-on"), cot_due=dates.get("due"))
    return [(v.request.id, referral_view(v)) for v in items], nxt


async def _orders(session, principal, person_id, states, count, cursor, dates):
    if dates.get("due") is not None:  # an order has no due time: none matches
        return [], None
    items, nxt = await services_queries.list_activations(
        session, principal=principal, person_id=person_id, states=states, limit=count, cursor_token=cursor,
        requested=dates.get("authored") or dates.get("authored-on"))
    return [(v["activation"].id, order_view(v)) for v in items], nxt


# The date search parameters of each type (R4's names; `due` is ours: Task.restriction.period.end).
DATE_PARAMS = {"Encounter": (), "ServiceRequest": ("authored",), "Task": ("authored-on", "due")}


# The rows behind each searchable type, in the order a search pages through them: the source's key (the cursor's
# prefix), the permissions that reach it (any of them), its list function, its converters and its status → states
# mapping.
SOURCES = {
    "Encounter": [("d", (Permission.discharge_read,), _cases, discharge.encounter,
                   discharge.STATUS_STATES["Encounter"])],
    **{rtype: [("d", (Permission.discharge_read,), _cases, CASE_RESOURCES[rtype], discharge.STATUS_STATES[rtype]),
               ("w", (Permission.waiting_list_read,), _entries, waiting_list.RESOURCES[rtype],
                waiting_list.STATUS_STATES[rtype]),
               ("p", PUA_READ, _referrals, pua_referral.RESOURCES[rtype], pua_referral.STATUS_STATES[rtype]),
               ("s", (Permission.services_read,), _orders, service_activation.RESOURCES[rtype],
                service_activation.STATUS_STATES[rtype])] for rtype in ("ServiceRequest", "Task")},
}


def _case_search(rtype: str) -> None:
    """GET /fhir/<rtype>?patient=: the discharge cases (and, as ServiceRequest and Task, the waiting-list
    applications) the caller may read, newest first, one source after the other (`_cursor` says which)."""
    sources = SOURCES[rtype]
    permissions = list(dict.fromkeys(p for _, perms, *_ in sources for p in perms))

    async def search(request: Request, session: Session,
                     principal: PrincipalT = any_access_dependency(rtype, "read", *permissions),
                     patient_ref: str | None = Query(default=None, alias="patient", max_length=200),
                     status: str | None = Query(default=None, max_length=40),
                     dates: dict[str, Span] = date_params(*DATE_PARAMS[rtype]),
                     count: int = Query(default=DEFAULT_COUNT, alias="_count", ge=1, le=discharge_queries.MAX_PAGE),
                     cursor: str | None = Query(default=None, alias="_cursor", max_length=300)) -> FhirResponse:
        person_id = reference_param(patient_ref, "Patient", "patient") if patient_ref is not None else None
        if status is not None and not any(status in known for *_, known in sources):
            raise Invalid("status", "valori gestiti: " + ", ".join(dict.fromkeys(
                s for *_, known in sources for s in known)))
        usable = [s for s in sources if any(p in principal.permissions for p in s[1])
                  and (status is None or status in s[4])]
        keys = [s[0] for s in usable]
        key, _, inner = (cursor or "").partition(".")
        if cursor is not None and key not in keys:
            raise Invalid("_cursor", "cursore non valido")
        at = keys.index(key) if cursor is not None else 0
        entries: list[dict[str, Any]] = []
        nxt, inner, base = None, inner or None, base_url(request)
        while at < len(usable):  # fill the page from one source, then the next
            key, _, list_rows, convert, known = usable[at]
            try:
                rows, inner_next = await list_rows(session, principal, person_id,
                                                   known[status] if status is not None else None,
                                                   count - len(entries), inner, dates)
            except DomainError as e:  # the service names its own criteria (limit, cursor)
                raise renamed(e) from None
            entries += [match(base, rtype, row_id, r4.dump(convert(view))) for row_id, view in rows]
            if inner_next:
                nxt = f"{key}.{inner_next}"
                break
            at, inner = at + 1, None
            if len(entries) >= count:
                nxt = f"{keys[at]}." if at < len(keys) else None
                break
        return FhirResponse(searchset(request, entries, nxt, None))

    search.__name__ = f"search_{rtype.lower()}"
    fhir_router.add_api_route(f"/{rtype}", search, methods=["GET"], name=f"fhir:{rtype}:search-type")


for _rtype in SOURCES:
    _case_search(_rtype)


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
    entries = [match(base, "Provenance", row.id, r4.dump(provenance.from_transaction(row))) for row in rows]
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
    by_code = await territory_queries.orgs_by_code(session, [c for c in plan.organizations.values() if c])
    found: dict[int, Any] = {i: by_code[code] for i, code in plan.organizations.items()
                             if code in by_code and by_code[code].ambito_id == principal.ambito_id}
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
                               status=200, response=body, created_by=principal.user_id)
    return FhirResponse(body)


