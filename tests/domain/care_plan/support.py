"""Shared set-up for the care-plan tests: an 82-year-old woman living alone in Offanengo, her cartella (owned by
the comune), the comune's social worker as case manager, an IFeC of the ASST, a concluded VMD, a care consent."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from domain.assessment.models import Vmd, VmdAssessor, VmdOutcome, VmdState
from domain.kernel import clock
from domain.registry import cartelle
from domain.registry import consent as consent_mod
from domain.registry.models import Cartella, Consent, Person
from domain.security.models import AppUser, Role, Team, TeamType
from domain.security.principal import Principal, load_principal
from schemas.access import ConsentCreate
from tests.factories.registry import insert_person
from tests.support import make_user, org


@dataclass
class World:
    sw: AppUser
    sw_p: Principal
    ifec: AppUser
    person: Person
    cartella: Cartella
    consent: Consent


async def principal_of(session, user: AppUser) -> Principal:
    return await load_principal(session, str(user.id))


async def make_world(session) -> World:
    sw = await make_user(session, Role.comune_social_worker, "comune-offanengo", profession="Assistente sociale")
    sw.display_name = "Anna Ferrari"
    ifec = await make_user(session, Role.asst_pua_operator, "asst-crema-pua", profession="IFeC")
    ifec.display_name = "Luca Moretti"
    session.add_all([sw, ifec])
    person = await insert_person(session, comune="comune-offanengo", surname="Bianchi", given_name="Maria",
                                 sex="F", birth_date=date(1943, 5, 10), lives_alone=True, birth_place="Crema")
    sw_p = await principal_of(session, sw)
    cartella = await cartelle.open_cartella(session, principal=sw_p, person_id=person.id, area="anziani")
    consent = await grant_care_consent(session, sw_p, person)
    return World(sw=sw, sw_p=sw_p, ifec=ifec, person=person, cartella=cartella, consent=consent)


async def grant_care_consent(session, principal, person, **kw: Any) -> Consent:
    data = ConsentCreate(purpose="care", grantor_kind=kw.pop("grantor_kind", "self"), valid_from=date(2026, 3, 1),
                         **kw)
    return await consent_mod.grant(session, principal=principal, person_id=person.id, data=data)


async def concluded_vmd(session, w: World, outcome: VmdOutcome = VmdOutcome.project_proposed,
                        cartella_id=None, state: VmdState = VmdState.concluded,
                        outcomes: list[VmdOutcome] | None = None) -> Vmd:
    amb = await org(session, "ambito-crema")
    team = Team(ambito_id=amb.id, code=f"vmd-{uuid.uuid4().hex[:12]}",
                name="Équipe VMD di prova", type=TeamType.vmd_equipe)
    session.add(team)
    await session.flush()
    vmd = Vmd(ambito_id=amb.id, person_id=w.person.id, cartella_id=cartella_id or w.cartella.id, trigger="mmg",
              team_id=team.id, requested_by=w.sw.id, state=state, outcome=outcome if state == "concluded" else None,
              concluded_at=clock.now() if state == "concluded" else None, integrated=True,
              outcomes=[o.value for o in outcomes] if outcomes else [])
    session.add(vmd)
    await session.flush()
    session.add_all([
        VmdAssessor(vmd_id=vmd.id, user_id=w.ifec.id, organisation_id=(await org(session, "asst-crema-pua")).id,
                    side="asst", domains=["sanitario"], signed_at=clock.now()),
        VmdAssessor(vmd_id=vmd.id, user_id=w.sw.id, organisation_id=(await org(session, "comune-offanengo")).id,
                    side="comune", domains=["sociale"], signed_at=clock.now()),
    ])
    await session.flush()
    return vmd
