"""De-duplication as a workflow: look-alikes found on every create path become `possible_match` rows and work
items for the data stewards, who merge the pair or declare it two different persons.

Score in [0, 1] (see docs/decisions/persons.md):

    score = 0.4·name + 0.4·birth + 0.1·sex + 0.1·birthplace        (× 0.6 when both have different codici fiscali)

    name       pg_trgm similarity of "surname given_name" (word order does not matter to trigrams)
    birth      equal 1 · day and month swapped 0.8 · same year 0.5 · unknown on either side 0.5 · different 0
    sex/place  equal 1 · unknown on either side 0.5 · different 0

Only persons whose name similarity reaches DEDUP_NAME_SIMILARITY_FLOOR are considered (trigram `%` operator on
the GIN index); a pair becomes a match when the score reaches DEDUP_CANDIDATE_THRESHOLD.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import aliased

from domain.kernel import clock, history, person_refs, work_items
from domain.kernel.errors import Conflict, Invalid, NotFound
from domain.kernel.ids import new_id
from domain.kernel.settings import get_settings
from domain.kernel.validity import overlaps
from domain.registry import codice_fiscale as cfmod
from domain.registry.models import (
    EXCLUSIVE_LEGAL_KINDS,
    MatchStatus,
    Person,
    PersonMerge,
    PersonRelation,
    PersonStatus,
    PossibleMatch,
)
from domain.security.principal import Principal

WORK_ITEM_KIND = "registry.possible_match"
SOURCE_TYPE = "possible_match"
MAX_CANDIDATES = 20
SUMMARY_COLUMNS = (Person.id, Person.codice_fiscale, Person.other_identifier_type, Person.other_identifier,
                   Person.surname, Person.given_name, Person.sex, Person.birth_date, Person.birth_place_code,
                   Person.birth_place_name, Person.residence_comune_id, Person.date_of_death)
W_NAME, W_BIRTH, W_SEX, W_PLACE, CF_DIFFERENT_FACTOR = 0.4, 0.4, 0.1, 0.1, 0.6
# The predicate of the partial indexes ix_person_nocf_* spelled as they are, not as bound parameters: a prepared
# statement's generic plan can use a partial index only when the query states its predicate literally.
UNCODED = sa.text("person.codice_fiscale is null and person.status = 'active'")


@dataclass(frozen=True)
class Probe:
    surname: str
    given_name: str
    birth_date: date | None = None
    sex: str | None = None
    birth_place_code: str | None = None
    codice_fiscale: str | None = None

    @classmethod
    def of(cls, p: Any) -> Probe:
        sex = getattr(p, "sex", None)
        cf = getattr(p, "codice_fiscale", None)
        return cls(surname=p.surname, given_name=p.given_name, birth_date=getattr(p, "birth_date", None),
                   sex=getattr(sex, "value", sex), birth_place_code=getattr(p, "birth_place_code", None),
                   codice_fiscale=cfmod.normalize(cf) if cf else None)

    @property
    def name(self) -> str:
        return f"{self.surname} {self.given_name}"


@dataclass
class Candidate:
    person: Any  # a row with the SUMMARY_COLUMNS
    score: float
    reasons: dict[str, Any]
    match_id: uuid.UUID | None = field(default=None)


def birth_component(a: date | None, b: date | None) -> tuple[float, str]:
    if a is None or b is None:
        return 0.5, "unknown"
    if a == b:
        return 1.0, "equal"
    if a.year == b.year and a.month == b.day and a.day == b.month:
        return 0.8, "day_month_swapped"
    if a.year == b.year:
        return 0.5, "same_year"
    return 0.0, "different"


def _eq_component(a: str | None, b: str | None) -> tuple[float, str]:
    if not a or not b:
        return 0.5, "unknown"
    return (1.0, "equal") if a == b else (0.0, "different")


def score(probe: Probe, row: Any, name_similarity: float) -> tuple[float, dict[str, Any]]:
    birth, birth_why = birth_component(probe.birth_date, row.birth_date)
    sex, sex_why = _eq_component(probe.sex, getattr(row.sex, "value", row.sex))
    place, place_why = _eq_component(probe.birth_place_code, row.birth_place_code)
    value = W_NAME * name_similarity + W_BIRTH * birth + W_SEX * sex + W_PLACE * place
    reasons: dict[str, Any] = {"name": round(float(name_similarity), 3), "birth_date": birth_why, "sex": sex_why,
                               "birth_place": place_why}
    if probe.codice_fiscale and row.codice_fiscale and probe.codice_fiscale != row.codice_fiscale:
        value *= CF_DIFFERENT_FACTOR
        reasons["codice_fiscale"] = ("omocode_variant" if cfmod.base_code(probe.codice_fiscale)
                                     == cfmod.base_code(row.codice_fiscale) else "different")
    return round(min(max(value, 0.0), 1.0), 4), reasons


_SCANS_OFF = "dedup.seqscan_off"


async def set_similarity_threshold(session, value: float) -> None:
    """pg_trgm's `%` operator (the one the GIN index serves) reads this transaction-local setting. Sequential scans
    are turned off until `_scans_back` for the candidates' query: the planner prices `%` like any operator and
    picks a scan that computes trigrams for every person of a small registry (40 ms at 20,000 persons) over the
    trigram index (2-5 ms); from a few hundred thousand persons on it picks the index by itself. Plans are made for
    the values at hand: asyncpg prepares statements, and after five runs a generic plan (blind to the birth year and
    the name) took 130 ms where the custom one takes 15."""
    await session.execute(sa.select(sa.func.set_config("pg_trgm.similarity_threshold", str(float(value)), True),
                                    sa.func.set_config("enable_seqscan", "off", True),
                                    sa.func.set_config("plan_cache_mode", "force_custom_plan", True)))
    session.info[_SCANS_OFF] = True


async def _scans_back(session) -> None:
    if session.info.pop(_SCANS_OFF, False):
        await session.execute(sa.select(sa.func.set_config("enable_seqscan", "on", True),
                                        sa.func.set_config("plan_cache_mode", "auto", True)))


def min_name_similarity(birth: float, *, threshold: float, floor: float) -> float:
    """The lowest name similarity that can still reach `threshold` when the birth component is `birth` and sex and
    birthplace agree: candidates below it need not be fetched."""
    return max(floor, (threshold - W_BIRTH * birth - W_SEX - W_PLACE) / W_NAME)


async def find_candidates(session, *, ambito_id: uuid.UUID, probe: Probe, exclude_ids=(),
                          threshold: float | None = None, limit: int = MAX_CANDIDATES) -> list[Candidate]:
    """Active persons of the Ambito that may be the probe, best first, score ≥ threshold.

    Fetching is bounded by what can still reach the threshold: with a birth date, persons born in the same year
    (or with no birth date) come from the birth-date index with their name similarity computed; persons born in
    another year need an almost identical name and come from the trigram index with that high threshold. Without
    a birth date, the trigram index is used with the threshold that an 'unknown' birth date allows."""
    s = get_settings()
    threshold = s.dedup_candidate_threshold if threshold is None else threshold
    floor = s.dedup_name_similarity_floor
    q = sa.func.lower(sa.literal(probe.name, sa.Text))
    sim = sa.func.similarity(Person.name_search, q)
    base = [Person.ambito_id == ambito_id, Person.status == PersonStatus.active.value]
    if exclude_ids:
        base.append(Person.id.not_in(list(exclude_ids)))
    parts = []
    if probe.codice_fiscale and probe.birth_date is not None and not _reaches_coded(0.5, threshold):
        # A coded probe: a person with another codice fiscale scores CF_DIFFERENT_FACTOR × at most, which only the
        # same birth date (or day and month swapped) can bring to the threshold; only the persons without a
        # codice fiscale are scored in full, and they come from their own partial indexes. Same candidates as the
        # general search below, without reading every name of the birth year.
        bd = probe.birth_date
        sw = swapped_date(bd)
        dates = [bd, *([sw] if sw not in (None, bd) and _reaches_coded(0.8, threshold) else [])]
        near = sim >= sa.literal(floor, sa.Float)
        parts.append(sa.select(Person.id).where(*base, Person.birth_date.in_(dates), near))
        uncoded = [*base, UNCODED]
        parts.append(sa.select(Person.id).where(*uncoded, Person.birth_date.between(date(bd.year, 1, 1),
                                                                                    date(bd.year, 12, 31)), near))
        parts.append(sa.select(Person.id).where(*uncoded, Person.birth_date.is_(None), near))
        await set_similarity_threshold(session, min_name_similarity(0.0, threshold=threshold, floor=floor))
        parts.append(sa.select(Person.id).where(*uncoded, Person.name_search.op("%")(q)).limit(500))
        return await _scored(session, probe, parts, sim, threshold, limit)
    if probe.birth_date is not None:
        # Same year (equal, day/month swapped, same year) or unknown birth date: from ix_person_birth_name, an
        # index-only scan that computes the similarity on the included name.
        y = probe.birth_date.year
        near = sim >= sa.literal(floor, sa.Float)
        parts.append(sa.select(Person.id).where(*base, Person.birth_date.between(date(y, 1, 1), date(y, 12, 31)),
                                                near))
        parts.append(sa.select(Person.id).where(*base, Person.birth_date.is_(None), near))
        min_sim = min_name_similarity(0.0, threshold=threshold, floor=floor)  # born in another year
    else:
        min_sim = min_name_similarity(0.5, threshold=threshold, floor=floor)  # every birth date is 'unknown'
    if min_sim <= 1.0:
        await set_similarity_threshold(session, min_sim)
        parts.append(sa.select(Person.id).where(*base, Person.name_search.op("%")(q)).limit(500))
    return await _scored(session, probe, parts, sim, threshold, limit)


async def candidates_many(session, *, ambito_id: uuid.UUID, probes: list[Probe],
                          threshold: float | None = None) -> list[list[Candidate]] | None:
    """The candidates of many coded probes (each with a codice fiscale and a birth date) in one statement, the same
    ones `find_candidates` finds for each (see its coded branch). None when the settings make the shortcut
    inexact (then each probe goes through `find_candidates`). Does not look among the probes themselves."""
    s = get_settings()
    threshold = s.dedup_candidate_threshold if threshold is None else threshold
    floor = s.dedup_name_similarity_floor
    if not probes:
        return []
    if _reaches_coded(0.5, threshold) or not all(p.codice_fiscale and p.birth_date for p in probes):
        return None
    swap_ok = _reaches_coded(0.8, threshold)
    src = sa.select(sa.func.unnest(sa.cast([i for i in range(len(probes))], ARRAY(sa.Integer))).label("i"),
                    sa.func.unnest(sa.cast([x.name.lower() for x in probes], ARRAY(sa.Text))).label("name"),
                    sa.func.unnest(sa.cast([x.birth_date for x in probes], ARRAY(sa.Date))).label("bd"),
                    sa.func.unnest(sa.cast([swapped_date(x.birth_date) if swap_ok else None for x in probes],
                                           ARRAY(sa.Date))).label("sw"),
                    sa.func.unnest(sa.cast([date(x.birth_date.year, 1, 1) for x in probes], ARRAY(sa.Date))
                                   ).label("y0"),
                    sa.func.unnest(sa.cast([date(x.birth_date.year, 12, 31) for x in probes], ARRAY(sa.Date))
                                   ).label("y1")).subquery("p")
    sim = sa.func.similarity(Person.name_search, src.c.name)
    near = sim >= sa.literal(floor, sa.Float)
    base = [Person.ambito_id == ambito_id, Person.status == PersonStatus.active.value]
    same_date = (sa.select(src.c.i, Person.id).select_from(src).join(
        Person, sa.and_(*base, Person.birth_date.in_([src.c.bd, src.c.sw]), near)))
    uncoded = (sa.select(src.c.i, Person.id).select_from(src).join(Person, sa.and_(
        *base, UNCODED, sa.or_(sa.and_(sa.or_(Person.birth_date.between(src.c.y0, src.c.y1),
                                              Person.birth_date.is_(None)), near),
                               Person.name_search.op("%")(src.c.name)))))
    await set_similarity_threshold(session, min_name_similarity(0.0, threshold=threshold, floor=floor))
    pairs = sa.union_all(same_date, uncoded).subquery("pairs")  # not UNION: see _scored
    rows = (await session.execute(
        sa.select(pairs.c.i, *SUMMARY_COLUMNS, sa.func.similarity(Person.name_search, src.c.name).label("sim"))
        .select_from(pairs).join(Person, Person.id == pairs.c.id).join(src, src.c.i == pairs.c.i))).all()
    await _scans_back(session)
    out: list[list[Candidate]] = [[] for _ in probes]
    for r in {(r.i, r.id): r for r in rows}.values():
        value, reasons = score(probes[r.i], r, r.sim)
        if value >= threshold:
            out[r.i].append(Candidate(person=r, score=value, reasons=reasons))
    for found in out:
        found.sort(key=lambda c: (-c.score, str(c.person.id)))
        del found[MAX_CANDIDATES:]
    return out


def swapped_date(d: date) -> date | None:
    """The date with day and month exchanged (None when that is no date), which scores as 'day_month_swapped'."""
    try:
        return date(d.year, d.day, d.month)
    except ValueError:
        return None


def _reaches_coded(birth: float, threshold: float) -> bool:
    """Whether a person with a different codice fiscale and this birth component can reach the threshold."""
    return CF_DIFFERENT_FACTOR * (W_NAME + W_BIRTH * birth + W_SEX + W_PLACE) >= threshold


async def _scored(session, probe: Probe, parts: list, sim, threshold: float, limit: int) -> list[Candidate]:
    # UNION ALL: the IN removes duplicates anyway, and a UNION would want every part sorted by id, which the planner
    # then reads from the primary key, testing `%` on every person instead of asking the trigram index.
    ids = sa.union_all(*parts) if len(parts) > 1 else parts[0]
    stmt = (sa.select(*SUMMARY_COLUMNS, sim.label("name_similarity")).where(Person.id.in_(ids))
            .order_by(sim.desc(), Person.id).limit(500))
    found = {r.id: r for r in (await session.execute(stmt)).all()}
    await _scans_back(session)
    out: list[Candidate] = []
    for row in found.values():
        value, reasons = score(probe, row, row.name_similarity)
        if value >= threshold:
            out.append(Candidate(person=row, score=value, reasons=reasons))
    out.sort(key=lambda c: (-c.score, str(c.person.id)))
    return out[:limit]


async def flag(session, *, ambito_id: uuid.UUID, person_id: uuid.UUID, candidates: list[Candidate],
               source: str) -> None:
    """One pending match (ordered pair) and one steward work item per candidate; sets `candidate.match_id`."""
    for c in candidates:
        c.match_id = await _ensure_match(session, ambito_id=ambito_id, x=person_id, y=c.person.id, score=c.score,
                                         reasons=c.reasons, source=source, new_person_id=person_id)


async def _ensure_match(session, *, ambito_id, x, y, score, reasons, source, new_person_id) -> uuid.UUID:
    a, b = sorted((x, y))
    match_id = new_id()
    inserted = (await session.execute(
        pg_insert(PossibleMatch).values(id=match_id, ambito_id=ambito_id, person_a_id=a, person_b_id=b,
                                        score=score, reasons=reasons, status=MatchStatus.pending.value,
                                        source=source, created_at=clock.now())
        .on_conflict_do_nothing(index_elements=["person_a_id", "person_b_id"])
        .returning(PossibleMatch.id)
    )).scalar_one_or_none()
    if inserted is None:  # the pair was already known: keep its decision
        return (await session.execute(
            sa.select(PossibleMatch.id).where(PossibleMatch.person_a_id == a, PossibleMatch.person_b_id == b)
        )).scalar_one()
    await work_items.create(session, kind=WORK_ITEM_KIND, title="Possibile duplicato in anagrafica da verificare",
                            source_type=SOURCE_TYPE, source_id=inserted, ambito_id=ambito_id,
                            assignee_org_id=ambito_id, person_id=new_person_id,
                            dedup_key=f"{SOURCE_TYPE}:{inserted}", data={"score": score})
    return inserted


async def check(session, *, principal: Principal, data) -> tuple[uuid.UUID | None, list[Candidate]]:
    """Duplicates check without registering: the person with the same codice fiscale, and the look-alikes."""
    existing = None
    probe = Probe.of(data)
    if probe.codice_fiscale:
        try:
            probe = Probe(**{**probe.__dict__, "codice_fiscale": cfmod.validated(probe.codice_fiscale)})
        except Invalid:
            pass  # a malformed code only disables the exact lookup; the fuzzy search still runs
        existing = (await session.execute(
            sa.select(Person.id).where(Person.ambito_id == principal.ambito_id,
                                       Person.status == PersonStatus.active.value,
                                       Person.codice_fiscale == probe.codice_fiscale)
        )).scalar_one_or_none()
    candidates = await find_candidates(session, ambito_id=principal.ambito_id, probe=probe)
    return existing, candidates


# ---------------------------------------------------------------- steward queue
def _summary(alias) -> list:
    return [getattr(alias, c.key).label(f"{c.key}") for c in SUMMARY_COLUMNS]


async def _match_rows(session, principal: Principal, *where, order=None, limit=None):
    pa, pb = aliased(Person), aliased(Person)
    stmt = (sa.select(PossibleMatch, pa, pb)
            .join(pa, pa.id == PossibleMatch.person_a_id).join(pb, pb.id == PossibleMatch.person_b_id)
            .where(PossibleMatch.ambito_id == principal.ambito_id, *where))
    if order is not None:
        stmt = stmt.order_by(*order)
    if limit is not None:
        stmt = stmt.limit(limit)
    return (await session.execute(stmt)).all()


async def pending_queue(session, *, principal: Principal, limit: int = 50, after: tuple[float, uuid.UUID] | None = None,
                        status: str = MatchStatus.pending.value):
    """Matches waiting for a decision, highest score first (keyset on score, id)."""
    where = [PossibleMatch.status == status]
    if after is not None:
        s, i = after
        where.append(sa.or_(PossibleMatch.score < s, sa.and_(PossibleMatch.score == s, PossibleMatch.id > i)))
    rows = await _match_rows(session, principal, *where, order=(PossibleMatch.score.desc(), PossibleMatch.id),
                             limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = (rows[-1][0].score, rows[-1][0].id) if more and rows else None
    return rows, nxt


async def get_match(session, *, principal: Principal, match_id: uuid.UUID):
    rows = await _match_rows(session, principal, PossibleMatch.id == match_id)
    if not rows:
        raise NotFound("Coppia di possibili duplicati non trovata.")
    return rows[0]


# ---------------------------------------------------------------- decisions
@dataclass
class DecisionOutcome:
    match: PossibleMatch
    kept_id: uuid.UUID | None = None
    merged_id: uuid.UUID | None = None
    repointed: dict[str, int] = field(default_factory=dict)


async def decide(session, *, principal: Principal, match_id: uuid.UUID, data) -> DecisionOutcome:
    match = (await session.execute(
        sa.select(PossibleMatch).where(PossibleMatch.id == match_id, PossibleMatch.ambito_id == principal.ambito_id)
        .with_for_update()
    )).scalar_one_or_none()
    if match is None:
        raise NotFound("Coppia di possibili duplicati non trovata.")
    if match.status != MatchStatus.pending.value:
        raise Conflict("La coppia è già stata decisa.", match_status=match.status)
    decision = data.decision
    outcome = DecisionOutcome(match=match)
    if decision == "merge":
        if data.keep_id is None:
            raise Invalid("keep_id", "obbligatorio per l'unione")
        if data.keep_id not in (match.person_a_id, match.person_b_id):
            raise Invalid("keep_id", "deve essere una delle due persone della coppia")
        merged_id = match.person_b_id if data.keep_id == match.person_a_id else match.person_a_id
        record = await merge_persons(session, principal=principal, kept_id=data.keep_id, merged_id=merged_id,
                                     reason=data.reason, match_id=match.id)
        match.status = MatchStatus.merged.value
        outcome.kept_id, outcome.merged_id = data.keep_id, merged_id
        outcome.repointed = {k: v for k, v in record.repointed.items() if isinstance(v, int)}
    elif decision == "not_duplicate":
        if data.keep_id is not None:
            raise Invalid("keep_id", "solo per l'unione")
        match.status = MatchStatus.not_duplicate.value
    else:  # the schema allows only the two values
        raise Invalid("decision", "decisione sconosciuta")
    match.decided_by = principal.user_id
    match.decided_at = clock.now()
    match.decision_reason = data.reason
    await session.flush()
    # whoever in the Ambito took the pair decides it: the steward items are done, whoever they were assigned to
    await work_items.close_for_source(session, source_type=SOURCE_TYPE, source_id=match.id, done=True,
                                      actor_id=principal.user_id)
    return outcome


# Fields copied from the merged person when the kept one lacks them (pairs travel together).
_FILL_SINGLE = ("sex", "birth_date", "birth_place_code", "birth_place_name", "citizenship", "lives_alone",
                "date_of_death")
_FILL_PAIRS = (("other_identifier_type", "other_identifier"), ("residence_comune_id", "residence_address"),
               ("domicile_comune_id", "domicile_address"))


def _fill_gaps(kept: Person, merged: Person) -> list[str]:
    filled: list[str] = []
    if not kept.codice_fiscale and merged.codice_fiscale:
        try:
            cfmod.check(merged.codice_fiscale, birth_date=kept.birth_date, sex=kept.sex,
                        birth_place_code=kept.birth_place_code)
        except Invalid:
            pass  # inconsistent with what the kept person says: the steward corrects it by hand
        else:
            kept.codice_fiscale = merged.codice_fiscale
            filled.append("codice_fiscale")
    for f in _FILL_SINGLE:
        if getattr(kept, f) is None and getattr(merged, f) is not None:
            setattr(kept, f, getattr(merged, f))
            filled.append(f)
    for pair in _FILL_PAIRS:
        if all(getattr(kept, f) is None for f in pair) and any(getattr(merged, f) is not None for f in pair):
            for f in pair:
                setattr(kept, f, getattr(merged, f))
            filled.extend(pair)
    extra = {k: v for k, v in (merged.contacts or {}).items() if k not in (kept.contacts or {})}
    if extra:
        kept.contacts = {**(kept.contacts or {}), **extra}
        filled.append("contacts")
    if merged.homeless and not kept.homeless and kept.residence_comune_id is None:
        kept.homeless, kept.fictitious_residence = True, merged.fictitious_residence
        filled.append("homeless")
    return filled


async def _legal_clash(session, kept_id: uuid.UUID, merged_id: uuid.UUID) -> bool:
    rows = (await session.execute(
        sa.select(PersonRelation.person_id, PersonRelation.valid_from, PersonRelation.valid_to)
        .where(PersonRelation.person_id.in_([kept_id, merged_id]), PersonRelation.kind.in_(EXCLUSIVE_LEGAL_KINDS))
    )).all()
    mine = [r for r in rows if r.person_id == kept_id]
    theirs = [r for r in rows if r.person_id == merged_id]
    return any(overlaps(a.valid_from, a.valid_to, b.valid_from, b.valid_to) for a in mine for b in theirs)


async def merge_persons(session, *, principal: Principal, kept_id: uuid.UUID, merged_id: uuid.UUID, reason: str,
                        match_id: uuid.UUID | None = None) -> PersonMerge:
    """Merge `merged_id` into `kept_id`: every registered reference is re-pointed (person_refs), the merged person
    stays as a tombstone (`status=merged`, `merged_into_id`) so its old id still resolves, and a PersonMerge row
    records who, why and how many rows moved."""
    if kept_id == merged_id:
        raise Invalid("keep_id", "le due persone coincidono")
    rows = (await session.execute(
        sa.select(Person).where(Person.id.in_(sorted([kept_id, merged_id])), Person.ambito_id == principal.ambito_id)
        .order_by(Person.id).with_for_update()
    )).scalars().all()
    by_id = {p.id: p for p in rows}
    if len(by_id) != 2:
        raise NotFound("Persona non trovata.")
    kept, merged = by_id[kept_id], by_id[merged_id]
    if kept.status != PersonStatus.active.value or merged.status != PersonStatus.active.value:
        raise Conflict("Una delle due persone è già stata unita a un'altra: verificare la coppia aggiornata.")
    if await _legal_clash(session, kept_id, merged_id):
        raise Conflict("Entrambe le persone hanno un tutore o un amministratore di sostegno nello stesso periodo: "
                       "chiudere una delle due nomine prima dell'unione.")
    now = clock.now()

    # The tombstone first: it frees the unique identifier indexes before the kept person may take them over.
    merged.status = PersonStatus.merged.value
    merged.merged_into_id = kept.id
    merged.version += 1
    merged.updated_at = now
    await session.flush()
    filled = _fill_gaps(kept, merged)
    kept.version += 1
    kept.updated_at = now
    kept.needs_review = False if not merged.needs_review else kept.needs_review
    await session.flush()

    # Earlier merges into the merged person now point at the kept one (one hop to resolve any old id).
    chained = (await session.execute(
        sa.update(Person).where(Person.merged_into_id == merged.id).values(merged_into_id=kept.id)
    )).rowcount
    counts = await person_refs.repoint_all(session, kept_id=kept.id, merged_id=merged.id)
    self_rel = (await session.execute(
        sa.delete(PersonRelation).where(PersonRelation.person_id == kept.id,
                                        PersonRelation.related_person_id == kept.id)
    )).rowcount
    superseded = await _supersede_matches(session, principal=principal, kept_id=kept.id, merged_id=merged.id,
                                          except_match_id=match_id)
    repointed: dict[str, Any] = dict(counts)
    repointed["person.merged_into_id"] = chained
    if self_rel:
        repointed["person_relation.self_removed"] = self_rel
    if superseded:
        repointed["possible_match.superseded"] = superseded
    record = PersonMerge(kept_id=kept.id, merged_id=merged.id, match_id=match_id, reason=reason,
                         by_user_id=principal.user_id, repointed={**repointed, "filled": filled}, at=now)
    session.add(record)
    await session.flush()
    await history.record(session, entity_type="person", entity_id=kept.id, version=kept.version,
                         action="merge_kept", data={"state": history.snapshot(kept), "merged_id": str(merged.id),
                                                    "filled": filled, "reason": reason},
                         actor_id=principal.user_id)
    await history.record(session, entity_type="person", entity_id=merged.id, version=merged.version,
                         action="merged", data={"state": history.snapshot(merged), "merged_into_id": str(kept.id),
                                                "reason": reason},
                         actor_id=principal.user_id)
    return record


async def _supersede_matches(session, *, principal: Principal, kept_id, merged_id, except_match_id) -> int:
    """Pending matches of the merged person are replaced by matches on the kept person (their work items are
    cancelled and new ones created), so the queue never shows a pair with a tombstone."""
    stale = (await session.execute(
        sa.select(PossibleMatch).where(
            PossibleMatch.status == MatchStatus.pending.value,
            sa.or_(PossibleMatch.person_a_id == merged_id, PossibleMatch.person_b_id == merged_id),
            *( [PossibleMatch.id != except_match_id] if except_match_id else []))
        .with_for_update()
    )).scalars().all()
    for m in stale:
        other = m.person_b_id if m.person_a_id == merged_id else m.person_a_id
        m.status = MatchStatus.superseded.value
        m.decided_at = clock.now()
        m.decided_by = principal.user_id
        m.decision_reason = "Sostituita: una delle due persone è stata unita a un'altra."
        await session.flush()
        await work_items.close_for_source(session, source_type=SOURCE_TYPE, source_id=m.id)
        if other != kept_id:
            await _ensure_match(session, ambito_id=m.ambito_id, x=kept_id, y=other, score=m.score,
                                reasons={**(m.reasons or {}), "superseded_match_id": str(m.id)}, source=m.source,
                                new_person_id=kept_id)
    return len(stale)
