"""PUA access requests: registration (accoglienza), first-level triage, orientation, withdrawal and cancellation.
The referrals (VMD, COT), which span the registry, the assessment context and the work items, are in flows.py.

Every change bumps `AccessRequest.version` and writes one `entity_history` row (entity_type "access_request").
Each open request has one `pua.triage` work item for the PUA team, completed when the request closes with an
orientation or a referral and cancelled when it is withdrawn or cancelled. Decisions behind the defaults (triage
due time, area of the cartella, COT choice, override rule, counters) are in docs/decisions/pua.md.
"""
from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.assessment import instruments
from domain.assessment import service as assessment
from domain.kernel import calendar, clock, history, work_items
from domain.kernel.errors import Conflict, Forbidden, Invalid, NotFound
from domain.kernel.settings import get_settings
from domain.pua import policy
from domain.pua.models import (
    CHANNEL_LABELS,
    AccessRequest,
    AccessState,
    Channel,
    RequesterKind,
)
from domain.pua.states import AccessAction, next_state
from domain.registry import cartelle
from domain.registry import persons as person_svc
from domain.registry.models import Area, PersonStatus
from domain.security import audit, directory
from domain.security.models import Role, TeamType
from domain.security.permissions import Permission
from domain.security.principal import Principal
from domain.territory import queries as territory
from domain.territory.models import OrgKind

ENTITY = "access_request"
TRIAGE_KIND = "pua.triage"
TRIAGE_INSTRUMENT = "pua_triage"
NEED_ITEM = "need_areas"  # the triage item whose options are the codes of `need_domains`
AGE_ITEM = "age"  # the triage item answered from the registry, not typed in
LIVES_ALONE_ITEM = "lives_alone"  # answered from the person's record when the operator leaves it out
TRIAGE_FROM_REGISTRY = "from_registry"  # key, in the detail of the triage's history row, of the items so answered

PUA_UNIT_TYPES = ("pua", "cdc")  # a PUA seat: the PUA unit or a Casa di Comunità
HOSPITAL_UNIT_TYPES = ("presidio", "reparto")
SOCIAL_SERVICE_ORG_KINDS = (OrgKind.comune, OrgKind.sub_ambito, OrgKind.ambito, OrgKind.ufficio_di_piano,
                            OrgKind.csc)

# Requester kind implied by a referral channel when not given.
CHANNEL_REQUESTER = {
    Channel.referral_mmg: RequesterKind.mmg, Channel.referral_hospital: RequesterKind.hospital,
    Channel.referral_social_worker: RequesterKind.social_worker, Channel.referral_ets: RequesterKind.ets,
}
REFERRAL_CHANNELS = frozenset(CHANNEL_REQUESTER)
# The path each closing action stands for (compared with the triage's suggested path).
# The triage's `cot` path is "Attivazione della COT (continuità ospedale-territorio) e VMD": the COT alone or the
# COT with a VMD both follow it.
ACTION_PATH = {AccessAction.orient: "orientation", AccessAction.refer_vmd: "vmd", AccessAction.refer_cot: "cot",
               AccessAction.refer_cot_vmd: "cot"}


# ---------------------------------------------------------------- configuration and time
def default_area(person, need_domains: list[str] | tuple[str, ...] = (), on: date | None = None) -> Area:
    """anziani from 65, minori_famiglia under 18; between them the area the request's needs point to when they all
    point to one (`PUA_ADULT_AREA_BY_NEED`: economic and housing needs → emarginazione_poverta), otherwise "non
    noto": an adult is never filed as disabled by default (docs/decisions/pua.md §2)."""
    age = calendar.age_on(person.birth_date, on or clock.today_rome())
    if age is None:
        raise Invalid("area", "la data di nascita della persona non è nota: indicare l'area della cartella")
    if age >= 65:
        return Area.anziani
    if age < 18:
        return Area.minori_famiglia
    by_need = get_settings().pua_adult_area_by_need
    areas = {by_need.get(d) for d in need_domains}
    if len(areas) == 1 and None not in areas:
        return Area(areas.pop())
    return Area.non_noto


# ---------------------------------------------------------------- shared helpers
async def write_history(session: AsyncSession, ar: AccessRequest, action: str, *, actor_id: uuid.UUID | None,
                        detail: dict[str, Any] | None = None, bump: bool = True) -> None:
    await history.record_change(session, ar, entity_type=ENTITY, action=action, actor_id=actor_id, detail=detail,
                                bump=bump, key="request")


async def load_for_work(session: AsyncSession, principal: Principal, request_id: uuid.UUID,
                        expected_version: int | None = None) -> AccessRequest:
    """A request of the principal's Ambito, locked, for a PUA operator (403 for anyone else)."""
    policy.ensure_pua_staff(principal)
    ar = (await session.execute(
        sa.select(AccessRequest).where(AccessRequest.id == request_id, policy.row_filter(principal))
        .with_for_update().execution_options(populate_existing=True)
    )).scalar_one_or_none()
    if ar is None:
        raise NotFound("Richiesta di accesso non trovata.")
    if expected_version is not None and expected_version != ar.version:
        raise Conflict("La richiesta è stata modificata da un'altra operazione: ricaricare e riprovare.",
                       current_version=ar.version)
    return ar


async def _active_user(session: AsyncSession, user_id: uuid.UUID, ambito_id: uuid.UUID,
                       roles: tuple[Role, ...] = ()) -> bool:
    return await directory.is_active_user(session, user_id, ambito_id, roles=roles or None)


async def pua_team(session: AsyncSession, *, ambito_id: uuid.UUID, location_org_id: uuid.UUID | None = None):
    """The PUA team of the Ambito (type `pua`): the one of the request's seat if several, else the first by code."""
    teams = await directory.teams_of_type(session, ambito_id, [TeamType.pua])
    if location_org_id is not None:
        for t in teams:
            if t.organisation_id == location_org_id:
                return t
    return teams[0] if teams else None


def audit_request(action: str, ar: AccessRequest) -> None:
    audit.record(action=action, object_type=ENTITY, object_ids=[ar.id], person_ids=[ar.person_id])


# ---------------------------------------------------------------- registration
@dataclass
class Registration:
    request: AccessRequest
    person_created: bool = False
    possible_duplicates: list[uuid.UUID] = field(default_factory=list)
    work_item: Any = None  # the `pua.triage` work item (a kernel row)


def need_domain_codes() -> list[str]:
    item = instruments.latest_active(TRIAGE_INSTRUMENT).item(NEED_ITEM)
    return [o.code for o in (item.options or [])] if item is not None else []


async def _location(session: AsyncSession, principal: Principal, given: uuid.UUID | None,
                    errors: list[tuple[str, str]]) -> uuid.UUID | None:
    amb = principal.ambito_id
    if given is not None:
        if not await territory.asst_units(session, amb, PUA_UNIT_TYPES, ids=[given]):
            errors.append(("location_org_id", "non è una sede PUA o una Casa di Comunità dell'Ambito"))
        return given
    mine = await territory.asst_units(session, amb, PUA_UNIT_TYPES, ids=principal.orgs_for())
    if len(mine) == 1:
        return mine[0].id
    puas = await territory.asst_units(session, amb, ["pua"])
    if len(mine) == 0 and len(puas) == 1:
        return puas[0].id
    errors.append(("location_org_id", "indicare la sede PUA della richiesta"))
    return None


async def _referrer_errors(session: AsyncSession, principal: Principal, channel: Channel,
                           user_id: uuid.UUID | None, org_id: uuid.UUID | None) -> list[tuple[str, str]]:
    """The referrer a referral channel needs (docs/decisions/pua.md §1)."""
    amb = principal.ambito_id
    if channel not in REFERRAL_CHANNELS:
        return [(f, "indicare un inviante solo per i canali di invio (referral_*)")
                for f, v in (("referring_user_id", user_id), ("referring_org_id", org_id)) if v is not None]
    errors: list[tuple[str, str]] = []
    org = await territory.active_org(session, org_id, amb) if org_id is not None else None
    if org_id is not None and org is None:
        return [("referring_org_id", "organizzazione non trovata nell'Ambito o non attiva")]
    if channel == Channel.referral_mmg:
        if user_id is None and org_id is None:
            errors.append(("referring_user_id", "per un invio del MMG indicare il medico (utente) o lo studio"))
        if user_id is not None and not await _active_user(session, user_id, amb, (Role.mmg,)):
            errors.append(("referring_user_id", "non è un MMG/PLS attivo dell'Ambito"))
        if org is not None and org.kind != OrgKind.mmg_practice:
            errors.append(("referring_org_id", "non è uno studio di medicina generale"))
    elif channel == Channel.referral_hospital:
        if org is None:
            errors.append(("referring_org_id", "per una segnalazione ospedaliera indicare il presidio o il reparto "
                                               "ASST"))
        elif org.kind != OrgKind.asst_unit or org.unit_type not in HOSPITAL_UNIT_TYPES:
            errors.append(("referring_org_id", "non è un presidio o un reparto ospedaliero dell'ASST"))
        if user_id is not None and not await _active_user(session, user_id, amb):
            errors.append(("referring_user_id", "operatore non trovato nell'Ambito o non attivo"))
    elif channel == Channel.referral_social_worker:
        if user_id is None and org_id is None:
            errors.append(("referring_user_id", "indicare l'assistente sociale (utente) o il servizio sociale"))
        if user_id is not None and not await _active_user(
                session, user_id, amb, (Role.comune_social_worker, Role.ambito_pua_social_worker, Role.csc_operator,
                                        Role.sub_ambito_coordinator)):
            errors.append(("referring_user_id", "non è un assistente sociale attivo dell'Ambito"))
        if org is not None and org.kind not in SOCIAL_SERVICE_ORG_KINDS:
            errors.append(("referring_org_id", "non è un comune o un servizio sociale dell'Ambito"))
    elif channel == Channel.referral_ets:
        if org is None:
            errors.append(("referring_org_id", "per un invio di un ETS indicare l'ente"))
        elif org.kind != OrgKind.ets:
            errors.append(("referring_org_id", "non è un ente del Terzo Settore"))
        if user_id is not None and not await _active_user(session, user_id, amb):
            errors.append(("referring_user_id", "operatore non trovato nell'Ambito o non attivo"))
    return errors


async def _existing_person(session: AsyncSession, principal: Principal, person_id: uuid.UUID):
    person = await person_svc.get_person(session, principal=principal, person_id=person_id)
    if person.status != PersonStatus.active or person.date_of_death is not None:
        raise Invalid("person_id", "la persona non è attiva (deceduta o unita a un'altra)")
    return person


async def _new_person(session: AsyncSession, principal: Principal, data) -> tuple[Any, list[uuid.UUID]]:
    try:
        if Permission.person_create not in principal.permissions:  # an MMG referral: automated path
            return await person_svc.find_or_create_person(session, principal=principal, data=data,
                                                          source="pua_mmg"), []
        result = await person_svc.create_person(session, principal=principal, data=data, source="pua")
    except Invalid as e:
        raise Invalid.many([(f"person.{x['field']}", x["reason"]) for x in e.errors]) from None
    dupes = [getattr(c.person, "id", None) for c in result.possible_duplicates]
    return result.person, [d for d in dupes if d is not None]


async def _linked_cartella(session: AsyncSession, person) -> uuid.UUID | None:
    """An open cartella the request belongs to, if the person already has one: the one of the default area, else
    the only one. None otherwise: the first level needs no cartella."""
    rows = await cartelle.open_cartelle_of(session, person.id)
    if not rows:
        return None
    try:
        area = default_area(person)
    except Invalid:
        area = None
    for cid, a in rows:
        if area is not None and a == area:
            return cid
    return rows[0][0] if len(rows) == 1 else None


async def register_request(session: AsyncSession, *, principal: Principal, data) -> Registration:
    """Register a request (registered). Checks everything before writing; a new person goes through the registry
    (identical identifier → 409 with `existing_id`; look-alikes registered and flagged)."""
    policy.ensure_can_register(principal)
    errors: list[tuple[str, str]] = []
    # An MMG referral names the patient: the registry finds them by identifier or registers them (automated path,
    # no look-alikes shown), so the MMG never browses the registry.
    mmg_referral = (data.person is not None and principal.has_role(Role.mmg)
                    and Channel(data.channel) == Channel.referral_mmg)
    if data.person is not None and Permission.person_create not in principal.permissions and not mmg_referral:
        raise Forbidden("Permesso mancante per registrare una nuova persona: person.create",
                        missing=["person.create"])
    if (data.person_id is None) == (data.person is None):
        errors.append(("person_id", "indicare una persona registrata (person_id) oppure una nuova (person), "
                                    "non entrambe"))
    channel = Channel(data.channel)
    referring_user_id = data.referring_user_id
    staff = policy.is_pua_staff(principal) or principal.has_role(Role.asst_front_desk)
    if principal.has_role(Role.mmg) and not staff:
        if channel != Channel.referral_mmg:
            errors.append(("channel", "un MMG/PLS registra solo invii del MMG (referral_mmg)"))
        elif referring_user_id is None:
            referring_user_id = principal.user_id
        elif referring_user_id != principal.user_id:
            errors.append(("referring_user_id", "un MMG/PLS invia a proprio nome"))
    requester_kind = data.requester_kind or CHANNEL_REQUESTER.get(channel)
    if requester_kind is None:
        errors.append(("requester_kind", "indicare chi presenta la richiesta"))
    allowed = need_domain_codes()
    domains: list[str] = []
    for i, code in enumerate(data.need_domains or []):
        if code not in allowed:
            errors.append((f"need_domains.{i}", f"ambito di bisogno sconosciuto (ammessi: {', '.join(allowed)})"))
        elif code not in domains:
            domains.append(code)
    if not (data.reported_need or "").strip():
        errors.append(("reported_need", "descrivere il bisogno riferito"))
    errors += await _referrer_errors(session, principal, channel, referring_user_id, data.referring_org_id)
    location = await _location(session, principal, data.location_org_id, errors)
    if errors:
        raise Invalid.many(errors)

    created, dupes = False, []
    if data.person_id is not None:
        person = await _existing_person(session, principal, data.person_id)
    else:
        person, dupes = await _new_person(session, principal, data.person)
        created = True
    now = clock.now()
    ar = AccessRequest(
        ambito_id=principal.ambito_id, person_id=person.id, cartella_id=await _linked_cartella(session, person),
        channel=channel, requester_kind=RequesterKind(requester_kind), requester_name=data.requester_name or None,
        requester_contact=data.requester_contact or None, referring_user_id=referring_user_id,
        referring_org_id=data.referring_org_id, reported_need=data.reported_need.strip(), need_domains=domains,
        location_org_id=location, operator_id=principal.user_id, residence_comune_id=person.residence_comune_id,
        state=AccessState.registered, registered_at=now,
        orientation={}, version=1)
    session.add(ar)
    await session.flush()
    await write_history(session, ar, "registered", actor_id=principal.user_id, bump=False,
                  detail={"person_created": created})
    team = await pua_team(session, ambito_id=ar.ambito_id, location_org_id=location)
    day = now.astimezone(clock.ROME).strftime("%d/%m/%Y")
    item = await work_items.create(
        session, kind=TRIAGE_KIND, title=f"Richiesta PUA da valutare del {day} ({CHANNEL_LABELS[channel.value]})",
        source_type=ENTITY, source_id=ar.id, ambito_id=ar.ambito_id,
        assignee_team_id=team.id if team else None, assignee_org_id=None if team else location,
        due_at=calendar.add_working_days(now, get_settings().pua_triage_due_working_days), person_id=person.id,
        cartella_id=ar.cartella_id,
        dedup_key=f"{TRIAGE_KIND}:{ar.id}", data={"access_request_id": str(ar.id), "channel": channel.value})
    audit_request("create", ar)
    return Registration(request=ar, person_created=created, possible_duplicates=dupes, work_item=item)


# ---------------------------------------------------------------- reception and triage
async def take_in_reception(session: AsyncSession, *, principal: Principal, request_id: uuid.UUID,
                            expected_version: int | None = None) -> AccessRequest:
    ar = await load_for_work(session, principal, request_id, expected_version)
    ar.state = next_state(ar.state, AccessAction.reception)
    ar.reception_at = clock.now()
    await write_history(session, ar, "reception", actor_id=principal.user_id)
    await work_items.start_for_source(session, source_type=ENTITY, source_id=ar.id, kinds=[TRIAGE_KIND])
    audit_request("update", ar)
    return ar


@dataclass(frozen=True)
class RegistryAnswers:
    answers: Any  # the answers with what the registry knows filled in
    from_registry: list[str]  # the items answered from the registry, not by the operator
    problems: list[tuple[str, str]]  # (field, reason) of items the registry should answer and cannot


async def registry_answers(session: AsyncSession, definition, person_id: uuid.UUID,
                           answers: Any) -> RegistryAnswers:
    """The triage items the registry already knows, answered from the person's record (docs/decisions/pua.md §1.2):
    - `age`: always the completed years on today's date (Europe/Rome) from the birth date; an age sent with the
      answers is replaced by it; no birth date in the registry is a problem on `answers.age`;
    - `lives_alone`: the record's value when the operator gives none; an explicit answer wins (the operator may
      know better today than the record)."""
    if not isinstance(answers, Mapping) or not any(definition.item(i) for i in (AGE_ITEM, LIVES_ALONE_ITEM)):
        return RegistryAnswers(answers, [], [])
    person = await person_svc.person_record(session, person_id)
    out, filled, problems = dict(answers), [], []
    if definition.item(AGE_ITEM) is not None:
        age = calendar.age_on(person.birth_date if person else None, clock.today_rome())
        if age is None:
            out.pop(AGE_ITEM, None)
            problems.append((f"answers.{AGE_ITEM}", "l'età si ricava dalla data di nascita, che in anagrafe manca: "
                                                    "registrarla prima della valutazione di primo livello"))
        else:
            out[AGE_ITEM] = age
            filled.append(AGE_ITEM)
    if (definition.item(LIVES_ALONE_ITEM) is not None and out.get(LIVES_ALONE_ITEM) is None
            and person is not None and person.lives_alone is not None):
        out[LIVES_ALONE_ITEM] = person.lives_alone
        filled.append(LIVES_ALONE_ITEM)
    return RegistryAnswers(out, filled, problems)


async def record_triage(session: AsyncSession, *, principal: Principal, request_id: uuid.UUID,
                        answers: dict[str, Any], instrument_version: int | None = None,
                        expected_version: int | None = None) -> tuple[AccessRequest, Any]:
    """First-level assessment with the active `pua_triage`: answers validated and scored by the engine (422
    naming `answers.<item>`, nothing written), stored as an InstrumentResponse; outcome and suggested path saved.
    The age is the person's, from the registry, never a figure typed in; whether the person lives alone comes
    from the registry when not given (`registry_answers`). The history row of the triage names the items answered
    from the registry (`detail.from_registry`)."""
    ar = await load_for_work(session, principal, request_id, expected_version)
    target = next_state(ar.state, AccessAction.triage)
    definition = instruments.get(TRIAGE_INSTRUMENT, instrument_version)
    instruments.ensure_accepts_answers(definition)
    known = await registry_answers(session, definition, ar.person_id, answers)
    answers, errors = known.answers, list(known.problems)
    try:
        result = instruments.submit(definition, answers)
    except Invalid as e:
        errors += [(x["field"], x["reason"]) for x in e.errors if x["field"] not in {f for f, _ in known.problems}]
    if errors:
        raise Invalid.many(errors)
    need = result.outcomes.get("need_level")
    path = result.outcomes.get("referral")
    response = await assessment.store_response(
        session, person_id=ar.person_id, context_type=ENTITY, context_id=ar.id, definition=definition,
        answers=answers, result=result, outcome=need.value if need else None, author_id=principal.user_id,
        author_org_id=policy.author_org(principal, ar.location_org_id))
    now = response.recorded_at
    ar.state = target
    ar.first_level_at = now
    ar.triage_response_id = response.id
    ar.complexity = need.value if need else None
    ar.suggested_path = path.value if path else ("vmd" if ar.complexity == "complex" else "orientation")
    await write_history(session, ar, "triage", actor_id=principal.user_id,
                  detail={"instrument": definition.code, "version": definition.version,
                          "complexity": ar.complexity, "suggested_path": ar.suggested_path,
                          "reasons": [r.code for r in (need.reasons if need else [])],
                          TRIAGE_FROM_REGISTRY: known.from_registry})
    audit_request("update", ar)
    audit.record(action="create", object_type="instrument_response", object_ids=[response.id],
                 person_ids=[ar.person_id])
    return ar, response


# ---------------------------------------------------------------- closing: orientation and referrals
def decision(ar: AccessRequest, action: AccessAction, override_reason: str | None) -> dict[str, Any]:
    """The operator may depart from the triage's suggestion only with a reason (docs/decisions/pua.md §4)."""
    path = ACTION_PATH[action]
    reason = (override_reason or "").strip() or None
    override = ar.suggested_path is not None and ar.suggested_path != path
    if override and reason is None:
        raise Invalid("override_reason", f"il triage suggerisce '{ar.suggested_path}': per scegliere '{path}' "
                                         "indicare il motivo")
    out: dict[str, Any] = {"action": path, "suggested_path": ar.suggested_path, "override": override}
    if reason:
        out["override_reason"] = reason
    return out


async def orient(session: AsyncSession, *, principal: Principal, request_id: uuid.UUID, data) -> AccessRequest:
    """Simple need: information given and/or a service or organisation suggested → oriented (closed)."""
    ar = await load_for_work(session, principal, request_id, data.version)
    target = next_state(ar.state, AccessAction.orient)
    chosen = decision(ar, AccessAction.orient, data.override_reason)
    info = (data.information_given or "").strip() or None
    external = (data.external_service or "").strip() or None
    errors: list[tuple[str, str]] = []
    if not any([info, data.service_type_code, data.organisation_id, external]):
        errors.append(("information_given", "indicare le informazioni date o il servizio/ente suggerito"))
    if data.service_type_code is not None:
        try:
            await territory.require_service_type(session, data.service_type_code, field="service_type_code")
        except Invalid as e:
            errors += [(x["field"], x["reason"]) for x in e.errors]
    if data.organisation_id is not None and await territory.active_org(session, data.organisation_id,
                                                                       ar.ambito_id) is None:
        errors.append(("organisation_id", "organizzazione non trovata nell'Ambito o non attiva"))
    if errors:
        raise Invalid.many(errors)
    now = clock.now()
    ar.orientation = {**chosen, "information_given": info, "service_type_code": data.service_type_code,
                      "organisation_id": str(data.organisation_id) if data.organisation_id else None,
                      "external_service": external, "notes": (data.notes or None), "by": str(principal.user_id),
                      "at": now.isoformat()}
    ar.state = target
    ar.closed_at = now
    await write_history(session, ar, "oriented", actor_id=principal.user_id)
    await work_items.close_for_source(session, source_type=ENTITY, source_id=ar.id, kinds=[TRIAGE_KIND], done=True,
                                      actor_id=principal.user_id)
    audit_request("update", ar)
    return ar


# ---------------------------------------------------------------- withdrawal and cancellation
async def _close_without_outcome(session: AsyncSession, principal: Principal, request_id: uuid.UUID, *,
                                 action: AccessAction, reason: str, expected_version: int | None) -> AccessRequest:
    ar = await load_for_work(session, principal, request_id, expected_version)
    target = next_state(ar.state, action)
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("reason", "indicare il motivo")
    ar.state = target
    ar.closed_at = clock.now()
    ar.close_reason = reason[:500]
    await write_history(session, ar, target.value, actor_id=principal.user_id)
    await work_items.close_for_source(session, source_type=ENTITY, source_id=ar.id, kinds=[TRIAGE_KIND])
    audit_request("update", ar)
    return ar


async def withdraw(session: AsyncSession, *, principal: Principal, request_id: uuid.UUID, reason: str,
                   expected_version: int | None = None) -> AccessRequest:
    """The person (or the requester) withdrew the request."""
    return await _close_without_outcome(session, principal, request_id, action=AccessAction.withdraw,
                                        reason=reason, expected_version=expected_version)


async def cancel(session: AsyncSession, *, principal: Principal, request_id: uuid.UUID, reason: str,
                 expected_version: int | None = None) -> AccessRequest:
    """The registration was an error or a duplicate: it leaves the counters (docs/decisions/pua.md §5)."""
    return await _close_without_outcome(session, principal, request_id, action=AccessAction.cancel,
                                        reason=reason, expected_version=expected_version)


DEATH_REASON = "Decesso della persona"


async def withdraw_open_for_person(session: AsyncSession, *, person_id: uuid.UUID, reason: str = DEATH_REASON) -> int:
    """System path (no principal): withdraw every open request of a person, e.g. on `person.died`. Idempotent."""
    rows = list((await session.execute(
        sa.select(AccessRequest).where(AccessRequest.person_id == person_id, AccessRequest.closed_at.is_(None))
        .order_by(AccessRequest.id).with_for_update().execution_options(populate_existing=True))).scalars())
    for ar in rows:
        ar.state = next_state(ar.state, AccessAction.withdraw)
        ar.closed_at = clock.now()
        ar.close_reason = reason
        await write_history(session, ar, "withdrawn_by_system", actor_id=None)
        await work_items.close_for_source(session, source_type=ENTITY, source_id=ar.id, kinds=[TRIAGE_KIND])
    return len(rows)
