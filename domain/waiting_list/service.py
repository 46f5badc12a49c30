"""Waiting-list entries: the application (with the joint VMD it starts and its 30-day clock), the equipe's decision,
urgency, the confirmation after a suspension, and the exits (withdrawal, admission elsewhere, death) that take
the person off every list. Beds and offers are in offers.py; positions in ranking.py.

Every change bumps `WaitingListEntry.version` and writes one `entity_history` row (entity_type
"waiting_list_entry") whose detail names its cause: the entry's own events (listing, urgency, refusal, VMD update)
are read back from there.
"""
from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.assessment import queries as assessment_queries
from domain.assessment import service as assessment
from domain.assessment.models import VmdTrigger
from domain.care_plan import queries as care_plan_queries
from domain.care_plan import service as care_plan
from domain.kernel import calendar, clock, events, history, work_items
from domain.kernel.errors import Conflict, Invalid, NotFound
from domain.kernel.settings import get_settings
from domain.kernel.states import StateMachine
from domain.registry import persons as person_svc
from domain.security import audit
from domain.security.models import Role
from domain.security.permissions import Permission
from domain.security.principal import Principal
from domain.territory import queries as territory
from domain.waiting_list import policy
from domain.waiting_list.models import (
    URGENCY_REASON_LABELS,
    URGENCY_STATE_LABELS,
    Applicant,
    Caregiver,
    EntryState,
    ExitReason,
    OfferState,
    UrgencyReason,
    UrgencyState,
    WaitingListChoice,
    WaitingListEntry,
    WaitingListOffer,
)
from domain.waiting_list.states import ENTRY, OFFER, OPEN_STATES, EntryAction, OfferAction

ENTITY = "waiting_list_entry"
OFFER_ENTITY = "waiting_list_offer"
AT_RISK_KIND = "waiting_list.assessment_at_risk"
OVERDUE_KIND = "waiting_list.assessment_overdue"
URGENCY_KIND = "waiting_list.urgency_decision"
COMPLETE_KIND = "waiting_list.complete_application"
CLOCK_KINDS = [AT_RISK_KIND, OVERDUE_KIND]
LISTABLE_PLAN_STATES = ("agreed", "active", "under_review")  # "agreed or later", still running
VMD_TRIGGERS = (VmdTrigger.rsa_application.value, VmdTrigger.udo_access.value)

URGENCY = StateMachine("l'urgenza", URGENCY_STATE_LABELS, {"raise": "segnalare l'urgenza",
                                                             "confirm": "confermare l'urgenza",
                                                             "reject": "respingere l'urgenza"}, {
    ("none", "raise"): "raised", ("rejected", "raise"): "raised",
    ("raised", "confirm"): "confirmed", ("raised", "reject"): "rejected",
}, hints={("confirmed", "raise"): "l'urgenza è già confermata"}, state_type=UrgencyState)


# ---------------------------------------------------------------- shared helpers
async def write_history(session: AsyncSession, entry: WaitingListEntry, action: str, *, actor_id: uuid.UUID | None,
                        detail: dict[str, Any] | None = None, bump: bool = True) -> None:
    await history.record_change(session, entry, entity_type=ENTITY, action=action, actor_id=actor_id,
                                detail=detail, bump=bump, key="entry")
    # Every recorded change is published once (per version); a subscriber that cares about the status only (the
    # outbox to ASST) compares it with what it last saw.
    await events.publish(session, "waiting_list.changed", {
        "entry_id": str(entry.id), "person_id": str(entry.person_id), "state": str(entry.state),
        "version": entry.version, "action": action}, dedup_key=f"waiting_list.changed:{entry.id}:{entry.version}")


def audit_entry(action: str, entry: WaitingListEntry) -> None:
    audit.record(action=action, object_type=ENTITY, object_ids=[entry.id], person_ids=[entry.person_id])


def trigger_for(udo_type: str) -> str:
    return VmdTrigger.rsa_application.value if udo_type == "rsa" else VmdTrigger.udo_access.value


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=calendar.ROME)


def assessment_due(application_date: date) -> datetime:
    """The end of the last day of the assessment clock (the application day + WAITING_LIST_ASSESSMENT_DAYS)."""
    return _start_of(application_date + timedelta(days=get_settings().waiting_list_assessment_days + 1))


async def load_for_work(session: AsyncSession, principal: Principal, entry_id: uuid.UUID, permission: Permission,
                        roles: tuple[Role, ...], expected_version: int | None = None) -> WaitingListEntry:
    """An entry the principal may act on with `permission` through the scope of `roles`, locked; 403 without the
    permission, 404 outside the scope."""
    policy.ensure(principal, permission)
    entry = (await session.execute(
        sa.select(WaitingListEntry).where(WaitingListEntry.id == entry_id, policy.scope(principal, roles))
        .with_for_update().execution_options(populate_existing=True))).scalar_one_or_none()
    if entry is None:
        raise NotFound("Domanda di lista d'attesa non trovata.")
    if expected_version is not None and expected_version != entry.version:
        raise Conflict("La domanda è stata modificata da un'altra operazione: ricaricare e riprovare.",
                       current_version=entry.version)
    return entry


async def choices_of(session: AsyncSession, entry_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
    rows = (await session.execute(
        sa.select(WaitingListChoice.entry_id, WaitingListChoice.unit_id).where(
            WaitingListChoice.entry_id.in_(entry_ids)).order_by(WaitingListChoice.entry_id,
                                                                WaitingListChoice.rank))).all()
    out: dict[uuid.UUID, list[uuid.UUID]] = {i: [] for i in entry_ids}
    for entry_id, unit_id in rows:
        out[entry_id].append(unit_id)
    return out


async def _check_units(session: AsyncSession, ambito_id: uuid.UUID, udo_type: str, unit_ids: list[uuid.UUID],
                       errors: list[tuple[str, str]], field: str = "unit_ids") -> None:
    if len(set(unit_ids)) != len(unit_ids):
        errors.append((field, "la stessa unità d'offerta è indicata più volte"))
        return
    found = await territory.units(session, unit_ids)
    for i, uid in enumerate(unit_ids):
        u = found.get(uid)
        if u is None or u.ambito_id != ambito_id or not u.active:
            errors.append((f"{field}.{i}", "unità d'offerta non trovata nell'Ambito"))
        elif u.udo_type != udo_type:
            errors.append((f"{field}.{i}", f"l'unità è di tipo {u.udo_type}, la domanda è per {udo_type}"))


async def _replace_choices(session: AsyncSession, entry: WaitingListEntry, unit_ids: list[uuid.UUID]) -> None:
    await session.execute(sa.delete(WaitingListChoice).where(WaitingListChoice.entry_id == entry.id))
    session.add_all([WaitingListChoice(entry_id=entry.id, unit_id=u, rank=i) for i, u in enumerate(unit_ids, 1)])
    await session.flush()


async def _open_entry(session: AsyncSession, person_id: uuid.UUID, udo_type: str) -> WaitingListEntry | None:
    return (await session.execute(sa.select(WaitingListEntry).where(
        WaitingListEntry.person_id == person_id, WaitingListEntry.udo_type == udo_type,
        WaitingListEntry.state.in_([s.value for s in OPEN_STATES])).with_for_update()
        .execution_options(populate_existing=True))).scalar_one_or_none()


# ---------------------------------------------------------------- the application
async def apply(session: AsyncSession, *, principal: Principal, data) -> WaitingListEntry:
    """An application to one or more UDO of a type, in order of preference, by the person, a relative, the AdS or a
    social worker, with its date. It starts the 30-day assessment clock: the joint VMD (trigger `rsa_application`
    for an RSA, `udo_access` otherwise) is requested on the person's cartella with the application date recorded
    on it, unless an open VMD of that trigger (`vmd_id`) is named. Everything is checked before anything is
    written."""
    policy.ensure(principal, Permission.waiting_list_apply)
    person = await person_svc.get_person(session, principal=principal, person_id=data.person_id)  # 404 first
    st = get_settings()
    errors: list[tuple[str, str]] = []
    if data.udo_type not in st.waiting_list_udo_types:
        errors.append(("udo_type", "questa tipologia di unità d'offerta non ha una lista d'attesa (ammesse: "
                                   + ", ".join(st.waiting_list_udo_types) + ")"))
    if not data.unit_ids:
        errors.append(("unit_ids", "indicare almeno un'unità d'offerta, in ordine di preferenza"))
    elif not errors:
        await _check_units(session, principal.ambito_id, data.udo_type, list(data.unit_ids), errors)
    today = clock.today_rome()
    if data.application_date > today:
        errors.append(("application_date", "la data della domanda non può essere nel futuro"))
    evidence = None
    if data.vmd_id is not None:
        evidence = await assessment_queries.listing_evidence(session, data.vmd_id)
        if evidence is None or evidence.person_id != person.id:
            errors.append(("vmd_id", "VMD non trovata per questa persona"))
        elif evidence.trigger not in VMD_TRIGGERS or evidence.state == "cancelled":
            errors.append(("vmd_id", "serve una VMD con motivo rsa_application o udo_access, non annullata"))
    elif data.cartella_id is None or data.team_id is None:
        errors.append(("cartella_id" if data.cartella_id is None else "team_id",
                       "per richiedere la VMD indicare la cartella e l'équipe (oppure una VMD esistente, vmd_id)"))
    if errors:
        raise Invalid.many(errors)
    if person.date_of_death is not None:
        raise Invalid("person_id", "la persona risulta deceduta")
    existing = await _open_entry(session, person.id, data.udo_type)
    if existing is not None:
        raise Conflict("La persona ha già una domanda aperta per questa tipologia di unità d'offerta.",
                       existing_id=str(existing.id))
    if evidence is None:
        vmd = await assessment.request_vmd(
            session, principal=principal, person_id=person.id, cartella_id=data.cartella_id,
            trigger=trigger_for(data.udo_type), team_id=data.team_id, application_date=data.application_date,
            notes=data.notes)
        evidence = await assessment_queries.listing_evidence(session, vmd.id)
    now = clock.now()
    entry = WaitingListEntry(
        ambito_id=principal.ambito_id, person_id=person.id, comune_id=person.residence_comune_id,
        udo_type=data.udo_type, state=EntryState.assessment_pending, applicant=Applicant(data.applicant),
        applicant_name=data.applicant_name, application_date=data.application_date, applied_at=now,
        applied_by=principal.user_id, cartella_id=data.cartella_id, vmd_id=evidence.id,
        assessment_team_id=evidence.team_id, assessment_requested_at=now,
        assessment_due_at=assessment_due(data.application_date), assessed_at=evidence.concluded_at, version=1)
    session.add(entry)
    await session.flush()
    await _replace_choices(session, entry, list(data.unit_ids))
    await write_history(session, entry, "applied", actor_id=principal.user_id, bump=False, detail={
        "cause": "application", "applicant": str(entry.applicant), "unit_ids": [str(u) for u in data.unit_ids],
        "vmd_id": str(evidence.id)})
    audit_entry("create", entry)
    return entry


async def open_urgent_application(session: AsyncSession, *, ambito_id: uuid.UUID, person_id: uuid.UUID,
                                  comune_id: uuid.UUID | None, vmd_id: uuid.UUID | None,
                                  discharge_id: uuid.UUID, fallback_org_id: uuid.UUID | None,
                                  udo_type: str = "rsa") -> WaitingListEntry:
    """System path (the discharge seam): a protected discharge whose setting is RSA opens an urgent RSA application
    from the discharge's VMD, or raises urgency on the person's open RSA application. The urgency waits for the
    sub-ambito coordinator like any other; the comune completes the application (the RSA chosen, the listing
    decision) from its queue. Idempotent: a second call finds the entry and the work items' dedup keys."""
    now = clock.now()
    entry = await _open_entry(session, person_id, udo_type)
    created = entry is None
    if created:
        evidence = await assessment_queries.listing_evidence(session, vmd_id) if vmd_id else None
        today = clock.today_rome()
        entry = WaitingListEntry(
            ambito_id=ambito_id, person_id=person_id, comune_id=comune_id, udo_type=udo_type,
            state=EntryState.assessment_pending, applicant=Applicant.social_worker, application_date=today,
            applied_at=now, discharge_id=discharge_id, vmd_id=evidence.id if evidence else None,
            assessment_team_id=evidence.team_id if evidence else None,
            assessment_requested_at=now if evidence else None, assessment_due_at=assessment_due(today),
            assessed_at=evidence.concluded_at if evidence else None, version=1)
        session.add(entry)
        await session.flush()
        await write_history(session, entry, "applied", actor_id=None, bump=False, detail={
            "cause": "protected_discharge", "discharge_id": str(discharge_id)})
    if str(entry.urgency) in (UrgencyState.none.value, UrgencyState.rejected.value):
        await _raise(session, entry, reason=UrgencyReason.protected_discharge,
                     note="Dimissione protetta con setting RSA", actor_id=None, at=now)
    queue = comune_id or fallback_org_id
    if queue is not None:
        await work_items.create(
            session, kind=COMPLETE_KIND, title="Dimissione protetta verso RSA: completare la domanda di lista "
                                               "d'attesa (RSA scelte, decisione dell'équipe)",
            source_type=ENTITY, source_id=entry.id, ambito_id=ambito_id, assignee_org_id=queue, person_id=person_id,
            dedup_key=f"{COMPLETE_KIND}:{entry.id}", data={"entry_id": str(entry.id),
                                                          "discharge_id": str(discharge_id)})
    return entry


async def record_assessed(session: AsyncSession, *, vmd_id: uuid.UUID, concluded_at: datetime) -> int:
    """System path, on `vmd.concluded`: the open entries waiting for this VMD are assessed at its conclusion (R2);
    the clock's work items close. Idempotent."""
    rows = list((await session.execute(sa.select(WaitingListEntry).where(
        WaitingListEntry.vmd_id == vmd_id, WaitingListEntry.assessed_at.is_(None))
        .with_for_update().execution_options(populate_existing=True))).scalars())
    for entry in rows:
        entry.assessed_at = concluded_at
        await write_history(session, entry, "assessed", actor_id=None, detail={"cause": "vmd_concluded",
                                                                                 "vmd_id": str(vmd_id)})
        await work_items.close_for_source(session, source_type=ENTITY, source_id=entry.id, kinds=CLOCK_KINDS,
                                          done=True)
    return len(rows)


# ---------------------------------------------------------------- the equipe's decision
async def _score_inputs(session: AsyncSession, entry: WaitingListEntry, data,
                        errors: list[tuple[str, str]]):
    """The VMD (signed, with a Barthel score) and the caregiver facts a listing or a VMD update records."""
    vmd_id = data.vmd_id or entry.vmd_id
    evidence = await assessment_queries.listing_evidence(session, vmd_id) if vmd_id else None
    if evidence is None or evidence.person_id != entry.person_id:
        errors.append(("vmd_id", "VMD non trovata per questa persona"))
    elif not evidence.signed:
        errors.append(("vmd_id", "la VMD non è firmata da nessun valutatore"))
    elif evidence.barthel is None:
        errors.append(("vmd_id", "la VMD non ha un punteggio di Barthel"))
    if data.caregiver is None:
        errors.append(("caregiver", "indicare se c'è un caregiver (none, present, overloaded)"))
    if data.lives_alone is None:
        errors.append(("lives_alone", "indicare se la persona vive sola"))
    return evidence


async def decide(session: AsyncSession, *, principal: Principal, entry_id: uuid.UUID, data) -> WaitingListEntry:
    """The equipe's decision: listed (a signed VMD with a Barthel score, the caregiver facts, and a temporary or
    alternative progetto individualizzato of the person that is agreed or later; optionally the preferences
    replaced) or not listed (with a reason). Everything is checked before anything is written."""
    entry = await load_for_work(session, principal, entry_id, Permission.waiting_list_decide, policy.DECIDERS,
                                data.version)
    listed = data.decision == "listed"
    target = ENTRY.next_state(entry.state, EntryAction.list if listed else EntryAction.not_list)
    now, today = clock.now(), clock.today_rome()
    errors: list[tuple[str, str]] = []
    if not listed:
        reason = (data.reason or "").strip()
        if not reason:
            raise Invalid("reason", "indicare il motivo del mancato inserimento in lista")
        entry.state, entry.not_listed_reason = target, reason[:1000]
        entry.decided_at, entry.decided_by = now, principal.user_id
        entry.assessed_at = entry.assessed_at or now
        await write_history(session, entry, "not_listed", actor_id=principal.user_id,
                            detail={"cause": "equipe_decision", "reason": reason[:1000]})
        await work_items.close_for_source(session, source_type=ENTITY, source_id=entry.id, kinds=CLOCK_KINDS,
                                          done=True, actor_id=principal.user_id)
        audit_entry("update", entry)
        return entry
    evidence = await _score_inputs(session, entry, data, errors)
    if data.temporary_plan_id is None:
        errors.append(("temporary_plan_id", "l'inserimento in lista richiede il progetto temporaneo o "
                                            "alternativo della persona"))
    else:
        plan = await care_plan_queries.plan_brief(session, data.temporary_plan_id)
        if plan is None or plan["person_id"] != entry.person_id:
            errors.append(("temporary_plan_id", "progetto non trovato per questa persona"))
        elif plan["kind"] != "temporary":
            errors.append(("temporary_plan_id", "il progetto non è di tipo temporaneo/alternativo"))
        elif plan["state"] not in LISTABLE_PLAN_STATES:
            errors.append(("temporary_plan_id", "il progetto temporaneo deve essere almeno condiviso e "
                                                "sottoscritto (stato attuale: " + plan["state"] + ")"))
    listing_date = data.listing_date or today
    if listing_date > today:
        errors.append(("listing_date", "la data di inserimento non può essere nel futuro"))
    elif listing_date < entry.application_date:
        errors.append(("listing_date", "la data di inserimento precede la domanda"))
    units = list(data.unit_ids) if data.unit_ids is not None else None
    if units is not None:
        await _check_units(session, entry.ambito_id, entry.udo_type, units, errors)
    elif not (await choices_of(session, [entry.id]))[entry.id]:
        errors.append(("unit_ids", "indicare almeno un'unità d'offerta, in ordine di preferenza"))
    if errors:
        raise Invalid.many(errors)
    if units:
        await _replace_choices(session, entry, units)
    entry.state = target
    entry.vmd_id, entry.barthel = evidence.id, evidence.barthel
    entry.caregiver, entry.lives_alone = Caregiver(data.caregiver), bool(data.lives_alone)
    entry.temporary_plan_id = data.temporary_plan_id
    entry.decided_at, entry.decided_by = now, principal.user_id
    entry.listed_at, entry.listing_date = now, listing_date
    entry.assessed_at = entry.assessed_at or evidence.concluded_at or now
    await write_history(session, entry, "listed", actor_id=principal.user_id, detail={
        "cause": "equipe_decision", "vmd_id": str(evidence.id), "barthel": evidence.barthel,
        "caregiver": str(entry.caregiver), "lives_alone": entry.lives_alone,
        "temporary_plan_id": str(data.temporary_plan_id), "listing_date": listing_date.isoformat()})
    await work_items.close_for_source(session, source_type=ENTITY, source_id=entry.id,
                                      kinds=[*CLOCK_KINDS, COMPLETE_KIND], done=True, actor_id=principal.user_id)
    audit_entry("update", entry)
    return entry


async def update_assessment(session: AsyncSession, *, principal: Principal, entry_id: uuid.UUID,
                            data) -> WaitingListEntry:
    """A VMD update of a listed (or suspended) entry: a newer signed VMD with its Barthel score, or new caregiver
    facts; the score follows at the next read. Recorded with its cause."""
    entry = await load_for_work(session, principal, entry_id, Permission.waiting_list_decide, policy.DECIDERS,
                                data.version)
    ENTRY.require(entry.state, (EntryState.listed, EntryState.suspended), "update_assessment",
                  "Si aggiorna la valutazione solo di una domanda in lista.")
    errors: list[tuple[str, str]] = []
    evidence = await _score_inputs(session, entry, data, errors)
    if errors:
        raise Invalid.many(errors)
    before = {"barthel": entry.barthel, "caregiver": str(entry.caregiver), "lives_alone": entry.lives_alone}
    entry.vmd_id, entry.barthel = evidence.id, evidence.barthel
    entry.caregiver, entry.lives_alone = Caregiver(data.caregiver), bool(data.lives_alone)
    await write_history(session, entry, "vmd_updated", actor_id=principal.user_id, detail={
        "cause": "vmd_update", "vmd_id": str(evidence.id), "before": before,
        "after": {"barthel": entry.barthel, "caregiver": str(entry.caregiver), "lives_alone": entry.lives_alone}})
    audit_entry("update", entry)
    return entry


# ---------------------------------------------------------------- urgency
async def _raise(session: AsyncSession, entry: WaitingListEntry, *, reason: UrgencyReason, note: str,
                 actor_id: uuid.UUID | None, at: datetime) -> None:
    entry.urgency = URGENCY.next_state(entry.urgency, "raise")
    entry.urgency_reason, entry.urgency_note = reason, note[:2000]
    entry.urgency_raised_at, entry.urgency_raised_by = at, actor_id
    entry.urgency_decided_at = entry.urgency_decided_by = None
    await write_history(session, entry, "urgency_raised", actor_id=actor_id, detail={
        "cause": reason.value, "note": note[:2000]})
    sub_ambito = None
    if entry.comune_id is not None:
        comune = await territory.get_org(session, entry.comune_id)
        sub_ambito = comune.part_of_id if comune is not None else None
    await work_items.create(
        session, kind=URGENCY_KIND, title=f"Urgenza da confermare: {URGENCY_REASON_LABELS[reason.value]}",
        source_type=ENTITY, source_id=entry.id, ambito_id=entry.ambito_id,
        assignee_org_id=sub_ambito or entry.ambito_id, person_id=entry.person_id,
        dedup_key=f"{URGENCY_KIND}:{entry.id}:{entry.version}", data={"entry_id": str(entry.id)})


async def raise_urgency(session: AsyncSession, *, principal: Principal, entry_id: uuid.UUID, reason: str | None,
                        note: str | None, expected_version: int | None = None) -> WaitingListEntry:
    """The social worker raises urgency (loss of home, loss of the sole caregiver, other) with a note; the
    coordinator of the sub-ambito finds it in their queue."""
    entry = await load_for_work(session, principal, entry_id, Permission.waiting_list_manage, policy.COMUNE,
                                expected_version)
    ENTRY.next_state(entry.state, EntryAction.raise_urgency)
    URGENCY.next_state(entry.urgency, "raise")
    allowed = [r.value for r in UrgencyReason if r != UrgencyReason.protected_discharge]
    errors = []
    if not (reason or "").strip():
        errors.append(("reason", "indicare il motivo dell'urgenza (" + ", ".join(allowed) + ")"))
    elif reason not in allowed:
        errors.append(("reason", "motivo sconosciuto (ammessi: " + ", ".join(allowed) + ")"))
    if not (note or "").strip():
        errors.append(("note", "descrivere la situazione che motiva l'urgenza"))
    if errors:
        raise Invalid.many(errors)
    await _raise(session, entry, reason=UrgencyReason(reason), note=note.strip(), actor_id=principal.user_id,
                 at=clock.now())
    audit_entry("update", entry)
    return entry


async def decide_urgency(session: AsyncSession, *, principal: Principal, entry_id: uuid.UUID, confirm: bool,
                         note: str | None = None, expected_version: int | None = None) -> WaitingListEntry:
    """The sub-ambito coordinator confirms (the entry moves to the urgent tier) or rejects the urgency."""
    entry = await load_for_work(session, principal, entry_id, Permission.waiting_list_urgency_decide,
                                policy.COORDINATORS, expected_version)
    ENTRY.next_state(entry.state, EntryAction.decide_urgency)
    entry.urgency = URGENCY.next_state(entry.urgency, "confirm" if confirm else "reject")
    entry.urgency_decided_at, entry.urgency_decided_by = clock.now(), principal.user_id
    await write_history(session, entry, "urgency_confirmed" if confirm else "urgency_rejected",
                        actor_id=principal.user_id, detail={"cause": "coordinator_decision",
                                                            "note": (note or "").strip()[:2000] or None})
    await work_items.close_for_source(session, source_type=ENTITY, source_id=entry.id, kinds=[URGENCY_KIND],
                                      done=True, actor_id=principal.user_id)
    audit_entry("update", entry)
    return entry


# ---------------------------------------------------------------- suspension and exits
async def confirm(session: AsyncSession, *, principal: Principal, entry_id: uuid.UUID,
                  expected_version: int | None = None) -> WaitingListEntry:
    """After the second refusal the person confirms staying on the list: suspended → listed (the position follows
    from the score; the refusals stay counted)."""
    entry = await load_for_work(session, principal, entry_id, Permission.waiting_list_manage, policy.COMUNE,
                                expected_version)
    entry.state = ENTRY.next_state(entry.state, EntryAction.confirm)
    entry.suspended_at = None
    await write_history(session, entry, "confirmed", actor_id=principal.user_id,
                        detail={"cause": "person_confirmed", "refusals": entry.refusals})
    audit_entry("update", entry)
    return entry


EXITS = {EntryAction.withdraw: ExitReason.withdrawn, EntryAction.admit_elsewhere: ExitReason.admitted_elsewhere}


async def exit_entry(session: AsyncSession, *, principal: Principal, entry_id: uuid.UUID, action: str,
                     note: str | None = None, expected_version: int | None = None) -> WaitingListEntry:
    """Withdrawal or admission elsewhere: the person leaves every list (each open entry ends, each open offer is
    withdrawn, the temporary plans close)."""
    try:
        act = EntryAction(action)
    except ValueError:
        act = None
    if act not in EXITS:
        raise Invalid("action", "uscita sconosciuta (ammesse: withdraw, admit_elsewhere)")
    entry = await load_for_work(session, principal, entry_id, Permission.waiting_list_manage, policy.COMUNE,
                                expected_version)
    ENTRY.next_state(entry.state, act)
    await leave_every_list(session, person_id=entry.person_id, action=act, note=note,
                           actor_id=principal.user_id)
    audit_entry("update", entry)
    return entry


async def leave_every_list(session: AsyncSession, *, person_id: uuid.UUID, action: EntryAction,
                           note: str | None, actor_id: uuid.UUID | None,
                           keep: uuid.UUID | None = None) -> list[WaitingListEntry]:
    """Every open entry of the person (but `keep`) ends with `action`; their open offers are withdrawn and the
    temporary plans close. Idempotent."""
    reason = {EntryAction.withdraw: ExitReason.withdrawn, EntryAction.die: ExitReason.deceased}.get(
        action, ExitReason.admitted_elsewhere)
    rows = list((await session.execute(sa.select(WaitingListEntry).where(
        WaitingListEntry.person_id == person_id, WaitingListEntry.state.in_([s.value for s in OPEN_STATES]))
        .order_by(WaitingListEntry.id).with_for_update().execution_options(populate_existing=True))).scalars())
    now = clock.now()
    ended = []
    for entry in rows:
        if entry.id == keep:
            continue
        entry.state = ENTRY.next_state(entry.state, action)
        entry.exit_reason, entry.exit_note, entry.exited_at = reason, (note or "").strip()[:1000] or None, now
        await write_history(session, entry, entry.state.value, actor_id=actor_id, detail={"cause": reason.value})
        await work_items.close_for_source(session, source_type=ENTITY, source_id=entry.id)
        ended.append(entry)
    await withdraw_open_for_person(session, person_id=person_id)
    await care_plan.close_temporary_plans_for(session, person_id=person_id, actor_id=actor_id,
                                              reason=_PLAN_CLOSE[reason])
    return ended


_PLAN_CLOSE = {ExitReason.withdrawn: "Domanda di lista d'attesa ritirata",
               ExitReason.deceased: "Decesso della persona",
               ExitReason.admitted_elsewhere: "Ingresso in unità d'offerta"}


async def close_for_death(session: AsyncSession, *, person_id: uuid.UUID) -> int:
    """System path, on `person.died`: the person leaves every list."""
    return len(await leave_every_list(session, person_id=person_id, action=EntryAction.die, note=None,
                                      actor_id=None))


async def withdraw_open_for_person(session: AsyncSession, *, person_id: uuid.UUID) -> int:
    """The person left the lists: their open offer (at most one) is withdrawn, dated on the offer row; the bed
    stays free for the next."""
    rows = list((await session.execute(sa.select(WaitingListOffer).where(
        WaitingListOffer.person_id == person_id, WaitingListOffer.state == OfferState.open.value)
        .with_for_update().execution_options(populate_existing=True))).scalars())
    for offer in rows:
        offer.state = OFFER.next_state(offer.state, OfferAction.withdraw)
        offer.closed_at = clock.now()
        await work_items.close_for_source(session, source_type=OFFER_ENTITY, source_id=offer.id)
    await session.flush()
    return len(rows)


async def before_person_merge(session: AsyncSession, *, kept_id: uuid.UUID, merged_id: uuid.UUID) -> None:
    """Runs before the entries and offers are re-pointed from the merged person to the kept one: where both have an
    open application of the same UDO type, the merged person's one ends (withdrawn, 'unita per fusione
    anagrafica'); where both hold an open offer, the merged person's one is withdrawn. So the partial unique
    indexes (one open application per type, one open offer per person) hold after the merge."""
    open_states = [s.value for s in OPEN_STATES]
    kept_types = set((await session.execute(sa.select(WaitingListEntry.udo_type).where(
        WaitingListEntry.person_id == kept_id, WaitingListEntry.state.in_(open_states)))).scalars())
    dupes = list((await session.execute(sa.select(WaitingListEntry).where(
        WaitingListEntry.person_id == merged_id, WaitingListEntry.state.in_(open_states),
        WaitingListEntry.udo_type.in_(sorted(kept_types))).order_by(WaitingListEntry.id).with_for_update()
        .execution_options(populate_existing=True))).scalars())
    now = clock.now()
    for entry in dupes:
        entry.state = ENTRY.next_state(entry.state, EntryAction.withdraw)
        entry.exit_reason, entry.exit_note, entry.exited_at = ExitReason.withdrawn, MERGE_NOTE, now
        await write_history(session, entry, "withdrawn", actor_id=None, detail={"cause": "person_merge",
                                                                                 "kept_id": str(kept_id)})
        await work_items.close_for_source(session, source_type=ENTITY, source_id=entry.id)
    kept_offer = (await session.execute(sa.select(WaitingListOffer.id).where(
        WaitingListOffer.person_id == kept_id, WaitingListOffer.state == OfferState.open.value))).first()
    merged_offer = sa.select(WaitingListOffer.id).where(WaitingListOffer.person_id == merged_id,
                                                        WaitingListOffer.state == OfferState.open.value)
    dropped = {e.id for e in dupes}
    for offer in (await session.execute(sa.select(WaitingListOffer).where(WaitingListOffer.id.in_(merged_offer))
                                        .with_for_update().execution_options(populate_existing=True))).scalars():
        if kept_offer is not None or offer.entry_id in dropped:
            offer.state, offer.closed_at = OFFER.next_state(offer.state, OfferAction.withdraw), now
            await work_items.close_for_source(session, source_type=OFFER_ENTITY, source_id=offer.id)
    await session.flush()


MERGE_NOTE = "Unita per fusione anagrafica"
