"""VMD reads: one VMD with its assessors, responses and meetings (with the masking rule), the VMDs of a cartella
or a person (keyset pages), "my assessments" (the work-item queue); what the care plan and the PUA read of this
context; the facts the reporting context computes the integration indicator from."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.assessment import instruments, policy
from domain.assessment.models import EquipeMeeting, InstrumentResponse, Vmd, VmdAssessor
from domain.assessment.service import CONTEXT, KIND_ASSESSMENT, load_readable
from domain.kernel import work_items
from domain.kernel.errors import NotFound
from domain.registry import cartelle, persons
from domain.registry import policy as registry_policy
from domain.registry.policy import ConsentRequired
from domain.security import audit, directory
from domain.security.principal import Principal
from domain.territory import queries as territory

MAX_PAGE = 200


@dataclass
class ResponseView:
    response: InstrumentResponse
    author_side: str | None
    title: str | None
    masked: bool


@dataclass
class VmdView:
    vmd: Vmd
    assessors: list[VmdAssessor] = field(default_factory=list)
    responses: list[ResponseView] = field(default_factory=list)
    meetings: list[EquipeMeeting] = field(default_factory=list)
    health_answers_visible: bool = True  # False: ASST health-domain answers are masked for this reader
    view: str = "full"  # "summary": outcome, scores, dates and case manager only (policy.view_for)
    case_manager: directory.UserCard | None = None


async def principal_sides(session: AsyncSession, principal: Principal) -> set[str]:
    """Sides of the organisations where the principal holds an active role."""
    return set((await territory.org_sides(session, principal.orgs_for())).values())


async def has_share_asst_consent(session: AsyncSession, person_id: uuid.UUID) -> bool:
    return bool((await session.execute(sa.select(
        registry_policy.consent_active(sa.literal(person_id, sa.Uuid()), "share_asst")))).scalar())


def _definition_domains(code: str, version: int) -> list[str] | None:
    try:
        d = instruments.get(code, version)
    except NotFound:
        return None
    return [x.value for x in d.domains]


def instrument_title(code: str, version: int) -> str | None:
    try:
        return instruments.get(code, version).title
    except NotFound:
        return None


async def get_vmd(session: AsyncSession, *, principal: Principal, vmd_id: uuid.UUID) -> VmdView:
    """The VMD with assessors, responses and meetings.

    Masking rule (docs/decisions/vmd.md): answers that an ASST-side assessor gave to an instrument touching a
    health domain (policy.masked_domains: health, functional, cognitive) are shown to a reader with no ASST-side
    role only when the person has an active `share_asst` consent; otherwise `answers` is withheld and only the
    scores and bands are shown. Authors always see their own answers."""
    vmd = await load_readable(session, principal, vmd_id)
    view = await reader_view(session, principal, vmd.person_id, vmd.ambito_id)
    cartella = await cartelle.cartella_record(session, vmd.cartella_id)
    manager = cartella.case_manager_id if cartella is not None else None
    case_manager = (await directory.user_cards(session, [manager])).get(manager) if manager else None
    assessors = list((await session.execute(
        sa.select(VmdAssessor).where(VmdAssessor.vmd_id == vmd.id).order_by(VmdAssessor.added_at, VmdAssessor.id)
    )).scalars())
    responses = list((await session.execute(
        sa.select(InstrumentResponse)
        .where(InstrumentResponse.context_type == CONTEXT, InstrumentResponse.context_id == vmd.id)
        .order_by(InstrumentResponse.recorded_at, InstrumentResponse.id))).scalars())
    org_side = await territory.org_sides(session, (r.author_org_id for r in responses))
    rows = [(r, org_side.get(r.author_org_id)) for r in responses]
    meetings = list((await session.execute(
        sa.select(EquipeMeeting).where(EquipeMeeting.vmd_id == vmd.id)
        .order_by(EquipeMeeting.held_at, EquipeMeeting.id))).scalars())
    sensitive = [(r, str(side)) for r, side in rows
                 if policy.is_health_response(str(side), _definition_domains(r.instrument_code, r.instrument_version)
                                              or list(policy.masked_domains()))]
    visible = True
    if sensitive:
        visible = (bool(await principal_sides(session, principal) & policy.ASST_SIDES)
                   or await has_share_asst_consent(session, vmd.person_id))
    sensitive_ids = {r.id for r, _ in sensitive}
    summary = view == "summary"
    views = [ResponseView(response=r, author_side=str(side),
                          title=instrument_title(r.instrument_code, r.instrument_version),
                          masked=summary or (r.id in sensitive_ids and not visible
                                             and r.author_id != principal.user_id))
             for r, side in rows]
    audit.record(action="read", object_type="vmd", object_ids=[vmd.id, *[v.response.id for v in views]],
                 person_ids=[vmd.person_id], result_count=len(views))
    if summary:
        return VmdView(vmd=vmd, responses=views, health_answers_visible=False, view=view,
                       case_manager=case_manager)
    return VmdView(vmd=vmd, assessors=assessors, responses=views, meetings=meetings, health_answers_visible=visible,
                   view=view, case_manager=case_manager)


async def reader_view(session: AsyncSession, principal: Principal, person_id: uuid.UUID,
                      ambito_id: uuid.UUID) -> str:
    """"full" or "summary": what the principal sees of the VMDs of a person (policy.view_for)."""
    access = await registry_policy.person_access(session, principal, person_id, ambito_id)
    return policy.view_for(access.projection)


async def own_response_view(session: AsyncSession, r: InstrumentResponse) -> ResponseView:
    """The view of a response its author just recorded (never masked for the author)."""
    side = (await territory.org_sides(session, [r.author_org_id])).get(r.author_org_id)
    return ResponseView(response=r, author_side=str(side) if side else None,
                        title=instrument_title(r.instrument_code, r.instrument_version), masked=False)


def _page(rows: list[Vmd], limit: int) -> tuple[list[Vmd], uuid.UUID | None]:
    nxt = rows[limit - 1].id if len(rows) > limit else None
    return rows[:limit], nxt


async def list_for_cartella(session: AsyncSession, *, principal: Principal, cartella_id: uuid.UUID,
                            limit: int = 50, cursor: uuid.UUID | None = None
                            ) -> tuple[list[Vmd], uuid.UUID | None, str]:
    """The VMDs of a cartella, newest first (uuid7 ids are time-ordered), keyset on id, and the view the principal
    gets of them ("full" or "summary")."""
    cartella = await registry_policy.cartella_in_scope(session, principal, cartella_id)
    view = await reader_view(session, principal, cartella.person_id, cartella.ambito_id)
    limit = max(1, min(limit, MAX_PAGE))
    stmt = sa.select(Vmd).where(Vmd.cartella_id == cartella_id)
    if cursor is not None:
        stmt = stmt.where(Vmd.id < cursor)
    rows = list((await session.execute(stmt.order_by(Vmd.id.desc()).limit(limit + 1))).scalars())
    items, nxt = _page(rows, limit)
    audit.record(action="read", object_type="vmd", object_ids=[v.id for v in items], person_ids=[
        v.person_id for v in items], result_count=len(items))
    return items, nxt, view


async def list_for_person(session: AsyncSession, *, principal: Principal, person_id: uuid.UUID,
                          limit: int = 50, cursor: uuid.UUID | None = None
                          ) -> tuple[list[Vmd], uuid.UUID | None, str]:
    """The VMDs of a person on the cartelle the principal reaches, newest first, keyset on id, and the view the
    principal gets of them ("full" or "summary")."""
    person = await persons.person_record(session, person_id)
    for _ in range(5):  # a merged id resolves to the person it was merged into (VMDs were re-pointed there)
        if person is None or person.merged_into_id is None:
            break
        person = await persons.person_record(session, person.merged_into_id)
    if person is None:
        raise NotFound("Persona non trovata.")
    access = await registry_policy.person_access(session, principal, person.id, person.ambito_id)
    if not access.in_scope:
        if access.consent_missing:
            raise ConsentRequired("Consenso della persona assente o revocato per questa finalità.")
        raise NotFound("Persona non trovata.")
    limit = max(1, min(limit, MAX_PAGE))
    stmt = sa.select(Vmd).where(
        Vmd.person_id == person.id,
        Vmd.cartella_id.in_(registry_policy.readable_cartella_ids(principal, person_id=person.id)))
    if cursor is not None:
        stmt = stmt.where(Vmd.id < cursor)
    rows = list((await session.execute(stmt.order_by(Vmd.id.desc()).limit(limit + 1))).scalars())
    items, nxt = _page(rows, limit)
    audit.record(action="read", object_type="vmd", object_ids=[v.id for v in items], person_ids=[person.id],
                 result_count=len(items))
    return items, nxt, policy.view_for(access.projection)


async def my_assessments(session: AsyncSession, *, principal: Principal, limit: int = 50,
                         cursor: str | None = None):
    """"My assessments": the principal's work-item queue filtered by kind `vmd.assessment` (one indexed query,
    sorted by due time)."""
    return await work_items.my_queue(session, principal=principal, kinds=[KIND_ASSESSMENT], limit=limit,
                                     cursor=cursor)


def response_payload(view: ResponseView) -> dict[str, Any]:
    """The public shape of one response, masked when the rule says so (only scores and bands)."""
    r = view.response
    scores = (r.scores or {}).get("scores", {})
    return {
        "id": r.id, "instrument_code": r.instrument_code, "instrument_version": r.instrument_version,
        "instrument_title": view.title, "author_id": r.author_id, "author_org_id": r.author_org_id,
        "author_side": view.author_side, "recorded_at": r.recorded_at, "answers_masked": view.masked,
        "answers": None if view.masked else r.answers, "scores": scores,
        "outcomes": None if view.masked else (r.scores or {}).get("outcomes", {}),
        "outcome": None if view.masked else r.outcome,
    }


# ---------------------------------------------------------------------------------------------------- for the plan
@dataclass(frozen=True)
class VmdSummary:
    """What the care plan needs of the VMD it comes from (the plan context holds the cartella already)."""

    id: uuid.UUID
    cartella_id: uuid.UUID
    person_id: uuid.UUID
    state: str
    outcome: str | None  # the first of `outcomes` (kept for readers of the single value)
    concluded_at: datetime | None
    integrated: bool
    outcomes: tuple[str, ...] = ()  # every outcome, e.g. ("project_proposed", "measure_eligible")


async def vmd_summary(session: AsyncSession, vmd_id: uuid.UUID) -> VmdSummary | None:
    v = await session.get(Vmd, vmd_id)
    if v is None:
        return None
    return VmdSummary(v.id, v.cartella_id, v.person_id, str(v.state), str(v.outcome) if v.outcome else None,
                      v.concluded_at, bool(v.integrated), tuple(v.all_outcomes))


@dataclass(frozen=True)
class AssessorCard:
    user_id: uuid.UUID
    display_name: str
    profession: str | None
    organisation_name: str | None
    side: str


async def assessors_of(session: AsyncSession, vmd_id: uuid.UUID) -> list[AssessorCard]:
    """The equipe members who assessed the VMD, in the order they were added, with name and organisation."""
    rows = list((await session.execute(
        sa.select(VmdAssessor).where(VmdAssessor.vmd_id == vmd_id).order_by(VmdAssessor.added_at, VmdAssessor.id)
    )).scalars())
    cards = await directory.user_cards(session, (a.user_id for a in rows))
    names = await territory.org_names(session, (a.organisation_id for a in rows))
    return [AssessorCard(a.user_id, cards[a.user_id].display_name if a.user_id in cards else "—",
                         cards[a.user_id].profession if a.user_id in cards else None,
                         names.get(a.organisation_id), str(a.side)) for a in rows]


# ---------------------------------------------------------------------------------------------------- for the PUA
async def instrument_response(session: AsyncSession, response_id: uuid.UUID | None) -> InstrumentResponse | None:
    """One stored response by id (the PUA shows its own triage response in the full view of a request)."""
    return await session.get(InstrumentResponse, response_id) if response_id is not None else None


# ---------------------------------------------------------------------------------------------- for reporting
def vmd_facts() -> sa.Subquery:
    """What this context publishes for indicators, one row per VMD (a read-only projection the reporting context
    aggregates; it never selects the table): ambito_id, cartella_id, state, trigger, requested_at, concluded_at,
    integrated, residence_comune_id (the person's comune of residence at the request)."""
    return sa.select(Vmd.id, Vmd.ambito_id, Vmd.cartella_id, Vmd.state, Vmd.trigger, Vmd.requested_at,
                     Vmd.concluded_at, Vmd.integrated, Vmd.residence_comune_id).subquery("vmd_facts")


# ---------------------------------------------------------------------------------------- for the waiting lists
@dataclass(frozen=True)
class ListingEvidence:
    """What the equipe's listing decision checks of a VMD: signed by at least one assessor, with a Barthel score
    (the latest Barthel response recorded in this VMD)."""

    id: uuid.UUID
    person_id: uuid.UUID
    state: str
    trigger: str
    team_id: uuid.UUID
    signed: bool
    barthel: int | None
    application_date: Any
    due_at: datetime | None
    concluded_at: datetime | None


async def listing_evidence(session: AsyncSession, vmd_id: uuid.UUID) -> ListingEvidence | None:
    v = await session.get(Vmd, vmd_id)
    if v is None:
        return None
    signed = (await session.execute(sa.select(VmdAssessor.id).where(
        VmdAssessor.vmd_id == vmd_id, VmdAssessor.signed_at.is_not(None)).limit(1))).first() is not None
    scores = (await session.execute(
        sa.select(InstrumentResponse.scores).where(
            InstrumentResponse.context_type == CONTEXT, InstrumentResponse.context_id == vmd_id,
            InstrumentResponse.instrument_code == "barthel")
        .order_by(InstrumentResponse.recorded_at.desc(), InstrumentResponse.id.desc()).limit(1))).scalar()
    total = ((scores or {}).get("scores") or {}).get("total") or {}
    barthel = int(total["value"]) if total.get("value") is not None else None
    return ListingEvidence(v.id, v.person_id, str(v.state), str(v.trigger), v.team_id, signed, barthel,
                           v.application_date, v.due_at, v.concluded_at)
