"""Domain events over the outbox: `publish` writes one durable job per subscriber, in the caller's transaction.

    @events.subscribe("person.died")
    async def close_offers(session, payload): ...          # runs in its own job transaction, retried on error

    await events.publish(session, "person.died", {"person_id": str(p.id)})

Each subscriber gets its own job (kind `event:<name>:<module.qualname>`), so one failing subscriber is retried
alone and never blocks the others. Subscribers are known from the modules imported in the publishing process:
the composition root (deploy.composition.compose, called by the API, the worker, scripts and tests) imports them.
"""
from __future__ import annotations

import hashlib
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from domain.kernel import jobs

log = logging.getLogger("events")

_subscribers: dict[str, dict[str, str]] = {}  # event name -> {subscriber qualname: job kind}


def job_kind(name: str, fn) -> str:
    return f"event:{name}:{fn.__module__}.{fn.__qualname__}"


def subscribe(name: str):
    """Register `async def fn(session, payload) -> None` as a subscriber of event `name`."""
    if not name or ":" in name:
        raise ValueError("event names are non-empty and contain no ':'")

    def register(fn: jobs.Handler) -> jobs.Handler:
        kind = job_kind(name, fn)

        async def run(session: AsyncSession, job_payload: dict[str, Any]) -> None:
            await fn(session, job_payload["payload"])

        run.__module__, run.__qualname__ = fn.__module__, fn.__qualname__
        jobs.handler(kind)(run)
        _subscribers.setdefault(name, {})[f"{fn.__module__}.{fn.__qualname__}"] = kind
        return fn

    return register


def subscribers(name: str) -> list[str]:
    """Job kinds of the subscribers of `name` known to this process."""
    return sorted(_subscribers.get(name, {}).values())


async def publish(session: AsyncSession, name: str, payload: dict[str, Any], *, dedup_key: str | None = None
                  ) -> None:
    """Enqueue one job per subscriber of `name`, in the caller's transaction. With `dedup_key`, publishing the
    same event twice enqueues nothing the second time."""
    await publish_all(session, [(name, payload, dedup_key)])


async def publish_all(session: AsyncSession, events: list[tuple[str, dict[str, Any], str | None]]) -> None:
    """Several (name, payload, dedup_key) events at once: every subscriber's job in one statement."""
    rows = []
    for name, payload, dedup_key in events:
        if dedup_key is not None and len(dedup_key) > 180:
            raise ValueError("event dedup_key longer than 180 characters")
        for kind in subscribers(name):
            key = f"{dedup_key}:{hashlib.sha1(kind.encode()).hexdigest()[:16]}" if dedup_key else None
            rows.append(jobs.values(kind=kind, payload={"event": name, "payload": payload}, dedup_key=key))
        if not _subscribers.get(name):
            log.debug("event without subscribers", extra={"event": name})
    await jobs.enqueue_many(session, rows)
