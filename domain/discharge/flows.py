"""Protected-discharge steps that span contexts, owned by the discharge context because it takes the first step
(architecture: flows.py of the initiating context): the evaluation completed by a VMD of the assessment context,
and the discharge project, a progetto individualizzato of kind `discharge` of the care-plan context.

The assessment context publishes no event when a VMD concludes: the COT (or the comune) records the evaluation
here, naming the concluded VMD; the evaluation's time is the VMD's conclusion, so the 48-hour count is the VMD's
own. A setting of `rsa` is where the waiting-list context (when it exists) will put the person on the urgent list:
`rsa_seam` is the one place to call it from.
"""
from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from domain.assessment import queries as assessment_queries
from domain.assessment import service as assessment
from domain.assessment.models import VmdOutcome, VmdState, VmdTrigger
from domain.care_plan import service as care_plan
from domain.discharge import policy, service
from domain.discharge.models import DischargeCase, Setting
from domain.discharge.states import DischargeAction, next_state
from domain.kernel.errors import Invalid
from domain.security.permissions import Permission
from domain.security.principal import Principal
from schemas.care_plan import CarePlanCreate

TRIGGER = VmdTrigger.protected_discharge


async def request_evaluation(session: AsyncSession, *, principal: Principal, discharge_id: uuid.UUID,
                             cartella_id: uuid.UUID, team_id: uuid.UUID, notes: str | None = None,
                             expected_version: int | None = None) -> DischargeCase:
    """The evaluation of a case awaiting the COT: a VMD with trigger `protected_discharge` on the person's
    cartella, through the assessment context (its own checks: the caller requests VMDs and reaches the cartella;
    the equipe). The case keeps the VMD; the 48-hour clock is the COT request's, not the VMD's own due date."""
    policy.ensure(principal, Permission.vmd_request)  # the comune requests VMDs; the COT does not
    case = await service.load_for_work(session, principal, discharge_id, expected_version)
    next_state(case.state, DischargeAction.evaluate)  # only a case awaiting its evaluation
    if case.vmd_id is not None:
        raise Invalid("vmd_id", "la valutazione di questa dimissione è già stata richiesta")
    vmd = await assessment.request_vmd(session, principal=principal, person_id=case.person_id,
                                       cartella_id=cartella_id, trigger=TRIGGER, team_id=team_id, notes=notes)
    case.vmd_id = vmd.id
    await service.write_history(session, case, "evaluation_requested", actor_id=principal.user_id,
                                detail={"vmd_id": str(vmd.id)})
    return case


async def complete_evaluation(session: AsyncSession, *, principal: Principal, discharge_id: uuid.UUID,
                              vmd_id: uuid.UUID, setting: Setting | str,
                              expected_version: int | None = None) -> DischargeCase:
    """The VMD (trigger `protected_discharge`, same person) is concluded: the case is evaluated at the VMD's
    conclusion time, with the chosen setting (422 `vmd_id` for a VMD of another person or not yet concluded)."""
    summary = await assessment_queries.vmd_summary(session, vmd_id)
    case = await service.load_for_work(session, principal, discharge_id, expected_version)
    next_state(case.state, DischargeAction.evaluate)  # 409 before anything else
    if summary is None or summary.person_id != case.person_id:
        raise Invalid("vmd_id", "VMD non trovata per questa persona")
    if case.vmd_id is not None and case.vmd_id != vmd_id:
        raise Invalid("vmd_id", "non è la VMD richiesta per questa dimissione")
    if summary.state != VmdState.concluded.value or summary.concluded_at is None:
        raise Invalid("vmd_id", "la VMD non è ancora conclusa")
    case = await service.record_evaluation(session, principal=principal, discharge_id=discharge_id,
                                           setting=setting, evaluated_at=summary.concluded_at, vmd_id=vmd_id)
    if case.setting == Setting.rsa:
        await rsa_seam(session, case)
    return case


async def rsa_seam(session: AsyncSession, case: DischargeCase) -> None:
    """RSA chosen: the urgent waiting-list application of the waiting_list context, when it exists (issue 10)."""
    return None


async def formulate_project(session: AsyncSession, *, principal: Principal, discharge_id: uuid.UUID,
                            cartella_id: uuid.UUID, case_manager_id: uuid.UUID, title: str,
                            summary: str | None = None, expected_version: int | None = None) -> DischargeCase:
    """evaluated → project_formulated: a draft progetto individualizzato of kind `discharge` on the person's
    cartella, through the care-plan context (its own checks: the cartella the caller reaches, the case manager),
    linked to the VMD of the evaluation when its outcome proposed a project."""
    policy.ensure(principal, Permission.care_plan_write)
    case = await service.load_for_work(session, principal, discharge_id, expected_version)
    next_state(case.state, DischargeAction.formulate_project)
    vmd = await assessment_queries.vmd_summary(session, case.vmd_id) if case.vmd_id else None
    linked = vmd.id if vmd is not None and VmdOutcome.project_proposed.value in vmd.outcomes else None
    plan = await care_plan.create_plan(session, principal=principal, data=CarePlanCreate(
        cartella_id=cartella_id, kind="discharge", vmd_id=linked, case_manager_id=case_manager_id,
        title=title, summary=summary))
    if plan.person_id != case.person_id:
        raise Invalid("cartella_id", "la cartella è di un'altra persona")
    return await service.attach_project(session, principal=principal, case=case, plan_id=plan.id)
