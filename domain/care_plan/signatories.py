"""The consent a plan runs on and who signs it.

- `agree` links a consent of the plan's person with purpose `care`, in force today with its basis
  (`registry.consent.in_force`; else 422 naming consent_id); whoever granted it must still be the person's legal
  representative when a representative granted it.
- Activating, resuming or starting an intervention checks that consent again (`consent_still_valid`: 409 naming
  consent_id, with the one 409 body of the state machine).
- The signatories are fixed at `agree`: the grantor (the person, or the representative with their role), the case
  manager, and every VMD assessor except the case manager. Before the agreement the print shows the roles
  (`expected_signatories`).
"""
from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from domain.assessment import queries as assessment
from domain.care_plan import states
from domain.care_plan.models import CarePlan
from domain.kernel import clock
from domain.kernel.errors import Invalid
from domain.registry import consent as consents
from domain.registry import persons, relations
from domain.registry.models import RELATION_LABELS, ConsentPurpose, GrantorKind
from domain.security import directory
from domain.territory import queries as territory

EQUIPE_LABEL = "Componente dell'équipe di valutazione (VMD)"


def full_name(given_name: str | None, surname: str | None) -> str:
    return f"{given_name or ''} {surname or ''}".strip()


async def valid_consent(session: AsyncSession, plan: CarePlan, consent_id: uuid.UUID):
    """The consent `agree` links: of the plan's person, for care, active today (422 naming consent_id)."""
    consent = await consents.consent_record(session, consent_id)
    if consent is None or consent.person_id != plan.person_id:
        raise Invalid("consent_id", "consenso non trovato per la persona del progetto")
    if str(consent.purpose) != ConsentPurpose.care.value:
        raise Invalid("consent_id", "il consenso non è per la finalità «Presa in carico e cura» (care)")
    if not await consents.in_force(session, consent.id):
        raise Invalid("consent_id", "il consenso è revocato o non in vigore")
    return consent


async def the_care_consent(session: AsyncSession, plan: CarePlan):
    """The consent `agree` links when none is named: the person's one consent to care in force today. None, or
    several (which one the plan runs on is the operator's choice), is 422 naming consent_id."""
    found = await consents.in_force_for(session, plan.person_id, ConsentPurpose.care.value)
    if not found:
        raise Invalid("consent_id", "nessun consenso alla presa in carico e cura (care) in vigore per la persona: "
                                    "registrarlo, poi sottoscrivere")
    if len(found) > 1:
        raise Invalid("consent_id", f"la persona ha {len(found)} consensi alla presa in carico e cura (care) in "
                                    "vigore: indicare quale collegare al progetto ("
                                    + ", ".join(str(c.id) for c in found) + ")")
    return found[0]


async def consent_still_valid(session: AsyncSession, plan: CarePlan, action: str) -> None:
    """A plan runs on its consent: activating, resuming or starting an intervention without a valid one is
    refused (409 with state, action and allowed_actions, naming consent_id in `errors`)."""
    if plan.consent_id is None:
        reason = "il progetto non è stato sottoscritto: manca il consenso della persona o del rappresentante legale"
        extra: dict[str, Any] = {}
    else:
        if await consents.in_force(session, plan.consent_id):
            return
        reason = "il consenso collegato al progetto è stato revocato o non è più in vigore"
        extra = {"consent_id": str(plan.consent_id)}
    conflict = states.MACHINE.conflict(plan.state, action, f"consent_id: {reason}.")
    conflict.errors = [{"field": "consent_id", "reason": reason}]
    conflict.extra.update(extra)
    raise conflict


async def _grantor(session: AsyncSession, plan: CarePlan, consent) -> dict[str, Any]:
    person = await persons.person_record(session, plan.person_id)
    if consent.grantor_kind == GrantorKind.self:
        return {"role": "person", "role_label": "Persona interessata",
                "name": full_name(person.given_name, person.surname)}
    rel = (await relations.relation_record(session, consent.grantor_relation_id)
           if consent.grantor_relation_id else None)
    if consents.representative_problem(rel, person_id=plan.person_id, grantor_kind=consent.grantor_kind,
                                       on=clock.today_rome()):
        raise Invalid("consent_id", "chi ha prestato il consenso non è più il rappresentante legale in vigore")
    name = None
    if rel.related_person_id is not None:
        related = await persons.person_record(session, rel.related_person_id)
        name = full_name(related.given_name, related.surname) if related else None
    return {"role": "representative", "role_label": RELATION_LABELS[str(rel.kind)],
            "name": name or full_name(rel.given_name, rel.surname) or "—", "grantor_kind": str(consent.grantor_kind)}


async def equipe(session: AsyncSession, vmd_id: uuid.UUID | None, case_manager_id: uuid.UUID) -> list[dict[str, Any]]:
    """The VMD assessors who sign beside the case manager, each with profession and organisation."""
    if vmd_id is None:
        return []
    out = []
    for a in await assessment.assessors_of(session, vmd_id):
        if a.user_id == case_manager_id:
            continue
        label = f"{EQUIPE_LABEL} - {a.profession}" if a.profession else EQUIPE_LABEL
        out.append({"role": "equipe", "role_label": label, "name": a.display_name, "user_id": str(a.user_id),
                    "organisation": a.organisation_name})
    return out


async def _organisations_of(session: AsyncSession, user_id: uuid.UUID) -> str | None:
    """The organisations where the user holds a role today, by name (None when there is none)."""
    names = await territory.org_names(session, await directory.user_organisations(session, user_id))
    return ", ".join(sorted(set(names.values()))) or None


async def case_manager(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any]:
    """The case manager as a signatory: name and organisation."""
    card = (await directory.user_cards(session, [user_id])).get(user_id)
    return {"role": "case_manager", "role_label": "Case manager", "name": card.display_name if card else "",
            "user_id": str(user_id), "organisation": await _organisations_of(session, user_id)}


async def signatories(session: AsyncSession, plan: CarePlan, consent) -> list[dict[str, Any]]:
    return [await _grantor(session, plan, consent), await case_manager(session, plan.case_manager_id),
            *await equipe(session, plan.vmd_id, plan.case_manager_id)]


async def expected_signatories(session: AsyncSession, *, vmd_id: uuid.UUID | None,
                               case_manager_id: uuid.UUID) -> list[dict[str, Any]]:
    """Before the agreement the signatories are not fixed yet: the roles, the grantor's name left blank."""
    return [{"role": "person", "role_label": "Persona interessata o rappresentante legale (genitore, tutore, AdS)",
             "name": ""}, await case_manager(session, case_manager_id),
            *await equipe(session, vmd_id, case_manager_id)]
