"""Shared setup for the VMD tests: the Offanengo case (an 82-year-old woman living alone), an equipe with an IFeC
of the ASST PUA and the Offanengo social worker, answers giving Barthel 35 and Lawton IADL 2."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa

from domain.assessment import equipe
from domain.assessment import service as vmd
from domain.assessment.models import InstrumentResponse, Vmd
from domain.registry import cartelle
from domain.registry.models import (
    Cartella,
    Consent,
    ConsentPurpose,
    GrantorKind,
    Person,
)
from domain.security.models import AppUser, Role, Team, TeamMember, TeamType
from domain.security.principal import Principal, load_principal
from tests.factories.cartelle import create_person
from tests.support import make_user, org

BARTHEL_35 = {"feeding": "needs_help", "bathing": "dependent", "grooming": "needs_help", "dressing": "needs_help",
              "bowels": "occasional_accident", "bladder": "occasional_accident", "toilet_use": "needs_help",
              "transfers": "minor_help", "mobility": "immobile", "stairs": "unable"}
IADL_2 = {"telephone": "independent", "shopping": "unable", "food_preparation": "dependent", "housekeeping": "none",
          "laundry": "dependent", "transportation": "accompanied_public", "medications": "unable",
          "finances": "unable"}
SOCIAL = {"living_arrangement": "alone", "social_network": "limited", "social_isolation": True,
          "caregiver_present": False, "housing_adequacy": "partially_adequate",
          "housing_barriers": ["stairs_without_lift"], "eviction_risk": False, "economic_difficulty": "occasional"}


async def principal_of(session, user: AppUser) -> Principal:
    return await load_principal(session, str(user.id))


async def make_team(session, members: list[tuple[AppUser, str]], *, type: TeamType = TeamType.vmd_equipe,
                    seat: str | None = "asst-crema-cdc-crema") -> Team:
    ambito = await org(session, "ambito-crema")
    team = Team(ambito_id=ambito.id, code=f"equipe-{uuid.uuid4().hex[:8]}", name="Équipe VMD di prova", type=type,
                organisation_id=(await org(session, seat)).id if seat else None)
    session.add(team)
    await session.flush()
    for user, org_code in members:
        await add_member(session, team, user, org_code)
    return team


async def add_member(session, team: Team, user: AppUser, org_code: str) -> TeamMember:
    m = TeamMember(team_id=team.id, user_id=user.id, organisation_id=(await org(session, org_code)).id,
                   valid_from=date(2024, 1, 1))
    session.add(m)
    await session.flush()
    return m


@dataclass
class World:
    person: Person
    cartella: Cartella
    team: Team
    ifec: AppUser  # ASST IFeC, asst_pua_operator at asst-crema-pua, member with org asst-crema-pua
    sw: AppUser  # comune_social_worker at comune-offanengo, member with org comune-offanengo
    outsider: AppUser  # another Offanengo social worker, NOT in the equipe

    async def p(self, session, who: str) -> Principal:
        return await principal_of(session, getattr(self, who))


async def build_world(session) -> World:
    person = await create_person(session, comune="comune-offanengo", sex="F", birth_date=date(1943, 5, 10))
    ifec = await make_user(session, Role.asst_pua_operator, "asst-crema-pua", profession="IFeC")
    sw = await make_user(session, Role.comune_social_worker, "comune-offanengo", profession="Assistente sociale")
    outsider = await make_user(session, Role.comune_social_worker, "comune-offanengo")
    team = await make_team(session, [(ifec, "asst-crema-pua"), (sw, "comune-offanengo")])
    cartella = await cartelle.open_cartella(session, principal=await principal_of(session, sw), person_id=person.id,
                                            area="anziani")
    return World(person=person, cartella=cartella, team=team, ifec=ifec, sw=sw, outsider=outsider)


async def give_consent(session, person: Person, recorded_by: AppUser,
                       purpose: ConsentPurpose = ConsentPurpose.share_asst) -> Consent:
    c = Consent(person_id=person.id, purpose=purpose, grantor_kind=GrantorKind.self, valid_from=date(2026, 1, 1),
                recorded_by=recorded_by.id)
    session.add(c)
    await session.flush()
    return c


async def counts(session, vmd_id: uuid.UUID) -> tuple[int, int, str]:
    """(instrument responses of the VMD, VMD version, VMD state), read from the database."""
    n = (await session.execute(sa.select(sa.func.count()).select_from(InstrumentResponse).where(
        InstrumentResponse.context_type == "vmd", InstrumentResponse.context_id == vmd_id))).scalar_one()
    version, state = (await session.execute(sa.select(Vmd.version, Vmd.state).where(Vmd.id == vmd_id))).one()
    return n, version, str(state)


# ------------------------------------------------------------------------------------------------ a VMD along its path
MEETING = dict(participants=[{"name": "Figlia della signora", "role": "familiare"}],
               minutes="Valutazione condivisa: non autosufficiente, vive sola.", decision="Proposta di progetto")


async def requested(session, w, trigger="pua", **kw):
    return await vmd.request_vmd(session, principal=await w.p(session, "sw"), person_id=w.person.id,
                                 cartella_id=w.cartella.id, trigger=trigger, team_id=w.team.id, **kw)


async def in_progress(session, w, *, assessors=("ifec", "sw")):
    """A scheduled VMD with assessors; the IFeC has recorded Barthel 35 and Lawton IADL 2, the social worker the
    social module."""
    v = await requested(session, w)
    ifec = await w.p(session, "ifec")
    await vmd.schedule(session, principal=ifec, vmd_id=v.id, scheduled_for=datetime.fromisoformat(
        "2026-03-05T10:00:00+01:00"), location="Casa di Comunità di Crema")
    for who in assessors:
        await equipe.add_assessor(session, principal=ifec, vmd_id=v.id, user_id=getattr(w, who).id)
    if "ifec" in assessors:
        await equipe.record_response(session, principal=ifec, vmd_id=v.id, instrument_code="barthel",
                                     answers=BARTHEL_35)
        await equipe.record_response(session, principal=ifec, vmd_id=v.id, instrument_code="lawton_iadl",
                                     answers=IADL_2)
    if "sw" in assessors:
        await equipe.record_response(session, principal=await w.p(session, "sw"), vmd_id=v.id,
                                     instrument_code="social_risk", answers=SOCIAL)
    return v


async def signed_and_met(session, w, clock):
    """A VMD both sides signed, with its equipe meeting held: ready to conclude. Returns (vmd, ifec, sw)."""
    v = await in_progress(session, w)
    ifec, sw = await w.p(session, "ifec"), await w.p(session, "sw")
    await equipe.sign(session, principal=ifec, vmd_id=v.id)
    await equipe.sign(session, principal=sw, vmd_id=v.id)
    await equipe.hold_meeting(session, principal=ifec, vmd_id=v.id, held_at=clock.now(), **MEETING)
    return v, ifec, sw
