"""Demo data: idempotent, one user per role, valid codici fiscali, teams across sides."""
from __future__ import annotations

import asyncio
import json

import sqlalchemy as sa
from stdnum.it import codicefiscale as stdnum_cf

from deploy.seed import demo
from domain.diary.service import FOLLOW_UP_KIND
from domain.kernel import clock
from domain.kernel.models import WorkItem
from domain.pua.flows import COT_KIND
from domain.pua.service import TRIAGE_KIND
from domain.registry.models import Person
from domain.security.models import AppUser, Role, RoleAssignment, Team, TeamMember, UserKind
from domain.security.principal import load_principal
from domain.territory.models import Organisation

TABLES = (AppUser, RoleAssignment, Team, TeamMember, Person, WorkItem)


async def _counts(session) -> dict[str, int]:
    return {m.__tablename__: (await session.execute(sa.select(sa.func.count()).select_from(m))).scalar_one()
            for m in TABLES}


async def test_loading_twice_creates_nothing_the_second_time(session):
    before = await _counts(session)
    first = await demo.load_demo(session)
    assert first["users"] == len(demo.DEMO_USERS) + len(demo.SYSTEM_CLIENTS)
    members = sum(len(t[4]) for t in demo.DEMO_TEAMS)
    assert first["persons"] == len(demo.DEMO_PERSONS) and first["teams"] == 2 and first["team_members"] == members
    after_first = await _counts(session)
    assert after_first != before
    second = await demo.load_demo(session)
    assert set(second.values()) == {0}
    assert await _counts(session) == after_first


async def test_every_role_has_a_demo_user(session):
    await demo.load_demo(session)
    demo_names = [u[0] for u in demo.DEMO_USERS]
    rows = (await session.execute(
        sa.select(RoleAssignment.role, AppUser.username, Organisation.code)
        .join(AppUser, AppUser.id == RoleAssignment.user_id)
        .join(Organisation, Organisation.id == RoleAssignment.organisation_id)
        .where(AppUser.username.in_(demo_names)))).all()
    assert {Role(r.role) for r in rows} == set(Role)
    where = {r.username: (r.role, r.code) for r in rows}
    assert where["as.offanengo"] == ("comune_social_worker", "comune-offanengo")
    assert where["coord.crema"] == ("sub_ambito_coordinator", "subambito-crema")
    assert where["ifec.pua"] == ("asst_pua_operator", "asst-crema-pua")
    assert where["inf.distretto"] == ("cdc_assessor", "asst-crema-cdc-crema")
    rsa_org = (await session.execute(sa.select(Organisation).where(Organisation.code == where["rsa.operatore"][1])
                                     )).scalar_one()
    assert rsa_org.kind == "udo_operator" and rsa_org.code == "op-fbc"
    # The regional helpdesk and its administrator belong to the Region, not to an Ambito.
    assert where["regione"] == ("regional_operator", "regione-lombardia")
    held = dict((await session.execute(sa.select(AppUser.username, Organisation.code)
                                       .join(Organisation, Organisation.id == AppUser.ambito_id)
                                       .where(AppUser.username.in_(["regione", "admin.regione", "admin"])))).all())
    assert held == {"regione": "regione-lombardia", "admin.regione": "regione-lombardia", "admin": "ambito-crema"}
    ifec = (await session.execute(sa.select(AppUser).where(AppUser.username == "ifec.pua"))).scalar_one()
    assert ifec.profession == "IFeC"
    # The demo users log in with the roles they were given.
    p = await load_principal(session, str((await session.execute(
        sa.select(AppUser.id).where(AppUser.username == "as.offanengo"))).scalar_one()))
    assert p.has_role(Role.comune_social_worker) and len(p.grants) == 1


async def test_system_client_and_teams(session):
    await demo.load_demo(session)
    gw = (await session.execute(sa.select(AppUser).where(AppUser.username == "asst-gateway"))).scalar_one()
    assert gw.kind == UserKind.system and set(gw.scopes) == {"fhir.read", "fhir.write"}
    p = await load_principal(session, str(gw.id), scopes=("fhir.read",), acting_for="ifec.pua")
    assert p.acting_for == "ifec.pua" and p.acting_for_user_id is not None
    sides = (await session.execute(
        sa.select(Team.code, sa.func.array_agg(sa.distinct(Organisation.side)))
        .join(TeamMember, TeamMember.team_id == Team.id)
        .join(Organisation, Organisation.id == TeamMember.organisation_id)
        .where(Team.code.in_(["team-pua-crema", "team-vmd-crema"])).group_by(Team.code))).all()
    sides = {code: set(s) for code, s in sides}
    assert sides["team-vmd-crema"] == {"asst", "ambito", "comune"}
    assert sides["team-pua-crema"] == {"asst", "ambito"}


async def test_demo_persons_are_valid(session):
    await demo.load_demo(session)
    persons = (await session.execute(sa.select(Person).where(Person.source == "demo"))).scalars().all()
    assert len(persons) == len(demo.DEMO_PERSONS)
    for p in persons:
        assert stdnum_cf.is_valid(p.codice_fiscale), p.codice_fiscale
    teresa = next(p for p in persons if p.given_name == "Teresa")
    offanengo = (await session.execute(sa.select(Organisation).where(Organisation.code == "comune-offanengo"))
                 ).scalar_one()
    today = clock.today_rome()
    age = today.year - teresa.birth_date.year - ((today.month, today.day) < (teresa.birth_date.month,
                                                                             teresa.birth_date.day))
    assert (teresa.sex, age, teresa.lives_alone, teresa.residence_comune_id) == ("F", 82, True, offanengo.id)
    assert teresa.birth_place_code == offanengo.belfiore_code == "G004"


async def test_seed_demo_command(fresh_db):
    argv = ["--database-url", fresh_db["DATABASE_URL"]]
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert await asyncio.to_thread(demo.main, argv) == 0
        assert await asyncio.to_thread(demo.main, argv) == 0
    first, second = [json.loads(line)["created"] for line in out.getvalue().splitlines()]
    assert first["users"] == 21 and set(second.values()) == {0}


async def test_demo_work_items_use_the_kinds_the_services_and_queues_use(session):
    """Issue 9: the demo COT item had a kind of its own, so the COT queue filtered by kind never showed it."""
    await demo.load_demo(session)
    kinds = set((await session.execute(sa.select(WorkItem.kind).where(WorkItem.source_type == "demo"))).scalars())
    assert kinds == {TRIAGE_KIND, COT_KIND, FOLLOW_UP_KIND}
    assert COT_KIND == "cot.evaluation"
