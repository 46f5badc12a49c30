"""FHIR façade: the progetto individualizzato (CarePlan with its Goals), the assessment instruments (Questionnaire)
and the answers recorded with them in a person's VMDs (QuestionnaireResponse)."""
from __future__ import annotations

import uuid

from fastapi import Query, Request

from api.deps import Session
from api.routes.fhir import (
    DEFAULT_COUNT,
    FhirResponse,
    _page,
    access,
    base_url,
    fhir_router,
    match,
    reference_param,
    searchset,
)
from domain.assessment import instruments
from domain.assessment import queries as vmd_queries
from domain.care_plan import policy as plan_policy
from domain.care_plan import queries as plan_queries
from domain.kernel import cursor as cursor_codec
from domain.kernel.errors import Invalid, NotFound
from domain.security.permissions import Permission
from integrations.fhir import care_plan, questionnaire, r4


# ---------------------------------------------------------------------------------------------------- CarePlan
@fhir_router.get("/CarePlan/{plan_id}", name="fhir:CarePlan:read")
async def read_care_plan(plan_id: uuid.UUID, session: Session,
                         principal: access("CarePlan", "read", Permission.care_plan_read)) -> FhirResponse:
    bundle = await plan_queries.get_plan(session=session, principal=principal, plan_id=plan_id)
    return FhirResponse(r4.dump(care_plan.to_fhir(plan_policy.plan_view_for(principal, bundle))))


CARE_PLAN_CURSOR = "fhir.care_plan"
CARE_PLAN_STATES: dict[str, list[str]] = {}  # FHIR status → our plan states (the search's `status`)
for _state, _status in care_plan.STATUS.items():
    CARE_PLAN_STATES.setdefault(_status, []).append(_state)


@fhir_router.get("/CarePlan", name="fhir:CarePlan:search-type")
async def search_care_plans(request: Request, session: Session,
                            principal: access("CarePlan", "read", Permission.care_plan_read),
                            patient_ref: str = Query(alias="patient", max_length=200),
                            status: str | None = Query(default=None, max_length=40),
                            count: int = Query(default=DEFAULT_COUNT, alias="_count", ge=1, le=plan_queries.MAX_PAGE),
                            cursor: str | None = Query(default=None, alias="_cursor", max_length=1000)
                            ) -> FhirResponse:
    """The progetti of the person's cartelle the caller reaches, oldest first, each as its read shows it."""
    person_id = reference_param(patient_ref, "Patient", "patient")
    if status is not None and status not in CARE_PLAN_STATES:
        raise Invalid("status", "valori gestiti: " + ", ".join(CARE_PLAN_STATES))
    after = _page(CARE_PLAN_CURSOR, cursor)
    bundles, nxt = await plan_queries.list_for_person(
        session, principal=principal, person_id=person_id, limit=count,
        states=CARE_PLAN_STATES[status] if status else None, cursor=uuid.UUID(after) if after else None)
    base = base_url(request)
    entries = [match(base, "CarePlan", b.plan.id, r4.dump(care_plan.to_fhir(plan_policy.plan_view_for(principal, b))))
               for b in bundles]
    return FhirResponse(searchset(request, entries, cursor_codec.encode(CARE_PLAN_CURSOR, str(nxt)) if nxt else None,
                                  None))


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
        entries.append(match(base, "Questionnaire", questionnaire.questionnaire_id(d.code, d.version),
                             r4.dump(questionnaire.to_fhir(d))))
    return FhirResponse(searchset(request, entries, None, None))




@fhir_router.get("/QuestionnaireResponse", name="fhir:QuestionnaireResponse:search-type")
async def search_questionnaire_responses(
        request: Request, session: Session,
        principal: access("QuestionnaireResponse", "read", Permission.vmd_read),
        patient_ref: str = Query(alias="patient", max_length=200)) -> FhirResponse:
    """The instruments filled in the person's VMDs (the VMDs of the cartelle the caller reaches, newest first),
    each answered as the VMD shows it to the caller: a masked response carries its scores, not its answers."""
    person_id = reference_param(patient_ref, "Patient", "patient")
    vmds, _, _ = await vmd_queries.list_for_person(session, principal=principal, person_id=person_id,
                                                   limit=vmd_queries.MAX_PAGE)
    base = base_url(request)
    entries = []
    for v in vmds:
        view = await vmd_queries.get_vmd(session, principal=principal, vmd_id=v.id)
        entries += [match(base, "QuestionnaireResponse", rv.response.id,
                           r4.dump(questionnaire.response_to_fhir(rv.response, masked=rv.masked)))
                     for rv in view.responses]
    return FhirResponse(searchset(request, entries, None, None))
