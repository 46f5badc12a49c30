"""VMD reads: one VMD with its assessors, responses and meetings (with the masking rule), the VMDs of a cartella
or a person (keyset pages), "my assessments" (the work-item queue), and the integration indicator."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.assessment import instruments, policy
from domain.assessment.models import EquipeMeeting, InstrumentResponse, Vmd, VmdAssessor, VmdState
from domain.assessment.service import CONTEXT, KIND_ASSESSMENT, load_readable
from domain.kernel import clock, work_items
from domain.kernel.errors import Invalid, NotFound
from domain.registry.models import Cartella, Person
from domain.territory.models import Organisation
from domain.security import audit
from domain.registry.policy import ConsentRequired
from domain.security.principal import Principal
from domain.registry import policy as registry_policy
from domain.security import directory
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


async def principal_sides(session: AsyncSession, principal: Principal) -> set[str]:
    """Sides of the organisations where the principal holds an active role."""
    orgs = list(principal.orgs_for())
    if not orgs:
        return set()
    return {str(s) for s in (await session.execute(
        sa.select(Organisation.side).where(Organisation.id.in_(orgs)).distinct())).scalars()}


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
    assessors = list((await session.execute(
        sa.select(VmdAssessor).where(VmdAssessor.vmd_id == vmd.id).order_by(VmdAssessor.added_at, VmdAssessor.id)
    )).scalars())
    rows = (await session.execute(
        sa.select(InstrumentResponse, Organisation.side)
        .join(Organisation, Organisation.id == InstrumentResponse.author_org_id)
        .where(InstrumentResponse.context_type == CONTEXT, InstrumentResponse.context_id == vmd.id)
        .order_by(InstrumentResponse.recorded_at, InstrumentResponse.id))).all()
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
    views = [ResponseView(response=r, author_side=str(side),
                          title=instrument_title(r.instrument_code, r.instrument_version),
                          masked=(r.id in sensitive_ids and not visible and r.author_id != principal.user_id))
             for r, side in rows]
    audit.record(action="read", object_type="vmd", object_ids=[vmd.id, *[v.response.id for v in views]],
                 person_ids=[vmd.person_id], result_count=len(views))
    return VmdView(vmd=vmd, assessors=assessors, responses=views, meetings=meetings, health_answers_visible=visible)


async def own_response_view(session: AsyncSession, r: InstrumentResponse) -> ResponseView:
    """The view of a response its author just recorded (never masked for the author)."""
    side = (await session.execute(sa.select(Organisation.side).where(Organisation.id == r.author_org_id))).scalar()
    return ResponseView(response=r, author_side=str(side) if side else None,
                        title=instrument_title(r.instrument_code, r.instrument_version), masked=False)


def _page(rows: list[Vmd], limit: int) -> tuple[list[Vmd], uuid.UUID | None]:
    nxt = rows[limit - 1].id if len(rows) > limit else None
    return rows[:limit], nxt


async def list_for_cartella(session: AsyncSession, *, principal: Principal, cartella_id: uuid.UUID,
                            limit: int = 50, cursor: uuid.UUID | None = None) -> tuple[list[Vmd], uuid.UUID | None]:
    """The VMDs of a cartella, newest first (uuid7 ids are time-ordered), keyset on id."""
    await registry_policy.cartella_in_scope(session, principal, cartella_id)
    limit = max(1, min(limit, MAX_PAGE))
    stmt = sa.select(Vmd).where(Vmd.cartella_id == cartella_id)
    if cursor is not None:
        stmt = stmt.where(Vmd.id < cursor)
    rows = list((await session.execute(stmt.order_by(Vmd.id.desc()).limit(limit + 1))).scalars())
    items, nxt = _page(rows, limit)
    audit.record(action="read", object_type="vmd", object_ids=[v.id for v in items], person_ids=[
        v.person_id for v in items], result_count=len(items))
    return items, nxt


async def list_for_person(session: AsyncSession, *, principal: Principal, person_id: uuid.UUID,
                          limit: int = 50, cursor: uuid.UUID | None = None) -> tuple[list[Vmd], uuid.UUID | None]:
    """The VMDs of a person on the cartelle the principal reaches, newest first, keyset on id."""
    person = await session.get(Person, person_id)
    for _ in range(5):  # a merged id resolves to the person it was merged into (VMDs were re-pointed there)
        if person is None or person.merged_into_id is None:
            break
        person = await session.get(Person, person.merged_into_id)
    if person is None:
        raise NotFound("Persona non trovata.")
    access = await registry_policy.person_access(session, principal, person.id, person.ambito_id)
    if not access.in_scope:
        if access.consent_missing:
            raise ConsentRequired("Consenso della persona assente o revocato per questa finalità.")
        raise NotFound("Persona non trovata.")
    limit = max(1, min(limit, MAX_PAGE))
    stmt = (sa.select(Vmd).join(Cartella, Cartella.id == Vmd.cartella_id)
            .where(Vmd.person_id == person.id, registry_policy.cartella_filter(principal)))
    if cursor is not None:
        stmt = stmt.where(Vmd.id < cursor)
    rows = list((await session.execute(stmt.order_by(Vmd.id.desc()).limit(limit + 1))).scalars())
    items, nxt = _page(rows, limit)
    audit.record(action="read", object_type="vmd", object_ids=[v.id for v in items], person_ids=[person.id],
                 result_count=len(items))
    return items, nxt


async def my_assessments(session: AsyncSession, *, principal: Principal, limit: int = 50,
                         cursor: str | None = None):
    """"My assessments": the principal's work-item queue filtered by kind `vmd.assessment` (one indexed query,
    sorted by due time)."""
    return await work_items.my_queue(session, principal=principal, kinds=[KIND_ASSESSMENT], limit=limit,
                                     cursor=cursor)


# ================================================================================================ indicator
@dataclass(frozen=True)
class IntegratedShare:
    numerator: int  # VMDs concluded in the period with `integrated` true
    denominator: int  # VMDs concluded in the period (cancelled ones never count)
    start: datetime
    end: datetime

    @property
    def share(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None


def _bounds(start: date | datetime, end: date | datetime) -> tuple[datetime, datetime]:
    """Dates are Europe/Rome calendar days, both included; datetimes are the half-open interval [start, end)."""
    if isinstance(start, datetime) != isinstance(end, datetime):
        raise Invalid("start", "indicare inizio e fine dello stesso tipo (date o istanti)")
    if isinstance(start, datetime):
        if start.tzinfo is None or end.tzinfo is None:  # type: ignore[union-attr]
            raise Invalid("start", "indicare il fuso orario")
        lo, hi = start, end
    else:
        lo, hi = clock.rome_period_bounds(start, end)  # type: ignore[arg-type]
    if hi <= lo:
        raise Invalid("end", "la fine del periodo precede l'inizio")
    return lo, hi  # type: ignore[return-value]


async def integrated_share(session: AsyncSession, *, ambito_id: uuid.UUID, start: date | datetime,
                           end: date | datetime, comune_id: uuid.UUID | None = None) -> IntegratedShare:
    """Integration indicator (target 50 % 2025, 75 % 2026, 100 % 2027): among the VMDs of the Ambito CONCLUDED in
    the period (by `concluded_at`), how many are integrated. Optionally for one owning comune of the cartella.
    One indexed query (ix_vmd_concluded)."""
    lo, hi = _bounds(start, end)
    stmt = (sa.select(sa.func.count().label("den"),
                      sa.func.count().filter(Vmd.integrated.is_(True)).label("num"))
            .select_from(Vmd)
            .where(Vmd.ambito_id == ambito_id, Vmd.state == VmdState.concluded.value,
                   Vmd.concluded_at >= lo, Vmd.concluded_at < hi))
    if comune_id is not None:
        stmt = stmt.join(Cartella, Cartella.id == Vmd.cartella_id).where(Cartella.owning_comune_id == comune_id)
    row = (await session.execute(stmt)).one()
    return IntegratedShare(numerator=int(row.num), denominator=int(row.den), start=lo, end=hi)


async def integrated_share_by_comune(session: AsyncSession, *, ambito_id: uuid.UUID, start: date | datetime,
                                     end: date | datetime) -> dict[uuid.UUID, tuple[int, int]]:
    """The same indicator stratified by the cartella's owning comune: {comune_id: (numerator, denominator)}."""
    lo, hi = _bounds(start, end)
    rows = (await session.execute(
        sa.select(Cartella.owning_comune_id, sa.func.count().filter(Vmd.integrated.is_(True)), sa.func.count())
        .select_from(Vmd).join(Cartella, Cartella.id == Vmd.cartella_id)
        .where(Vmd.ambito_id == ambito_id, Vmd.state == VmdState.concluded.value,
               Vmd.concluded_at >= lo, Vmd.concluded_at < hi)
        .group_by(Cartella.owning_comune_id))).all()
    return {c: (int(n), int(d)) for c, n, d in rows}


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
    outcome: str | None
    concluded_at: datetime | None
    integrated: bool


async def vmd_summary(session: AsyncSession, vmd_id: uuid.UUID) -> VmdSummary | None:
    v = await session.get(Vmd, vmd_id)
    if v is None:
        return None
    return VmdSummary(v.id, v.cartella_id, v.person_id, str(v.state), str(v.outcome) if v.outcome else None,
                      v.concluded_at, bool(v.integrated))


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
