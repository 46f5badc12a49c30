"""Protected discharges: the ward's signal with the COT request (the 48-hour clock), the evaluation, the discharge,
the closure and the exits. The steps that call other contexts' services (the VMD, the discharge project) are in
flows.py.

Every change bumps `DischargeCase.version` and writes one `entity_history` row (entity_type "discharge_case").
Opening a case writes two work items: the COT's evaluation (due at the COT request + 48 hours) and the notice to
the comune of residence (its social workers' queue). Both doors, the REST route and the FHIR transaction of ASST,
call `open_signal`.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from sqlalchemy.ext.asyncio import AsyncSession

from domain.discharge import policy
from domain.discharge.models import DischargeCase, DischargeState, Service, Setting
from domain.discharge.states import OPEN_STATES, DischargeAction, next_state
from domain.kernel import calendar, clock, events, history, work_items
from domain.kernel.errors import Conflict, Forbidden, Invalid, NotFound
from domain.kernel.settings import ROOT
from domain.registry import persons as person_svc
from domain.registry.models import PersonStatus
from domain.security import audit
from domain.security.permissions import Permission
from domain.security.principal import Principal
from domain.territory import queries as territory

ENTITY = "discharge_case"
COT_KIND = "discharge.cot_evaluation"
COMUNE_KIND = "discharge.comune_notice"
AT_RISK_KIND = "discharge.at_risk"
OVERDUE_KIND = "discharge.overdue"
MONITORING_KIND = "discharge.monitoring"
RSA_KIND = "discharge.rsa_urgent_application"
CLOCK_KINDS = [COT_KIND, AT_RISK_KIND, OVERDUE_KIND]
CONFIG_FILE = ROOT / "schemas" / "reference" / "discharge" / "eligibility.yaml"


# ---------------------------------------------------------------- configuration (data)
@dataclass(frozen=True)
class Config:
    criteria: dict[str, str]
    evaluation_hours: float  # the D6 deadline, elapsed hours from the COT request; never moved by a calendar
    signalling_unit_types: tuple[str, ...]
    signalling_site_comune: str
    outcome_settings: dict[str, str]  # VMD outcome -> the setting it implies when none was recorded
    monitoring_days: int


@lru_cache
def config(path: Path = CONFIG_FILE) -> Config:
    doc = yaml.safe_load(path.read_text())
    return Config(criteria={c["code"]: c["label"] for c in doc["criteria"]},
                  evaluation_hours=float(doc["evaluation_hours"]),
                  signalling_unit_types=tuple(doc["signalling_unit_types"]),
                  signalling_site_comune=str(doc["signalling_site_comune"]),
                  outcome_settings={str(k): Setting(v).value for k, v in (doc.get("outcome_settings") or {}).items()},
                  monitoring_days=int(doc.get("monitoring_days", 30)))


# ---------------------------------------------------------------- shared helpers
async def write_history(session: AsyncSession, case: DischargeCase, action: str, *, actor_id: uuid.UUID | None,
                        detail: dict[str, Any] | None = None, bump: bool = True) -> None:
    await history.record_change(session, case, entity_type=ENTITY, action=action, actor_id=actor_id, detail=detail,
                                bump=bump, key="discharge")
    await events.publish_all(session, [_changed(case, action)])


def _version(case: DischargeCase, action: str, *, actor_id: uuid.UUID | None,
             detail: dict[str, Any] | None = None) -> tuple[dict[str, Any], tuple[str, dict[str, Any], str]]:
    """The history row and the event of the case's current version, taken before the case is written (a new
    case's two first versions go in one INSERT each)."""
    row = history.entry(case, entity_type=ENTITY, action=action, actor_id=actor_id, detail=detail, key="discharge")
    return row, _changed(case, action)


def _changed(case: DischargeCase, action: str) -> tuple[str, dict[str, Any], str]:
    # Every recorded change is published once (per version); a subscriber that cares about the state only (the
    # outbox to ASST) compares it with what it last saw.
    return "discharge.changed", {
        "discharge_id": str(case.id), "person_id": str(case.person_id), "state": str(case.state),
        "version": case.version, "action": action}, f"discharge.changed:{case.id}:{case.version}"


def audit_case(action: str, case: DischargeCase) -> None:
    audit.record(action=action, object_type=ENTITY, object_ids=[case.id], person_ids=[case.person_id])


async def load_for_work(session: AsyncSession, principal: Principal, discharge_id: uuid.UUID,
                        expected_version: int | None = None) -> DischargeCase:
    """A case the principal works (COT of the case, comune of residence: the full view), locked; 404 outside the
    row filter, 403 without discharge.manage or with the status view only."""
    policy.ensure(principal, Permission.discharge_manage)
    row = (await session.execute(
        sa.select(DischargeCase, policy.full_view(principal).label("full"))
        .where(DischargeCase.id == discharge_id, policy.row_filter(principal))
        .with_for_update(of=DischargeCase).execution_options(populate_existing=True))).one_or_none()
    if row is None:
        raise NotFound("Dimissione protetta non trovata.")
    case, full = row
    if not full:
        raise Forbidden("Il reparto segnalante vede lo stato della dimissione, non la lavora.")
    if expected_version is not None and expected_version != case.version:
        raise Conflict("La dimissione è stata modificata da un'altra operazione: ricaricare e riprovare.",
                       current_version=case.version)
    return case


def _hours(start: datetime, end: datetime) -> float:
    return round((end - start).total_seconds() / 3600, 2)


# ---------------------------------------------------------------- the signal (and the COT request)
async def _person(session: AsyncSession, principal: Principal, data, errors: list[tuple[str, str]]):
    """The person by id, or matched/created through the registry's de-duplication (never guessed)."""
    if (data.person_id is None) == (data.person is None):
        errors.append(("person_id", "indicare una persona registrata (person_id) oppure una nuova (person), "
                                    "non entrambe"))
        return None
    if data.person_id is not None:
        person = await person_svc.get_person(session, principal=principal, person_id=data.person_id)
        if person.status != PersonStatus.active or person.date_of_death is not None:
            errors.append(("person_id", "la persona non è attiva (deceduta o unita a un'altra)"))
        return person
    if errors:  # nothing is registered for a signal that will be refused
        return None
    try:
        return await person_svc.find_or_create_person(session, principal=principal, data=data.person,
                                                      source="discharge")
    except Invalid as e:
        raise Invalid.many([(f"person.{x['field']}", x["reason"]) for x in e.errors]) from None


async def _ward(session: AsyncSession, principal: Principal, ward_id: uuid.UUID,
                errors: list[tuple[str, str]]) -> None:
    if await territory.asst_unit(session, principal.ambito_id, config().signalling_unit_types, ward_id) is None:
        errors.append(("ward_org_id", "non è un reparto, un presidio o una struttura di cure intermedie dell'ASST "
                                      "nell'Ambito"))


def _signal_errors(principal: Principal, data, now: datetime) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    today = clock.today_rome()
    if data.admission_date > today:
        errors.append(("admission_date", "il ricovero non può essere nel futuro"))
    if data.expected_discharge_date < data.admission_date:
        errors.append(("expected_discharge_date", "la dimissione prevista precede il ricovero"))
    known = config().criteria
    if not data.criteria:
        errors.append(("criteria", "indicare almeno un criterio di eleggibilità (" + ", ".join(known) + ")"))
    for i, code in enumerate(data.criteria or []):
        if code not in known:
            errors.append((f"criteria.{i}", f"criterio sconosciuto (ammessi: {', '.join(known)})"))
    if not (data.clinician_summary or "").strip():
        errors.append(("clinician_summary", "descrivere i bisogni della persona"))
    if data.cot_requested_at is not None and data.cot_requested_at > now:
        errors.append(("cot_requested_at", "la richiesta alla COT non può essere nel futuro"))
    if data.requested_due_at is not None and data.requested_due_at < (data.cot_requested_at or now):
        errors.append(("requested_due_at", "la scadenza precede la richiesta alla COT"))
    return errors


async def _routing(session: AsyncSession, principal: Principal, person) -> tuple[Any, uuid.UUID | None, bool]:
    """(COT, comune notified, outside every Ambito). The COT of the domicile (fallback residence), as the PUA
    finds it; a person resident and domiciled outside the Ambito goes to the COT of the signalling site, marked
    out of Ambito; a homeless person without a fictitious residence to the COT and comune of the site."""
    amb = principal.ambito_id

    async def site() -> uuid.UUID | None:  # looked up only for the cases routed to the signalling site
        site_comune = await territory.org_by_code(session, config().signalling_site_comune)
        return site_comune.id if site_comune else None

    ours = await territory.comuni_of_ambito(session, [person.domicile_comune_id, person.residence_comune_id], amb)
    if person.homeless and not person.fictitious_residence:
        at = await site()
        return await territory.cot_for(session, ambito_id=amb, comune_id=at), at, False
    if not ours:
        return await territory.cot_for(session, ambito_id=amb, comune_id=await site()), None, True
    residence = person.residence_comune_id if person.residence_comune_id in ours else ours[0]
    domicile = person.domicile_comune_id if person.domicile_comune_id in ours else None
    return await territory.cot_for(session, ambito_id=amb, comune_id=domicile or person.residence_comune_id), \
        residence, False


async def open_signal(session: AsyncSession, *, principal: Principal, data) -> DischargeCase:
    """The ward's signal and, in the same step, the request to the COT (signalled → cot_requested). Everything is
    checked before anything is written; a new person goes through the registry's de-duplication."""
    policy.ensure(principal, Permission.discharge_signal)
    now = clock.now()
    errors = _signal_errors(principal, data, now)
    await _ward(session, principal, data.ward_org_id, errors)
    if data.person is not None and Permission.person_create not in principal.permissions:
        errors.append(("person", "registrare una nuova persona richiede il permesso person.create"))
    person = await _person(session, principal, data, errors)
    if person is not None and "over65_not_self_sufficient" in (data.criteria or []):
        age = calendar.age_on(person.birth_date, data.admission_date)
        if age is not None and age <= 65:
            errors.append((f"criteria.{data.criteria.index('over65_not_self_sufficient')}",
                           f"la persona ha {age} anni: il criterio chiede più di 65 anni"))
    if "homeless" in (data.criteria or []) and person is not None and not person.homeless:
        errors.append((f"criteria.{data.criteria.index('homeless')}",
                       "in anagrafe la persona non risulta senza dimora: aggiornare prima l'anagrafe"))
    if errors:
        raise Invalid.many(errors)
    cot, comune_id, outside = await _routing(session, principal, person)
    case = DischargeCase(
        ambito_id=principal.ambito_id, person_id=person.id, state=DischargeState.signalled,
        ward_org_id=data.ward_org_id, opened_by=principal.user_id, signalled_at=now,
        admission_date=data.admission_date, expected_discharge_date=data.expected_discharge_date,
        criteria=list(dict.fromkeys(data.criteria)), social_risk=bool(data.social_risk),
        clinician_summary=data.clinician_summary.strip(), requested_due_at=data.requested_due_at, version=1)
    # The signal (version 1) and the request to the COT (version 2) are taken in memory, then written once each:
    # one INSERT of the case in its second state, one of its two history rows, one of their events.
    signalled = _version(case, "signalled", actor_id=principal.user_id)
    items = _request_cot(case, cot=cot, comune_id=comune_id, outside=outside, at=data.cot_requested_at or now)
    requested = _version(case, "cot_requested", actor_id=principal.user_id,
                         detail={"cot_org_id": str(cot.id), "out_of_ambito": outside})
    session.add(case)
    await session.flush()
    await history.write(session, [signalled[0], requested[0]])
    await events.publish_all(session, [signalled[1], requested[1]])
    await work_items.create_many(session, items)
    audit_case("create", case)
    return case


def _request_cot(case: DischargeCase, *, cot, comune_id, outside: bool, at: datetime) -> list[dict[str, Any]]:
    """signalled → cot_requested on the case in memory (a new version); the work items it raises: the COT's
    evaluation within 48 hours and, for a resident, the comune's part in it."""
    case.state = next_state(case.state, DischargeAction.request_cot)
    case.version += 1
    case.cot_org_id, case.comune_id, case.out_of_ambito = cot.id, comune_id, outside
    case.cot_requested_at = at
    case.evaluation_due_at = at + timedelta(hours=config().evaluation_hours)
    title = "Dimissione protetta: valutazione entro 48 ore"
    if outside:
        title = "Dimissione protetta fuori Ambito: presa in carico e passaggio di consegne"
    common = {"source_type": ENTITY, "source_id": case.id, "ambito_id": case.ambito_id,
              "due_at": case.evaluation_due_at, "person_id": case.person_id}
    items = [{"kind": COT_KIND, "title": title, "assignee_org_id": cot.id, "dedup_key": f"{COT_KIND}:{case.id}",
              "data": {"discharge_id": str(case.id), "out_of_ambito": outside}, **common}]
    if comune_id is not None:
        items.append({"kind": COMUNE_KIND, "title": "Dimissione protetta di un residente: partecipare alla valutazione",
                      "assignee_org_id": comune_id, "dedup_key": f"{COMUNE_KIND}:{case.id}",
                      "data": {"discharge_id": str(case.id)}, **common})
    return items


# ---------------------------------------------------------------- evaluation, discharge, closure
async def record_evaluation(session: AsyncSession, *, principal: Principal, discharge_id: uuid.UUID,
                            setting: Setting | str | None, evaluated_at: datetime, vmd_id: uuid.UUID | None = None,
                            expected_version: int | None = None) -> DischargeCase:
    """cot_requested → evaluated, by a worker of the case: the evaluation completed at `evaluated_at` (the VMD's
    conclusion, flows.py), the elapsed hours from the COT request (D6), the chosen setting."""
    case = await load_for_work(session, principal, discharge_id, expected_version)
    next_state(case.state, DischargeAction.evaluate)
    chosen = _setting(setting) if setting is not None else None
    await evaluate(session, case, setting=chosen, evaluated_at=evaluated_at, vmd_id=vmd_id,
                   actor_id=principal.user_id)
    return case


def _setting(value: Setting | str) -> Setting:
    try:
        return Setting(value)
    except ValueError:
        raise Invalid("setting", f"setting sconosciuto (ammessi: {', '.join(s.value for s in Setting)})") from None


async def evaluate(session: AsyncSession, case: DischargeCase, *, setting: Setting | None, evaluated_at: datetime,
                   vmd_id: uuid.UUID | None, actor_id: uuid.UUID | None) -> DischargeCase:
    """The move itself, on a case already loaded and locked (a worker's call, or the VMD's conclusion event with
    no principal). A setting recorded earlier (`choose_setting`) is kept unless another one is given. Closes the
    COT's clock work items."""
    target = next_state(case.state, DischargeAction.evaluate)
    if evaluated_at < case.cot_requested_at:
        raise Invalid("evaluated_at", "la valutazione precede la richiesta alla COT")
    now = clock.now()
    case.state = target
    case.vmd_id = vmd_id or case.vmd_id
    case.evaluated_at = evaluated_at
    case.evaluation_hours = _hours(case.cot_requested_at, evaluated_at)
    if setting is not None and setting != case.setting:
        case.setting, case.setting_at = setting, now
    await write_history(session, case, "evaluated", actor_id=actor_id, detail={
        "setting": str(case.setting) if case.setting else None, "hours": case.evaluation_hours,
        "vmd_id": str(case.vmd_id) if case.vmd_id else None})
    await work_items.close_for_source(session, source_type=ENTITY, source_id=case.id, kinds=CLOCK_KINDS, done=True,
                                      actor_id=actor_id)
    audit_case("update", case)
    return case


async def choose_setting(session: AsyncSession, *, principal: Principal, discharge_id: uuid.UUID,
                         setting: Setting | str, expected_version: int | None = None) -> DischargeCase:
    """The setting the equipe chose, recorded by a worker of the case while the evaluation is pending (the VMD's
    conclusion then completes the evaluation with it) or after it, before the project. Not a move."""
    case = await load_for_work(session, principal, discharge_id, expected_version)
    next_state(case.state, DischargeAction.choose_setting)
    chosen = _setting(setting)
    case.setting, case.setting_at = chosen, clock.now()
    await write_history(session, case, "setting_chosen", actor_id=principal.user_id,
                        detail={"setting": chosen.value})
    audit_case("update", case)
    return case


async def awaiting_case_for_vmd(session: AsyncSession, vmd_id: uuid.UUID) -> DischargeCase | None:
    """System path: the case whose evaluation is the VMD `vmd_id` (linked by `evaluation-request`), locked, when
    it still awaits that evaluation; None otherwise (not ours, already evaluated, exited)."""
    return (await session.execute(
        sa.select(DischargeCase).where(DischargeCase.vmd_id == vmd_id,
                                       DischargeCase.state == DischargeState.cot_requested.value)
        .with_for_update().execution_options(populate_existing=True))).scalar_one_or_none()


async def attach_project(session: AsyncSession, *, principal: Principal, case: DischargeCase,
                         plan_id: uuid.UUID) -> DischargeCase:
    """evaluated → project_formulated (D3 numerator), on a case already loaded for work (flows.py)."""
    case.state = next_state(case.state, DischargeAction.formulate_project)
    case.plan_id, case.project_at = plan_id, clock.now()
    await write_history(session, case, "project_formulated", actor_id=principal.user_id,
                        detail={"plan_id": str(plan_id)})
    audit_case("update", case)
    return case


async def discharge(session: AsyncSession, *, principal: Principal, discharge_id: uuid.UUID,
                    services: list[Service | str], expected_version: int | None = None) -> DischargeCase:
    """project_formulated → discharged, with the services activated (D4: SAD and ADI; D5: SAD only)."""
    case = await load_for_work(session, principal, discharge_id, expected_version)
    target = next_state(case.state, DischargeAction.discharge)
    chosen: list[str] = []
    for i, s in enumerate(services):
        try:
            code = Service(s).value
        except ValueError:
            raise Invalid(f"services.{i}", "servizio sconosciuto (ammessi: "
                                           f"{', '.join(x.value for x in Service)})") from None
        if code not in chosen:
            chosen.append(code)
    now = clock.now()
    case.state = target
    case.services, case.services_at, case.discharged_at = chosen, now, now
    await write_history(session, case, "discharged", actor_id=principal.user_id, detail={"services": chosen})
    audit_case("update", case)
    return case


async def start_monitoring(session: AsyncSession, *, principal: Principal, discharge_id: uuid.UUID,
                           expected_version: int | None = None) -> DischargeCase:
    """discharged → monitoring: the follow-up at home, with a check in the queue of the comune (the COT's when no
    comune was notified) at the end of the monitoring period (30 days from the discharge: re-admissions)."""
    case = await load_for_work(session, principal, discharge_id, expected_version)
    case.state = next_state(case.state, DischargeAction.start_monitoring)
    case.monitoring_at = clock.now()
    await write_history(session, case, "monitoring", actor_id=principal.user_id)
    await work_items.create(
        session, kind=MONITORING_KIND, title="Dimissione protetta: verifica del monitoraggio dopo la dimissione",
        source_type=ENTITY, source_id=case.id, ambito_id=case.ambito_id,
        assignee_org_id=case.comune_id or case.cot_org_id, person_id=case.person_id,
        due_at=(case.discharged_at or case.monitoring_at) + timedelta(days=config().monitoring_days),
        dedup_key=f"{MONITORING_KIND}:{case.id}", data={"discharge_id": str(case.id)})
    audit_case("update", case)
    return case


async def close(session: AsyncSession, *, principal: Principal, discharge_id: uuid.UUID,
                expected_version: int | None = None) -> DischargeCase:
    """monitoring → closed, at the end of the follow-up."""
    case = await load_for_work(session, principal, discharge_id, expected_version)
    case.state = next_state(case.state, DischargeAction.close)
    case.closed_at = clock.now()
    await write_history(session, case, "closed", actor_id=principal.user_id)
    await work_items.close_for_source(session, source_type=ENTITY, source_id=case.id, done=True,
                                      actor_id=principal.user_id)
    audit_case("update", case)
    return case


async def cancel_signal(session: AsyncSession, *, principal: Principal, discharge_id: uuid.UUID, reason: str,
                        expected_version: int | None = None) -> DischargeCase:
    """A signal entered by mistake or twice, withdrawn before the evaluation, with a reason: by the signalling
    ward (its staff see the status only, but the signal is theirs) or by a worker of the case. It leaves every
    indicator (docs/indicators.md); the open work items are cancelled."""
    case = await _load_for_cancel(session, principal, discharge_id, expected_version)
    target = next_state(case.state, DischargeAction.cancel)
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("reason", "indicare il motivo dell'annullamento")
    case.state = target
    case.exit_reason, case.exit_note, case.closed_at = "cancelled", reason[:500], clock.now()
    await write_history(session, case, "cancelled", actor_id=principal.user_id, detail={"reason": reason[:500]})
    await work_items.close_for_source(session, source_type=ENTITY, source_id=case.id)
    audit_case("update", case)
    return case


async def _load_for_cancel(session: AsyncSession, principal: Principal, discharge_id: uuid.UUID,
                           expected_version: int | None) -> DischargeCase:
    """A worker's case (load_for_work) or, for ward staff, a signal of their ward; 403 without either
    permission."""
    manages = Permission.discharge_manage in principal.permissions
    signals = Permission.discharge_signal in principal.permissions
    if not (manages or signals):
        policy.ensure(principal, Permission.discharge_signal)
    if manages and not signals:
        return await load_for_work(session, principal, discharge_id, expected_version)
    if manages and (await session.execute(sa.select(DischargeCase.id).where(
            DischargeCase.id == discharge_id, policy.full_view(principal)))).first() is not None:
        return await load_for_work(session, principal, discharge_id, expected_version)
    case = (await session.execute(
        sa.select(DischargeCase).where(DischargeCase.id == discharge_id, policy.signaller_filter(principal))
        .with_for_update().execution_options(populate_existing=True))).scalar_one_or_none()
    if case is None:
        raise NotFound("Dimissione protetta non trovata.")
    if expected_version is not None and expected_version != case.version:
        raise Conflict("La dimissione è stata modificata da un'altra operazione: ricaricare e riprovare.",
                       current_version=case.version)
    return case


EXITS = {DischargeAction.not_eligible: "not_eligible",
         DischargeAction.discharge_without_project: "discharged_without_project"}


async def exit_case(session: AsyncSession, *, principal: Principal, discharge_id: uuid.UUID,
                    action: DischargeAction | str, reason: str, expected_version: int | None = None
                    ) -> DischargeCase:
    """Not eligible, or discharged without a project: with a reason; the open work items are cancelled."""
    act = DischargeAction(action)
    if act not in EXITS:
        raise Invalid("action", "uscita sconosciuta (ammesse: not_eligible, discharge_without_project)")
    case = await load_for_work(session, principal, discharge_id, expected_version)
    target = next_state(case.state, act)
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("reason", "indicare il motivo")
    now = clock.now()
    case.state = target
    case.exit_reason, case.exit_note, case.closed_at = EXITS[act], reason[:500], now
    if act == DischargeAction.discharge_without_project:
        case.discharged_at = now
    await write_history(session, case, target.value, actor_id=principal.user_id)
    await work_items.close_for_source(session, source_type=ENTITY, source_id=case.id)
    audit_case("update", case)
    return case


async def end_not_eligible(session: AsyncSession, case: DischargeCase, *, note: str,
                           actor_id: uuid.UUID | None) -> DischargeCase:
    """System path: the equipe found no need (VMD outcome `no_need`): the case ends as not eligible."""
    case.state = next_state(case.state, DischargeAction.not_eligible)
    case.exit_reason, case.exit_note, case.closed_at = "not_eligible", note[:500], clock.now()
    await write_history(session, case, "not_eligible", actor_id=actor_id, detail={"note": note[:500]})
    await work_items.close_for_source(session, source_type=ENTITY, source_id=case.id)
    return case


async def close_open_for_death(session: AsyncSession, *, person_id: uuid.UUID) -> int:
    """System path (no principal), on `person.died`: every open case of the person ends as deceased. Idempotent."""
    rows = list((await session.execute(
        sa.select(DischargeCase).where(DischargeCase.person_id == person_id,
                                       DischargeCase.state.in_([s.value for s in OPEN_STATES]))
        .order_by(DischargeCase.id).with_for_update().execution_options(populate_existing=True))).scalars())
    now = clock.now()
    for case in rows:
        case.state = next_state(case.state, DischargeAction.die)
        case.exit_reason, case.closed_at = "deceased", now
        await write_history(session, case, "deceased", actor_id=None)
        await work_items.close_for_source(session, source_type=ENTITY, source_id=case.id)
    return len(rows)
