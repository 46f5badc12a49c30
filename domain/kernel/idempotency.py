"""Act once per key: the first request under a key does the work and its answer is stored with it (in the same
transaction as the work); the same request again gets the stored answer, another request under the key a 409.

    async with-less use, inside the request's unit of work:
        stored = await idempotency.claim(session, ambito_id=..., scope="fhir.transaction", key=k, request_hash=h)
        if stored is not None:
            return stored.status, stored.response
        ... do the work ...
        await idempotency.remember(session, ambito_id=..., scope=..., key=k, request_hash=h, status=200,
                                   response=body, created_by=user_id)

`claim` takes a transaction-scoped advisory lock on the key, so two copies sent at once are serialised: the
second waits for the first to commit and then finds its answer.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import sqlalchemy as sa

from domain.kernel import clock
from domain.kernel.errors import Conflict
from domain.kernel.ids import new_id
from domain.kernel.models import IdempotentRequest

# Statement objects built once (their cache keys are computed once): claim and remember run on every Bundle.
_LOCK = sa.select(sa.func.pg_advisory_xact_lock(sa.bindparam("lock", type_=sa.BigInteger)))
_FIND = sa.select(IdempotentRequest).where(
    IdempotentRequest.ambito_id == sa.bindparam("ambito_id"), IdempotentRequest.scope == sa.bindparam("scope"),
    IdempotentRequest.key == sa.bindparam("key"))
_INSERT = sa.insert(IdempotentRequest.__table__)


def request_hash(payload: Any) -> str:
    """A stable digest of a JSON document (key order does not matter)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


async def claim(session, *, ambito_id: uuid.UUID, scope: str, key: str, request_hash: str) -> IdempotentRequest | None:
    """None: this key is new, do the work. A stored request: answer it again. Conflict: another request used it."""
    lock = hashlib.sha256(f"{ambito_id}|{scope}|{key}".encode()).digest()
    await session.execute(_LOCK, {"lock": int.from_bytes(lock[:8], "big", signed=True)})
    found = (await session.execute(_FIND, {"ambito_id": ambito_id, "scope": scope, "key": key})
             ).scalar_one_or_none()
    if found is not None and found.request_hash != request_hash:
        raise Conflict("Identificativo già usato per una richiesta diversa: usare un nuovo identificativo.",
                       key=key)
    return found


async def remember(session, *, ambito_id: uuid.UUID, scope: str, key: str, request_hash: str, status: int,
                   response: dict[str, Any], created_by: uuid.UUID | None = None) -> None:
    await session.execute(_INSERT, {"id": new_id(), "ambito_id": ambito_id, "scope": scope, "key": key,
                                    "request_hash": request_hash, "status": status, "response": response,
                                    "created_by": created_by, "created_at": clock.now()})


async def answered_with(session, *, ambito_id: uuid.UUID, scope: str, fragment: dict[str, Any]
                        ) -> list[IdempotentRequest]:
    """The stored requests of a scope whose answer contains `fragment` (JSON containment), oldest first."""
    return list((await session.execute(sa.select(IdempotentRequest).where(
        IdempotentRequest.ambito_id == ambito_id, IdempotentRequest.scope == scope,
        IdempotentRequest.response.contains(fragment)).order_by(IdempotentRequest.created_at).limit(100)
    )).scalars())
