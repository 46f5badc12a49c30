"""The demo clock: move the stored business clock of a development service (training, demos, acceptance runs).

Only in development mode (DEV_MODE=true): `python -m api clock show | set ISTANTE | advance DURATA | reset`, and
`GET/PUT /api/dev/clock` for a system administrator. Business now = real now + the stored offset, so time keeps
flowing after a move. The clock never goes back past the newest record already written (history, work items,
jobs) unless forced; every change is audited ("clock_set", "clock_advance", "clock_reset"). Moving it runs what
became due: the daily enqueuers (deploy.composition.daily_enqueuers, idempotent per day) once for each day
crossed (and the day reached), then wakes a worker; overdue and at-risk marks are computed from the due dates by
the queues themselves.
"""
from __future__ import annotations

import argparse
import asyncio
import re
import sys
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from deploy.composition import compose, daily_enqueuers
from domain.kernel import business_clock, clock
from domain.kernel.db import dispose_engine, sessionmaker, share_clock
from domain.kernel.errors import Conflict, Invalid
from domain.kernel.settings import get_settings
from domain.security import audit
from workers import wake

NOT_IN_DEV_MODE = ("L'orologio di prova si può spostare solo in sviluppo (DEV_MODE=true): in un'installazione reale "
                   "il tempo è quello vero.")
_DURATION = re.compile(r"^(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")


class NotInDevMode(RuntimeError):
    pass


# A demo or a training year needs months, not centuries: the bounds keep a typo (2165 for 2026) from enqueuing the
# daily jobs of fifty thousand days.
MAX_OFFSET = timedelta(days=3653)
MAX_MOVE = timedelta(days=400)


def require_dev_mode() -> None:
    if not get_settings().dev_mode:
        raise NotInDevMode(NOT_IN_DEV_MODE)


def parse_duration(text: str) -> timedelta:
    """`49h`, `3d`, `1d2h30m`, `90s`; `0s` is allowed (a no-op move that still runs today's jobs)."""
    m = _DURATION.match(text.strip()) if text and text.strip() else None
    if not m or not any(m.groupdict().values()):
        raise Invalid("advance", f"Durata non valida: '{text}' (esempi: 49h, 3d, 1d2h30m, 90s).")
    g = {k: int(v or 0) for k, v in m.groupdict().items()}
    return timedelta(days=g["d"], hours=g["h"], minutes=g["m"], seconds=g["s"])


def parse_instant(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise Invalid("set", f"Istante non valido: '{text}' (esempio: 2026-03-14T09:30:00+01:00).") from None
    if at.tzinfo is None:
        raise Invalid("set", "L'istante deve indicare il fuso orario (esempio: 2026-03-14T09:30:00+01:00).")
    return at


@dataclass
class ClockState:
    now: datetime  # business now of the stored clock
    real_now: datetime
    offset_seconds: float
    in_process_fixed: datetime | None  # a FixedClock installed in this process (tests) wins over the stored one
    days_run: list[date]


async def show(session: AsyncSession, days_run: list[date] | None = None) -> ClockState:
    offset = await business_clock.read_offset(session)
    real = clock.real_now()
    c = clock.get_clock()
    return ClockState(now=real + offset, real_now=real, offset_seconds=offset.total_seconds(),
                      in_process_fixed=c.now() if c.fixed else None, days_run=days_run or [])


def _days_crossed(before: datetime, after: datetime) -> list[date]:
    """The Rome days whose daily jobs became due: those after `before`'s day up to `after`'s, or `after`'s day
    alone when the clock went back."""
    first, last = before.astimezone(clock.ROME).date(), after.astimezone(clock.ROME).date()
    if last <= first:
        return [last]
    return [first + timedelta(days=i) for i in range(1, (last - first).days + 1)]


async def move(session: AsyncSession, *, to: datetime | None = None, by: timedelta | None = None,
               reset: bool = False, force: bool = False, actor_id: uuid.UUID | None = None) -> ClockState:
    """Set, advance or reset the stored clock in the caller's unit of work, audit it, run the daily enqueuers of
    the days crossed. Raises NotInDevMode outside development mode, Conflict when going back past a record."""
    require_dev_mode()
    if [to is not None, by is not None, reset].count(True) != 1:
        raise ValueError("move: exactly one of to, by, reset")
    compose()
    old = await business_clock.read_offset(session)
    real = clock.real_now()
    if reset:
        offset, action = timedelta(0), "clock_reset"
    elif to is not None:
        offset, action = to - real, "clock_set"
    else:
        offset, action = old + by, "clock_advance"
    before, after = real + old, real + offset
    field = "reset" if reset else ("set" if to is not None else "advance")
    if abs(offset) > MAX_OFFSET:
        raise Invalid(field, f"l'orologio resta entro {MAX_OFFSET.days // 365} anni dalla data reale")
    if abs(after - before) > MAX_MOVE:
        raise Invalid(field, f"si sposta al massimo di {MAX_MOVE.days} giorni per volta (i lavori giornalieri di "
                             "ogni giorno attraversato vengono eseguiti)")
    if after < before and not force:
        newest = await business_clock.newest_record(session)
        if newest is not None and after < newest:
            raise Conflict(f"L'orologio non può tornare a {after.isoformat(timespec='seconds')}, prima dell'ultimo "
                           f"dato registrato ({newest.isoformat(timespec='seconds')}): usare force per forzare.",
                           newest_record=newest.isoformat())
    await business_clock.store(session, offset, by=actor_id)
    audit.record(action=action, object_type="business_clock")
    business_clock.adopt(offset)
    days = _days_crossed(before, after)
    for day in days:
        start = clock.rome_day_bounds(day)[0]
        with clock.at(after if day == days[-1] else max(start, before)):
            await share_clock(session)
            for _name, enqueue in daily_enqueuers():
                await enqueue(session)
    await share_clock(session)
    return await show(session, days)


def describe(state: ClockState) -> dict:
    return {"now": state.now.isoformat(), "now_rome": state.now.astimezone(clock.ROME).isoformat(),
            "real_now": state.real_now.isoformat(), "offset_seconds": state.offset_seconds,
            "in_process_fixed": state.in_process_fixed.isoformat() if state.in_process_fixed else None,
            "days_run": [d.isoformat() for d in state.days_run]}


# ------------------------------------------------------------------------------------------------ the command line
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m api clock",
                                description="Orologio di prova (solo in sviluppo, DEV_MODE=true): mostra o sposta "
                                            "il tempo di lavoro del servizio. Spostandolo in avanti si eseguono "
                                            "i lavori giornalieri di ogni giorno attraversato.")
    sub = p.add_subparsers(dest="action", required=True, metavar="AZIONE")
    sub.add_parser("show", help="mostra il tempo di lavoro e lo scarto dal tempo reale")
    s = sub.add_parser("set", help="porta l'orologio a un istante (es. 2026-03-14T09:30:00+01:00)")
    s.add_argument("instant", metavar="ISTANTE")
    s.add_argument("--force", action="store_true", help="anche prima dell'ultimo dato registrato")
    a = sub.add_parser("advance", help="sposta l'orologio in avanti (es. 49h, 3d, 1d2h30m)")
    a.add_argument("duration", metavar="DURATA")
    r = sub.add_parser("reset", help="torna al tempo reale")
    r.add_argument("--force", action="store_true", help="anche prima dell'ultimo dato registrato")
    return p


async def _run(args: argparse.Namespace) -> ClockState:
    try:
        async with sessionmaker()() as session:
            if args.action == "show":
                return await show(session)
            audit.begin(route=f"python -m api clock {args.action}", method="CLI", request_id=None)
            if args.action == "set":
                state = await move(session, to=parse_instant(args.instant), force=args.force)
            elif args.action == "advance":
                state = await move(session, by=parse_duration(args.duration))
            else:
                state = await move(session, reset=True, force=args.force)
            await audit.flush(session)
            await session.commit()
        return state
    finally:
        await dispose_engine()


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)  # --help prints and exits 0
    try:
        require_dev_mode()
        state = asyncio.run(_run(args))
    except NotInDevMode as e:
        print(f"python -m api clock: {e}", file=sys.stderr)
        return 1
    except (Conflict, Invalid) as e:
        print(f"python -m api clock: {e.detail}", file=sys.stderr)
        return 1
    if args.action != "show":
        wake(block=True)  # best effort: the beat relay runs the jobs anyway
    d = describe(state)
    print(f"orologio di prova: {state.now.astimezone(clock.ROME).isoformat(timespec='seconds')} (Europe/Rome), "
          f"scarto dal tempo reale {timedelta(seconds=round(state.offset_seconds))}")
    if d["days_run"]:
        print("lavori giornalieri per: " + ", ".join(d["days_run"]))
    return 0
