"""Celery worker and beat. Durable work lives in the `job` table (domain.kernel.jobs); Celery only wakes the relay.

`wake()` is what the API calls after a request committed new jobs: it asks a worker to run the relay now.
It is best effort and never blocks or fails the request: the send happens on a background thread, and if the
broker is down the beat schedule (relay every few seconds) picks the jobs up anyway.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger("workers.wake")

_executor: ThreadPoolExecutor | None = None
_lock = threading.Lock()
_queued = threading.Event()  # a send is already waiting on the executor: further wakes coalesce into it


def _send() -> bool:
    _queued.clear()  # cleared before sending: a wake arriving during the send queues one more
    try:
        from workers.tasks import relay_jobs

        relay_jobs.apply_async(retry=False)
        return True
    except Exception as e:  # noqa: BLE001  (best effort: the beat relay is the safety net)
        log.warning("relay wake failed: %s", type(e).__name__)
        return False


def wake(*, block: bool = False) -> bool:
    """Ask a worker to run the job relay now. Never raises. With block=True, sends in the caller's thread and
    returns whether the broker accepted the message; otherwise returns at once (True = a send is queued)."""
    global _executor
    if block:
        return _send()
    if _queued.is_set():
        return True
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relay-wake")
        _queued.set()
        try:
            _executor.submit(_send)
        except RuntimeError:  # interpreter shutting down
            _queued.clear()
            return False
    return True
