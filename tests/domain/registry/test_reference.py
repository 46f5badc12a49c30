"""Reference data: territory of the Ambito di Crema, catalogue, UDO, idempotent reload, second Ambito."""
from __future__ import annotations

import sqlalchemy as sa
import yaml

from domain.territory import service as territory
from domain.territory.models import FundingSource, Organisation, OrgKind, ServiceType, ServiceUnit, Side
from domain.territory.reference import AMBITI_DIR, CATALOGUE_DIR, ReferenceDataError, comune_code, load_reference_data
from tests.conftest import ROOT
from tests.support import make_user, org

CREMONA_TEST = ROOT / "tests" / "data" / "reference" / "ambiti" / "cremona-test"
CAPITALS = {"Crema": "subambito-crema", "Bagnolo Cremasco": "subambito-bagnolo-cremasco",
            "Castelleone": "subambito-castelleone", "Pandino": "subambito-pandino",
            "Sergnano": "subambito-sergnano", "Soncino": "subambito-soncino"}


async def _orgs(session, ambito_code: str, kind: OrgKind | None = None) -> list[Organisation]:
    amb = await org(session, ambito_code)
    q = sa.select(Organisation).where(Organisation.ambito_id == amb.id)
    if kind:
        q = q.where(Organisation.kind == kind)
    return list((await session.execute(q)).scalars())


async def test_48_comuni_with_istat_and_belfiore_codes(session):
    comuni = await _orgs(session, "ambito-crema", OrgKind.comune)
    assert len(comuni) == 48
    by_code = {c.code: c for c in comuni}
    crema = by_code["comune-crema"]
    assert (crema.istat_code, crema.belfiore_code, crema.population_estimate) == ("019035", "D142", 33909)
    assert by_code["comune-rivolta-d-adda"].belfiore_code == "H357"
    assert "comune-casale-cremasco-vidolasco" in by_code and "comune-offanengo" in by_code
    assert all(c.istat_code and len(c.istat_code) == 6 and c.istat_code.startswith("019") for c in comuni)
    assert all(c.belfiore_code and len(c.belfiore_code) == 4 for c in comuni)
    assert len({c.istat_code for c in comuni}) == 48
    assert all(c.side == Side.comune for c in comuni)
    # population estimates add up to the ISTAT 2023 total and to the seed's size bands
    pops = [c.population_estimate for c in comuni]
    assert sum(pops) == 160531
    assert sum(1 for p in pops if p < 1000) == 10 and sum(p for p in pops if p < 1000) == 5741
    assert sum(1 for p in pops if 1000 <= p < 3000) == 22 and sum(p for p in pops if 1000 <= p < 3000) == 39730
    assert sum(1 for p in pops if 3000 <= p < 5000) == 9 and sum(p for p in pops if 3000 <= p < 5000) == 34715
    big = {c.name for c in comuni if 5000 <= c.population_estimate < 10000}
    assert big == {"Castelleone", "Pandino", "Rivolta d'Adda", "Spino d'Adda", "Soncino", "Offanengo"}
    assert sum(c.population_estimate for c in comuni if c.name in big) == 46436


async def test_six_sub_ambiti_each_capital_in_its_own(session):
    subs = await _orgs(session, "ambito-crema", OrgKind.sub_ambito)
    assert {s.code for s in subs} == set(CAPITALS.values())
    ids = {s.id: s.code for s in subs}
    comuni = {c.name: c for c in await _orgs(session, "ambito-crema", OrgKind.comune)}
    for capital, sub_code in CAPITALS.items():
        assert ids[comuni[capital].part_of_id] == sub_code
        assert comuni[capital].provisional is False
    others = [c for n, c in comuni.items() if n not in CAPITALS]
    assert others and all(c.provisional for c in others)
    assert all(c.part_of_id in ids for c in comuni.values())


async def test_eleven_rsa_with_948_beds(session):
    amb = await org(session, "ambito-crema")
    rsa = (await session.execute(sa.select(ServiceUnit).where(
        ServiceUnit.ambito_id == amb.id, ServiceUnit.udo_type == "rsa"))).scalars().all()
    assert len(rsa) == 11
    assert sum(u.places_authorised for u in rsa) == 948
    assert sum(u.places_contracted or 0 for u in rsa) == 799
    assert sum(1 for u in rsa if u.places_contracted) == 10
    assert sum(1 for u in rsa if "rsa_aperta" in u.measures) == 6
    assert sum(1 for u in rsa if "residenzialita_assistita" in u.measures) == 2
    units = (await session.execute(sa.select(ServiceUnit).where(ServiceUnit.ambito_id == amb.id))).scalars().all()
    totals: dict[str, list[int]] = {}
    for u in units:
        t = totals.setdefault(u.udo_type, [0, 0])
        t[0] += 1
        t[1] += u.places_authorised or 0
    assert totals["cdi"] == [5, 150] and totals["rsd"] == [2, 123] and totals["css"] == [3, 26]
    assert totals["cdd"] == [2, 50] and totals["cure_intermedie"] == [3, 233] and totals["hospice"] == [1, 14]
    # the sub-ambito of a unit is the one of its comune
    brunenghi = next(u for u in rsa if u.code == "rsa-brunenghi-castelleone")
    assert brunenghi.sub_ambito_id == (await org(session, "subambito-castelleone")).id
    assert (await session.get(Organisation, brunenghi.operator_id)).side == Side.provider


async def test_contract_codes_and_sides(session):
    expected = {
        "ambito-crema": Side.ambito, "subambito-soncino": Side.ambito, "udp-crema": Side.ambito,
        "comune-offanengo": Side.comune, "csc-crema": Side.csc, "ats-val-padana": Side.ats,
        "asst-crema": Side.asst, "asst-crema-ospedale-crema": Side.asst, "asst-crema-ospedale-rivolta": Side.asst,
        "asst-crema-reparto-medicina": Side.asst, "asst-crema-cdc-crema": Side.asst, "asst-crema-pua": Side.asst,
        "asst-crema-cot": Side.asst, "asst-crema-uonpia": Side.asst, "asst-crema-cps": Side.asst,
        "asst-crema-serd": Side.asst, "asst-crema-consultorio": Side.asst, "ets-igea": Side.third_sector,
        "ets-meraki": Side.third_sector, "ets-sentiero": Side.third_sector, "mmg-crema-1": Side.primary_care,
        "ambito-cremona-test": Side.ambito, "comune-cremona": Side.comune, "asst-cremona-test": Side.asst,
    }
    for code, side in expected.items():
        assert (await org(session, code)).side == side, code
    amb = await org(session, "ambito-crema")
    assert amb.ambito_id == amb.id and amb.ancestor_ids == [] and amb.population_estimate == 160531


async def test_catalogue(session):
    types = {t.code: t for t in (await session.execute(sa.select(ServiceType))).scalars()}
    assert {"sad", "sadh", "adi_cdom", "adm", "saap", "aid", "sip", "rsa_aperta", "telesoccorso", "pis",
            "cdi", "cdd", "cse", "sfa", "ucp_dom"} <= set(types)
    assert "adi" not in types and "assegno_inclusione" not in types
    assert types["sad"].leps and types["pis"].leps and not types["cdi"].leps
    assert types["adi_cdom"].label.startswith("Assistenza Domiciliare Integrata")
    funds = {f.code for f in (await session.execute(sa.select(FundingSource))).scalars()}
    assert {"fna", "fna_caregiver", "fnps", "fsr", "fondo_poverta_qsfp", "fsol", "comune", "fondo_sanitario",
            "dopo_di_noi", "pnrr", "utente"} <= funds
    udo = yaml.safe_load((CATALOGUE_DIR / "udo_types.yaml").read_text())["udo_types"]
    assert {u["code"]: u["residential"] for u in udo}["rsa"] is True


async def test_ancestors_are_the_part_of_chain(session):
    amb, sub = await org(session, "ambito-crema"), await org(session, "subambito-soncino")
    soncino = await org(session, "comune-soncino")
    assert soncino.ancestor_ids == [amb.id, sub.id] and soncino.part_of_id == sub.id
    reparto = await org(session, "asst-crema-reparto-medicina")
    asst, osp = await org(session, "asst-crema"), await org(session, "asst-crema-ospedale-crema")
    assert reparto.ancestor_ids == [amb.id, asst.id, osp.id]
    assert await territory.ancestor_ids(session, reparto.id) == [amb.id, asst.id, osp.id]
    under_asst = await territory.descendant_ids(session, asst.id)
    assert reparto.id in under_asst and osp.id in under_asst and asst.id not in under_asst
    assert (await org(session, "asst-crema-pua")).id in under_asst
    under_sub = await territory.descendant_ids(session, sub.id)
    comuni_in_sub = (await session.execute(sa.select(Organisation.id).where(
        Organisation.part_of_id == sub.id))).scalars().all()
    assert under_sub == set(comuni_in_sub) and soncino.id in under_sub
    # every org of the Ambito is under the Ambito
    all_ids = {o.id for o in await _orgs(session, "ambito-crema")} - {amb.id}
    assert await territory.descendant_ids(session, amb.id) == all_ids


async def test_reload_is_idempotent(session):
    before = (await session.execute(sa.select(sa.func.count()).select_from(Organisation))).scalar_one()
    result = await load_reference_data(session, [AMBITI_DIR / "crema", CREMONA_TEST])
    assert result["total_inserted"] == 0 and result["inserted"] == {}
    assert result["updated"] == {} and result["ambiti"] == ["ambito-crema", "ambito-cremona-test"]
    after = (await session.execute(sa.select(sa.func.count()).select_from(Organisation))).scalar_one()
    assert after == before


async def test_reload_keeps_admin_edits_unless_overwrite(session):
    admin = await make_user(session, "system_admin", "ambito-crema")
    from domain.security.principal import load_principal

    p = await load_principal(session, str(admin.id))
    izano = await org(session, "comune-izano")
    castelleone = await org(session, "subambito-castelleone")
    await territory.move_comune(session=session, principal=p, comune_id=izano.id, sub_ambito_id=castelleone.id)
    result = await load_reference_data(session, [AMBITI_DIR / "crema"])
    assert result["total_inserted"] == 0 and result["differing"].get("organisation") == 1
    await session.refresh(izano)
    assert izano.part_of_id == castelleone.id
    result = await load_reference_data(session, [AMBITI_DIR / "crema"], overwrite=True)
    assert result["updated"]["organisation"] >= 1
    await session.refresh(izano)
    assert izano.part_of_id == (await org(session, "subambito-soncino")).id
    assert izano.ancestor_ids[-1] == izano.part_of_id


async def test_second_ambito_is_loadable_and_isolated(session):
    amb = await org(session, "ambito-cremona-test")
    cremona = await org(session, "comune-cremona")
    assert cremona.ambito_id == amb.id and cremona.istat_code == "019036" and cremona.belfiore_code == "D150"
    assert (await org(session, "asst-cremona-test")).ambito_id == amb.id
    own = {o.code for o in await _orgs(session, "ambito-cremona-test")}
    assert own == {"ambito-cremona-test", "subambito-cremona-test", "comune-cremona", "asst-cremona-test",
                   "op-rsa-cremona-test"}
    crema = await org(session, "ambito-crema")
    assert not (await territory.descendant_ids(session, amb.id)) & (await territory.descendant_ids(session, crema.id))
    # a reader of the test Ambito sees none of Crema's organisations
    reader = await make_user(session, "comune_social_worker", "comune-cremona")
    from domain.security.principal import load_principal

    p = await load_principal(session, str(reader.id))
    seen, _ = await territory.list_organisations(session=session, principal=p, limit=200)
    assert {o.code for o in seen} == own


async def test_moving_a_comune_recomputes_ancestors(session):
    admin = await make_user(session, "system_admin", "ambito-crema")
    from domain.security.principal import load_principal

    p = await load_principal(session, str(admin.id))
    amb = await org(session, "ambito-crema")
    vailate = await org(session, "comune-vailate")
    pandino = await org(session, "subambito-pandino")
    old_sub = vailate.part_of_id
    # give the comune a child so the subtree recomputation is exercised
    child = Organisation(code="test-frazione-vailate", name="Servizio locale di Vailate", kind=OrgKind.ets,
                         side=Side.third_sector, part_of_id=vailate.id, ambito_id=amb.id,
                         ancestor_ids=[*vailate.ancestor_ids, vailate.id])
    session.add(child)
    await session.flush()
    moved = await territory.move_comune(session=session, principal=p, comune_id=vailate.id, sub_ambito_id=pandino.id)
    assert moved.part_of_id == pandino.id and moved.ancestor_ids == [amb.id, pandino.id]
    assert moved.provisional is True
    await session.refresh(child)
    assert child.ancestor_ids == [amb.id, pandino.id, vailate.id]
    assert vailate.id in await territory.descendant_ids(session, pandino.id)
    assert child.id in await territory.descendant_ids(session, pandino.id)
    assert vailate.id not in await territory.descendant_ids(session, old_sub)
    caimi = (await session.execute(sa.select(ServiceUnit).where(ServiceUnit.code == "rsa-caimi-vailate"))).scalar_one()
    await session.refresh(caimi)
    assert caimi.sub_ambito_id == pandino.id
    confirmed = await territory.move_comune(session=session, principal=p, comune_id=vailate.id,
                                            sub_ambito_id=pandino.id, provisional=False)
    assert confirmed.provisional is False


async def test_unknown_comune_fails_loudly(session, tmp_path):
    d = tmp_path / "broken"
    d.mkdir()
    (d / "ambito.yaml").write_text("code: ambito-broken\nname: Rotto\nprovince: CR\n"
                                   "sub_ambiti: [{code: subambito-broken, name: Rotto}]\n")
    (d / "comuni.yaml").write_text("comuni: [{name: Atlantide, sub_ambito: subambito-broken}]\n")
    try:
        await load_reference_data(session, [d])
    except ReferenceDataError as e:
        assert "Atlantide" in str(e)
    else:
        raise AssertionError("an unknown comune must fail")


async def test_comune_code_slug():
    assert comune_code("Rivolta d'Adda") == "comune-rivolta-d-adda"
    assert comune_code("Casale Cremasco-Vidolasco") == "comune-casale-cremasco-vidolasco"


async def test_cli_load_reference_is_idempotent(fresh_db):
    import asyncio
    import json
    import os
    import sys

    env = {**os.environ, **fresh_db}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "api", "load-reference", "--dir", str(AMBITI_DIR / "crema"), "--dir", str(CREMONA_TEST),
        cwd=str(ROOT), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert result["ambiti"] == ["ambito-crema", "ambito-cremona-test"] and result["total_inserted"] == 0


async def test_new_ambito_from_data_alone_inserts_then_nothing(session, tmp_path):
    d = tmp_path / "soresina"
    d.mkdir()
    (d / "ambito.yaml").write_text("code: ambito-soresina-test\nname: Ambito di prova\nprovince: CR\n"
                                   "sub_ambiti: [{code: subambito-soresina-test, name: Sub di prova}]\n")
    (d / "comuni.yaml").write_text("comuni: [{name: Soresina, sub_ambito: subambito-soresina-test, "
                                   "population_estimate: 9000, provisional: false}]\n")
    first = await load_reference_data(session, [d])
    assert first["inserted"] == {"organisation": 3}
    soresina = await org(session, "comune-soresina")
    amb = await org(session, "ambito-soresina-test")
    assert soresina.ambito_id == amb.id and soresina.belfiore_code == "I849" and len(soresina.ancestor_ids) == 2
    second = await load_reference_data(session, [d])
    assert second["total_inserted"] == 0 and second["updated"] == {}
