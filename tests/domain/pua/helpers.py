"""Shared setup for the PUA tests: the PUA and VMD teams, users of each role, the 82-year-old of Offanengo,
triage answers."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa

from domain.pua import service
from domain.registry.models import Person
from domain.security.models import AppUser, Role, Team, TeamMember, TeamType
from domain.security.principal import Principal, load_principal
from domain.territory.models import Organisation
from schemas.pua import AccessRequestCreate
from tests.factories.registry import insert_person
from tests.support import make_user, org


async def team_of(session, type_: TeamType, code: str, name: str, org_code: str) -> Team:
    """The Ambito's team of this type (the demo one if the reference data has it), else a new one."""
    amb = await org(session, "ambito-crema")
    found = (await session.execute(sa.select(Team).where(Team.ambito_id == amb.id, Team.type == type_.value,
                                                         Team.active.is_(True)).order_by(Team.code))).scalars().first()
    if found is not None:
        return found
    t = Team(ambito_id=amb.id, code=code, name=name, type=type_, organisation_id=(await org(session, org_code)).id)
    session.add(t)
    await session.flush()
    return t


async def join(session, team: Team, user: AppUser, org_code: str) -> None:
    session.add(TeamMember(team_id=team.id, user_id=user.id, organisation_id=(await org(session, org_code)).id,
                           valid_from=date(2020, 1, 1)))
    await session.flush()


@dataclass
class Pua:
    ambito: Organisation
    pua_org: Organisation
    cot_org: Organisation
    pua_team: Team
    vmd_team: Team
    operator: AppUser          # asst_pua_operator, IFeC, PUA team member
    social_worker: AppUser     # ambito_pua_social_worker, PUA team member
    front_desk: AppUser        # asst_front_desk
    mmg: AppUser               # mmg at mmg-crema-1
    comune_sw: AppUser         # comune_social_worker at comune-offanengo
    other_comune_sw: AppUser   # comune_social_worker at comune-crema

    async def principal(self, session, user: AppUser) -> Principal:
        return await load_principal(session, str(user.id))


async def setup_pua(session) -> Pua:
    ambito = await org(session, "ambito-crema")
    pua_team = await team_of(session, TeamType.pua, "team-pua-crema", "Équipe PUA integrata di Crema", "asst-crema-pua")
    vmd_team = await team_of(session, TeamType.vmd_equipe, "team-vmd-crema", "Équipe VMD integrata",
                             "asst-crema-cdc-crema")
    operator = await make_user(session, Role.asst_pua_operator, "asst-crema-pua", profession="IFeC")
    social_worker = await make_user(session, Role.ambito_pua_social_worker, "ambito-crema",
                                    profession="assistente sociale")
    await join(session, pua_team, operator, "asst-crema-pua")
    await join(session, pua_team, social_worker, "ambito-crema")
    await join(session, vmd_team, operator, "asst-crema-pua")
    await join(session, vmd_team, social_worker, "ambito-crema")
    return Pua(
        ambito=ambito, pua_org=await org(session, "asst-crema-pua"), cot_org=await org(session, "asst-crema-cot"),
        pua_team=pua_team, vmd_team=vmd_team, operator=operator, social_worker=social_worker,
        front_desk=await make_user(session, Role.asst_front_desk, "asst-crema-pua"),
        mmg=await make_user(session, Role.mmg, "mmg-crema-1", profession="MMG"),
        comune_sw=await make_user(session, Role.comune_social_worker, "comune-offanengo"),
        other_comune_sw=await make_user(session, Role.comune_social_worker, "comune-crema"),
    )


async def elderly_woman(session) -> Person:
    """82 years old on 2026-03-02, resident in Offanengo, living alone."""
    return await insert_person(session, comune="comune-offanengo", sex="F", birth_date=date(1943, 5, 10),
                               lives_alone=True)


def mmg_referral(person_id: uuid.UUID, mmg_id: uuid.UUID | None = None, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "person_id": str(person_id), "channel": "referral_mmg",
        "reported_need": "Anziana sola, fatica a gestire igiene e spesa dopo una caduta; chiede aiuto a domicilio.",
        "need_domains": ["personal_care", "social_relational"],
    }
    if mmg_id is not None:
        body["referring_user_id"] = str(mmg_id)
    body.update(over)
    return body


def create(body: dict[str, Any]) -> AccessRequestCreate:
    return AccessRequestCreate.model_validate(body)


def complex_answers(**over: Any) -> dict[str, Any]:
    """Lives alone (and 82, as the registry says of `elderly_woman`: the age is not typed in): the red flag 'alone
    and over 75' makes the need complex, path VMD."""
    a = {"request_source": "gp", "request_type": "care_need", "need_areas": ["personal_care", "social_relational"],
         "lives_alone": True, "caregiver": "absent", "autonomy_loss": "partial",
         "cognitive_decline": False, "multimorbidity": True, "recent_discharge": False, "caregiver_loss": False,
         "abuse_suspicion": False, "housing_emergency": False}
    a.update(over)
    return a


def simple_answers(**over: Any) -> dict[str, Any]:
    """Information about a benefit, no red flag, low score: simple need, path orientation."""
    a = {"request_source": "self", "request_type": "information", "need_areas": ["economic"],
         "lives_alone": False, "caregiver": "adequate", "autonomy_loss": "none", "cognitive_decline": False,
         "multimorbidity": False, "recent_discharge": False, "caregiver_loss": False, "abuse_suspicion": False,
         "housing_emergency": False}
    a.update(over)
    return a


async def triaged(session, pua: Pua, person, answers: dict[str, Any]):
    """A request referred by the MMG, taken in reception and triaged by the PUA operator: (request, response, op)."""
    mmg = await pua.principal(session, pua.mmg)
    op = await pua.principal(session, pua.operator)
    reg = await service.register_request(session, principal=mmg, data=create(mmg_referral(person.id)))
    await service.take_in_reception(session, principal=op, request_id=reg.request.id)
    ar, resp = await service.record_triage(session, principal=op, request_id=reg.request.id, answers=answers)
    return ar, resp, op
