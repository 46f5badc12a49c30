"""Demo data for the Ambito di Crema: one user per role with realistic assignments, a system client acting for
practitioners, the PUA and VMD teams, a handful of (fictitious) persons and a few work items.

`python -m api seed-demo` (after `python -m api load-reference`). Idempotent: users by username, assignments by
(user, role, organisation), teams by code, members by (team, user), persons by codice fiscale, work items by
dedup key. A second run creates nothing and changes nothing that an administrator has edited since.
All names are invented; codici fiscali are computed from the invented data (valid check character).
"""
from __future__ import annotations

import argparse
import asyncio
import json
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from codicefiscale import codicefiscale as cf_lib
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from domain.diary.service import FOLLOW_UP_KIND
from domain.kernel import clock, work_items
from domain.kernel.models import WorkItem
from domain.kernel.settings import get_settings
from domain.pua.flows import COT_KIND
from domain.pua.service import TRIAGE_KIND
from domain.registry.models import Person, Sex
from domain.security.models import AppUser, Role, RoleAssignment, Team, TeamMember, TeamType, UserKind
from domain.territory.models import Organisation, ServiceUnit

AMBITO_CODE = "ambito-crema"
REGIONE_CODE = "regione-lombardia"  # the Region (migration 0050): its helpdesk and its administrator
DEMO_FROM = date(2025, 1, 1)
RSA_OPERATOR = "@rsa-operator"  # resolved at load time: op-fbc if present, else the operator of any RSA
PREFERRED_RSA_OPERATOR = "op-fbc"  # Fondazione Benefattori Cremaschi (Crema)

# username, display name, profession, [(role, organisation code)]
DEMO_USERS: list[tuple[str, str, str | None, list[tuple[Role, str]]]] = [
    ("as.offanengo", "Chiara Locatelli", "Assistente sociale", [(Role.comune_social_worker, "comune-offanengo")]),
    ("as.crema", "Marco Bettinelli", "Assistente sociale", [(Role.comune_social_worker, "comune-crema")]),
    ("coord.crema", "Laura Zaniboni", "Coordinatrice di sub-ambito",
     [(Role.sub_ambito_coordinator, "subambito-crema")]),
    ("as.ambito.pua", "Francesca Guerini", "Assistente sociale", [(Role.ambito_pua_social_worker, AMBITO_CODE)]),
    ("ifec.pua", "Paolo Dossena", "IFeC", [(Role.asst_pua_operator, "asst-crema-pua")]),
    ("front.pua", "Sara Vailati", "Amministrativo PUA", [(Role.asst_front_desk, "asst-crema-pua")]),
    ("inf.distretto", "Elena Bressanelli", "Infermiere di distretto", [(Role.cdc_assessor, "asst-crema-cdc-crema")]),
    ("cot.crema", "Giorgio Premoli", "Infermiere COT", [(Role.cot_operator, "asst-crema-cot")]),
    ("reparto.medicina", "Silvia Manclossi", "Coordinatrice infermieristica",
     [(Role.ward_staff, "asst-crema-reparto-medicina")]),
    ("mmg.rossi", "Andrea Rossi", "Medico di medicina generale", [(Role.mmg, "mmg-crema-1")]),
    ("csc.operatore", "Valentina Ogliari", "Assistente sociale", [(Role.csc_operator, "csc-crema")]),
    ("analista.udp", "Luca Fusar", "Analista Ufficio di Piano", [(Role.analyst, "udp-crema")]),
    ("ets.igea", "Martina Carioni", "Educatrice", [(Role.ets_operator, "ets-igea")]),
    ("rsa.operatore", "Roberta Severgnini", "Coordinatrice RSA", [(Role.rsa_operator, RSA_OPERATOR)]),
    ("admin", "Amministratore di sistema", None, [(Role.system_admin, AMBITO_CODE)]),
    ("dpo", "Responsabile della protezione dei dati", None, [(Role.dpo, AMBITO_CODE)]),
    ("steward", "Data steward anagrafe", None, [(Role.data_steward, AMBITO_CODE)]),
    ("integrazioni", "Operatore integrazioni ASST", None, [(Role.integration_operator, AMBITO_CODE)]),
    ("regione", "Operatore regionale", "Help desk regionale", [(Role.regional_operator, REGIONE_CODE)]),
    ("admin.regione", "Amministratore regionale", None, [(Role.system_admin, REGIONE_CODE)]),
]

# A system client: the ASST integration gateway, acting for practitioners (act_for = a practitioner's username).
SYSTEM_CLIENTS = [("asst-gateway", "Gateway FHIR ASST Crema", ["fhir.read", "fhir.write"])]

# code, name, type, organisation, [(username, organisation brought, role in team)]
DEMO_TEAMS: list[tuple[str, str, TeamType, str, list[tuple[str, str, str]]]] = [
    ("team-pua-crema", "Équipe PUA Crema", TeamType.pua, "asst-crema-pua", [
        ("ifec.pua", "asst-crema-pua", "IFeC"),
        ("front.pua", "asst-crema-pua", "Amministrativo"),
        ("as.ambito.pua", AMBITO_CODE, "Assistente sociale d'Ambito"),
    ]),
    ("team-vmd-crema", "Équipe VMD Casa di Comunità di Crema", TeamType.vmd_equipe, "asst-crema-cdc-crema", [
        ("inf.distretto", "asst-crema-cdc-crema", "Infermiere di distretto"),
        ("ifec.pua", "asst-crema-pua", "IFeC"),
        ("as.ambito.pua", AMBITO_CODE, "Assistente sociale d'Ambito"),
        ("as.crema", "comune-crema", "Assistente sociale comunale"),
        ("as.offanengo", "comune-offanengo", "Assistente sociale comunale"),
    ]),
]

# Fictitious persons: surname, given name, sex, birth date, birthplace (comune or foreign state), residence comune
# code, address, lives alone, homeless, note (for the README only).
DEMO_PERSONS: list[dict[str, Any]] = [
    {"surname": "Bonizzi", "given_name": "Teresa", "sex": "F", "birth_date": date(1943, 7, 14),
     "birthplace": "Offanengo", "residence": "comune-offanengo", "address": "Via Dante 12", "lives_alone": True,
     "key": "teresa"},  # 82 years old, lives alone
    {"surname": "Cremonesi", "given_name": "Angelo", "sex": "M", "birth_date": date(1947, 11, 3),
     "birthplace": "Crema", "residence": "comune-crema", "address": "Via Mazzini 4", "lives_alone": False,
     "key": "angelo"},  # in hospital, protected discharge
    {"surname": "Ferla", "given_name": "Giulia", "sex": "F", "birth_date": date(1934, 9, 30),
     "birthplace": "Soncino", "residence": "comune-soncino", "address": "Piazza Garibaldi 3", "lives_alone": False,
     "key": "giulia"},  # 91, sole caregiver daughter
    {"surname": "Moretti", "given_name": "Luca", "sex": "M", "birth_date": date(2016, 5, 21),
     "birthplace": "Crema", "residence": "comune-castelleone", "address": "Via Roma 20", "lives_alone": False,
     "key": "luca"},  # child with disability
    {"surname": "El Amrani", "given_name": "Samir", "sex": "M", "birth_date": date(1981, 2, 10),
     "birthplace": "Marocco", "residence": "comune-crema", "address": None, "lives_alone": True,
     "homeless": True, "fictitious_residence": True, "key": "samir"},  # severe marginality
]


def codice_fiscale(p: dict[str, Any]) -> str:
    return cf_lib.encode(lastname=p["surname"], firstname=p["given_name"], gender=p["sex"],
                         birthdate=p["birth_date"].strftime("%d/%m/%Y"), birthplace=p["birthplace"])


class _Counter(dict):
    def inc(self, key: str) -> None:
        self[key] = self.get(key, 0) + 1


async def _orgs(session: AsyncSession) -> dict[str, Organisation]:
    codes = {AMBITO_CODE} | {c for _, _, _, rs in DEMO_USERS for _, c in rs} | {t[3] for t in DEMO_TEAMS} \
        | {m[1] for t in DEMO_TEAMS for m in t[4]} | {p["residence"] for p in DEMO_PERSONS}
    codes.discard(RSA_OPERATOR)
    found = {o.code: o for o in (await session.execute(
        sa.select(Organisation).where(Organisation.code.in_(sorted(codes))))).scalars()}
    missing = sorted(codes - set(found))
    if missing:
        raise RuntimeError("reference data missing (run `python -m api load-reference` first): " + ", ".join(missing))
    rsa = (await session.execute(
        sa.select(Organisation).join(ServiceUnit, ServiceUnit.operator_id == Organisation.id)
        .where(ServiceUnit.udo_type == "rsa", ServiceUnit.ambito_id == found[AMBITO_CODE].id)
        .order_by(sa.case((Organisation.code == PREFERRED_RSA_OPERATOR, 0), else_=1), ServiceUnit.code)
        .limit(1))).scalar_one_or_none()
    if rsa is None:
        raise RuntimeError("no RSA operator in the reference data")
    found[RSA_OPERATOR] = rsa
    return found


async def _user(session: AsyncSession, counts: _Counter, *, username: str, ambito_id, **fields: Any) -> AppUser:
    u = (await session.execute(sa.select(AppUser).where(AppUser.username == username))).scalar_one_or_none()
    if u is None:
        u = AppUser(username=username, ambito_id=ambito_id, **fields)
        session.add(u)
        await session.flush()
        counts.inc("users")
    return u


async def load_demo(session: AsyncSession) -> dict:
    """Creates what is missing; returns how many rows of each kind were created (all zero on a second run)."""
    counts = _Counter(users=0, role_assignments=0, teams=0, team_members=0, persons=0, work_items=0)
    orgs = await _orgs(session)
    ambito = orgs[AMBITO_CODE]
    users: dict[str, AppUser] = {}

    for username, name, profession, roles in DEMO_USERS:
        held = orgs[roles[0][1]]  # a user belongs to the Ambito of its role (or to the Region, a root of its own)
        u = await _user(session, counts, username=username, ambito_id=held.ambito_id or held.id, display_name=name,
                        profession=profession, kind=UserKind.person,
                        email=f"{username}@demo.pua-crema.example")
        users[username] = u
        for role, code in roles:
            o = orgs[code]
            exists = (await session.execute(sa.select(RoleAssignment.id).where(
                RoleAssignment.user_id == u.id, RoleAssignment.role == role.value,
                RoleAssignment.organisation_id == o.id))).first()
            if not exists:
                session.add(RoleAssignment(user_id=u.id, role=role, organisation_id=o.id, valid_from=DEMO_FROM))
                counts.inc("role_assignments")
    for username, name, scopes in SYSTEM_CLIENTS:
        users[username] = await _user(session, counts, username=username, ambito_id=ambito.id, display_name=name,
                                      kind=UserKind.system, scopes=list(scopes))
    await session.flush()

    teams: dict[str, Team] = {}
    for code, name, ttype, org_code, members in DEMO_TEAMS:
        t = (await session.execute(sa.select(Team).where(Team.code == code))).scalar_one_or_none()
        if t is None:
            t = Team(ambito_id=ambito.id, code=code, name=name, type=ttype, organisation_id=orgs[org_code].id)
            session.add(t)
            await session.flush()
            counts.inc("teams")
        teams[code] = t
        for username, brings, role_in_team in members:
            exists = (await session.execute(sa.select(TeamMember.id).where(
                TeamMember.team_id == t.id, TeamMember.user_id == users[username].id))).first()
            if not exists:
                session.add(TeamMember(team_id=t.id, user_id=users[username].id, organisation_id=orgs[brings].id,
                                       role_in_team=role_in_team, valid_from=DEMO_FROM))
                counts.inc("team_members")
    await session.flush()

    persons: dict[str, Person] = {}
    for p in DEMO_PERSONS:
        code = codice_fiscale(p)
        found = (await session.execute(sa.select(Person).where(
            Person.ambito_id == ambito.id, Person.codice_fiscale == code))).scalars().first()
        if found is None:
            decoded = cf_lib.decode(code)["birthplace"]
            found = Person(ambito_id=ambito.id, codice_fiscale=code, surname=p["surname"],
                           given_name=p["given_name"], sex=Sex(p["sex"]), birth_date=p["birth_date"],
                           birth_place_code=decoded["code"], birth_place_name=decoded["name"],
                           citizenship="Italiana" if decoded["province"] != "EE" else None,
                           residence_comune_id=orgs[p["residence"]].id, residence_address=p["address"],
                           lives_alone=p["lives_alone"], homeless=p.get("homeless", False),
                           fictitious_residence=p.get("fictitious_residence", False), source="demo")
            session.add(found)
            await session.flush()
            counts.inc("persons")
        persons[p["key"]] = found

    # A few items so that the queues of the demo users are not empty.
    today = clock.today_rome()

    def at(days: int, hour: int = 12) -> datetime:
        return datetime.combine(today + timedelta(days=days), time(hour), tzinfo=clock.ROME)

    demo_items = [
        dict(dedup_key="demo:pua-triage:teresa", kind=TRIAGE_KIND, person="teresa",
             title="Prima valutazione PUA: richiesta di assistenza domiciliare",
             assignee_team_id=teams["team-pua-crema"].id, due_at=at(2)),
        dict(dedup_key="demo:cot-discharge:angelo", kind=COT_KIND, person="angelo",
             title="Valutazione dimissione protetta (entro 48 ore)", assignee_org_id=orgs["asst-crema-cot"].id,
             due_at=at(2, 9)),
        dict(dedup_key="demo:home-visit:teresa", kind=FOLLOW_UP_KIND, person="teresa",
             title="Visita domiciliare", assignee_user_id=users["as.offanengo"].id, due_at=at(7)),
    ]
    for item in demo_items:
        exists = (await session.execute(sa.select(WorkItem.id).where(WorkItem.dedup_key == item["dedup_key"]))).first()
        if exists:
            continue
        person = persons[item.pop("person")]
        await work_items.create(session, source_type="demo", source_id=person.id, person_id=person.id,
                                ambito_id=ambito.id, **item)
        counts.inc("work_items")
    await session.flush()
    return dict(counts)


async def _run(url: str) -> dict:
    engine = create_async_engine(url, pool_size=1)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            counts = await load_demo(session)
            await session.commit()
            return counts
    finally:
        await engine.dispose()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m api seed-demo",
                                     description="Utenti, équipe e persone dimostrative (idempotente).")
    parser.add_argument("--database-url", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    counts = asyncio.run(_run(args.database_url or get_settings().database_url))
    print(json.dumps({"created": counts}, ensure_ascii=False))
    return 0
