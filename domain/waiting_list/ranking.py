"""The default priority of a list (docs/decisions/waiting_list.md §3), every number a setting:

- confirmed urgent entries come before all ordinary ones;
- within each tier, score = W × (100 − Barthel) / 100 + points for no caregiver (fewer if the caregiver is
  overloaded) + points if the person lives alone + points per full period since listing (capped);
- ties: earlier listing date, then earlier application date, then the entry's id.

Positions are computed here when a list is read, from the entries and the settings; they are never stored, so a
changed setting or a confirmed urgency reorders every list at once.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from domain.kernel.settings import get_settings
from domain.waiting_list.models import Caregiver, UrgencyState, WaitingListEntry


@dataclass(frozen=True)
class Breakdown:
    barthel: float
    caregiver: float
    lives_alone: float
    waiting: float
    periods: int  # full periods on the list
    total: float
    urgent: bool


def breakdown(entry: WaitingListEntry, today: date) -> Breakdown:
    st = get_settings()
    barthel = 0.0 if entry.barthel is None else st.waiting_list_barthel_weight * (100 - entry.barthel) / 100
    caregiver = {Caregiver.none.value: st.waiting_list_no_caregiver_points,
                 Caregiver.overloaded.value: st.waiting_list_overloaded_caregiver_points}.get(
        str(entry.caregiver) if entry.caregiver else "", 0.0)
    alone = st.waiting_list_lives_alone_points if entry.lives_alone else 0.0
    periods = 0
    if entry.listing_date is not None and today > entry.listing_date:
        periods = (today - entry.listing_date).days // st.waiting_list_wait_period_days
    waiting = min(periods * st.waiting_list_wait_points_per_period, st.waiting_list_wait_points_max)
    total = round(barthel + caregiver + alone + waiting, 2)
    return Breakdown(round(barthel, 2), float(caregiver), float(alone), float(waiting), periods, total,
                     str(entry.urgency) == UrgencyState.confirmed.value)


def sort_key(entry: WaitingListEntry, b: Breakdown) -> tuple:
    return (0 if b.urgent else 1, -b.total, entry.listing_date or date.max, entry.application_date, str(entry.id))


@dataclass(frozen=True)
class Ranked:
    entry: WaitingListEntry
    score: Breakdown
    position: int


def rank(entries: list[WaitingListEntry], today: date) -> list[Ranked]:
    scored = [(e, breakdown(e, today)) for e in entries]
    scored.sort(key=lambda pair: sort_key(*pair))
    return [Ranked(e, b, i) for i, (e, b) in enumerate(scored, start=1)]
