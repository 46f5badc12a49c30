"""Protected-discharge steps that span contexts, owned by the discharge context because it takes the first step
(architecture: flows.py of the initiating context): the evaluation completed by a VMD of the assessment context,
and the discharge project, a progetto individualizzato of kind `discharge` of the care-plan context.

The evaluation is completed by the VMD's conclusion: the assessment context publishes `vmd.concluded`, and
`evaluation_from_vmd` (subscribers.py) moves the case whose VMD it is, with the setting the equipe recorded on the
case (`choose_setting`) or the one the outcome implies (eligibility.yaml `outcome_settings`); `no_need` ends the
case as not eligible. A VMD the case did not request (asked through the assessment context) is named by a worker
with `complete_evaluation`. Either way the evaluation's time is the VMD's conclusion, so the 48-hour count is the
equipe's own. A setting of `rsa` goes through `rsa_seam`: an urgent application of the waiting-list context.
"""
from __future__ import annotations

import uuid
from datetime import datetime

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
from domain.waiting_list import service as waiting_list
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
        previous = await assessment_queries.vmd_summary(session, case.vmd_id)
        # a VMD the equipe cancelled (withdrawn, admitted elsewhere...) leaves the evaluation to be asked again
        if previous is None or previous.state != VmdState.cancelled.value:
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


NO_NEED_NOTE = "Esito della VMD: nessun bisogno rilevato"


async def evaluation_from_vmd(session: AsyncSession, *, vmd_id: uuid.UUID, outcomes: list[str],
                              concluded_at: datetime, actor_id: uuid.UUID | None) -> DischargeCase | None:
    """System path, on `vmd.concluded` (trigger `protected_discharge`): the case that requested this VMD and still
    awaits it is evaluated at the VMD's conclusion. The setting is the one recorded on the case, else the one the
    outcome implies, else none yet (a worker records it, `choose_setting`, before the project). An outcome of
    `no_need` alone completes the evaluation and ends the case as not eligible. Idempotent: a case already moved
    is left alone (None)."""
    case = await service.awaiting_case_for_vmd(session, vmd_id)
    if case is None:
        return None
    implied = [service.config().outcome_settings[o] for o in outcomes if o in service.config().outcome_settings]
    setting = case.setting or (Setting(implied[0]) if implied else None)
    await service.evaluate(session, case, setting=setting, evaluated_at=concluded_at, vmd_id=vmd_id,
                           actor_id=actor_id)
    if list(outcomes) == [VmdOutcome.no_need.value]:
        await service.end_not_eligible(session, case, note=NO_NEED_NOTE, actor_id=actor_id)
    elif case.setting == Setting.rsa:
        await rsa_seam(session, case)
    return case


async def rsa_seam(session: AsyncSession, case: DischargeCase) -> None:
    """RSA chosen for a protected discharge: an urgent RSA waiting-list application for the person, from the VMD
    of the evaluation, through the waiting-list context (its urgency waits for the sub-ambito coordinator; the
    comune of residence, or the COT when no comune was notified, completes it from its queue). Called once the
    case is evaluated with setting `rsa` (by the VMD's conclusion, by a worker's evaluation, or by a setting
    changed to `rsa` after it), in the caller's transaction; idempotent (one open RSA application per person)."""
    # the entry keeps the discharge's id (its history says so): the case records nothing more
    await waiting_list.open_urgent_application(
        session, ambito_id=case.ambito_id, person_id=case.person_id, comune_id=case.comune_id,
        vmd_id=case.vmd_id, discharge_id=case.id, fallback_org_id=case.cot_org_id)


async def choose_setting(session: AsyncSession, *, principal: Principal, discharge_id: uuid.UUID,
                         setting: Setting | str, expected_version: int | None = None) -> DischargeCase:
    """The equipe's chosen setting recorded on the case (service.choose_setting); RSA chosen after the
    evaluation goes through the seam at once (before it, the evaluation does)."""
    case = await service.choose_setting(session, principal=principal, discharge_id=discharge_id, setting=setting,
                                        expected_version=expected_version)
    if case.setting == Setting.rsa and case.evaluated_at is not None:
        await rsa_seam(session, case)
    return case


async def formulate_project(session: AsyncSession, *, principal: Principal, discharge_id: uuid.UUID,
                            cartella_id: uuid.UUID, case_manager_id: uuid.UUID, title: str,
                            summary: str | None = None, expected_version: int | None = None) -> DischargeCase:
    """evaluated → project_formulated: a draft progetto individualizzato of kind `discharge` on the person's
    cartella, through the care-plan context (its own checks: the cartella the caller reaches, the case manager),
    linked to the VMD of the evaluation when its outcome proposed a project."""
    policy.ensure(principal, Permission.care_plan_write)
    case = await service.load_for_work(session, principal, discharge_id, expected_version)
    next_state(case.state, DischargeAction.formulate_project)
    if case.setting is None:
        raise Invalid("setting", "registrare prima il setting scelto dalla valutazione "
                                 "(POST /api/discharges/{id}/setting)")
    vmd = await assessment_queries.vmd_summary(session, case.vmd_id) if case.vmd_id else None
    linked = vmd.id if vmd is not None and VmdOutcome.project_proposed.value in vmd.outcomes else None
    plan = await care_plan.create_plan(session, principal=principal, data=CarePlanCreate(
        cartella_id=cartella_id, kind="discharge", vmd_id=linked, case_manager_id=case_manager_id,
        title=title, summary=summary))
    if plan.person_id != case.person_id:
        raise Invalid("cartella_id", "la cartella è di un'altra persona")
    return await service.attach_project(session, principal=principal, case=case, plan_id=plan.id)
