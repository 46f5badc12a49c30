"""The composition root: the one place where the pieces of the domain are wired to each other and to the outside
world. The API (api.main.create_app), the Celery worker and beat (workers/), the command-line tools and the test
session all call `compose()` before doing any work; it is idempotent.

What it wires, and why here:
- job handlers and event subscribers: the modules that define them are imported, so `events.publish` knows every
  subscriber and a worker can run every job kind (HANDLER_MODULES; `PUA_EXTRA_HANDLER_MODULES` adds test ones);
- the periodic jobs beat enqueues once a day (DAILY_ENQUEUERS);
- the scope builders of access.yaml (owned by the registry, which owns the case tables);
- merge hooks on person references whose owner's service sits above its models;
- read-side contributions of higher contexts to lower ones (what a provider sees of a person: the care plan's
  interventions);
- the blob store for attachments (an integration the domain only knows as a protocol).
"""
from __future__ import annotations

import importlib
import os

from domain.care_plan import queries as care_plan_queries
from domain.diary import policy as diary_policy
from domain.kernel import person_refs, storage
from domain.measures import service as measures
from domain.measures.models import MeasureApplication
from domain.registry import cartelle, persons
from domain.registry import policy as registry_policy
from domain.registry.models import Cartella
from domain.reporting import exports
from domain.security import scopes
from domain.waiting_list import service as waiting_list
from domain.waiting_list.models import WaitingListEntry
from integrations.storage.files import default_store, report_export_store

HANDLER_MODULES: list[str] = [
    "domain.care_plan.jobs",
    "domain.assessment.subscribers",
    "domain.assessment.jobs",
    "domain.pua.subscribers",
    "domain.discharge.subscribers",
    "domain.discharge.jobs",
    "domain.waiting_list.subscribers",
    "domain.waiting_list.jobs",
    "domain.imports.jobs",
    "domain.services.jobs",
    "domain.measures.jobs",
    "domain.security.jobs",  # the audit trail's monthly partitions
    "integrations.asst.outbound",  # the outbox to ASST: event subscribers and the relay (issue 12)
    "integrations.asst.services_outbound",  # activation orders to ASST as ServiceRequest and Task (issue 13)
    "workers.report_exports",  # report export steps and the expiry of their files (issue 14)
]

# Periodic work as data: each "module:function" is `async def f(session)` that enqueues its job, idempotent per day
# (dedup key with the date). Beat runs them every `daily_jobs_seconds`; the first run of a day creates the jobs.
DAILY_ENQUEUERS: list[str] = [
    "domain.care_plan.jobs:enqueue_review_reminders",
    "domain.assessment.jobs:enqueue_reassessment_reminders",
    "domain.discharge.jobs:enqueue_evaluation_clock",
    "domain.waiting_list.jobs:enqueue_clocks",
    "integrations.asst.outbound:enqueue_relay",  # hourly: messages left pending while ASST was not configured
    "domain.services.jobs:enqueue_daily",  # weeks below the threshold, orders past their end
    "domain.measures.jobs:enqueue_daily",  # measures past their period end (Pro.Vi after April)
    "domain.security.jobs:enqueue_audit_partitions",  # the audit trail's partitions of the coming months
    "domain.reporting.exports:enqueue_expiry",  # hourly: report export files past their expiry
]

_composed = False
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


def compose() -> None:
    """Wire everything once per process (job handler modules are re-checked every call: tests add some)."""
    global _composed
    load_handlers()
    if _composed:
        return
    for name, builder in registry_policy.SCOPE_BUILDERS.items():
        scopes.register_scope(name, builder)
    person_refs.before_merge(Cartella, "person_id", cartelle.before_person_merge)
    person_refs.before_merge(WaitingListEntry, "person_id", waiting_list.before_person_merge)
    person_refs.before_merge(MeasureApplication, "person_id", measures.before_person_merge)
    persons.register_minimal_view(care_plan_queries.interventions_for_provider)
    diary_policy.register_owner("care_plan", care_plan_queries.plan_cartella_id)
    storage.install(default_store)
    storage.install(report_export_store, area=exports.STORE_AREA)
    _composed = True
