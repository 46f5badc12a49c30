"""Synthetic activity on top of the synthetic Ambito (deploy/seed/synthetic.py), for the indicators and their
benchmark: `python -m deploy.seed.activity [--persons N] [--scale S] [--year 2025]`.

Two things, both by COPY (asyncpg `copy_records_to_table`) in one transaction:

1. **Cartelle over 2020-2025.** The synthetic seeder opens every cartella at some time in the last eight years and
   never closes one. Here they are given a history instead: per area exactly `round(seed count × scale)` of them
   are open at the end of 31 December 2023 (Europe/Rome), the seed's 2023 table (brief §5.1, seed L1396-1414;
   scale 1 gives 28,215), some of those closed during 2024-2025; the others are opened in 2024-2025, and more
   cartelle are added that opened and closed before 2024. The edges are exercised on purpose: in each area one
   cartella opened at 23:59:59 on 31 December 2023, one closed at 00:00 on 1 January 2024 (both open at the end
   of 2023), one closed at 23:59:59 on 31 December 2023 and one opened at 00:00 on 1 January 2024 (both not).
2. **A year of events in proportion** to the persons of the Ambito (`YEARLY_PER_1000`, per 1,000 residents):
   PUA requests, VMDs (protected-discharge evaluations among them), protected discharges, waiting-list
   applications, care plans (ordinary ones after a concluded VMD, temporary ones for listed applications). The
   rates are assumptions of this generator, not the seed's (it gives no yearly counts of these events).

Rows carry no history and no audit (a bulk load, like an import); measures and service activations are not
generated (their indicators, M1 and SAD, then read empty tables).
"""
from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from deploy.seed import synthetic
from domain.kernel.clock import ROME
from domain.kernel.ids import new_id

HISTORY_FIRST_YEAR, HISTORY_LAST_YEAR = 2020, 2025
SNAPSHOT_YEAR = 2023
CLOSED_AFTER_SHARE = 0.3   # of the cartelle open at the end of 2023, closed during 2024-2025
CLOSED_BEFORE_SHARE = 0.25  # extra cartelle opened and closed before 2024, per cartella open at the end of 2023
YEARLY_PER_1000 = {"requests": 30.0, "vmd": 12.0, "discharges": 4.0, "applications": 5.0}
VMD_TRIGGERS = (("pua", 40), ("rsa_application", 15), ("mmg", 12), ("measure_b1", 5), ("udo_access", 5),
                ("asd", 3), ("invalidita_civile", 5), ("cdcd", 3), ("other", 12))
UDO_TYPES = (("rsa", 70), ("cdi", 15), ("rsd", 5), ("cdd", 5), ("cure_intermedie", 5))
SYNTHETIC_USER, SYNTHETIC_TEAM = "synthetic.activity", "team-synthetic-activity"


def targets(scale: float = 1.0) -> dict[str, int]:
    """Cartelle open at the end of 2023 per area: the seed's table times `scale`, rounded half up per area."""
    return {a: int((Decimal(n) * Decimal(str(scale))).quantize(Decimal(1), rounding=ROUND_HALF_UP))
            for a, n in synthetic.OPEN_CARTELLE_2023.items()}


def rome(d: date, t: dtime = dtime(0, 0)) -> datetime:
    return datetime.combine(d, t, ROME).astimezone(UTC)


def _between(rng: random.Random, lo: datetime, hi: datetime) -> datetime:
    """A random instant in [lo, hi)."""
    return lo + timedelta(seconds=rng.random() * max((hi - lo).total_seconds() - 1, 0))


@dataclass
class ActivityReport:
    open_at_2023: dict[str, int] = field(default_factory=dict)
    cartelle_closed_before: int = 0
    cartelle_opened_after: int = 0
    events: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0


# ---------------------------------------------------------------------------------------------------- cartelle
async def _cartelle_history(conn, ambito_id: uuid.UUID, want: dict[str, int], rng: random.Random,
                            report: ActivityReport) -> None:
    start = rome(date(HISTORY_FIRST_YEAR, 1, 1))
    end_2023 = rome(date(SNAPSHOT_YEAR + 1, 1, 1))  # the first instant of 2024 in Rome
    last = rome(date(HISTORY_LAST_YEAR + 1, 1, 1))
    rows = await conn.fetch(
        "select c.id, c.person_id, c.area, c.owning_comune_id, p.birth_date from cartella c "
        "join person p on p.id = c.person_id where c.ambito_id = $1 and c.status = 'open' order by c.id", ambito_id)
    by_area: dict[str, list[Any]] = {a: [] for a in want}
    for r in rows:
        by_area.setdefault(r["area"], []).append(r)
    updates: list[tuple] = []
    extra: list[tuple] = []

    def born(r: Any) -> datetime:
        return max(start, rome(r["birth_date"]) if r["birth_date"] else start)

    for area, pool in by_area.items():
        k = want.get(area, 0)
        rng.shuffle(pool)
        # only persons born before the end of 2023 can have had a cartella then
        before = [r for r in pool if born(r) < end_2023 - timedelta(days=1)]
        if len(before) < k:
            raise RuntimeError(f"area {area}: {len(before)} synthetic cartelle, {k} wanted open at the end of "
                               f"{SNAPSHOT_YEAR}: seed more persons or use a smaller scale")
        kept = before[:k]
        chosen = {r["id"] for r in kept}
        rest = [r for r in pool if r["id"] not in chosen]
        for i, r in enumerate(kept):  # open at the end of 2023
            opened = end_2023 - timedelta(seconds=1) if i == 0 else _between(rng, born(r), end_2023)
            closed = None
            if i == 1:
                closed = end_2023  # closed at 00:00 on 1 January 2024: it was open at the end of 2023
            elif rng.random() < CLOSED_AFTER_SHARE:
                closed = _between(rng, end_2023, last)
            updates.append((r["id"], opened, closed, "closed" if closed else "open"))
        for i, r in enumerate(rest):  # opened in 2024-2025 (the first at 00:00 on 1 January 2024)
            opened = end_2023 if i == 0 else _between(rng, max(end_2023, born(r)), last)
            updates.append((r["id"], opened, None, "open"))
        report.cartelle_opened_after += len(rest)
        n_before = max(1, round(k * CLOSED_BEFORE_SHARE)) if before else 0
        for i in range(n_before):  # opened and closed before 2024 (the first at 23:59:59 on 31 December 2023)
            r = before[rng.randrange(len(before))]
            opened = _between(rng, born(r), end_2023 - timedelta(seconds=2))
            closed = end_2023 - timedelta(seconds=1) if i == 0 else _between(rng, opened, end_2023)
            extra.append((new_id(), ambito_id, r["person_id"], area, r["owning_comune_id"], "closed", opened,
                          closed, "Chiusura (attività sintetica)", 1))
        report.cartelle_closed_before += n_before
        report.open_at_2023[area] = k
    await conn.execute("create temp table _cartella_history (id uuid, opened_at timestamptz, closed_at timestamptz,"
                       " status varchar(20)) on commit drop")
    await conn.copy_records_to_table("_cartella_history", records=updates)
    await conn.execute("update cartella c set opened_at = h.opened_at, closed_at = h.closed_at, status = h.status, "
                       "close_reason = case when h.closed_at is null then null "
                       "else 'Chiusura (attività sintetica)' end from _cartella_history h where c.id = h.id")
    await conn.copy_records_to_table("cartella", records=extra, columns=(
        "id", "ambito_id", "person_id", "area", "owning_comune_id", "status", "opened_at", "closed_at",
        "close_reason", "version"))


# ---------------------------------------------------------------------------------------------------- events
@dataclass
class Actors:
    user_id: uuid.UUID
    team_id: uuid.UUID
    location_id: uuid.UUID
    ward_id: uuid.UUID
    cot_id: uuid.UUID


async def _found_or_made(conn, find: str, code: str, make: str, ambito_id: uuid.UUID) -> uuid.UUID:
    found = await conn.fetchval(find, code)
    if found is not None:
        return found
    made = new_id()
    await conn.execute(make, made, code, ambito_id)
    return made


async def _actors(conn, ambito_id: uuid.UUID) -> Actors:
    """The user, team and organisations the synthetic events name (made once, found again on a second run)."""
    user = await _found_or_made(
        conn, "select id from app_user where username = $1", SYNTHETIC_USER,
        "insert into app_user (id, username, display_name, kind, ambito_id, scopes, active) "
        "values ($1, $2, 'Attività sintetica', 'system', $3, '{}', true)", ambito_id)
    team = await _found_or_made(
        conn, "select id from team where code = $1", SYNTHETIC_TEAM,
        "insert into team (id, ambito_id, code, name, type, active) "
        "values ($1, $3, $2, 'Equipe VMD (attività sintetica)', 'vmd_equipe', true)", ambito_id)
    units = [r["id"] for r in await conn.fetch(
        "select id from organisation where kind = 'asst_unit' order by code")]
    any_org = await conn.fetchval("select id from organisation where kind in ('asst', 'csc') order by kind limit 1")
    ward = units[0] if units else any_org
    return Actors(user, team, units[-1] if units else any_org, ward, units[1] if len(units) > 1 else ward)


def _weighted(rng: random.Random, pairs: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


async def _events(conn, ambito_id: uuid.UUID, year: int, rng: random.Random, report: ActivityReport) -> None:
    a = await _actors(conn, ambito_id)
    lo, hi = rome(date(year, 1, 1)), rome(date(year + 1, 1, 1))
    persons = await conn.fetch(
        "select id, residence_comune_id, birth_date from person where ambito_id = $1 and merged_into_id is null "
        "and residence_comune_id is not null", ambito_id)
    cartelle = await conn.fetch(
        "select id, person_id, area from cartella where ambito_id = $1 and status = 'open' "
        "and opened_at < $2", ambito_id, hi)
    n = len(persons)

    def how_many(kind: str) -> int:
        return round(n * YEARLY_PER_1000[kind] / 1000)

    old = [p for p in persons if p["birth_date"] and p["birth_date"] < date(year - 65, 1, 1)] or persons
    comune_of = {p["id"]: p["residence_comune_id"] for p in persons}
    requests, vmds, plans, cases, entries = [], [], [], [], []

    for _ in range(how_many("requests")):
        p = rng.choice(persons)
        at = _between(rng, lo, hi)
        u = rng.random()
        state = ("cancelled" if u < 0.03 else "withdrawn" if u < 0.06 else "registered" if u < 0.12 else
                 "oriented" if u < 0.55 else "referred_vmd" if u < 0.85 else "referred_cot" if u < 0.95 else
                 "referred_cot_vmd")
        first = at + timedelta(hours=rng.randint(2, 96)) if state not in ("registered", "cancelled") else None
        closed = first if state not in ("registered", "withdrawn", "cancelled") else None
        requests.append((new_id(), ambito_id, p["id"], "desk", "self", "Bisogno (attività sintetica)",
                         ["personal_care"], a.location_id, a.user_id, state, at, first, closed, "{}", 1,
                         comune_of[p["id"]]))

    def vmd_row(cartella: Any, trigger: str, at: datetime) -> tuple:
        u = rng.random()
        state = "cancelled" if u < 0.05 else "requested" if u < 0.2 else "concluded"
        concluded = at + timedelta(days=rng.randint(3, 40), hours=rng.randint(0, 8)) if state == "concluded" \
            else None
        integrated = state == "concluded" and rng.random() < 0.7
        row = (new_id(), ambito_id, cartella["person_id"], cartella["id"], trigger, a.team_id, at, a.user_id,
               state, integrated, concluded, 1, comune_of.get(cartella["person_id"]))
        vmds.append(row)
        return row

    for _ in range(how_many("vmd")):
        c = rng.choice(cartelle)
        v = vmd_row(c, _weighted(rng, VMD_TRIGGERS), _between(rng, lo, hi))
        if v[10] is not None and rng.random() < 0.75:  # an ordinary plan after a concluded VMD
            agreed = v[10] + timedelta(days=rng.randint(1, 30))
            active = agreed + timedelta(days=rng.randint(0, 14)) if rng.random() < 0.85 else None
            plans.append((new_id(), ambito_id, c["person_id"], c["id"], v[0], "ordinary",
                          "active" if active else "agreed", "Progetto (attività sintetica)", a.user_id, "[]", 180,
                          a.user_id, agreed, active, agreed, 1))

    by_person: dict[uuid.UUID, Any] = {}
    for c in cartelle:
        if c["area"] == "anziani" or c["person_id"] not in by_person:
            by_person[c["person_id"]] = c
    for _ in range(how_many("discharges")):
        p = rng.choice(old)
        signalled = _between(rng, lo, hi)
        cot = signalled + timedelta(minutes=rng.randint(1, 90))
        u = rng.random()
        evaluated = cot + timedelta(hours=rng.uniform(4, 70)) if u < 0.88 else None
        exit_reason, state = None, "cot_requested"
        project = discharged = None
        services: list[str] = []
        if u >= 0.97:
            exit_reason, state = "cancelled", "cancelled"
        elif u >= 0.94:
            exit_reason, state = "deceased", "deceased"
        elif evaluated is not None:
            state = "evaluated"
            if rng.random() < 0.65:
                project = evaluated + timedelta(hours=rng.randint(2, 72))
                discharged = project + timedelta(days=rng.randint(1, 6))
                state = "discharged"
                services = rng.choice((["sad"], ["sad", "adi"], ["adi"], ["sad", "aids"]))
            elif rng.random() < 0.3:
                exit_reason, state = "not_eligible", "not_eligible"
        c = by_person.get(p["id"])
        vmd_id = None
        if evaluated is not None and c is not None:
            vmd_id = vmd_row(c, "protected_discharge", cot)[0]
        cases.append((new_id(), ambito_id, p["id"], state, a.ward_id, a.user_id, signalled,
                      signalled.astimezone(ROME).date() - timedelta(days=rng.randint(2, 20)),
                      signalled.astimezone(ROME).date() + timedelta(days=rng.randint(1, 10)),
                      ["over65_not_self_sufficient"], rng.random() < 0.6, "Sintesi (attività sintetica)", False,
                      services, 1, a.cot_id, comune_of[p["id"]], cot, cot + timedelta(hours=48), vmd_id, evaluated,
                      project, discharged, exit_reason))

    taken: set[tuple[uuid.UUID, str]] = set()
    for _ in range(how_many("applications")):
        p = rng.choice(old)
        udo = _weighted(rng, UDO_TYPES)
        if (p["id"], udo) in taken:
            continue
        taken.add((p["id"], udo))
        applied = _between(rng, lo, hi)
        requested = applied + timedelta(hours=rng.randint(0, 48))
        assessed = requested + timedelta(days=rng.randint(3, 45)) if rng.random() < 0.8 else None
        listed = assessed if assessed is not None and rng.random() < 0.8 else None
        admitted = listed + timedelta(days=rng.randint(10, 300)) if listed is not None and rng.random() < 0.4 \
            else None
        state = "admitted" if admitted else "listed" if listed else "not_listed" if assessed else \
            "assessment_pending"
        urgency = "confirmed" if listed is not None and rng.random() < 0.1 else "none"
        plan_id = None
        c = by_person.get(p["id"])
        if listed is not None and c is not None:  # the temporary plan agreed with the listing
            plan_id = new_id()
            active = listed + timedelta(days=rng.randint(0, 20)) if rng.random() < 0.7 else None
            plans.append((plan_id, ambito_id, p["id"], c["id"], None, "temporary", "active" if active else "agreed",
                          "Progetto temporaneo (attività sintetica)", a.user_id, "[]", 180, a.user_id, listed,
                          active, listed, 1))
        entries.append((new_id(), ambito_id, p["id"], udo, state, "person", applied.astimezone(ROME).date(),
                        applied, urgency, 0, 1, comune_of[p["id"]], requested, assessed, listed, plan_id, admitted))

    # referenced rows first: VMDs, plans (they name VMDs), then the rows naming plans
    await conn.copy_records_to_table("vmd", records=vmds, columns=(
        "id", "ambito_id", "person_id", "cartella_id", "trigger", "team_id", "requested_at", "requested_by", "state",
        "integrated", "concluded_at", "version", "residence_comune_id"))
    await conn.copy_records_to_table("care_plan", records=plans, columns=(
        "id", "ambito_id", "person_id", "cartella_id", "vmd_id", "kind", "state", "title", "case_manager_id",
        "signatories", "review_interval_days", "created_by", "agreed_at", "activated_at", "created_at", "version"))
    await conn.copy_records_to_table("access_request", records=requests, columns=(
        "id", "ambito_id", "person_id", "channel", "requester_kind", "reported_need", "need_domains",
        "location_org_id", "operator_id", "state", "registered_at", "first_level_at", "closed_at", "orientation",
        "version", "residence_comune_id"))
    await conn.copy_records_to_table("discharge_case", records=cases, columns=(
        "id", "ambito_id", "person_id", "state", "ward_org_id", "opened_by", "signalled_at", "admission_date",
        "expected_discharge_date", "criteria", "social_risk", "clinician_summary", "out_of_ambito", "services",
        "version", "cot_org_id", "comune_id", "cot_requested_at", "evaluation_due_at", "vmd_id", "evaluated_at",
        "project_at", "discharged_at", "exit_reason"))
    await conn.copy_records_to_table("waiting_list_entry", records=entries, columns=(
        "id", "ambito_id", "person_id", "udo_type", "state", "applicant", "application_date", "applied_at",
        "urgency", "refusals", "version", "comune_id", "assessment_requested_at", "assessed_at", "listed_at",
        "temporary_plan_id", "admitted_at"))
    report.events = {"access_request": len(requests), "vmd": len(vmds), "care_plan": len(plans),
                     "discharge_case": len(cases), "waiting_list_entry": len(entries)}


# ---------------------------------------------------------------------------------------------------- entry point
async def seed(url: str, *, scale: float = 1.0, year: int | None = 2025, ambito_code: str = "ambito-crema",
               seed_value: int = 7, analyze: bool = True) -> ActivityReport:
    """Give the synthetic cartelle their 2020-2025 history (`scale` × the seed's 2023 table open at the end of
    2023) and, when `year` is set, add that year's events. Run once, after deploy.seed.synthetic."""
    import asyncpg

    started = time.perf_counter()
    rng = random.Random(seed_value)
    report = ActivityReport()
    conn = await asyncpg.connect(synthetic._asyncpg_dsn(url))
    try:
        ambito_id = await conn.fetchval("select id from organisation where code = $1 and kind = 'ambito'",
                                        ambito_code)
        if ambito_id is None:
            raise RuntimeError(f"no Ambito with code {ambito_code}: run `python -m api load-reference` first")
        async with conn.transaction():
            await _cartelle_history(conn, ambito_id, targets(scale), rng, report)
            if year is not None:
                await _events(conn, ambito_id, year, rng, report)
        if analyze:
            for table in ("cartella", "access_request", "vmd", "care_plan", "discharge_case", "waiting_list_entry"):
                try:
                    await conn.execute(f"ANALYZE {table}")
                except asyncpg.PostgresError:  # not the owner: statistics come with autovacuum
                    pass
    finally:
        await conn.close()
    report.elapsed_s = time.perf_counter() - started
    return report


def format_report(r: ActivityReport) -> str:
    lines = [f"cartelle open at the end of {SNAPSHOT_YEAR}: {sum(r.open_at_2023.values()):,} "
             f"({', '.join(f'{a} {n:,}' for a, n in r.open_at_2023.items())}); opened 2024-2025: "
             f"{r.cartelle_opened_after:,}; opened and closed before 2024: {r.cartelle_closed_before:,}"]
    if r.events:
        lines.append("events: " + ", ".join(f"{t} {n:,}" for t, n in r.events.items()))
    lines.append(f"elapsed: {r.elapsed_s:.1f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m deploy.seed.activity", description=__doc__.splitlines()[0])
    p.add_argument("--persons", type=int, default=0, help="seed this many synthetic persons first")
    p.add_argument("--scale", type=float, default=1.0, help="× the seed's 2023 table of open cartelle")
    p.add_argument("--year", type=int, default=2025, help="the year of events (0: none)")
    p.add_argument("--ambito", default="ambito-crema")
    p.add_argument("--database-url", default=None, help="default: MIGRATION_DATABASE_URL, else DATABASE_URL")
    a = p.parse_args(argv)
    from domain.kernel.settings import get_settings

    url = a.database_url or get_settings().owner_database_url
    try:
        if a.persons > 0:
            print(synthetic.format_report(asyncio.run(synthetic.seed(url, persons=a.persons,
                                                                     ambito_code=a.ambito))))
        report = asyncio.run(seed(url, scale=a.scale, year=a.year or None, ambito_code=a.ambito))
    except RuntimeError as e:
        print(f"activity: {e}", file=sys.stderr)
        return 1
    print(format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
