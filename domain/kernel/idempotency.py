"""Act once per key: the first request under a key does the work and its answer is stored with it (in the same
transaction as the work); the same request again gets the stored answer, another request under the key a 409.

    async with-less use, inside the request's unit of work:
        stored = await idempotency.claim(session, ambito_id=..., scope="fhir.transaction", key=k, request_hash=h)
        if stored is not None:
            return stored.status, stored.response
        ... do the work ...
        await idempotency.remember(session, ambito_id=..., scope=..., key=k, status=200,
                                   response=body, created_by=user_id)

`claim` inserts the key's row at once (its answer is filled in by `remember`, in the same transaction), so two
copies sent at once are serialised by the unique key: the second waits for the first to commit and then finds its
answer (or, if the first rolled back, takes the key itself). One statement for a new key.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from domain.kernel import clock
from domain.kernel.errors import Conflict
from domain.kernel.ids import new_id
from domain.kernel.models import IdempotentRequest

# Statement objects built once (their cache keys are computed once): claim and remember run on every Bundle.
_CLAIM = (pg_insert(IdempotentRequest.__table__)
          .on_conflict_do_nothing(index_elements=["ambito_id", "scope", "key"])
          .returning(IdempotentRequest.__table__.c.id))
# (named apart from the columns: an UPDATE reserves the column names for its SET clause)
_KEY = sa.and_(IdempotentRequest.ambito_id == sa.bindparam("k_ambito"),
               IdempotentRequest.scope == sa.bindparam("k_scope"), IdempotentRequest.key == sa.bindparam("k_key"))
_FIND = sa.select(IdempotentRequest).where(_KEY)
_ANSWER = (sa.update(IdempotentRequest.__table__).where(_KEY)
           .values(status=sa.bindparam("v_status"), response=sa.bindparam("v_response"),
                   created_by=sa.bindparam("v_by")))
PENDING = 0  # the status of a claimed key until `remember` (never committed as such)


def request_hash(payload: Any) -> str:
    """A stable digest of a JSON document (key order does not matter)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


async def claim(session, *, ambito_id: uuid.UUID, scope: str, key: str, request_hash: str) -> IdempotentRequest | None:
    """None: this key is new and is now ours, do the work. A stored request: answer it again. Conflict: another
    request used it."""
    ours = (await session.execute(_CLAIM, {
        "id": new_id(), "ambito_id": ambito_id, "scope": scope, "key": key, "request_hash": request_hash,
        "status": PENDING, "response": {}, "created_by": None, "created_at": clock.now()})).first()
    if ours is not None:
        return None
    found = (await session.execute(_FIND, _key(ambito_id, scope, key))).scalar_one()
    if found.request_hash != request_hash:
        raise Conflict("Identificativo già usato per una richiesta diversa: usare un nuovo identificativo.",
                       key=key)
    return found


async def remember(session, *, ambito_id: uuid.UUID, scope: str, key: str, status: int, response: dict[str, Any],
                   created_by: uuid.UUID | None = None) -> None:
    """The answer of the key `claim` gave this transaction."""
    await session.execute(_ANSWER, {**_key(ambito_id, scope, key), "v_status": status, "v_response": response,
                                    "v_by": created_by})


def _key(ambito_id: uuid.UUID, scope: str, key: str) -> dict[str, Any]:
    return {"k_ambito": ambito_id, "k_scope": scope, "k_key": key}


async def answered_with(session, *, ambito_id: uuid.UUID, scope: str, fragment: dict[str, Any]
                        ) -> list[IdempotentRequest]:
    """The stored requests of a scope whose answer contains `fragment` (JSON containment), oldest first."""
    return list((await session.execute(sa.select(IdempotentRequest).where(
        IdempotentRequest.ambito_id == ambito_id, IdempotentRequest.scope == scope,
        IdempotentRequest.response.contains(fragment)).order_by(IdempotentRequest.created_at).limit(100)
    )).scalars())
