"""Durable jobs (the outbox): work that must happen after a change commits, kept in our own `job` table.

- `enqueue` writes the job in the caller's transaction: if the change rolls back, the job never existed.
  A `dedup_key` makes it idempotent (the first job with that key is returned, whatever its state).
  `enqueue_many` writes several (`values(...)` rows) in one statement when the caller needs none back (events).
- `@handler(kind)` registers `async def h(session, payload) -> None`. The handler runs inside the job's own
  transaction, the same one that marks the job `done`: its effect and the `done` mark commit together or not at all.
- `claim_next` takes one ready job with `FOR UPDATE SKIP LOCKED`, sets it `running` with a lease and counts the
  attempt; the claim commits at once (so a crash still counts as an attempt).
- `run_claimed` re-locks the row (fenced by `locked_by` + `attempts`), runs the handler and marks it `done`.
  While it runs, the row lock is held: the lease sweep skips it, so a live but slow worker is never doubled.
  A killed worker's connection dies, Postgres rolls its transaction back (the partial effect vanishes) and
  releases the lock; when the lease expires `sweep_expired_leases` puts the job back to `pending`.
- A failing handler's transaction rolls back; the failure is recorded in a new transaction with an exponential
  backoff (`job_backoff_base_seconds * 2**(attempts-1)`, capped), and the job is `dead` after `max_attempts`.

All times (run_after, lease_until, finished_at) come from the business clock `domain.kernel.clock.now()`.
Celery only *wakes* the relay (`workers.tasks.relay_jobs`); it never holds durable state.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.kernel import clock
from domain.kernel.ids import new_id
from domain.kernel.models import Job, JobState
from domain.kernel.settings import get_settings

log = logging.getLogger("jobs")

Handler = Callable[[AsyncSession, dict[str, Any]], Awaitable[None]]

#: `session.info` key set by `enqueue`; the request boundary wakes the relay after commit when it is set.
ENQUEUED_FLAG = "jobs_enqueued"

_handlers: dict[str, Handler] = {}

# --------------------------------------------------------------------------------------------- registry


def handler(kind: str) -> Callable[[Handler], Handler]:
    """Register the handler of a job kind: `@jobs.handler("fhir.push") async def push(session, payload): ...`"""
    if not kind or len(kind) > 200:
        raise ValueError("job kind must be 1..200 characters")

    def register(fn: Handler) -> Handler:
        existing = _handlers.get(kind)
        if existing is not None and _qualname(existing) != _qualname(fn):
            raise ValueError(f"job kind {kind!r} already has a handler: {_qualname(existing)}")
        _handlers[kind] = fn
        return fn

    return register


def _qualname(fn: Callable) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def handler_for(kind: str) -> Handler | None:
    return _handlers.get(kind)


def registered_kinds() -> list[str]:
    return sorted(_handlers)


def unregister(kind: str) -> None:
    """For tests that register throwaway handlers."""
    _handlers.pop(kind, None)


# --------------------------------------------------------------------------------------------- enqueue


def values(*, kind: str, payload: dict[str, Any], dedup_key: str | None = None, run_after: datetime | None = None,
           max_attempts: int | None = None) -> dict[str, Any]:
    """The row of a new job (checked: a JSON-serialisable dict payload)."""
    if not isinstance(payload, dict):
        raise TypeError("job payload must be a dict")
    try:
        json.dumps(payload)
    except (TypeError, ValueError) as e:
        raise TypeError(f"job payload must be JSON-serialisable ({e})") from None
    now = clock.now()
    return {
        "id": new_id(), "kind": kind, "payload": payload, "state": JobState.pending.value, "attempts": 0,
        "max_attempts": max_attempts or get_settings().job_max_attempts, "run_after": run_after or now,
        "dedup_key": dedup_key, "created_at": now,
    }


# One statement object (cache key computed once); a row whose dedup_key exists is skipped.
_INSERT_MANY = pg_insert(Job.__table__).on_conflict_do_nothing(index_elements=["dedup_key"])


async def enqueue(session: AsyncSession, *, kind: str, payload: dict[str, Any], dedup_key: str | None = None,
                  run_after: datetime | None = None, max_attempts: int | None = None) -> Job:
    """Write a job in the caller's transaction. Same `dedup_key` → the existing job is returned, nothing added."""
    row = values(kind=kind, payload=payload, dedup_key=dedup_key, run_after=run_after, max_attempts=max_attempts)
    if dedup_key is None:
        job = Job(**row)
        session.add(job)
        await session.flush()
    else:
        # one round trip when the job is new (the common case): the inserted row comes back as the ORM object
        stmt = _INSERT_MANY.values(**row).returning(*Job.__table__.c)
        job = (await session.execute(sa.select(Job).from_statement(stmt)
                                     .execution_options(populate_existing=True))).scalar_one_or_none()
        if job is None:
            return (await session.execute(
                sa.select(Job).where(Job.dedup_key == dedup_key).execution_options(populate_existing=True)
            )).scalar_one()
    session.info[ENQUEUED_FLAG] = True
    return job


async def enqueue_many(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Write several jobs (`values(...)` rows) in one statement when the caller needs none of them back (events);
    a job whose dedup_key exists already is skipped, as `enqueue` would."""
    if rows:
        await session.execute(_INSERT_MANY, rows)
        session.info[ENQUEUED_FLAG] = True


def dead_with_key(dedup_key: Any) -> sa.ColumnElement[bool]:
    """SQL condition: the job with this dedup key (a value or an expression of the caller's row) is dead, i.e. it
    failed every attempt; a context that chains jobs by key reads its own work's outcome with it."""
    return sa.exists().where(Job.dedup_key == dedup_key, Job.state == JobState.dead.value)


async def enqueue_periodic(session: AsyncSession, *, kind: str, every: str,
                           payload: dict[str, Any] | None = None) -> Job:
    """A periodic job, as the beat asks for it on every tick (`daily_jobs_seconds`): written once per `every` of
    the business clock — "day" (a Europe/Rome calendar day) or "hour" — by its dedup key."""
    period = {"day": lambda: clock.today_rome().isoformat(), "hour": lambda: clock.now().strftime("%Y-%m-%dT%H")}
    return await enqueue(session, kind=kind, payload=payload or {}, dedup_key=f"{kind}:{period[every]()}")


# --------------------------------------------------------------------------------------------- worker side


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"[:120]


@dataclass(frozen=True)
class Claim:
    """A claimed job; `locked_by` + `attempts` fence every later update."""

    id: uuid.UUID
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    locked_by: str
    lease_until: datetime


def backoff(attempts: int) -> timedelta:
    """Delay before the next try after `attempts` failed tries: base * 2**(attempts-1), capped."""
    base, cap = get_settings().job_backoff_base_seconds, get_settings().job_backoff_max_seconds
    return timedelta(seconds=min(cap, base * (2 ** max(0, attempts - 1))))


async def claim_next(session: AsyncSession, *, worker_id: str, lease_seconds: float | None = None,
                     kinds: list[str] | None = None) -> Claim | None:
    """Claim the oldest ready job (state pending, run_after <= now) of a kind this process can run.
    The caller commits right after, so the claim (and the attempt it counts) survives a crash."""
    kinds = registered_kinds() if kinds is None else kinds
    if not kinds:
        return None
    now = clock.now()
    lease_until = now + timedelta(seconds=lease_seconds or get_settings().job_lease_seconds)
    ready = (sa.select(Job.id)
             .where(Job.state == JobState.pending.value, Job.run_after <= now, Job.kind.in_(kinds))
             .order_by(Job.run_after, Job.id).limit(1)
             .with_for_update(skip_locked=True).scalar_subquery())
    stmt = (sa.update(Job).where(Job.id == ready)
            .values(state=JobState.running.value, attempts=Job.attempts + 1, lease_until=lease_until,
                    locked_by=worker_id)
            .returning(Job.id, Job.kind, Job.payload, Job.attempts, Job.max_attempts)
            .execution_options(synchronize_session=False))
    row = (await session.execute(stmt)).first()
    if row is None:
        return None
    return Claim(id=row.id, kind=row.kind, payload=row.payload, attempts=row.attempts,
                 max_attempts=row.max_attempts, locked_by=worker_id, lease_until=lease_until)


def _fenced(claim: Claim):
    return sa.and_(Job.id == claim.id, Job.state == JobState.running.value, Job.locked_by == claim.locked_by,
                   Job.attempts == claim.attempts)


async def _lock_claim(session: AsyncSession, claim: Claim) -> bool:
    """Lock the job row for the handler's transaction; False when the claim was lost (lease swept)."""
    found = (await session.execute(sa.select(Job.id).where(_fenced(claim)).with_for_update())).first()
    return found is not None


async def _mark_done(session: AsyncSession, claim: Claim) -> None:
    await session.execute(
        sa.update(Job).where(_fenced(claim))
        # last_error is kept: a done job that needed retries still tells why (lease lost, remote down...).
        .values(state=JobState.done.value, finished_at=clock.now(), lease_until=None)
        .execution_options(synchronize_session=False))


def _error_text(exc: BaseException) -> str:
    # Stored in the job row for operators; never logged (a message may carry personal data).
    return f"{type(exc).__name__}: {exc}"[:2000]


async def _mark_failed(session: AsyncSession, claim: Claim, error: str) -> JobState:
    now = clock.now()
    dead = claim.attempts >= claim.max_attempts
    state = JobState.dead if dead else JobState.pending
    result = await session.execute(
        sa.update(Job).where(_fenced(claim))
        .values(state=state.value, run_after=now if dead else now + backoff(claim.attempts), lease_until=None,
                locked_by=None, last_error=error, finished_at=now if dead else None)
        .execution_options(synchronize_session=False))
    return state if result.rowcount else JobState.running


@dataclass(frozen=True)
class Outcome:
    job_id: uuid.UUID
    kind: str
    state: str  # done | pending (retry) | dead | lost (claim swept away before it ran)
    attempts: int


async def run_claimed(session_factory: async_sessionmaker[AsyncSession], claim: Claim) -> Outcome:
    """Run the handler of a claimed job and mark it done in ONE transaction; on error, record the failure."""
    fn = handler_for(claim.kind)
    error: str | None = None
    async with session_factory() as s:
        try:
            # A transaction left idle longer than the lease (a client that vanished without closing its socket)
            # is ended by the server, releasing the row lock so the sweep can re-queue the job.
            lease_ms = max(1000, int((claim.lease_until - clock.now()).total_seconds() * 1000))
            await s.execute(sa.select(sa.func.set_config("idle_in_transaction_session_timeout", str(lease_ms),
                                                         True)))
            if not await _lock_claim(s, claim):
                await s.rollback()
                return Outcome(claim.id, claim.kind, "lost", claim.attempts)
            if fn is None:
                raise LookupError(f"no handler for job kind {claim.kind!r}")
            await fn(s, dict(claim.payload))
            await _mark_done(s, claim)
            await s.commit()
            log.info("job done", extra={"job_id": str(claim.id), "kind": claim.kind, "attempts": claim.attempts})
            return Outcome(claim.id, claim.kind, "done", claim.attempts)
        except Exception as e:  # noqa: BLE001  (any handler error is a failed attempt)
            error = _error_text(e)
            try:
                await s.rollback()
            except Exception:  # noqa: BLE001  (the connection may be gone; the server rolled back already)
                pass
            log.warning("job failed", extra={"job_id": str(claim.id), "kind": claim.kind,
                                             "attempts": claim.attempts, "error_type": type(e).__name__})
    async with session_factory() as s:
        state = await _mark_failed(s, claim, error)
        await s.commit()
    return Outcome(claim.id, claim.kind, "lost" if state is JobState.running else state.value, claim.attempts)


async def run_next(session_factory: async_sessionmaker[AsyncSession], *, worker: str | None = None,
                   kinds: list[str] | None = None) -> Outcome | None:
    """Claim (own short transaction) and run one ready job. None when nothing is ready."""
    worker = worker or worker_id()
    async with session_factory() as s:
        claim = await claim_next(s, worker_id=worker, kinds=kinds)
        await s.commit()
    if claim is None:
        return None
    return await run_claimed(session_factory, claim)


async def drain(session_factory: async_sessionmaker[AsyncSession], *, budget_seconds: float = 25.0,
                max_jobs: int = 1000, kinds: list[str] | None = None) -> list[Outcome]:
    """Run ready jobs until none is left, the time budget is spent or `max_jobs` ran (wall-clock budget)."""
    deadline = time.monotonic() + budget_seconds
    worker = worker_id()
    outcomes: list[Outcome] = []
    while len(outcomes) < max_jobs and time.monotonic() < deadline:
        outcome = await run_next(session_factory, worker=worker, kinds=kinds)
        if outcome is None:
            break
        outcomes.append(outcome)
    return outcomes


async def sweep_expired_leases(session: AsyncSession) -> int:
    """Put running jobs whose lease expired back to pending (or dead when out of attempts). Rows still locked by
    a live worker's transaction are skipped. The caller commits. Returns how many jobs were re-queued or buried."""
    now = clock.now()
    expired = (sa.select(Job.id).where(Job.state == JobState.running.value, Job.lease_until < now)
               .with_for_update(skip_locked=True))
    stmt = (sa.update(Job).where(Job.id.in_(expired))
            .values(state=sa.case((Job.attempts >= Job.max_attempts, JobState.dead.value),
                                  else_=JobState.pending.value),
                    finished_at=sa.case((Job.attempts >= Job.max_attempts, now), else_=None),
                    run_after=now, lease_until=None, locked_by=None,
                    last_error="lease expired: worker lost")
            .returning(Job.id)
            .execution_options(synchronize_session=False))
    return len((await session.execute(stmt)).all())


async def run_ready_in_session(session: AsyncSession, *, limit: int = 100, kinds: list[str] | None = None
                               ) -> list[Outcome]:
    """Run ready jobs inside the caller's session, each attempt in a savepoint (tests and one-process scripts:
    the same semantics as the worker, without a second connection). Failed attempts are recorded and backed off."""
    outcomes: list[Outcome] = []
    worker = worker_id()
    for _ in range(limit):
        async with session.begin_nested():
            claim = await claim_next(session, worker_id=worker, kinds=kinds)
        if claim is None:
            break
        fn = handler_for(claim.kind)
        error: str | None = None
        sp = await session.begin_nested()
        try:
            if fn is None:
                raise LookupError(f"no handler for job kind {claim.kind!r}")
            await fn(session, dict(claim.payload))
            await _mark_done(session, claim)
            await sp.commit()
            outcomes.append(Outcome(claim.id, claim.kind, "done", claim.attempts))
            continue
        except Exception as e:  # noqa: BLE001
            await sp.rollback()
            error = _error_text(e)
        async with session.begin_nested():
            state = await _mark_failed(session, claim, error)
        outcomes.append(Outcome(claim.id, claim.kind, state.value, claim.attempts))
    return outcomes
