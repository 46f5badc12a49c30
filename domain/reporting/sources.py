"""The sources an indicator definition may count over: each is one read-only `*_facts()` projection of the context
that records the facts (never its tables), joined to the person (de-duplicated key, comune of residence) and the
territory (sub-ambito), with the vocabulary of events and conditions the YAML definitions use
(schemas/reference/indicators/). The counting rules are in docs/indicators.md."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from domain.assessment import queries as assessment_queries
from domain.assessment.models import VMD_TRIGGER_LABELS, VmdState, VmdTrigger
from domain.care_plan import queries as care_plan_queries
from domain.discharge import queries as discharge_queries
from domain.kernel.clock import ROME
from domain.kernel.settings import get_settings
from domain.measures import queries as measures_queries
from domain.pua import queries as pua_queries
from domain.pua.models import AccessState
from domain.pua.states import VMD_STATES
from domain.registry import queries as registry_queries
from domain.registry.models import AREA_LABELS  # the labels of an enum, not a table
from domain.services import queries as services_queries
from domain.services.models import ActivationState
from domain.territory import queries as territory
from domain.waiting_list import queries as waiting_list_queries
from domain.waiting_list.models import UrgencyState

ROME_NAME = str(ROME)
# The VMDs that P4 and V1 leave out unless their definition says otherwise (`params: {excluded_triggers: [...]}`):
# protected-discharge evaluations are counted by D6/D7 (issue 14: "P4 and V1 count VMDs other than
# protected-discharge evaluations (configurable)").
EXCLUDED_VMD_TRIGGERS = (VmdTrigger.protected_discharge.value,)
PATH_STATES = (AccessState.oriented.value, AccessState.referred_vmd.value, AccessState.referred_cot.value,
               AccessState.referred_cot_vmd.value)
# Settings other than home that, with a discharge, make a D7 pathway (docs/indicators.md D7).
FACILITY_SETTINGS = ("cure_intermedie", "rsa", "other_facility", "shelter")

Limit = timedelta | None


@dataclass(frozen=True)
class Context:
    """What a condition may depend on besides the row: the definition's limit and parameters."""

    limit: Limit = None
    params: dict[str, Any] | None = None

    def param(self, name: str, default: Any) -> Any:
        return (self.params or {}).get(name, default)


Condition = Callable[[Context], Any]


@dataclass(frozen=True)
class Event:
    expr: Any
    is_date: bool = False  # a calendar date (Europe/Rome) rather than an instant


@dataclass(frozen=True)
class Source:
    name: str
    from_: Any
    ambito: Any
    comune: Any
    person: Any
    dims: dict[str, Any]  # groupings beyond the territory: the cartella's area, the UDO type, the urgency
    population: list[Any]
    events: dict[str, Event]
    conditions: dict[str, Condition]
    durations: dict[str, Any] = field(default_factory=dict)  # named durations in days, for waiting times


def _rome_date(ts: Any) -> Any:
    return sa.cast(sa.func.timezone(ROME_NAME, ts), sa.Date)


def _about_person(from_: Any, person_id: Any) -> tuple[Any, Any, Any]:
    """The facts joined to the person they are about (a left join: a fact counts without it): the joined FROM, the
    person's projection (residence, birth date) and its de-duplicated key (merged persons count once)."""
    p = registry_queries.person_facts()
    return from_.outerjoin(p, p.c.id == person_id), p, sa.func.coalesce(p.c.person_key, person_id)


def _pua_access() -> Source:
    ar = pua_queries.access_facts()
    c = ar.c
    from_, p, person = _about_person(ar, c.person_id)
    return Source(
        name="pua_access", from_=from_, ambito=c.ambito_id,
        # the residence at the start event, as recorded (the current one for a row from before 0049 without it)
        comune=sa.func.coalesce(c.residence_comune_id, p.c.residence_comune_id), person=person, dims={},
        # a request cancelled as a registration error (entered twice, wrong person) never happened; a withdrawn
        # one stays (docs/decisions/reporting.md §3)
        population=[c.state != AccessState.cancelled.value],
        events={"registered_at": Event(c.registered_at), "first_level_at": Event(c.first_level_at),
                "closed_at": Event(sa.func.coalesce(c.closed_at, c.first_level_at))},
        conditions={
            "first_level_done": lambda _: c.first_level_at.is_not(None),
            "path_activated": lambda _: c.state.in_(PATH_STATES),
            "referred_vmd": lambda _: c.state.in_([s.value for s in VMD_STATES]),
        })


def _vmd() -> Source:
    v = assessment_queries.vmd_facts()
    ca = registry_queries.cartella_facts()
    plan = care_plan_queries.plan_facts()
    c = v.c
    from_, p, person = _about_person(v.outerjoin(ca, ca.c.id == c.cartella_id), ca.c.person_id)
    # the first progetto individualizzato agreed on the VMD's cartella from the VMD's request on (AU-PI)
    project_agreed_at = sa.select(sa.func.min(plan.c.agreed_at)).where(
        plan.c.cartella_id == c.cartella_id, plan.c.agreed_at >= c.requested_at).scalar_subquery()
    return Source(
        name="vmd", from_=from_,
        ambito=c.ambito_id, comune=sa.func.coalesce(c.residence_comune_id, p.c.residence_comune_id),
        # the trigger is the type of service requested (V2)
        person=person, dims={"area": ca.c.area, "trigger": c.trigger},
        population=[],
        events={"requested_at": Event(c.requested_at), "concluded_at": Event(c.concluded_at),
                "project_agreed_at": Event(project_agreed_at)},
        conditions={
            "not_discharge_evaluation": lambda ctx: c.trigger.not_in(
                list(ctx.param("excluded_triggers", EXCLUDED_VMD_TRIGGERS)) or [""]),
            # the VMDs of one pathway, by their trigger (`params: {triggers: [asd]}`: the autism pathway)
            "trigger_in": lambda ctx: c.trigger.in_(list(ctx.param("triggers", [])) or [""]),
            "concluded": lambda _: sa.and_(c.state == VmdState.concluded.value, c.concluded_at.is_not(None)),
            "integrated": lambda _: sa.and_(c.state == VmdState.concluded.value, c.integrated.is_(True)),
            "project_agreed": lambda _: project_agreed_at.is_not(None),
        })


def _care_plan() -> Source:
    plan = care_plan_queries.plan_facts()
    ca = registry_queries.cartella_facts()
    v = assessment_queries.vmd_facts()
    earlier = care_plan_queries.plan_facts().alias("earlier_plan")
    c = plan.c
    from_, p, person = _about_person(plan.join(ca, ca.c.id == c.cartella_id), c.person_id)
    return Source(
        name="care_plan", from_=from_,
        ambito=ca.c.ambito_id, comune=sa.func.coalesce(p.c.residence_comune_id, ca.c.owning_comune_id),
        person=person, dims={"area": ca.c.area}, population=[],
        events={"agreed_at": Event(c.agreed_at), "activated_at": Event(c.activated_at)},
        conditions={
            "area_in": lambda ctx: ca.c.area.in_(list(ctx.param("areas", [])) or [""]),
            "agreed": lambda _: c.agreed_at.is_not(None),
            # a VMD of the cartella concluded by the time the plan was agreed
            "preceded_by_vmd": lambda _: sa.exists(sa.select(1).where(
                v.c.cartella_id == c.cartella_id, v.c.concluded_at.is_not(None),
                v.c.concluded_at <= c.agreed_at)),
            # the first progetto agreed on the cartella: the taking in charge (presa in carico) of the case
            "first_of_cartella": lambda _: ~sa.exists(sa.select(1).where(
                earlier.c.cartella_id == c.cartella_id, earlier.c.agreed_at < c.agreed_at)),
        },
        # calendar days (Europe/Rome) from the cartella's opening to the plan's agreement: the time to take the
        # case in charge when the plan is the cartella's first
        durations={"cartella_to_agreement": _rome_date(c.agreed_at) - _rome_date(ca.c.opened_at)})


def _discharge() -> Source:
    d = discharge_queries.discharge_facts()
    c = d.c
    from_, _, person = _about_person(d, c.person_id)
    project = c.project_at.is_not(None)
    discharged_with_project = sa.and_(project, c.discharged_at.is_not(None))
    return Source(
        name="discharge", from_=from_, ambito=c.ambito_id,
        # the comune recorded on the case at the signal (residence, or the signalling site for a homeless person)
        comune=c.comune_id, person=person, dims={},
        population=[c.exit_reason.is_distinct_from("cancelled"), c.out_of_ambito.is_(False)],
        events={name: Event(getattr(c, name)) for name in (
            "signalled_at", "cot_requested_at", "evaluated_at", "project_at", "discharged_at")},
        conditions={
            "social_risk": lambda _: c.social_risk.is_(True),
            "project": lambda _: project,
            "sad_and_adi": lambda _: sa.and_(project, c.services.contains(["sad", "adi"])),
            "sad_only": lambda _: sa.and_(project, c.services.contains(["sad"]),
                                          sa.not_(c.services.contains(["adi"]))),
            "not_died_before_evaluation": lambda _: sa.not_(sa.and_(c.exit_reason == "deceased",
                                                                    c.evaluated_at.is_(None))),
            # elapsed time between two instants: ≤ 48 h 00 min is on time, whatever the DST change in between
            "evaluated_within_limit": lambda ctx: sa.and_(
                c.evaluated_at.is_not(None), (c.evaluated_at - c.cot_requested_at) <= ctx.limit),
            "evaluated": lambda _: c.evaluated_at.is_not(None),
            "pathway_activated": lambda _: sa.or_(
                discharged_with_project,
                sa.and_(c.setting.in_(FACILITY_SETTINGS), c.discharged_at.is_not(None))),
            "needed": lambda _: c.exit_reason.is_distinct_from("not_eligible"),
            "discharged_with_project": lambda _: discharged_with_project,
        })


def _waiting_list() -> Source:
    e = waiting_list_queries.waiting_list_facts()
    plan = care_plan_queries.plan_facts()
    c = e.c
    from_, _, person = _about_person(e.outerjoin(plan, plan.c.id == c.temporary_plan_id), c.person_id)
    return Source(
        name="waiting_list", from_=from_, ambito=c.ambito_id, comune=c.comune_id, person=person,
        # urgent = the urgency the sub-ambito coordinator confirmed; raised or rejected ones waited as ordinary
        dims={"udo_type": c.udo_type,
              "urgency": sa.case((c.urgency == UrgencyState.confirmed.value, "urgent"), else_="ordinary")},
        population=[],
        events={"applied_at": Event(c.applied_at), "application_date": Event(c.application_date, is_date=True),
                "listed_at": Event(c.listed_at), "assessed_at": Event(c.assessed_at),
                "plan_agreed_at": Event(plan.c.agreed_at), "plan_activated_at": Event(plan.c.activated_at),
                "admitted_at": Event(c.admitted_at)},
        conditions={
            "assessment_requested": lambda _: c.assessment_requested_at.is_not(None),
            "listed": lambda _: c.listed_at.is_not(None),
            # Europe/Rome calendar dates: from the application date to the day the assessment concluded, ≤ 30
            "assessed_within_limit": lambda ctx: sa.and_(
                c.assessed_at.is_not(None), _rome_date(c.assessed_at) - c.application_date <= ctx.limit.days),
            "plan_agreed": lambda _: plan.c.agreed_at.is_not(None),
            "plan_activated": lambda _: plan.c.activated_at.is_not(None),
            "admitted": lambda _: c.admitted_at.is_not(None),
        },
        # calendar days (Europe/Rome) from the application date to the admission: the wait for a place
        durations={"application_to_admission": _rome_date(c.admitted_at) - c.application_date})


def _cartella() -> Source:
    ca = registry_queries.cartella_facts()
    c = ca.c
    from_, _, person = _about_person(ca, c.person_id)
    return Source(
        name="cartella", from_=from_, ambito=c.ambito_id,
        # the comune that holds the record: the residence when it was opened (else the domicile, else the
        # operator's comune), moved by a transfer; it needs no look-up of the person's current residence, which
        # on a million persons was most of the report's time (docs/indicators.md, open cartelle)
        comune=c.owning_comune_id, person=person, dims={"area": c.area}, population=[],
        events={"opened_at": Event(c.opened_at), "closed_at": Event(c.closed_at)},
        conditions={"open_at_period_end": lambda _: sa.true()})  # the snapshot rule is in indicators.snapshot


def _services() -> Source:
    a = services_queries.activation_facts()
    c = a.c
    from_, _, person = _about_person(a, c.person_id)
    return Source(
        name="services", from_=from_, ambito=c.ambito_id, comune=c.comune_id, person=person, dims={},
        population=[],
        events={"requested_at": Event(c.requested_at), "ended_at": Event(c.ended_at)},
        conditions={
            "sad_ended": lambda _: sa.and_(c.service_type == "sad", c.state == ActivationState.ended.value),
            "run_in_system": lambda _: c.run_in_system.is_(True),
        })


def _measures() -> Source:
    m = measures_queries.application_facts()
    c = m.c
    from_, p, person = _about_person(m, c.person_id)
    return Source(
        name="measures", from_=from_, ambito=c.ambito_id, comune=c.comune_id, person=person, dims={},
        population=[],
        events={"applied_at": Event(c.applied_at), "application_date": Event(c.application_date, is_date=True),
                "activated_at": Event(c.activated_at)},
        conditions={
            "measure_in": lambda ctx: c.measure_code.in_(list(ctx.param("measures", [])) or [""]),
            # under 18 on the application date (the birthday of the 18th year is adult)
            "minor_at_application": lambda _: sa.and_(
                p.c.birth_date.is_not(None),
                c.application_date < p.c.birth_date + sa.text("interval '18 years'")),
            "activated": lambda _: c.activated_at.is_not(None),
        })


SOURCES: dict[str, Callable[[], Source]] = {
    "pua_access": _pua_access, "vmd": _vmd, "discharge": _discharge, "waiting_list": _waiting_list,
    "cartella": _cartella, "services": _services, "measures": _measures, "care_plan": _care_plan,
}


def dimension_values(name: str) -> list[str]:
    """Every value of a grouping beyond the territory, so the report lists them with zeros too."""
    if name == "area":
        return list(AREA_LABELS)
    if name == "udo_type":
        return list(get_settings().waiting_list_udo_types)
    if name == "trigger":
        return list(VMD_TRIGGER_LABELS)
    return list(URGENCY_LABELS)


URGENCY_LABELS = {"urgent": "Urgente (confermata)", "ordinary": "Ordinaria"}
UDO_TYPE_LABELS = {"rsa": "RSA", "cdi": "CDI", "rsd": "RSD", "css": "CSS", "cdd": "CDD",
                   "cure_intermedie": "Cure intermedie"}


def dimension_label(name: str, value: str) -> str:
    labels = {"area": AREA_LABELS, "udo_type": UDO_TYPE_LABELS, "urgency": URGENCY_LABELS,
              "trigger": VMD_TRIGGER_LABELS}[name]
    return labels.get(value, value)


def source(name: str) -> Source:
    return SOURCES[name]()


def sub_ambito_of(comune: Any) -> Any:
    """The sub-ambito of a comune column, as a correlated scalar sub-query on the territory's projection."""
    t = territory.comune_facts()
    return sa.select(t.c.sub_ambito_id).where(t.c.id == comune).scalar_subquery()
