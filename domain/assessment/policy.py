"""VMD rules that the seed leaves open, in one place (see docs/decisions/vmd.md).

- which organisation sides make an assessment "integrated" (ASST + comune/Ambito/CSC; CSC can be switched off),
- the due time per trigger (the application starts the clock: by default the request),
- which outcomes a VMD may conclude with together,
- the domains an assessor fills by default, from the side of the organisation they bring to the equipe,
- which instrument answers written by ASST-side assessors are masked for other readers without consent,
- the legal basis written on the cartella assignments the PUA/VMD flow creates (the PUA referral uses it too),
- which team types may act as a VMD equipe (the PUA refers to one of them),
- the grant with which the PUA refers a person to a VMD before reaching the cartella,
- how much of a VMD a reader sees (the summary for the MMG, the RSA, the ETS).

Configuration is part of domain.kernel.settings (read once per process): `VMD_DEFAULT_DUE_DAYS=30`,
`VMD_DUE_DAYS='{"rsa_application": 30, "measure_b1": 45}'`, `VMD_CSC_COUNTS_AS_AMBITO=true`,
`VMD_MASKED_DOMAINS='["health","functional","cognitive"]'`.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from domain.assessment.models import VmdOutcome, VmdTrigger
from domain.kernel.clock import ROME
from domain.kernel.errors import Invalid
from domain.kernel.settings import get_settings
from domain.security.models import TeamType
from domain.territory.models import Side
from schemas.instruments import AssessmentDomain

# ------------------------------------------------------------------------------------------------ equipe
EQUIPE_TEAM_TYPES: frozenset[TeamType] = frozenset({
    TeamType.vmd_equipe, TeamType.sub_ambito_team, TeamType.micro_equipe, TeamType.autism_unit,
})

# The flow itself (PUA referral, VMD) is the legal basis of the cross-organisation reads through the assignments
# it writes.
LEGAL_BASIS = "LEPS PUA/VMD — presa in carico integrata (art. 9.2.h GDPR)"

# ------------------------------------------------------------------------------------------------ sides
ASST_SIDES: frozenset[str] = frozenset({Side.asst.value})
AMBITO_SIDES_BASE: frozenset[str] = frozenset({Side.comune.value, Side.ambito.value})

# Per seed trigger: the RSA protocol sets 30 days (R2); the others are our default (30) until agreed.
DEFAULT_DUE_DAYS: dict[str, int] = {VmdTrigger.rsa_application.value: 30}

_HEALTH = [AssessmentDomain.functional, AssessmentDomain.health, AssessmentDomain.cognitive]
_SOCIAL = [AssessmentDomain.social_network, AssessmentDomain.caregiver, AssessmentDomain.housing,
           AssessmentDomain.economic]
# Domains an assessor fills when none are given, by the side of the organisation they bring to the equipe.
# Sides not listed (provider, ats) must name their domains explicitly.
DEFAULT_DOMAINS_BY_SIDE: dict[str, list[AssessmentDomain]] = {
    Side.asst.value: _HEALTH,
    Side.primary_care.value: _HEALTH,
    Side.comune.value: _SOCIAL,
    Side.ambito.value: _SOCIAL,
    Side.csc.value: _SOCIAL,
    Side.third_sector.value: _SOCIAL,
}


@dataclass(frozen=True)
class ReferralGrant:
    """The PUA's word that access request `access_request_id` refers person `person_id` to a VMD, checked by the
    PUA context (domain.pua.flows: same Ambito, same person). The VMD records the request. When `covers_cartella`
    (the principal works the request and holds pua.triage) the referral itself is the legal basis to reach the
    person's cartella, before any assignment gives it (docs/decisions/vmd.md §5)."""

    access_request_id: uuid.UUID
    person_id: uuid.UUID
    covers_cartella: bool = True


def due_days(trigger: VmdTrigger | str) -> int:
    t = str(VmdTrigger(trigger).value)
    s = get_settings()
    return int(s.vmd_due_days.get(t, DEFAULT_DUE_DAYS.get(t, s.vmd_default_due_days)))


def due_at(trigger: VmdTrigger | str, requested_at: datetime, application_date: date | None = None) -> datetime:
    """The application starts the clock (for an RSA application, "l'inserimento della domanda", seed L11631):
    due = the application day at the request's time of day + the days of the trigger (calendar days). With no
    application date (or the request's own day) that is requested_at + the days."""
    due = requested_at + timedelta(days=due_days(trigger))
    if application_date is not None:
        due -= timedelta(days=(requested_at.astimezone(ROME).date() - application_date).days)
    return due


# ------------------------------------------------------------------------------------------------ outcomes
# One VMD may conclude with several outcomes (eligible for a measure AND a project proposed; waiting list AND a
# temporary project). They are kept in the order of VmdOutcome, so the first one (`Vmd.outcome`, kept for readers
# of the single value) is the one that says most about what follows: a project, then the waiting list.
EXCLUSIVE_OUTCOMES = frozenset({VmdOutcome.no_need})
CONTRADICTORY_OUTCOMES = (frozenset({VmdOutcome.measure_eligible, VmdOutcome.measure_not_eligible}),)


def outcomes_of(outcome: VmdOutcome | str | None, outcomes=None) -> list[VmdOutcome]:
    """The outcomes of a conclusion, given as one `outcome` or a list `outcomes` (not both), checked and in the
    canonical order: Invalid naming the field for an unknown, missing or contradictory choice."""
    field = "outcomes" if outcomes is not None else "outcome"
    if outcome is not None and outcomes is not None:
        raise Invalid("outcomes", "indicare l'esito (outcome) oppure gli esiti (outcomes), non entrambi")
    given = list(outcomes) if outcomes is not None else ([outcome] if outcome is not None else [])
    if not given:
        raise Invalid(field, "indicare almeno un esito")
    try:
        chosen = {VmdOutcome(o) for o in given}
    except ValueError:
        raise Invalid(field, "esito non previsto") from None
    if len(chosen) > 1 and chosen & EXCLUSIVE_OUTCOMES:
        raise Invalid(field, "'Nessun bisogno rilevato' esclude gli altri esiti")
    for pair in CONTRADICTORY_OUTCOMES:
        if pair <= chosen:
            raise Invalid(field, "esiti in contraddizione: idoneo e non idoneo alla misura")
    return [o for o in VmdOutcome if o in chosen]


def ambito_sides() -> frozenset[str]:
    """Sides that count as "comune/Ambito" for the integrated rule (CSC too, unless switched off)."""
    return AMBITO_SIDES_BASE | ({Side.csc.value} if get_settings().vmd_csc_counts_as_ambito else set())


def is_integrated(signed_sides) -> bool:
    """Integrated = at least one signed assessor of an ASST side AND one of a comune/Ambito side."""
    sides = {str(s) for s in signed_sides}
    return bool(sides & ASST_SIDES) and bool(sides & ambito_sides())


def default_domains(side: str) -> list[AssessmentDomain] | None:
    return DEFAULT_DOMAINS_BY_SIDE.get(str(side))


def may_fill(assessor_domains, instrument_domains) -> bool:
    """An assessor fills an instrument when its domains intersect the assessor's own."""
    return bool({str(d) for d in assessor_domains} & {str(getattr(d, "value", d)) for d in instrument_domains})


def masked_domains() -> frozenset[str]:
    return frozenset(get_settings().vmd_masked_domains)


def is_health_response(author_side: str | None, instrument_domains) -> bool:
    """Answers an ASST-side assessor gave to an instrument touching a health domain (health, functional,
    cognitive by default): shown to non-ASST readers only with the person's active `share_asst` consent."""
    doms = {str(getattr(d, "value", d)) for d in instrument_domains}
    return str(author_side) in ASST_SIDES and bool(doms & masked_domains())


# ------------------------------------------------------------------------------------------------ views
# What a reader sees of a VMD follows what they see of the person (schemas/security/access.yaml projections): the
# `minimal` readers (the referring MMG, an RSA or ETS operator with an assignment) get the summary: outcome,
# scores, dates, case manager. No minutes, participants, notes, outcome notes, place of the assessment (often the
# home address), assessors or answers (docs/decisions/vmd.md §6).
SUMMARY_PROJECTIONS = frozenset({"minimal"})


def view_for(projection: str) -> str:
    return "summary" if projection in SUMMARY_PROJECTIONS else "full"
