"""Territory API: reads scoped to the user's Ambito, admin edits, permissions, problem+json errors."""
from __future__ import annotations

import sqlalchemy as sa

from domain.security.models import Role
from domain.territory.models import ServiceUnit
from tests.support import bearer, make_user, org

PROBLEM = "application/problem+json"


async def _user(session, role, org_code):
    user = await make_user(session, role, org_code)
    # Release the savepoint: an error response rolls back the request's savepoint, the user must survive it.
    await session.commit()
    return bearer(user)


async def _reader(session, org_code="comune-crema"):
    return await _user(session, Role.comune_social_worker, org_code)


async def _admin(session, org_code="ambito-crema"):
    return await _user(session, Role.system_admin, org_code)


async def _ids(session, *codes):
    """Ids as strings, read before any request that may roll back (and expire) the session's objects."""
    return [str((await org(session, c)).id) for c in codes]


async def test_my_ambito(client, session):
    r = await client.get("/api/territory/ambiti/me", headers=await _reader(session))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ambito"]["code"] == "ambito-crema" and body["population"] == 160531
    assert body["sub_ambiti"] == 6 and body["comuni"] == 48


async def test_comuni_and_sub_ambiti(client, session):
    h = await _reader(session)
    r = await client.get("/api/territory/comuni", headers=h)
    assert r.status_code == 200
    comuni = {c["code"]: c for c in r.json()["items"]}
    assert len(comuni) == 48
    crema = comuni["comune-crema"]
    assert crema["istat_code"] == "019035" and crema["belfiore_code"] == "D142"
    assert crema["sub_ambito_code"] == "subambito-crema" and crema["provisional"] is False
    assert crema["population_is_estimate"] is True
    assert comuni["comune-offanengo"]["provisional"] is True

    r = await client.get("/api/territory/sub-ambiti", headers=h)
    subs = {s["code"]: s for s in r.json()}
    assert len(subs) == 6 and sum(s["comuni"] for s in subs.values()) == 48
    assert sum(s["population_estimate"] for s in subs.values()) == 160531
    assert subs["subambito-soncino"]["capital"] == "Soncino"

    sid = subs["subambito-soncino"]["id"]
    r = await client.get("/api/territory/comuni", params={"sub_ambito_id": sid}, headers=h)
    assert {c["sub_ambito_code"] for c in r.json()["items"]} == {"subambito-soncino"}
    assert "comune-soncino" in {c["code"] for c in r.json()["items"]}


async def test_organisations_filters_and_pagination(client, session):
    h = await _reader(session)
    asst = await org(session, "asst-crema")
    r = await client.get("/api/organisations", params={"part_of": str(asst.id), "limit": 200}, headers=h)
    assert r.status_code == 200
    direct = {o["code"] for o in r.json()["items"]}
    assert "asst-crema-cot" in direct and "asst-crema-reparto-medicina" not in direct
    r = await client.get("/api/organisations", params={"under": str(asst.id), "limit": 200}, headers=h)
    under = {o["code"] for o in r.json()["items"]}
    assert {"asst-crema-reparto-medicina", "asst-crema-pua", "asst-crema-cot"} <= under
    assert all(o["side"] == "asst" for o in r.json()["items"])

    r = await client.get("/api/organisations", params={"kind": "ets", "limit": 2}, headers=h)
    page1 = r.json()
    assert len(page1["items"]) == 2 and page1["next_cursor"]
    r = await client.get("/api/organisations", params={"kind": "ets", "limit": 2, "cursor": page1["next_cursor"]},
                         headers=h)
    page2 = r.json()
    assert page2["items"] and not ({o["code"] for o in page1["items"]} & {o["code"] for o in page2["items"]})
    assert all(o["kind_label"] == "Ente del Terzo Settore" for o in page2["items"])

    r = await client.get(f"/api/organisations/{asst.id}", headers=h)
    assert r.status_code == 200 and r.json()["name"] == "ASST di Crema"


async def test_service_units(client, session):
    h = await _reader(session)
    r = await client.get("/api/service-units", params={"udo_type": "rsa", "limit": 200}, headers=h)
    assert r.status_code == 200
    rsa = r.json()["items"]
    assert len(rsa) == 11 and sum(u["places_authorised"] for u in rsa) == 948
    assert rsa[0]["udo_type_label"] == "Residenza Sanitaria Assistenziale (RSA)"
    sub = await org(session, "subambito-castelleone")
    r = await client.get("/api/service-units", params={"sub_ambito": str(sub.id), "limit": 200}, headers=h)
    assert {u["sub_ambito_id"] for u in r.json()["items"]} == {str(sub.id)}
    assert "rsa-brunenghi-castelleone" in {u["code"] for u in r.json()["items"]}
    uid = rsa[0]["id"]
    r = await client.get(f"/api/service-units/{uid}", headers=h)
    assert r.status_code == 200 and r.json()["id"] == uid


async def test_catalogue_reads(client, session):
    h = await _reader(session)
    r = await client.get("/api/catalogue/service-types", headers=h)
    assert r.status_code == 200
    types = {t["code"]: t for t in r.json()}
    assert "adi_cdom" in types and "adi" not in types and types["sad"]["leps"] is True
    r = await client.get("/api/catalogue/service-types", params={"leps": True}, headers=h)
    assert r.json() and all(t["leps"] for t in r.json())
    r = await client.get("/api/catalogue/funding-sources", headers=h)
    assert {"fna", "fnps", "fsr", "pnrr"} <= {f["code"] for f in r.json()}
    r = await client.get("/api/catalogue/udo-types", headers=h)
    udo = {t["code"]: t for t in r.json()}
    assert udo["rsa"]["residential"] is True and udo["cdi"]["residential"] is False


async def test_admin_moves_comune_and_edits(client, session):
    h = await _admin(session)
    comune, target, amb, ets, asst, cdc = await _ids(session, "comune-offanengo", "subambito-crema", "ambito-crema",
                                                     "ets-igea", "asst-crema", "asst-crema-cdc-crema")
    unit = str((await session.execute(sa.select(ServiceUnit.id).where(ServiceUnit.code == "rsa-soncino"))).scalar_one())
    r = await client.patch(f"/api/territory/comuni/{comune}", json={"sub_ambito_id": target}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["sub_ambito_code"] == "subambito-crema" and r.json()["provisional"] is True
    r = await client.get(f"/api/organisations/{comune}", headers=h)
    assert r.json()["ancestor_ids"] == [amb, target]
    r = await client.patch(f"/api/territory/comuni/{comune}", json={"sub_ambito_id": target, "provisional": False},
                           headers=h)
    assert r.json()["provisional"] is False

    # only a sub-ambito can receive a comune
    r = await client.patch(f"/api/territory/comuni/{comune}", json={"sub_ambito_id": ets}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "sub_ambito_id"
    r = await client.get(f"/api/territory/comuni/{comune}", headers=h)
    assert r.json()["sub_ambito_id"] == target  # the refused request changed nothing

    # places of a unit
    r = await client.patch(f"/api/service-units/{unit}", json={"places_contracted": 75}, headers=h)
    assert r.status_code == 200 and r.json()["places_contracted"] == 75
    r = await client.patch(f"/api/service-units/{unit}", json={"places_contracted": 500}, headers=h)
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["errors"][0]["field"] == "places_contracted"
    r = await client.get(f"/api/service-units/{unit}", headers=h)
    assert r.json()["places_contracted"] == 75

    # create and re-parent an organisation
    r = await client.post("/api/organisations", json={"code": "asst-crema-cdc-soncino", "kind": "asst_unit",
                                                      "name": "Casa di Comunità di Soncino",
                                                      "part_of_id": asst, "unit_type": "cdc"}, headers=h)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["side"] == "asst" and created["ancestor_ids"] == [amb, asst]
    r = await client.patch(f"/api/organisations/{created['id']}", json={"part_of_id": cdc}, headers=h)
    assert r.status_code == 200 and r.json()["ancestor_ids"] == [amb, asst, cdc]
    r = await client.patch(f"/api/organisations/{cdc}", json={"part_of_id": created["id"]}, headers=h)
    assert r.status_code == 422  # no cycles
    r = await client.post("/api/organisations", json={"code": "asst-crema-cdc-soncino", "kind": "asst_unit",
                                                      "name": "Doppione"}, headers=h)
    assert r.status_code == 409
    r = await client.post("/api/organisations", json={"code": "comune-nuovo", "kind": "comune", "name": "Nuovo"},
                          headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "kind"

    # catalogue
    r = await client.post("/api/catalogue/service-types",
                          json={"code": "custode_sociale", "label": "Custode sociale", "category": "domiciliare"},
                          headers=h)
    assert r.status_code == 201 and r.json()["leps"] is False
    r = await client.post("/api/catalogue/service-types", json={"code": "adi", "label": "ADI", "category": "x"},
                          headers=h)
    assert r.status_code == 422
    r = await client.post("/api/catalogue/funding-sources", json={"code": "fondazione_cariplo",
                                                                  "label": "Fondazione Cariplo"}, headers=h)
    assert r.status_code == 201
    r = await client.get("/api/catalogue/funding-sources", headers=h)
    assert "fondazione_cariplo" in {f["code"] for f in r.json()}
    r = await client.patch("/api/catalogue/funding-sources/fondazione_cariplo", json={"active": False}, headers=h)
    assert r.status_code == 200 and r.json()["active"] is False


async def test_non_admin_gets_403(client, session):
    h = await _reader(session)
    comune, target = await _ids(session, "comune-offanengo", "subambito-crema")
    r = await client.patch(f"/api/territory/comuni/{comune}", json={"sub_ambito_id": target}, headers=h)
    assert r.status_code == 403 and r.headers["content-type"].startswith(PROBLEM)
    r = await client.post("/api/catalogue/funding-sources", json={"code": "x_y", "label": "X"}, headers=h)
    assert r.status_code == 403
    r = await client.get(f"/api/territory/comuni/{comune}", headers=h)
    assert r.status_code == 200 and r.json()["sub_ambito_id"] != target


async def test_unknown_field_is_422_problem(client, session):
    h = await _admin(session)
    comune, target = await _ids(session, "comune-offanengo", "subambito-crema")
    unit = str((await session.execute(sa.select(ServiceUnit.id).where(ServiceUnit.code == "rsa-soncino"))).scalar_one())
    r = await client.patch(f"/api/territory/comuni/{comune}", json={"sub_ambito_id": target, "population": 1},
                           headers=h)
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["errors"][0]["field"] == "population"
    r = await client.patch(f"/api/service-units/{unit}", json={"beds": 3}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "beds"


async def test_other_ambito_is_404(client, session):
    h = await _reader(session)  # a Crema user
    admin = await _admin(session)
    h2 = await _reader(session, "comune-cremona")
    other, cremona_amb, cremona, sub = await _ids(session, "asst-cremona-test", "ambito-cremona-test",
                                                  "comune-cremona", "subambito-crema")
    unit = str((await session.execute(sa.select(ServiceUnit.id).where(
        ServiceUnit.code == "rsa-cremona-test"))).scalar_one())
    r = await client.get(f"/api/organisations/{other}", headers=h)
    assert r.status_code == 404 and r.headers["content-type"].startswith(PROBLEM)
    r = await client.get("/api/organisations", params={"limit": 200, "kind": "asst"}, headers=h)
    assert {o["code"] for o in r.json()["items"]} == {"asst-crema"}
    r = await client.get("/api/organisations", params={"ambito": cremona_amb}, headers=h)
    assert r.json()["items"] == []
    r = await client.get(f"/api/service-units/{unit}", headers=h)
    assert r.status_code == 404
    # a Crema admin cannot move the other Ambito's comune either
    r = await client.patch(f"/api/territory/comuni/{cremona}", json={"sub_ambito_id": sub}, headers=admin)
    assert r.status_code == 404
    # and the other Ambito's user sees only its own
    r = await client.get("/api/territory/comuni", headers=h2)
    assert [c["code"] for c in r.json()["items"]] == ["comune-cremona"]
    r = await client.get(f"/api/service-units/{unit}", headers=h2)
    assert r.status_code == 200


async def test_unauthenticated_is_401(client):
    for path in ("/api/territory/comuni", "/api/organisations", "/api/service-units", "/api/catalogue/service-types"):
        r = await client.get(path)
        assert r.status_code == 401 and r.headers["content-type"].startswith(PROBLEM), path
