"""Celery worker and beat. Durable work lives in the `job` table (domain.kernel.jobs); Celery only wakes the relay.

`wake()` is what the API calls after a request committed new jobs: it asks a worker to run the relay now.
It is best effort and never blocks or fails the request: the send happens on a background thread, and if the
broker is down the beat schedule (relay every few seconds) picks the jobs up anyway. Sends are at least
`job_wake_min_interval_seconds` apart: under load every request commits jobs, and one wake per request cost the API
process a tenth of its CPU (a broker round trip each) for a relay that drains every pending job in one run anyway.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger("workers.wake")

_executor: ThreadPoolExecutor | None = None
_lock = threading.Lock()
_queued = threading.Event()  # a send is already waiting on the executor: further wakes coalesce into it
_last_send = 0.0  # time.monotonic() of the last send (the executor's single thread is its only writer)


def _pause() -> None:
    """Wait out the rest of the minimum interval since the last send; wakes arriving meanwhile join this one."""
    from domain.kernel.settings import get_settings

    wait = _last_send + get_settings().job_wake_min_interval_seconds - time.monotonic()
    if wait > 0:
        time.sleep(wait)


def _send() -> bool:
    global _last_send
    _queued.clear()  # cleared before sending: a wake arriving during the send queues one more
    _last_send = time.monotonic()
    try:
        from workers.tasks import relay_jobs

        relay_jobs.apply_async(retry=False)
        return True
    except Exception as e:  # noqa: BLE001  (best effort: the beat relay is the safety net)
        log.warning("relay wake failed: %s", type(e).__name__)
        return False


def _paced_send() -> bool:
    _pause()
    return _send()


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
            _executor.submit(_paced_send)
        except RuntimeError:  # interpreter shutting down
            _queued.clear()
            return False
    return True
