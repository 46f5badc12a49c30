"""Instrument catalogue API: list with versions and retired flags, definitions, scoring without storing, and an
instrument added through Settings.instruments_extra_dirs (a data file, no code change)."""
from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from domain.assessment import instruments as engine
from domain.assessment.models import InstrumentResponse
from domain.kernel.settings import get_settings
from domain.security.models import Role
from tests.domain.assessment.vmd_setup import BARTHEL_35
from tests.support import bearer, make_user

PROBLEM = "application/problem+json"


async def _reader(session):
    return bearer(await make_user(session, Role.cdc_assessor, "asst-crema-cdc-crema"))


async def test_list_shows_versions_latest_active_and_retired_flags(client, session):
    r = await client.get("/api/instruments", headers=await _reader(session))
    assert r.status_code == 200
    items = {i["code"]: i for i in r.json()["items"]}
    assert {"barthel", "lawton_iadl", "social_risk", "pua_triage"} <= set(items)
    triage = items["pua_triage"]
    assert triage["latest_active_version"] == 2 and triage["retired"] is False
    assert [(v["version"], v["status"], v["retired"]) for v in triage["versions"]] == [
        (1, "retired", True), (2, "active", False)]
    assert items["barthel"]["domains"] == ["functional"] and items["barthel"]["title"].startswith("Indice di Barthel")


async def test_definitions(client, session):
    h = await _reader(session)
    r = await client.get("/api/instruments/barthel", headers=h)
    assert r.status_code == 200
    d = r.json()
    assert (d["code"], d["version"], d["status"], len(d["items"])) == ("barthel", 1, "active", 10)
    assert d["scores"][0]["bands"][1] == {"code": "severe_dependency", "label": "Dipendenza grave", "min": 21,
                                          "max": 60}
    r = await client.get("/api/instruments/pua_triage/versions/1", headers=h)
    assert r.status_code == 200 and r.json()["status"] == "retired"
    rules = r.json()["outcomes"][0]["rules"]
    assert rules and "when" in rules[0]  # conditions keep their data-file keys (any/all/not/item...)
    r = await client.get("/api/instruments/pua_triage", headers=h)
    assert r.json()["version"] == 2
    r = await client.get("/api/instruments/mmse", headers=h)
    assert r.status_code == 404 and r.headers["content-type"].startswith(PROBLEM) and r.json()["instrument"] == "mmse"
    r = await client.get("/api/instruments/barthel/versions/9", headers=h)
    assert r.status_code == 404 and r.json()["version"] == 9
    r = await client.get("/api/instruments/Bad Code", headers=h)
    assert r.status_code == 422


async def test_score_without_storing(client, session):
    h = await _reader(session)
    before = (await session.execute(sa.select(sa.func.count()).select_from(InstrumentResponse))).scalar_one()
    r = await client.post("/api/instruments/barthel/score", json={"answers": BARTHEL_35}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["instrument"], body["version"], body["status"]) == ("barthel", 1, "active")
    assert (body["scores"]["total"]["value"], body["scores"]["total"]["band"]["code"]) == (35, "severe_dependency")
    missing = {k: v for k, v in BARTHEL_35.items() if k != "stairs"}
    r = await client.post("/api/instruments/barthel/score", json={"answers": {**missing, "feeding": "x"}}, headers=h)
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
    assert {e["field"] for e in r.json()["errors"]} == {"answers.stairs", "answers.feeding"}
    r = await client.post("/api/instruments/barthel/score", json={"answers": BARTHEL_35, "extra": 1}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "extra"
    # a retired version can still be scored (stored answers keep their meaning); the status says so
    v1 = {"request_type": "information", "need_areas": ["health"], "caregiver": "adequate", "autonomy_loss": "none",
          "multimorbidity": False, "recent_discharge": False, "lives_alone_over_75": False, "caregiver_loss": False,
          "abuse_suspicion": False}
    r = await client.post("/api/instruments/pua_triage/score", json={"version": 1, "answers": v1}, headers=h)
    assert r.status_code == 200, r.text
    assert (r.json()["version"], r.json()["status"]) == (1, "retired")
    assert (await session.execute(sa.select(sa.func.count()).select_from(InstrumentResponse))).scalar_one() == before


async def test_permission_instrument_read(client, session):
    ward = await make_user(session, Role.ward_staff, "asst-crema-ospedale-crema")
    r = await client.get("/api/instruments", headers=bearer(ward))
    assert r.status_code == 403 and "instrument.read" in r.json()["detail"]
    assert (await client.get("/api/instruments")).status_code == 401


@pytest.fixture
def extra_dirs_setting(monkeypatch, tmp_path):
    (tmp_path / "caregiver_burden").mkdir()
    (tmp_path / "caregiver_burden" / "1.yaml").write_text(CAREGIVER_BURDEN, encoding="utf-8")
    monkeypatch.setenv("INSTRUMENTS_EXTRA_DIRS", json.dumps([str(tmp_path)]))
    get_settings.cache_clear()
    engine.registry.cache_clear()
    yield tmp_path
    monkeypatch.delenv("INSTRUMENTS_EXTRA_DIRS")
    get_settings.cache_clear()
    engine.registry.cache_clear()


CAREGIVER_BURDEN = """
code: caregiver_burden
version: 1
title: Carico del caregiver (prova)
status: active
domains: [caregiver]
items:
  - id: time
    label: Tempo dedicato all'assistenza
    type: single_choice
    options:
      - {code: low, label: Meno di 2 ore al giorno, points: 0}
      - {code: high, label: Più di 6 ore al giorno, points: 4}
  - {id: health, label: Il caregiver ha problemi di salute, type: boolean, points_true: 2}
scores:
  - code: burden
    label: Carico
    bands:
      - {code: bearable, label: Sostenibile, min: 0, max: 3}
      - {code: overload, label: Sovraccarico, min: 4, max: 6}
"""


async def test_instrument_from_settings_extra_dirs_is_listed_and_scored(client, session, extra_dirs_setting):
    h = await _reader(session)
    r = await client.get("/api/instruments", headers=h)
    assert "caregiver_burden" in {i["code"] for i in r.json()["items"]}
    r = await client.post("/api/instruments/caregiver_burden/score",
                          json={"answers": {"time": "high", "health": True}}, headers=h)
    assert r.status_code == 200, r.text
    burden = r.json()["scores"]["burden"]
    assert (burden["value"], burden["band"]["label"]) == (6, "Sovraccarico")
