"""The modules that register job handlers (`@jobs.handler`) and event subscribers (`@events.subscribe`).

Every process that runs or publishes jobs imports them through `load_handlers()`: the worker at start-up (and
before each relay), the API at start-up (so `events.publish` knows every subscriber). A context adds its module
here, e.g. "domain.care_plan.subscribers". `PUA_EXTRA_HANDLER_MODULES` (comma-separated) adds more at run time,
which the tests use for test-only handlers.
"""
from __future__ import annotations

import importlib
import os

HANDLER_MODULES: list[str] = [
    # "domain.<context>.subscribers",
    "domain.care_plan.jobs",
    "domain.assessment.subscribers",
    "domain.assessment.jobs",
    "domain.pua.subscribers",
]

# Periodic work as data: each "module:function" is `async def f(session)` that enqueues its job, idempotent per day
# (dedup key with the date). Beat runs them every `daily_jobs_seconds`; the first run of a day creates the jobs.
DAILY_ENQUEUERS: list[str] = [
    "domain.care_plan.jobs:enqueue_review_reminders",
    "domain.assessment.jobs:enqueue_reassessment_reminders",
]

_loaded: set[str] = set()


def handler_modules() -> list[str]:
    extra = [m.strip() for m in os.environ.get("PUA_EXTRA_HANDLER_MODULES", "").split(",") if m.strip()]
    return [*HANDLER_MODULES, *extra]


def load_handlers() -> list[str]:
    """Import every handler module once; returns the module names. An import error is raised: a worker that
    cannot load its handlers must not start."""
    for name in handler_modules():
        if name not in _loaded:
            importlib.import_module(name)
            _loaded.add(name)
    return handler_modules()


def daily_enqueuers():
    for spec in DAILY_ENQUEUERS:
        module, func = spec.split(":")
        yield spec, getattr(importlib.import_module(module), func)
