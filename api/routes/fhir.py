"""The FHIR R4 (4.0.1) façade at /fhir: the same use cases, access rules and audit rows as /api, spoken in FHIR.
This module is the façade's frame (router, access, parameters, pages, errors, CapabilityStatement); the resources'
routes are in fhir_registry.py, fhir_care.py and fhir_discharge.py (with the waiting-list application, which is a
ServiceRequest and a Task too), which add them to `fhir_router`.

- `application/fhir+json` in and out; every error is an OperationOutcome (the problem+json answers of api/errors.py
  are rewritten by `install`, so the two surfaces cannot drift apart), with the FHIRPath of the failing element in
  `issue.expression`.
- Every route is named `fhir:<Type>:<interaction>`; the CapabilityStatement of `GET /fhir/metadata` is built from
  those names and the routes' declared query parameters, so it lists exactly what is mounted.
- Search parameters a route does not declare are refused (`Prefer: handling=strict`, the default), or ignored
  with `Prefer: handling=lenient`.
- A system client (ASST) needs the SMART scope of the resource and interaction on every route
  (`system/Patient.read`, `system/*.read`); a user's rights come from their roles, as on /api.
- The routes are kept out of the OpenAPI document: their contract is the CapabilityStatement, and their errors
  are not the problem+json that document promises.
"""
from __future__ import annotations

import inspect
import json
import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.responses import Response

from api.deps import Principal, require
from domain.kernel import clock
from domain.kernel import cursor as cursor_codec
from domain.kernel.errors import DomainError, Forbidden, Invalid
from domain.kernel.validity import Span
from domain.security.permissions import Permission
from domain.security.principal import Principal as PrincipalT
from integrations.fhir import r4, systems
from integrations.fhir.search import date_span

PREFIX = "/fhir"
ROUTE_PREFIX = "fhir:"
# Besides the SMART v1 scopes (system/<Type>.read...), the names system clients were first given count for every type.
LEGACY_SCOPES = {"read": "fhir.read", "write": "fhir.write"}
# The FHIR type of each search parameter we implement (CapabilityStatement.rest.resource.searchParam.type).
SEARCH_PARAM_TYPES = {"identifier": "token", "name": "string", "birthdate": "date", "patient": "reference",
                      "type": "token", "partof": "reference", "status": "token", "target": "reference",
                      "_lastUpdated": "date", "date": "date", "authored": "date", "authored-on": "date",
                      "due": "date", "period": "date", "measure": "reference"}
# Search parameters R4 does not define: the CapabilityStatement points to their definition.
CUSTOM_SEARCH_PARAMS = {"due": f"{systems.BASE}/SearchParameter/Task-due"}
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


def access_dependency(resource: str, mode: str, *permissions: Permission):
    """The caller, once it holds the permissions of the /api twin and, for a system client, the SMART scope."""

    async def _check(principal: PrincipalT = require(*permissions)) -> PrincipalT:
        if principal.is_system and not _scoped(principal, resource, mode):
            raise Forbidden(f"Scope mancante: system/{resource}.{mode}", missing=[f"system/{resource}.{mode}"])
        return principal

    return Depends(_check)


def any_access_dependency(resource: str, mode: str, *permissions: Permission):
    """As `access_dependency`, for a route serving the rows of several /api twins (ServiceRequest and Task: the
    discharge case and the waiting-list application): the caller holds at least one of their permissions; the
    route then reads only what the permissions held reach."""

    async def _check(principal: Principal) -> PrincipalT:
        if not any(p in principal.permissions for p in permissions):
            raise Forbidden("Permesso mancante: " + " o ".join(permissions), missing=[str(p) for p in permissions])
        if principal.is_system and not _scoped(principal, resource, mode):
            raise Forbidden(f"Scope mancante: system/{resource}.{mode}", missing=[f"system/{resource}.{mode}"])
        return principal

    return Depends(_check)


def access(resource: str, mode: str, *permissions: Permission):
    """`access_dependency` as a type: `principal: access("Patient", "read", Permission.person_read)`."""
    return Annotated[PrincipalT, access_dependency(resource, mode, *permissions)]


async def strict_parameters(request: Request) -> None:
    """Unknown search parameters are an error (`Prefer: handling=strict`, the default); with
    `Prefer: handling=lenient` they are ignored, as FHIR allows."""
    route = request.scope.get("route")
    if getattr(route, "dependant", None) is None:
        return
    if "handling=lenient" in request.headers.get("prefer", "").replace(" ", "").lower():
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
                    entry["searchParam"].append({"name": name, "type": SEARCH_PARAM_TYPES[name], **(
                        {"definition": CUSTOM_SEARCH_PARAMS[name]} if name in CUSTOM_SEARCH_PARAMS else {})})
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


def match(base: str, rtype: str, row_id: Any, resource: dict[str, Any]) -> dict[str, Any]:
    """One entry of a searchset: a resource the search found, at its full URL."""
    return {"fullUrl": f"{base}/{rtype}/{row_id}", "resource": resource, "search": {"mode": "match"}}


def date_params(*names: str):
    """A dependency declaring the date search parameters `names` (each repeatable: AND) and giving
    {name: Span} for those the request used; the route hands each window to its service."""

    async def _spans(**values: list[str] | None) -> dict[str, Span]:
        spans = {name: date_span(values[_ident(name)], name) for name in names}
        return {name: span for name, span in spans.items() if span is not None}

    _spans.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter(_ident(name), inspect.Parameter.KEYWORD_ONLY, annotation=list[str] | None,
                          default=Query(default=None, alias=name, max_length=60)) for name in names])
    return Depends(_spans)


def _ident(name: str) -> str:
    return name.lstrip("_").replace("-", "_")


def reference_param(value: str, resource_type: str, name: str) -> uuid.UUID:
    """A reference search parameter: `Type/<id>` or the bare id."""
    raw = value.removeprefix(f"{resource_type}/")
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise Invalid(name, f"atteso {resource_type}/<id> o l'identificativo") from None


def renamed(e: DomainError) -> DomainError:
    """The same refusal, with the service's names of the criteria turned into the FHIR parameters'."""
    e.errors = [{**x, "field": SEARCH_NAMES.get(x.get("field"), x.get("field"))} for x in e.errors]
    return e


def _page(kind: str, cursor: str | None) -> str | None:
    return cursor_codec.decode(kind, cursor, field="_cursor") if cursor else None



# ---------------------------------------------------------------------------------------------------- errors
ISSUE_CODES = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported",
               406: "not-supported", 409: "conflict", 410: "deleted", 412: "conflict", 413: "too-long",
               415: "not-supported", 422: "invalid", 429: "throttled",
               503: "transient"}  # the database restarting: try again after Retry-After
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
