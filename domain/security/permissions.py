"""Coarse permissions per route. Which role holds which permission is data (schemas/security/permissions.yaml),
readable by admins; the row filter (policy modules) then narrows what each permission reaches."""
from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

import yaml

from domain.security.models import Role

PERMISSIONS_FILE = Path(__file__).resolve().parents[2] / "schemas" / "security" / "permissions.yaml"


class Permission(StrEnum):
    person_read = "person.read"
    person_search = "person.search"
    person_create = "person.create"
    person_update = "person.update"
    person_merge = "person.merge"
    relation_write = "relation.write"
    cartella_read = "cartella.read"
    cartella_write = "cartella.write"
    territory_read = "territory.read"
    territory_admin = "territory.admin"
    user_admin = "user.admin"
    team_admin = "team.admin"
    work_queue = "work.queue"
    consent_read = "consent.read"
    consent_write = "consent.write"
    break_glass = "break_glass.open"
    access_log_read = "access_log.read"
    permissions_read = "permissions.read"
    clock_admin = "clock.admin"  # the demo clock of a development service (DEV_MODE=true only)
    pua_read = "pua.read"
    pua_register = "pua.register"
    pua_triage = "pua.triage"
    instrument_read = "instrument.read"
    vmd_read = "vmd.read"
    vmd_request = "vmd.request"
    vmd_manage = "vmd.manage"
    vmd_assess = "vmd.assess"
    care_plan_read = "care_plan.read"
    care_plan_write = "care_plan.write"
    diary_read = "diary.read"
    diary_write = "diary.write"
    attachment_read = "attachment.read"
    attachment_write = "attachment.write"
    discharge_signal = "discharge.signal"  # ward staff: signal a protected discharge
    discharge_read = "discharge.read"
    discharge_manage = "discharge.manage"  # COT and comune: evaluation, project, discharge, exits
    import_run = "import.run"  # data stewards: import persons and cartelle from an older platform
    waiting_list_read = "waiting_list.read"
    waiting_list_apply = "waiting_list.apply"  # file an application (RSA and other UDO)
    waiting_list_decide = "waiting_list.decide"  # the equipe's listing decision
    waiting_list_manage = "waiting_list.manage"  # the comune: urgency, confirmation, withdrawal, replies to offers
    waiting_list_urgency_decide = "waiting_list.urgency_decide"  # sub-ambito coordinator confirms or rejects
    waiting_list_offer = "waiting_list.offer"  # UDO operator: free beds, offers, replies
    services_read = "services.read"  # activation orders, delivery log, weekly and monthly summaries
    services_order = "services.order"  # the case side: order from a plan's intervention, start, suspend, end
    services_provide = "services.provide"  # the provider: accept or decline, start, suspend, end, delivery log
    services_cost_read = "services.cost_read"  # planned and delivered cost of a plan (budget di salute)
    services_report = "services.report"  # aggregate indicators (SAD run entirely in the system)
    services_accredit = "services.accredit"  # accreditations of providers (reference data)
    measures_read = "measures.read"  # measure applications of one's cases
    measures_manage = "measures.manage"  # file an application and move it through its states
    measures_report = "measures.report"  # a call's budget and status counts (aggregates)
    measures_admin = "measures.admin"  # the measure catalogue and the calls (bandi)
    outbox_read = "outbox.read"  # outbound messages to ASST: metadata (state, attempts, errors), no payload
    outbox_payload = "outbox.payload"  # the FHIR resources a message carries (personal data)
    outbox_retry = "outbox.retry"  # put a dead or withheld message back in the queue
    report_read = "report.read"  # LEPS and Piano di Zona indicators: aggregates only, small cells suppressed
    report_drilldown = "report.drilldown"  # from an indicator's number to the persons behind it (row scopes apply)
    person_regional_search = "person.regional_search"  # in which Ambito a person is known (minimal identity, audited)


@lru_cache
def role_permissions() -> dict[Role, frozenset[Permission]]:
    doc = yaml.safe_load(PERMISSIONS_FILE.read_text())
    table: dict[Role, frozenset[Permission]] = {}
    for role, perms in doc["roles"].items():
        table[Role(role)] = frozenset(Permission(p) for p in perms or [])
    missing = set(Role) - set(table)
    if missing:
        raise RuntimeError(f"permissions.yaml lacks roles: {sorted(missing)}")
    return table


def permissions_of(roles) -> frozenset[Permission]:
    table = role_permissions()
    out: set[Permission] = set()
    for r in roles:
        out |= table.get(r, frozenset())
    return frozenset(out)
