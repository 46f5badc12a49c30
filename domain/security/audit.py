"""The audit trail: one row per read and per write, list and search results included.

A request (or task) opens an `AuditContext`; services call `record(...)` for what they read or wrote; the unit of
work writes all rows in one INSERT in the same transaction as the change. A denied or failed request is written in
a transaction of its own (`flush_separately`), so the rollback of the request does not erase it. A request that
recorded nothing still leaves one row describing the route it called.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from domain.kernel import clock
from domain.kernel.db import get_engine
from domain.kernel.validity import Span
from domain.security.models import AuditEvent

_METHOD_ACTION = {"GET": "read", "HEAD": "read", "POST": "create", "PUT": "update", "PATCH": "update",
                  "DELETE": "delete"}

# The Italian words the person reads in their own access log (GDPR art. 15). Every `action` the code records has
# one: the actions services pass to `record`, the ones derived from the HTTP method, and the outcome written as the
# action of a refused request that recorded nothing (tests/domain/security/test_audit.py walks the source).
ACTION_LABELS: dict[str, str] = {
    "read": "Lettura", "search": "Ricerca", "list": "Consultazione di un elenco", "create": "Inserimento",
    "update": "Modifica", "delete": "Cancellazione", "revoke": "Revoca", "print": "Stampa",
    "assign": "Assegnazione", "end_assignment": "Fine dell'assegnazione", "close": "Chiusura",
    "transfer": "Trasferimento", "death": "Registrazione del decesso", "merge": "Unione di schede duplicate",
    "not_duplicate": "Schede riconosciute come persone diverse", "break_glass": "Accesso straordinario",
    "break_glass_end": "Fine dell'accesso straordinario", "call": "Richiesta",
    "denied": "Accesso negato", "not_found": "Richiesta di dati non trovati", "rejected": "Richiesta respinta",
    "failed": "Richiesta non riuscita",
    "clock_set": "Orologio di prova impostato", "clock_advance": "Orologio di prova spostato in avanti",
    "clock_reset": "Orologio di prova riportato al tempo reale",
    "export": "Esportazione", "import": "Importazione dalla piattaforma precedente",
    "preview": "Prova di importazione (nulla scritto)",
}
OUTCOME_LABELS: dict[str, str] = {
    "ok": "Eseguita", "denied": "Negata", "not_found": "Dati non trovati", "rejected": "Respinta (dati non validi)",
    "failed": "Non riuscita (errore del sistema)",
}
OBJECT_TYPE_LABELS: dict[str, str] = {
    "person": "Dati anagrafici", "person_history": "Storico dei dati anagrafici",
    "person_relation": "Familiari e persone di riferimento", "possible_match": "Possibile scheda duplicata",
    "consent": "Consenso", "break_glass_grant": "Accesso straordinario", "access_log": "Registro degli accessi",
    "regional_searches": "Ricerche regionali",
    "cartella": "Cartella sociale", "cartella_assignment": "Operatori della cartella",
    "cartella_history": "Storico della cartella", "cartella_transfer": "Trasferimento della cartella",
    "access_request": "Domanda al Punto Unico di Accesso", "instrument_response": "Scheda di valutazione",
    "discharge_case": "Dimissione protetta",
    "vmd": "Valutazione multidimensionale", "vmd_assessor": "Valutatori della valutazione multidimensionale",
    "equipe_meeting": "Riunione d'équipe", "care_plan": "Progetto individualizzato",
    "diary_entry": "Nota del diario", "attachment": "Allegato", "work_item": "Attività in coda di lavoro",
    "business_clock": "Orologio di prova", "import_job": "Importazione dalla piattaforma precedente",
    "waiting_list_bed": "Posto libero in unità d'offerta",
    "service_activation": "Attivazione di un servizio", "service_delivery": "Prestazione di un servizio",
    "service_accreditation": "Accreditamento di un ente", "services_indicator": "Indicatore dei servizi (conteggi)",
    "indicator_report": "Indicatori LEPS e del Piano di Zona (conteggi)",
    "indicator_persons": "Persone dietro un indicatore (approfondimento)",
    "care_plan_cost": "Costo del progetto individualizzato", "measure": "Catalogo delle misure",
    "measure_call": "Bando di una misura", "measure_application": "Domanda di una misura",
    "outbox_message": "Messaggio verso ASST",
}
# A row without an actor: the request carried no valid token (the principal is set as soon as one is verified).
NO_ACTOR_LABEL = "Tentativo senza autenticazione"


@dataclass
class AuditContext:
    route: str | None = None
    method: str | None = None
    request_id: str | None = None
    path_ids: dict[str, uuid.UUID] = field(default_factory=dict)
    principal: Any = None
    purpose: str | None = None
    entries: list[dict[str, Any]] = field(default_factory=list)
    flushed: int = 0
    # person id -> the ground the access to that person rests on (purpose, legal basis, break-glass), noted by the
    # access check so that every row about the person carries it, whatever service records the row.
    grounds: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)

    def actor_fields(self) -> dict[str, Any]:
        p = self.principal
        if p is None:
            return {"actor_id": None, "actor_username": None, "acting_for": None, "roles": [], "organisation_ids": []}
        return {"actor_id": p.user_id, "actor_username": p.username, "acting_for": p.acting_for,
                "roles": sorted({str(g.role) for g in p.grants}),
                "organisation_ids": sorted({g.organisation_id for g in p.grants}, key=str)}


_current: ContextVar[AuditContext | None] = ContextVar("audit_context", default=None)


def begin(*, route: str | None, method: str | None, request_id: str | None,
          path_params: dict[str, Any] | None = None) -> AuditContext:
    ids: dict[str, uuid.UUID] = {}
    for k, v in (path_params or {}).items():
        try:
            ids[k] = uuid.UUID(str(v))
        except ValueError:
            continue
    ctx = AuditContext(route=route, method=method, request_id=request_id, path_ids=ids)
    _current.set(ctx)
    return ctx


def current() -> AuditContext | None:
    return _current.get()


def set_principal(principal: Any) -> None:
    ctx = _current.get()
    if ctx is not None:
        ctx.principal = principal


def note_grounds(person_id: uuid.UUID, *, purpose: str | None = None, legal_basis: str | None = None,
                 break_glass: bool = False) -> None:
    """The access check found what the access to this person rests on; rows about the person inherit it."""
    ctx = _current.get()
    if ctx is not None and person_id is not None:
        ctx.grounds[person_id] = {"purpose": purpose, "legal_basis": legal_basis, "break_glass": break_glass}


def _grounded(ctx: AuditContext, entry: dict[str, Any]) -> dict[str, Any]:
    found = [ctx.grounds[p] for p in entry.get("person_ids", ()) if p in ctx.grounds]
    if not found:
        return entry
    return {**entry, "purpose": entry.get("purpose") or next((g["purpose"] for g in found if g["purpose"]), None),
            "legal_basis": entry.get("legal_basis") or next((g["legal_basis"] for g in found if g["legal_basis"]),
                                                            None),
            "break_glass": bool(entry.get("break_glass")) or any(g["break_glass"] for g in found)}


def record(*, action: str, object_type: str, object_ids: Iterable[uuid.UUID] = (),
           person_ids: Iterable[uuid.UUID | None] = (), result_count: int | None = None,
           purpose: str | None = None, legal_basis: str | None = None, break_glass: bool = False) -> None:
    """Note one audited access. Outside a request or task context (e.g. a script) it is a no-op by design:
    scripts are audited by the job or command that runs them."""
    ctx = _current.get()
    if ctx is None:
        return
    ctx.entries.append({
        "action": action, "object_type": object_type, "object_ids": [i for i in object_ids if i is not None],
        "person_ids": sorted({i for i in person_ids if i is not None}, key=str), "result_count": result_count,
        "purpose": purpose, "legal_basis": legal_basis, "break_glass": break_glass,
    })


def _rows(ctx: AuditContext, *, status: int, outcome: str) -> list[dict[str, Any]]:
    entries = ctx.entries[ctx.flushed:]
    if not entries and ctx.flushed == 0:
        # Nothing specific was recorded (or the request failed before it could be): describe the call itself.
        person_ids = [v for k, v in ctx.path_ids.items() if k == "person_id"]
        entries = [{"action": _METHOD_ACTION.get(ctx.method or "", "call") if outcome == "ok" else outcome,
                    "object_type": None, "object_ids": list(ctx.path_ids.values()), "person_ids": person_ids,
                    "result_count": None, "purpose": None, "legal_basis": None, "break_glass": False}]
    now = clock.audit_now()  # when the request happened: real time, whatever the demo clock says
    actor = ctx.actor_fields()
    entries = [_grounded(ctx, e) for e in entries]
    return [{**actor, **e, "purpose": e.get("purpose") or ctx.purpose, "at": now, "request_id": ctx.request_id,
             "route": f"{ctx.method} {ctx.route}" if ctx.route else None, "status": status, "outcome": outcome}
            for e in entries]


_INSERT = sa.insert(AuditEvent.__table__)


async def _write(conn_or_session, rows: list[dict[str, Any]]) -> None:
    """One INSERT for all the rows: a Core executemany, which the asyncpg dialect sends as one multi-row INSERT
    ("insertmanyvalues"); the statement is compiled once and cached. (An ORM bulk insert would split the rows by
    which values are None; `.values(rows)` would compile anew on every request.)"""
    await conn_or_session.execute(_INSERT, rows)


async def flush(session, *, status: int = 200, outcome: str = "ok") -> int:
    """Write the pending rows in the caller's transaction, in one statement."""
    ctx = _current.get()
    if ctx is None:
        return 0
    rows = _rows(ctx, status=status, outcome=outcome)
    if rows:
        await _write(session, rows)
    ctx.flushed = len(ctx.entries) or 1
    return len(rows)


async def flush_separately(*, status: int, outcome: str) -> int:
    """Write the rows in a transaction of their own: used when the request's transaction rolls back."""
    ctx = _current.get()
    if ctx is None:
        return 0
    rows = _rows(ctx, status=status, outcome=outcome)
    if rows:
        async with get_engine().begin() as conn:
            await _write(conn, rows)
    ctx.flushed = len(ctx.entries) or 1
    return len(rows)


async def searches_of(session, routes: tuple[str, ...], *, limit: int, before: tuple[Any, int] | None = None,
                     about: Callable[[Any], sa.ColumnElement[bool]] | None = None) -> list[AuditEvent]:
    """The rows the searches of these routes wrote (action `search`), newest first, keyset `before` = (at, id);
    `about(person_ids column)` keeps those naming a person it accepts (a context's condition on its own table)."""
    # Values rendered in the statement (constants of our code): a prepared statement's generic plan can then use a
    # partial index on them (ix_audit_regional_search).
    q = sa.select(AuditEvent).where(
        AuditEvent.action == sa.bindparam("search_action", "search", literal_execute=True),
        AuditEvent.route.in_(sa.bindparam("search_routes", list(routes), expanding=True, literal_execute=True)))
    if about is not None:
        q = q.where(about(AuditEvent.person_ids))
    return list((await session.execute(_newest_first(q, limit, before))).scalars())


def _newest_first(q: sa.Select, limit: int, before: tuple[Any, int] | None) -> sa.Select:
    """A page of audit rows, newest first, after the keyset `before` = (at, id) of the last row already seen."""
    if before is not None:
        q = q.where(sa.tuple_(AuditEvent.at, AuditEvent.id) < sa.tuple_(sa.literal(before[0]), sa.literal(before[1])))
    return q.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)


async def events_about(session, person_ids: list[uuid.UUID], *, limit: int,
                       before: tuple[Any, int] | None = None, at: Span | None = None) -> list[AuditEvent]:
    """The audit rows naming any of these persons, newest first; `before` = (at, id) of the last row already seen
    (keyset). The person's access log (GDPR art. 15) reads them through here."""
    q = sa.select(AuditEvent).where(AuditEvent.person_ids.overlap(sa.cast(person_ids, AuditEvent.person_ids.type)))
    if at is not None:
        q = q.where(at.sql(AuditEvent.at))
    q = _newest_first(q, limit, before)
    return list((await session.execute(q)).scalars())
