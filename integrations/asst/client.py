"""The HTTP client of ASST's FHIR server: one POST of a transaction Bundle per message.

The idempotency key travels twice: as the `X-Idempotency-Key` header and as the Bundle's `identifier` (the FHIR way
ASST's server can recognise a Bundle it already processed). It is the message id, so it is the same on every
attempt, after a retry by an operator and after a worker was killed mid-send.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from domain.kernel.settings import get_settings

FHIR_JSON = "application/fhir+json"
IDEMPOTENCY_HEADER = "X-Idempotency-Key"


@dataclass(frozen=True)
class Result:
    ok: bool
    status: int | None
    error: str | None  # the status or the kind of failure; never the remote body (it may echo personal data)


def enabled() -> bool:
    return bool(get_settings().asst_fhir_base_url)


async def post_bundle(bundle: dict[str, Any], *, idempotency_key: str) -> Result:
    s = get_settings()
    headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON, IDEMPOTENCY_HEADER: idempotency_key}
    if s.asst_fhir_token:
        headers["Authorization"] = f"Bearer {s.asst_fhir_token}"
    try:
        async with httpx.AsyncClient(timeout=s.asst_fhir_timeout_seconds) as http:
            r = await http.post(s.asst_fhir_base_url.rstrip("/"), json=bundle, headers=headers)
    except httpx.TimeoutException as e:
        return Result(False, None, f"timeout ({type(e).__name__})")
    except httpx.HTTPError as e:
        return Result(False, None, f"errore di rete ({type(e).__name__})")
    if 200 <= r.status_code < 300:
        return Result(True, r.status_code, None)
    return Result(False, r.status_code, f"HTTP {r.status_code}")
