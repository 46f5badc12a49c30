"""Signing-key rotation at the identity provider, seen by a running API process (no restart): the JWKS served on
127.0.0.1 gains a new key, then drops the old one. Tokens of both keys work during the overlap; tokens of the
dropped key are refused once the cached JWKS expires; unknown kids refetch the JWKS at most once per floor."""
from __future__ import annotations

import math
import time
import uuid

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from tests.faults.support import api_env, run_api, wait_until
from tests.integrations.identity.keys import JwksServer, SigningKey, claims
from tests.support import make_user

CACHE_SECONDS, FLOOR_SECONDS = 2, 1


async def _user_id(db: dict[str, str]) -> str:
    engine = create_async_engine(db["DATABASE_URL"])
    async with AsyncSession(engine, expire_on_commit=False) as s:
        user = await make_user(s, "comune_social_worker", "comune-crema")
        await s.commit()
        uid = str(user.id)
    await engine.dispose()
    return uid


@pytest.mark.timeout(180)
async def test_rotation_overlap_then_old_key_refused_without_restart(fresh_db, tmp_path):
    uid = await _user_id(fresh_db)
    old, new = SigningKey("RS256", kid="idp-2026-old"), SigningKey("ES256", kid="idp-2026-new")
    with JwksServer(old) as idp:
        env = api_env(fresh_db, JWKS_URL=idp.url, JWKS_CACHE_SECONDS=str(CACHE_SECONDS),
                      JWKS_MIN_REFETCH_SECONDS=str(FLOOR_SECONDS))
        env.pop("JWT_PUBLIC_KEY_FILE")
        with run_api(env, tmp_path / "api.log") as api:
            async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
                async def me(key: SigningKey) -> int:
                    token = key.sign(claims(sub=uid))  # a fresh token each time: never one that expired
                    return (await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})).status_code

                async def answers(key: SigningKey, status: int) -> bool:
                    return await me(key) == status

                assert await me(old) == 200
                assert await me(new) == 401  # not published yet

                # 1. The provider publishes the new key beside the old one: both verify.
                idp.set_keys(old, new)
                await wait_until(lambda: answers(new, 200), timeout=30, what="the new key accepted", api=api)
                for _ in range(3):
                    assert await me(old) == 200 and await me(new) == 200

                # 2. Made-up kids cannot make the API hammer the provider: at most one download per floor.
                before, started = idp.requests, time.monotonic()
                for i in range(20):
                    token = new.sign(claims(sub=uid), headers={"kid": f"made-up-{uuid.uuid4().hex[:6]}-{i}"})
                    r = await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
                    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
                elapsed = time.monotonic() - started
                assert idp.requests - before <= math.ceil(elapsed / FLOOR_SECONDS) + 1

                # 3. The provider drops the old key: its tokens are refused once the cache expires; new ones work.
                idp.set_keys(new)
                await wait_until(lambda: answers(old, 401), timeout=30, what="the old key refused", api=api)
                for _ in range(3):
                    assert await me(old) == 401 and await me(new) == 200
            assert api.proc.poll() is None  # the same process throughout
