"""Person search: exact codice fiscale, fuzzy name, birth date, comune of residence; keyset pagination.

- `codice_fiscale` uses the partial unique index uq_person_cf (ambito_id, codice_fiscale) of active persons.
- `q` uses pg_trgm on the GIN index ix_person_ambito_name_trgm (ambito_id, name_search) in two tiers (word
  similarity, then similarity; see `fuzzy_page`), thresholds set for the transaction: the Ambito is an index
  condition, so a search costs what the caller's Ambito holds, not the region (docs/decisions/regional-search.md).
  With `birth_date` as well the planner may start from ix_person_birth instead: the filters are in one statement.
- otherwise the order is surname, given name, id (ix_person_keyset).
Cursors are opaque (base64url JSON) and bound to the filters they were issued for. COUNT(*) only on request.
"""
from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from domain.kernel import cursor as cursor_codec
from domain.kernel import ratelimit
from domain.kernel.errors import Forbidden, Invalid
from domain.kernel.settings import get_settings
from domain.kernel.validity import Span
from domain.registry import codice_fiscale as cfmod
from domain.registry import dedup, policy
from domain.registry.models import Cartella, Person
from domain.security import audit, scopes
from domain.security.permissions import Permission
from domain.security.principal import Principal
from domain.territory import queries as territory

MAX_LIMIT = 100
# Fuzzy search, two tiers (see docs/decisions/persons.md §8):
#   A. `q <% name_search` (pg_trgm word similarity ≥ WORD_SIMILARITY: the query is close to a part of the name,
#      e.g. the surname alone or the full name with a typo), ordered by word similarity, similarity, id;
#   B. then `name_search % q` (similarity ≥ SEARCH_SIMILARITY) not already in A, ordered by similarity, id.
# Both use the GIN index; B runs only when A does not fill the page (or on the pages after A), and A's higher
# threshold keeps the index candidates and heap rechecks few on a million persons.
WORD_SIMILARITY = 0.6
SEARCH_SIMILARITY = 0.3
LIST_COLUMNS = dedup.SUMMARY_COLUMNS


@dataclass
class SearchResult:
    items: list[Any]
    next_cursor: str | None
    total: int | None = None
    projection: str = "identity"  # the items' fields outside it must not be shown (scopes.mask)
    comune_names: dict[uuid.UUID, str] = field(default_factory=dict)  # residence_comune_id -> name, for the page


SEARCH_CURSOR = "persons.search"


def encode_cursor(data: dict[str, Any]) -> str:
    return cursor_codec.encode(SEARCH_CURSOR, data)


def decode_cursor(token: str) -> dict[str, Any]:
    data = cursor_codec.decode(SEARCH_CURSOR, token)
    if not isinstance(data, dict):
        raise cursor_codec.BadCursor()
    return data


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def normalise_query(q: str | None) -> str | None:
    if q is None:
        return None
    q = " ".join(q.split()).lower()
    return q or None


async def _set_thresholds(session) -> None:
    await session.execute(sa.select(
        sa.func.set_config("pg_trgm.word_similarity_threshold", str(WORD_SIMILARITY), True),
        sa.func.set_config("pg_trgm.similarity_threshold", str(SEARCH_SIMILARITY), True)))


def _fuzzy_filter(q: str) -> sa.ColumnElement[bool]:
    qv = sa.literal(q, sa.Text)
    return sa.or_(qv.op("<%")(Person.name_search), Person.name_search.op("%")(qv))


def fuzzy_statement(where: list[Any], q: str, tier: str, limit: int,
                    last: tuple[float, float, uuid.UUID] | None = None, columns: tuple = LIST_COLUMNS,
                    trigram_index: bool = True) -> sa.Select:
    """The statement of one page of tier `tier` ("w": word similarity, "s": similarity) after the key `last`
    (word similarity, similarity, id). `where` carries the caller's reach: with the Ambito in it the composite
    index ix_person_ambito_name_trgm reads that Ambito's candidates only (0046); without it (a search across all
    Ambiti) the same index serves the trigrams alone. `columns` (with Person.id) are the ones the caller shows.
    `trigram_index=False` states the same thresholds as plain comparisons the trigram index cannot answer, for a
    `where` that already names few rows through another index (same rows, same order). The thresholds must be set
    (`_set_thresholds`)."""
    qv = sa.literal(q, sa.Text)
    wsim = sa.func.word_similarity(qv, Person.name_search)
    sim = sa.func.similarity(Person.name_search, qv)
    cols = (*columns, wsim.label("word_similarity"), sim.label("similarity"))
    if trigram_index:
        word_match, name_match = qv.op("<%")(Person.name_search), Person.name_search.op("%")(qv)
    else:
        word_match = wsim >= sa.literal(WORD_SIMILARITY, sa.Float)
        name_match = sim >= sa.literal(SEARCH_SIMILARITY, sa.Float)
    if tier == "w":
        stmt = sa.select(*cols).where(*where, word_match)
        if last is not None:
            w, s_, i = (sa.literal(last[0], sa.Float), sa.literal(last[1], sa.Float), last[2])
            stmt = stmt.where(sa.or_(wsim < w, sa.and_(wsim == w, sim < s_),
                                     sa.and_(wsim == w, sim == s_, Person.id > i)))
        return stmt.order_by(wsim.desc(), sim.desc(), Person.id).limit(limit + 1)
    stmt = sa.select(*cols).where(*where, name_match, wsim < sa.literal(WORD_SIMILARITY, sa.Float))
    if last is not None:
        s_, i = sa.literal(last[1], sa.Float), last[2]
        stmt = stmt.where(sa.or_(sim < s_, sa.and_(sim == s_, Person.id > i)))
    return stmt.order_by(sim.desc(), Person.id).limit(limit + 1)


async def fuzzy_page(session, where: list[Any], q: str, limit: int, after: dict[str, Any] | None = None,
                     fp: str = "", columns: tuple = LIST_COLUMNS, trigram_index: bool = True
                     ) -> tuple[list[Any], str | None]:
    """One page of the fuzzy search and the cursor of the next one. A page holds rows of one tier only: when tier
    A has some rows but fewer than `limit`, the page is short and its cursor leads to tier B, so the costly
    low-threshold query runs only when asked for (or when A has nothing at all)."""
    tier, last = "w", None
    if after is not None:
        try:
            tier = after["t"]
            if tier not in ("w", "s"):
                raise ValueError
            if "id" in after:
                last = (float(after["w"]), float(after["s"]), uuid.UUID(after["id"]))
            elif tier == "w":
                raise ValueError
        except (KeyError, ValueError, TypeError):
            raise Invalid("cursor", "cursore non valido") from None
    await _set_thresholds(session)

    def cursor(row, t: str) -> str:
        return encode_cursor({"f": fp, "t": t, "w": float(row.word_similarity), "s": float(row.similarity),
                              "id": str(row.id)})

    if tier == "w":
        rows = (await session.execute(fuzzy_statement(where, q, "w", limit, last, columns, trigram_index))).all()
        if len(rows) > limit:
            return rows[:limit], cursor(rows[limit - 1], "w")
        if rows:
            return rows, encode_cursor({"f": fp, "t": "s"})  # looser matches, on request
        last = None
    rows = (await session.execute(fuzzy_statement(where, q, "s", limit, last, columns, trigram_index))).all()
    if len(rows) > limit:
        return rows[:limit], cursor(rows[limit - 1], "s")
    return rows, None


async def search_persons(session, *, principal: Principal, codice_fiscale: str | None = None, q: str | None = None,
                         birth_date: date | None = None, comune_id: uuid.UUID | None = None, limit: int = 20,
                         cursor: str | None = None, with_total: bool = False,
                         other_identifier: tuple[str, str] | None = None, updated: Span | None = None,
                         with_comune_names: bool = True) -> SearchResult:
    """Persons of the principal's Ambito matching the criteria. A role that sees identity data of the whole Ambito
    but owns no case (front desk, ward, COT, CSC, PUA staff...) must give a criterion that names someone (name,
    codice fiscale or birth date): the registry is not a list to scroll. Searches are braked per user
    (`PERSON_SEARCH_PER_MINUTE`, 429 with Retry-After). `other_identifier` is (kind, value) of an STP, ENI, passport
    or provisional identifier, exact (the FHIR `identifier` search). `updated` keeps the persons last changed in
    that window (the FHIR `_lastUpdated`); it narrows a search, it does not name anyone. `with_comune_names=False`
    when the caller does not show the comuni's names (the FHIR Patient refers to the comune by id)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid("limit", f"deve essere tra 1 e {MAX_LIMIT}")
    cf = cfmod.normalize(codice_fiscale) if codice_fiscale else None
    q = normalise_query(q)
    if q is not None and len(q.replace(" ", "")) < 2:
        raise Invalid("q", "almeno 2 caratteri")
    other = (other_identifier[0], cfmod.check_other_identifier(*other_identifier, field="identifier")
             ) if other_identifier else None
    if not (cf or q or birth_date or other) and scopes.has_identity(principal) and not policy.owns_cases(principal):
        raise Invalid("q", "indicare cognome e nome, codice fiscale o data di nascita della persona cercata")
    ratelimit.check("person_search", principal.user_id, get_settings().person_search_per_minute,
                    detail="Troppe ricerche in un minuto: riprovare tra poco.")
    fp = _fingerprint(cf, q, birth_date and birth_date.isoformat(), comune_id and str(comune_id), other,
                      updated and (updated.start, updated.end))

    projection = "identity" if scopes.has_identity(principal) else scopes.list_projection(principal)
    after = decode_cursor(cursor) if cursor else None
    if after is not None and after.get("f") != fp:
        raise Invalid("cursor", "il cursore appartiene a un'altra ricerca")

    def where() -> list[Any]:
        conds: list[Any] = [policy.active(principal)]
        if not scopes.has_identity(principal):
            # Not a registering role: only the persons a scope reaches (with consent where the role needs it).
            conds.append(policy.case_access_filter(principal))
        if cf:
            conds.append(Person.codice_fiscale == cf)
        if other is not None:
            conds.extend([Person.other_identifier_type == other[0], Person.other_identifier == other[1]])
        if birth_date is not None:
            conds.append(Person.birth_date == birth_date)
        if comune_id is not None:
            conds.append(Person.residence_comune_id == comune_id)
        if updated is not None:
            conds.append(updated.sql(Person.updated_at))
        return conds

    if q is not None:
        rows, next_cursor = await fuzzy_page(session, where(), q, limit, after, fp)
    else:
        if after is None and (cf or other) and birth_date is None and comune_id is None and updated is None:
            # one exact identifier, the first page: the hot path of a look-up (the FHIR `identifier` search, an
            # identifier typed at the desk): the statement is built once per principal, reused with new values
            rows = (await session.execute(_by_identifier(principal, "cf" if cf else "other"), {
                "s_cf": cf, "s_type": other and other[0], "s_value": other and other[1], "s_limit": limit + 1
            })).all()
        else:
            rows = (await session.execute(_name_order_statement(LIST_COLUMNS, where(), limit, after))).all()
        rows, next_cursor = _name_order_page(rows, limit, fp)
    total = None
    if with_total:
        conds = where() + ([_fuzzy_filter(q)] if q is not None else [])  # tiers A ∪ B (thresholds already set)
        total = (await session.execute(sa.select(sa.func.count()).select_from(Person).where(*conds))).scalar_one()
    ids = [r.id for r in rows]
    audit.record(action="search", object_type="person", object_ids=ids, person_ids=ids, result_count=len(ids))
    names = await territory.org_names(session, (r.residence_comune_id for r in rows)) if with_comune_names else {}
    return SearchResult(items=rows, next_cursor=next_cursor, total=total, projection=projection, comune_names=names)


def _name_order_statement(columns: tuple, where: list[Any], limit: int, after: dict[str, Any] | None) -> sa.Select:
    """A page in surname, given name, id order (ix_person_keyset) after the cursor's key, one row more than asked."""
    stmt = sa.select(*columns).where(*where)
    if after is not None:
        try:
            key = (after["sn"], after["gn"], uuid.UUID(after["id"]))
        except (KeyError, ValueError, TypeError):
            raise Invalid("cursor", "cursore non valido") from None
        stmt = stmt.where(sa.tuple_(Person.surname, Person.given_name, Person.id) > sa.tuple_(*key))
    return stmt.order_by(Person.surname, Person.given_name, Person.id).limit(limit + 1)


def _name_order_page(rows: list[Any], limit: int, fp: str) -> tuple[list[Any], str | None]:
    """The page and the cursor of the next one, for rows read one more than `limit` in name order."""
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor({"f": fp, "sn": last.surname, "gn": last.given_name, "id": str(last.id)})


def _by_identifier(principal: Principal, kind: str) -> sa.Select:
    """The exact look-up by codice fiscale (`kind` "cf") or by another identifier ("other") among the persons the
    principal may find, as `search_persons` filters them, with the values as parameters (s_cf, s_type, s_value,
    s_limit): built once per principal (scopes.memo) and kept with its SQLAlchemy cache key."""
    def build() -> sa.Select:
        where: list[Any] = [policy.active(principal)]
        if not scopes.has_identity(principal):
            where.append(policy.case_access_filter(principal))
        if kind == "cf":
            where.append(Person.codice_fiscale == sa.bindparam("s_cf", type_=sa.String()))
        else:
            where += [Person.other_identifier_type == sa.bindparam("s_type", type_=sa.String()),
                      Person.other_identifier == sa.bindparam("s_value", type_=sa.String())]
        return (sa.select(*LIST_COLUMNS).where(*where).order_by(Person.surname, Person.given_name, Person.id)
                .limit(sa.bindparam("s_limit", type_=sa.Integer())))

    return scopes.memo(principal, f"person_search_by_{kind}", None, build)


# ---------------------------------------------------------------------------------------------- across Ambiti
class RegionalPurpose(StrEnum):
    """Why the regional helpdesk looks for a person across the Ambiti (docs/decisions/regional-search.md)."""

    cambio_ambito = "cambio_ambito"
    duplicato = "duplicato"
    richiesta_regione = "richiesta_regione"


# The audit row's purpose, as the person reads it in their access log (at most 60 characters: the column).
REGIONAL_PURPOSE_LABELS: dict[str, str] = {
    "cambio_ambito": "Ricerca regionale: persona trasferita tra Ambiti",
    "duplicato": "Ricerca regionale: possibile duplicato tra Ambiti",
    "richiesta_regione": "Ricerca regionale: richiesta di Regione o ATS",
}
# What the regional search shows of a person: who, born when, held by which Ambito, resident where (the names of
# both come with the page). No codice fiscale (echoed only to whoever typed it), no contacts, no address, no case.
# The id is the keyset's tie-breaker and the audit row's subject; it never leaves the service.
REGIONAL_COLUMNS = (Person.id, Person.ambito_id, Person.surname, Person.given_name, Person.sex, Person.birth_date,
                    Person.residence_comune_id)


# Active persons of every Ambito, spelled as the partial indexes' predicates are (uq_person_cf, ix_person_birth_name;
# see dedup.UNCODED): a prepared statement's generic plan uses a partial index only for a literal predicate.
REGIONAL_ACTIVE = sa.text("person.status = 'active'")


@dataclass
class RegionalResult:
    items: list[Any]  # rows with REGIONAL_COLUMNS
    next_cursor: str | None
    org_names: dict[uuid.UUID, str]  # the Ambiti and comuni of the page -> name
    codice_fiscale: str | None  # the one searched: its matches carry it, nothing else does


async def regional_search(session, *, principal: Principal, purpose: RegionalPurpose, reason: str,
                          q: str | None = None, codice_fiscale: str | None = None, birth_date: date | None = None,
                          limit: int = 20, cursor: str | None = None) -> RegionalResult:
    """In which Ambito a person is known: active persons of every Ambito by name (the two fuzzy tiers of
    `fuzzy_page`, the trigram index without the Ambito) or by exact codice fiscale, optionally on a birth date.
    A name is surname and given name, or one word with the birth date: never a surname alone.
    The caller must hold `person.regional_search` and say why (`purpose`, `reason`): one audit row per search with
    both, the number of results and the persons found (for their access logs), never the text searched."""
    if Permission.person_regional_search not in principal.permissions:
        raise Forbidden("Ricerca regionale non consentita a questo ruolo.")
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid("limit", f"deve essere tra 1 e {MAX_LIMIT}")
    cf = cfmod.normalize(codice_fiscale) if codice_fiscale else None
    q = normalise_query(q)
    if cf and q:
        raise Invalid("q", "indicare il nome oppure il codice fiscale, non entrambi")
    if not (cf or q):
        raise Invalid("q", "indicare cognome e nome oppure il codice fiscale della persona cercata")
    if q is not None and len(q.replace(" ", "")) < 2:
        raise Invalid("q", "almeno 2 caratteri")
    if q is not None and " " not in q and birth_date is None:
        # A surname alone across the region is a list of thousands, not a person (and the costliest statement).
        raise Invalid("q", "indicare cognome e nome, oppure il cognome con la data di nascita (birth_date)")
    ratelimit.check("person_search", principal.user_id, get_settings().person_search_per_minute,
                    detail="Troppe ricerche in un minuto: riprovare tra poco.")
    fp = _fingerprint("regional", cf, q, birth_date and birth_date.isoformat())
    after = decode_cursor(cursor) if cursor else None
    if after is not None and after.get("f") != fp:
        raise Invalid("cursor", "il cursore appartiene a un'altra ricerca")
    where: list[Any] = [REGIONAL_ACTIVE]  # every Ambito: no policy.visible here, by design
    if birth_date is not None:
        where.append(Person.birth_date == birth_date)
    if q is not None:
        rows, next_cursor = await _exact_name_first(session, where, q, limit, after, fp,
                                                    trigram_index=birth_date is None)
    else:
        # uq_person_cf (ambito_id, codice_fiscale) answers this with a skip scan over the Ambiti (PostgreSQL 18)
        where.append(Person.codice_fiscale == cf)
        rows, next_cursor = _name_order_page(
            (await session.execute(_name_order_statement(REGIONAL_COLUMNS, where, limit, after))).all(), limit, fp)
    ids = [r.id for r in rows]
    audit.record(action="search", object_type="person", object_ids=ids, person_ids=ids, result_count=len(ids),
                 purpose=REGIONAL_PURPOSE_LABELS[purpose], legal_basis=reason)
    names = await territory.org_names(session, [*(r.ambito_id for r in rows), *(r.residence_comune_id for r in rows)])
    return RegionalResult(items=rows, next_cursor=next_cursor, org_names=names, codice_fiscale=cf)


def exact_name_statement(where: list[Any], q: str, limit: int, last: uuid.UUID | None = None) -> sa.Select:
    """The persons named exactly `q` (ix_person_name_exact) after the id `last`, one row more than asked."""
    stmt = sa.select(*REGIONAL_COLUMNS).where(*where, Person.name_search == q)
    if last is not None:
        stmt = stmt.where(Person.id > last)
    return stmt.order_by(Person.id).limit(limit + 1)


async def _exact_name_first(session, where: list[Any], q: str, limit: int, after: dict[str, Any] | None, fp: str,
                            trigram_index: bool) -> tuple[list[Any], str | None]:
    """The regional search by name: first the persons named exactly `q` ("surname given name", the form of
    name_search; ix_person_name_exact, in id order), on a page of their own; then, following the cursor (or at
    once when nobody has that name), the fuzzy tiers without them. Across ten million persons tier A reads the
    posting lists of every trigram of a full name (≈ 200 ms at 10 M for a common given name) to rank names the
    helpdesk rarely needs once the exact one is there.
    `trigram_index=False` with a birth date: the few hundred persons born that day across the region
    (ix_person_birth, a skip scan over the Ambiti) are far fewer than a surname's trigram candidates, but the
    planner, misjudging the trigram condition, ANDs both bitmaps (≈ 50 ms for the trigram side at 10 M): the
    thresholds as plain comparisons leave it the birth index alone. Same rows, same order."""
    exact = " " in q  # a single word never equals name_search
    if exact and (after is None or after.get("t") == "e"):
        try:
            last = uuid.UUID(after["id"]) if after is not None else None
        except (KeyError, ValueError, TypeError):
            raise Invalid("cursor", "cursore non valido") from None
        rows = (await session.execute(exact_name_statement(where, q, limit, last))).all()
        if len(rows) > limit:
            return rows[:limit], encode_cursor({"f": fp, "t": "e", "id": str(rows[limit - 1].id)})
        if rows:
            return rows, encode_cursor({"f": fp, "t": "similar"})  # similar names, on request
        after = None
    elif after is not None and after.get("t") == "similar":
        after = None
    if exact:
        where = [*where, Person.name_search != q]
    return await fuzzy_page(session, where, q, limit, after, fp, columns=REGIONAL_COLUMNS,
                            trigram_index=trigram_index)


# ---------------------------------------------------------------------------------------------- for reporting
def person_facts() -> sa.Subquery:
    """What this context publishes for indicators, one row per person (a read-only projection the reporting context
    aggregates; it never selects the table): id, person_key (the kept person after a merge, so merged persons count
    once), residence_comune_id, birth_date (minors at an event), date_of_death."""
    return sa.select(Person.id, sa.func.coalesce(Person.merged_into_id, Person.id).label("person_key"),
                     Person.residence_comune_id, Person.birth_date, Person.date_of_death).subquery("person_facts")


def cartella_facts() -> sa.Subquery:
    """One row per cartella sociale: id, ambito_id, person_id, area, owning_comune_id, opened_at, closed_at (open
    cartelle by area; the area of a VMD through its cartella)."""
    return sa.select(Cartella.id, Cartella.ambito_id, Cartella.person_id, Cartella.area, Cartella.owning_comune_id,
                     Cartella.opened_at, Cartella.closed_at).subquery("cartella_facts")
