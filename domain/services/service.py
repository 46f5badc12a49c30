"""Services: accreditations (data with a period), activation orders from a plan's intervention, the provider's
answer, start, suspension, resumption and end, and the delivery log kept by the provider's operators.

An order copies what the intervention says (service, provider, intensity, dates, funding source) unless the body
says otherwise, and the unit cost of the provider's accreditation. Starting the service starts the intervention
(the provider gets the minimal view of the case through it); ending the order ends the intervention. Every change
bumps `Activation.version` and writes one `entity_history` row; everything is checked before anything is written.
"""
from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.care_plan import interventions as care_plan_interventions
from domain.care_plan import queries as care_plan_queries
from domain.kernel import clock, events, history, work_items
from domain.kernel.errors import Conflict, Invalid, NotFound
from domain.kernel.validity import active_sql
from domain.registry import persons as person_svc
from domain.security import audit, directory
from domain.security.permissions import Permission
from domain.security.principal import Principal
from domain.services import policy
from domain.services.models import (
    Accreditation,
    Activation,
    ActivationState,
    Delivery,
    EndReason,
    IntensityUnit,
    Suspension,
)
from domain.services.states import DELIVERY_STATES, MACHINE, Action
from domain.territory import queries as territory

ENTITY = "service_activation"
DELIVERY_ENTITY = "service_delivery"
ACCREDITATION_ENTITY = "service_accreditation"
ORDER_KIND = "services.activation_request"
DECLINED_KIND = "services.activation_declined"
PLAN_STATES = ("agreed", "active", "under_review")  # the plan is signed: the legal basis of the order
NOT_FOUND = "Attivazione non trovata."
CENT = Decimal("0.01")
MAX_SPAN_DAYS = 3653  # ten years: an order or a period beyond it is a typing error, not a service


# ---------------------------------------------------------------------------------------------------- accreditation
async def accredit(session: AsyncSession, *, principal: Principal, data) -> Accreditation:
    """An administrator records that a provider is accredited for a service type from a day (to a day)."""
    policy.ensure(principal, Permission.services_accredit)
    errors: list[tuple[str, str]] = []
    org = await territory.active_org(session, data.organisation_id, principal.ambito_id)
    if org is None:
        errors.append(("organisation_id", "ente non trovato nell'Ambito"))
    if (await territory.service_types(session, [data.service_type])).get(data.service_type) is None:
        errors.append(("service_type", "tipologia di servizio non presente nel catalogo"))
    if data.valid_to is not None and data.valid_to <= data.valid_from:
        errors.append(("valid_to", "deve essere successiva all'inizio"))
    if data.unit_cost is not None and data.unit_cost < 0:
        errors.append(("unit_cost", "non può essere negativo"))
    if errors:
        raise Invalid.many(errors)
    a = Accreditation(ambito_id=principal.ambito_id, organisation_id=data.organisation_id,
                      service_type=data.service_type, valid_from=data.valid_from, valid_to=data.valid_to,
                      unit_cost=data.unit_cost, reference=data.reference, created_at=clock.now(),
                      created_by=principal.user_id)
    session.add(a)
    await session.flush()
    audit.record(action="create", object_type=ACCREDITATION_ENTITY, object_ids=[a.id])
    return a


async def accreditation_on(session: AsyncSession, *, ambito_id: uuid.UUID, organisation_id: uuid.UUID,
                           service_type: str, on: date) -> Accreditation | None:
    return (await session.execute(sa.select(Accreditation).where(
        Accreditation.ambito_id == ambito_id, Accreditation.organisation_id == organisation_id,
        Accreditation.service_type == service_type, active_sql(Accreditation, on))
        .order_by(Accreditation.valid_from.desc()).limit(1))).scalar_one_or_none()


# ---------------------------------------------------------------------------------------------------- shared
async def write_history(session: AsyncSession, a: Activation, action: str, *, actor_id: uuid.UUID | None,
                        detail: dict[str, Any] | None = None, bump: bool = True) -> None:
    await history.record_change(session, a, entity_type=ENTITY, action=action, actor_id=actor_id, detail=detail,
                                bump=bump, key="activation")
    # Every recorded change is published once (per version): the outbox to ASST sends the order as ServiceRequest
    # and Task (integrations/asst/services_outbound.py).
    await events.publish(session, "services.activation_changed", {
        "activation_id": str(a.id), "person_id": str(a.person_id), "state": str(a.state), "version": a.version,
        "action": action}, dedup_key=f"services.activation_changed:{a.id}:{a.version}")


def audit_activation(action: str, a: Activation) -> None:
    audit.record(action=action, object_type=ENTITY, object_ids=[a.id], person_ids=[a.person_id])


def unit_of(text: str | None) -> IntensityUnit:
    """The intervention's free-text unit ("ore/settimana", "accessi/settimana") as the order's code."""
    return IntensityUnit.accesses_week if text and "access" in text.lower() else IntensityUnit.hours_week


async def load_for_work(session: AsyncSession, principal: Principal, activation_id: uuid.UUID,
                        *permissions: Permission) -> Activation:
    """An order the principal may act on through `permissions` (403 without any, 404 outside the scope), locked."""
    policy.ensure(principal, *permissions)
    roles = policy.acting_roles(principal, *permissions)
    a = (await session.execute(
        sa.select(Activation).where(Activation.id == activation_id, policy.scope(principal, roles))
        .with_for_update().execution_options(populate_existing=True))).scalar_one_or_none()
    if a is None:
        raise NotFound(NOT_FOUND)
    return a


def _in_case_scope(principal: Principal, ambito_id: uuid.UUID, comune_id: uuid.UUID | None) -> bool:
    if ambito_id != principal.ambito_id:
        return False
    if principal.has_role(*policy.AMBITO_ROLES):
        return True
    return comune_id is not None and comune_id in policy.orgs(principal, *policy.COMUNE)


# ---------------------------------------------------------------------------------------------------- the order
async def order(session: AsyncSession, *, principal: Principal, data) -> Activation:
    """The case manager orders an intervention of a signed plan from a provider accredited for the service type on
    the start day. 404 outside the case scope; 409 when the plan is not signed or the intervention already has an
    open order; 422 naming the field otherwise."""
    policy.ensure(principal, Permission.services_order)
    iv = await care_plan_queries.intervention_brief(session, data.intervention_id)
    if iv is None or iv["ambito_id"] != principal.ambito_id:
        raise NotFound("Intervento non trovato.")
    person = await person_svc.get_person(session, principal=principal, person_id=iv["person_id"])
    if not _in_case_scope(principal, iv["ambito_id"], person.residence_comune_id):
        raise NotFound("Intervento non trovato.")
    if iv["plan_state"] not in PLAN_STATES:
        raise Conflict("Il progetto non è ancora condiviso e sottoscritto: l'intervento non può essere attivato.",
                       state=iv["plan_state"], action="order", allowed_actions=[])
    if iv["status"] not in ("planned", "active"):
        raise Conflict("L'intervento è concluso o annullato.", state=iv["status"], action="order",
                       allowed_actions=[])
    errors: list[tuple[str, str]] = []
    provider_id = data.provider_org_id or iv["provider_org_id"]
    service_type = data.service_type or iv["service_type"]
    intensity = data.intensity_value if data.intensity_value is not None else (
        Decimal(str(iv["intensity_value"])) if iv["intensity_value"] is not None else None)
    unit = data.intensity_unit or unit_of(iv["intensity_unit"])
    start = data.start_date or iv["start_date"]
    end = data.end_date if data.end_date is not None else iv["end_date"]
    funding = data.funding_source or iv["funding_source"]
    accreditation = None
    if provider_id is None:
        errors.append(("provider_org_id", "indicare l'ente erogatore (l'intervento non ne indica uno)"))
    elif await territory.active_org(session, provider_id, principal.ambito_id) is None:
        errors.append(("provider_org_id", "ente non trovato nell'Ambito"))
    if (await territory.service_types(session, [service_type])).get(service_type) is None:
        errors.append(("service_type", "tipologia di servizio non presente nel catalogo"))
    if intensity is None or intensity <= 0:
        errors.append(("intensity_value", "indicare ore o accessi a settimana, maggiori di zero"))
    today = clock.today_rome()
    if start is None:
        errors.append(("start_date", "indicare il primo giorno di servizio"))
    elif abs((start - today).days) > MAX_SPAN_DAYS:
        errors.append(("start_date", "oltre dieci anni da oggi"))
    elif end is not None and (end - start).days > MAX_SPAN_DAYS:
        errors.append(("end_date", "oltre dieci anni dall'inizio"))
    elif end is not None and end <= start:
        errors.append(("end_date", "deve essere successiva all'inizio"))
    if data.unit_cost is not None and data.unit_cost < 0:
        errors.append(("unit_cost", "non può essere negativo"))
    if funding is not None and (await territory.funding_sources(session, [funding])).get(funding) is None:
        errors.append(("funding_source", "fonte di finanziamento non presente nel catalogo"))
    if not errors and provider_id is not None and start is not None:
        accreditation = await accreditation_on(session, ambito_id=principal.ambito_id, organisation_id=provider_id,
                                               service_type=service_type, on=start)
        if accreditation is None:
            errors.append(("provider_org_id", f"l'ente non è accreditato per {service_type} al "
                                              f"{start:%d/%m/%Y}"))
    if errors:
        raise Invalid.many(errors)
    existing = (await session.execute(sa.select(Activation.id).where(
        Activation.intervention_id == iv["id"],
        Activation.state.in_([s.value for s in (ActivationState.requested, ActivationState.accepted,
                                                ActivationState.active, ActivationState.suspended)])))).first()
    if existing is not None:
        raise Conflict("L'intervento ha già un'attivazione in corso.", existing_id=str(existing[0]))
    now = clock.now()
    unit_cost = data.unit_cost if data.unit_cost is not None else accreditation.unit_cost
    a = Activation(
        ambito_id=principal.ambito_id, person_id=person.id, comune_id=person.residence_comune_id,
        cartella_id=iv["cartella_id"], plan_id=iv["plan_id"], intervention_id=iv["id"],
        case_manager_id=iv["case_manager_id"], provider_org_id=provider_id, service_type=service_type,
        intensity_value=intensity.quantize(CENT), intensity_unit=unit,
        unit_cost=unit_cost.quantize(CENT) if unit_cost is not None else None,
        funding_source=funding, start_date=start, end_date=end, state=ActivationState.requested,
        requested_at=now, requested_by=principal.user_id, notes=data.notes, version=1)
    session.add(a)
    await session.flush()
    await write_history(session, a, "requested", actor_id=principal.user_id, bump=False,
                        detail={"accreditation_id": str(accreditation.id)})
    await work_items.create(session, kind=ORDER_KIND, title="Nuova richiesta di attivazione di un servizio",
                            source_type=ENTITY, source_id=a.id, ambito_id=a.ambito_id,
                            assignee_org_id=a.provider_org_id, person_id=a.person_id,
                            dedup_key=f"{ORDER_KIND}:{a.id}", data={"activation_id": str(a.id)})
    audit_activation("create", a)
    return a


# ---------------------------------------------------------------------------------------------------- the answer
async def accept(session: AsyncSession, *, principal: Principal, activation_id: uuid.UUID) -> Activation:
    a = await load_for_work(session, principal, activation_id, Permission.services_provide)
    a.state = MACHINE.next_state(a.state, Action.accept)
    a.answered_at, a.answered_by = clock.now(), principal.user_id
    await write_history(session, a, "accepted", actor_id=principal.user_id)
    await work_items.close_for_source(session, source_type=ENTITY, source_id=a.id, kinds=[ORDER_KIND], done=True)
    audit_activation("update", a)
    return a


async def decline(session: AsyncSession, *, principal: Principal, activation_id: uuid.UUID,
                  reason: str) -> Activation:
    a = await load_for_work(session, principal, activation_id, Permission.services_provide)
    target = MACHINE.next_state(a.state, Action.decline)
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("reason", "indicare il motivo del rifiuto")
    a.state, a.decline_reason = target, reason[:1000]
    a.answered_at, a.answered_by = clock.now(), principal.user_id
    await write_history(session, a, "declined", actor_id=principal.user_id, detail={"reason": a.decline_reason})
    await work_items.close_for_source(session, source_type=ENTITY, source_id=a.id, kinds=[ORDER_KIND], done=True)
    if a.case_manager_id is not None:
        await work_items.create(session, kind=DECLINED_KIND, title="Attivazione rifiutata dall'ente: scegliere "
                                                                   "un altro ente", source_type=ENTITY,
                                source_id=a.id, ambito_id=a.ambito_id, assignee_user_id=a.case_manager_id,
                                person_id=a.person_id, dedup_key=f"{DECLINED_KIND}:{a.id}",
                                data={"activation_id": str(a.id)})
    audit_activation("update", a)
    return a


# ---------------------------------------------------------------------------------------------------- running
BOTH = (Permission.services_order, Permission.services_provide)


async def start(session: AsyncSession, *, principal: Principal, activation_id: uuid.UUID,
                start_date: date | None = None) -> Activation:
    """The first day of service (today unless given; never in the future). The intervention starts with it."""
    a = await load_for_work(session, principal, activation_id, *BOTH)
    target = MACHINE.next_state(a.state, Action.start)
    day = start_date or clock.today_rome()
    if day > clock.today_rome():
        raise Invalid("start_date", "il servizio non può iniziare nel futuro: avviarlo il primo giorno")
    if (clock.today_rome() - day).days > MAX_SPAN_DAYS:
        raise Invalid("start_date", "oltre dieci anni fa")
    if a.end_date is not None and day >= a.end_date:
        raise Invalid("start_date", "è dopo la fine prevista dell'attivazione")
    a.state, a.start_date, a.started_at = target, day, clock.now()
    await write_history(session, a, "started", actor_id=principal.user_id, detail={"start_date": day.isoformat()})
    await care_plan_interventions.start_for_activation(session, intervention_id=a.intervention_id,
                                                       actor_id=principal.user_id)
    audit_activation("update", a)
    return a


async def _open_suspension(session: AsyncSession, a: Activation) -> Suspension | None:
    return (await session.execute(sa.select(Suspension).where(
        Suspension.activation_id == a.id, Suspension.to_date.is_(None)).with_for_update())).scalar_one_or_none()


async def suspend(session: AsyncSession, *, principal: Principal, activation_id: uuid.UUID, reason: str,
                  from_date: date | None = None) -> Activation:
    """Suspended from a day (today unless given: a hospital admission recorded the day after): the days of the
    suspension are not planned, so they are neither counted nor flagged. Not before the start, nor on a day with a
    delivery logged, nor in the future."""
    a = await load_for_work(session, principal, activation_id, *BOTH)
    target = MACHINE.next_state(a.state, Action.suspend)
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("reason", "indicare il motivo della sospensione")
    day = from_date or clock.today_rome()
    if day > clock.today_rome():
        raise Invalid("from_date", "è nel futuro")
    if day < a.start_date:
        raise Invalid("from_date", "è prima dell'inizio del servizio")
    last = (await session.execute(sa.select(sa.func.max(Delivery.delivered_on)).where(
        Delivery.activation_id == a.id))).scalar()
    if last is not None and day <= last:
        raise Invalid("from_date", f"ci sono prestazioni registrate fino al {last:%d/%m/%Y}")
    a.state, a.suspended_at, a.suspension_reason = target, clock.now(), reason[:1000]
    session.add(Suspension(activation_id=a.id, from_date=day, reason=reason[:1000], created_at=clock.now(),
                           created_by=principal.user_id))
    await write_history(session, a, "suspended", actor_id=principal.user_id,
                        detail={"reason": a.suspension_reason, "from_date": day.isoformat()})
    audit_activation("update", a)
    return a


async def resume(session: AsyncSession, *, principal: Principal, activation_id: uuid.UUID) -> Activation:
    """The service runs again from today."""
    a = await load_for_work(session, principal, activation_id, *BOTH)
    a.state = MACHINE.next_state(a.state, Action.resume)
    s = await _open_suspension(session, a)
    if s is not None:
        s.to_date = max(clock.today_rome(), s.from_date)
        session.add(s)
    await write_history(session, a, "resumed", actor_id=principal.user_id,
                        detail={"suspended_at": a.suspended_at.isoformat() if a.suspended_at else None})
    a.suspended_at = None
    audit_activation("update", a)
    return a


async def end(session: AsyncSession, *, principal: Principal | None, activation_id: uuid.UUID,
              reason: EndReason | str, end_date: date | None = None, note: str | None = None,
              row: Activation | None = None) -> Activation:
    """The order ends with a reason; `end_date` is the first day without service (today unless given). The
    intervention ends with it. `principal=None, row=...` is the system path (period over)."""
    a = row if row is not None else await load_for_work(session, principal, activation_id, *BOTH)
    target = MACHINE.next_state(a.state, Action.end)
    day = end_date or clock.today_rome()
    if (day - a.start_date).days > MAX_SPAN_DAYS:
        raise Invalid("end_date", "oltre dieci anni dall'inizio")
    if day < a.start_date:
        raise Invalid("end_date", "è prima dell'inizio del servizio")
    if a.end_date is not None and day > a.end_date:
        raise Invalid("end_date", "è dopo la fine prevista: il servizio non può proseguire oltre")
    last = (await session.execute(sa.select(sa.func.max(Delivery.delivered_on)).where(
        Delivery.activation_id == a.id))).scalar()
    if last is not None and day <= last:
        raise Invalid("end_date", f"ci sono prestazioni registrate fino al {last:%d/%m/%Y}")
    actor = principal.user_id if principal is not None else None
    s = await _open_suspension(session, a)
    if s is not None:  # ended while suspended: the suspension lasts to the end
        s.to_date = max(day, s.from_date)
        session.add(s)
    a.state, a.end_date, a.ended_at = target, day, clock.now()
    a.end_reason, a.end_note = EndReason(reason), (note or None)
    await write_history(session, a, "ended", actor_id=actor, detail={"reason": str(a.end_reason),
                                                                      "end_date": day.isoformat()})
    await care_plan_interventions.end_for_activation(session, intervention_id=a.intervention_id, actor_id=actor)
    await work_items.close_for_source(session, source_type=ENTITY, source_id=a.id, kinds=[ORDER_KIND], done=False)
    audit_activation("update", a)
    return a


# ---------------------------------------------------------------------------------------------------- delivery log
async def record_delivery(session: AsyncSession, *, principal: Principal, activation_id: uuid.UUID,
                          data) -> Delivery:
    """One day of service, by the provider's operator: never before the start nor on or after the end, never in
    the future, hours for an order in hours and accesses for one in accesses, never negative."""
    a = await load_for_work(session, principal, activation_id, Permission.services_provide)
    MACHINE.require(a.state, DELIVERY_STATES, Action.deliver)
    errors: list[tuple[str, str]] = []
    day = data.delivered_on
    if day < a.start_date:
        errors.append(("delivered_on", f"è prima dell'inizio del servizio ({a.start_date:%d/%m/%Y})"))
    elif a.end_date is not None and day >= a.end_date:
        errors.append(("delivered_on", f"è dal giorno di fine del servizio ({a.end_date:%d/%m/%Y}) in poi"))
    elif day > clock.today_rome():
        errors.append(("delivered_on", "è nel futuro"))
    if a.intensity_unit == IntensityUnit.hours_week:
        if data.hours is None:
            errors.append(("hours", "indicare le ore erogate"))
        elif data.hours < 0:
            errors.append(("hours", "le ore non possono essere negative"))
        elif data.hours > 24:
            errors.append(("hours", "più di 24 ore in un giorno"))
    else:
        if data.accesses is None:
            errors.append(("accesses", "indicare gli accessi"))
        elif data.accesses < 0:
            errors.append(("accesses", "gli accessi non possono essere negativi"))
        elif data.accesses > 24:
            errors.append(("accesses", "più di 24 accessi in un giorno"))
    if data.operator_user_id is not None and data.operator_user_id != principal.user_id and \
            a.provider_org_id not in await directory.user_organisations(session, data.operator_user_id, day):
        errors.append(("operator_user_id", "non è un operatore dell'ente erogatore in quel giorno"))
    if errors:
        raise Invalid.many(errors)
    d = Delivery(activation_id=a.id, person_id=a.person_id, provider_org_id=a.provider_org_id, delivered_on=day,
                 hours=data.hours if a.intensity_unit == IntensityUnit.hours_week else None,
                 accesses=data.accesses if a.intensity_unit == IntensityUnit.accesses_week else None,
                 operator_user_id=data.operator_user_id or principal.user_id, operator_name=data.operator_name,
                 note=data.note, recorded_at=clock.now(), recorded_by=principal.user_id)
    session.add(d)
    await session.flush()
    audit.record(action="create", object_type=DELIVERY_ENTITY, object_ids=[d.id], person_ids=[a.person_id])
    return d
