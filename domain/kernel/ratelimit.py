"""Per-actor rate limits, kept in this process (a sliding window of one minute).

Each API replica counts on its own, so with N replicas an actor can make up to N times the limit: the limit is a
brake on scraping the registry, not an accounting device; a shared limit belongs in the reverse proxy."""
from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Hashable

from domain.kernel.errors import TooManyRequests

WINDOW_SECONDS = 60.0
_hits: dict[tuple[str, Hashable], deque[float]] = {}


def check(name: str, actor: Hashable, per_minute: int, *, detail: str) -> None:
    """Count one use of `name` by `actor`; TooManyRequests (429, Retry-After) past `per_minute` in the window.
    A limit of 0 or less switches the check off."""
    if per_minute <= 0:
        return
    now = time.monotonic()
    hits = _hits.setdefault((name, actor), deque())
    while hits and hits[0] <= now - WINDOW_SECONDS:
        hits.popleft()
    if len(hits) >= per_minute:
        raise TooManyRequests(detail, retry_after=max(1, math.ceil(hits[0] + WINDOW_SECONDS - now)))
    hits.append(now)
    if len(_hits) > 50_000:  # bounded memory: forget idle actors
        for key in [k for k, v in _hits.items() if not v or v[-1] <= now - WINDOW_SECONDS]:
            del _hits[key]


def reset() -> None:
    _hits.clear()
