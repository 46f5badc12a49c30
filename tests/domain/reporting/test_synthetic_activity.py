"""The synthetic activity (deploy/seed/activity.py): cartelle opened and closed over 2020-2025 so that exactly the
seed's 2023 table, at a tenth of its scale, is open at the end of 2023 (the edges of the year included), and the
2023 report of open cartelle returns those counts by area; a year of events in proportion to the persons."""
from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from deploy.seed import activity, synthetic
from domain.reporting import definitions, indicators, service
from domain.territory import queries as territory
from tests.support import org

pytestmark = pytest.mark.db

PERSONS = 20_000
# The seed's table (L1396-1414) × 0.1, rounded half up per area: 9,652 → 965, 10,964 → 1,096, 3,270 → 327,
# 2,787 → 279 (278.7), 969 → 97 (96.9), 350 → 35, 131 → 13 (13.1), 92 → 9 (9.2); 2,821 in all.
TENTH = {"anziani": 965, "minori_famiglia": 1096, "disabili": 327, "emarginazione_poverta": 279,
         "servizi_sociali": 97, "dipendenze_salute_mentale": 35, "non_noto": 13, "immigrazione": 9}


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def test_targets_are_the_seeds_table_scaled():
    assert activity.targets(1.0) == synthetic.OPEN_CARTELLE_2023
    assert sum(activity.targets(1.0).values()) == 28_215
    assert activity.targets(0.1) == TENTH


async def test_the_2023_report_returns_the_seeds_open_cartelle_by_area(fresh_db, clock):
    url = fresh_db["MIGRATION_DATABASE_URL"]
    await synthetic.seed(url, persons=PERSONS, seed_value=5, quiet=True)
    report = await activity.seed(url, scale=0.1, year=2025)
    assert report.open_at_2023 == TENTH
    # a year of events in proportion: 30 requests, 4 discharges per 1,000 residents
    assert report.events["access_request"] == 600 and report.events["discharge_case"] == 80

    conn = await asyncpg.connect(_dsn(fresh_db["DATABASE_URL"]))
    try:
        # opened and closed over 2020-2025 (and 2026 only for the babies born then), not all still open
        years = {r[0] for r in await conn.fetch(
            "select distinct extract(year from c.opened_at at time zone 'Europe/Rome')::int from cartella c "
            "join person p on p.id = c.person_id where p.birth_date < date '2026-01-01'")}
        assert years == set(range(2020, 2026))
        closed = await conn.fetchval("select count(*) from cartella where closed_at is not null")
        assert closed > 0
        # the edges, once per area: opened at 23:59:59 on 31 December, closed at 00:00 on 1 January (open at the
        # end of 2023); closed at 23:59:59 on 31 December, opened at 00:00 on 1 January 2024 (not open)
        edge = "timestamptz '2024-01-01 00:00:00 Europe/Rome'"
        assert await conn.fetchval(f"select count(*) from cartella where closed_at = {edge}") == len(TENTH)
        assert await conn.fetchval(f"select count(*) from cartella where opened_at = {edge}") == len(TENTH)
        assert await conn.fetchval(
            f"select count(*) from cartella where closed_at = {edge} - interval '1 second'") == len(TENTH)
    finally:
        await conn.close()

    engine = create_async_engine(fresh_db["DATABASE_URL"])
    try:
        async with AsyncSession(engine) as session:
            ambito = await org(session, "ambito-crema")
            tree = await territory.ambito_tree(session, ambito.id)
            scope = service.Scope(tree=tree, names={o: n for o, _k, n, _p in tree}, ambito_name=ambito.name,
                                  visible=None)
            d = definitions.registry()["CARTELLE"]
            rows = await service.definition_rows(session, d, ambito_id=ambito.id, year=2023, by="area",
                                                 r=indicators.reading_for(d, 2023), scope=scope)
    finally:
        await engine.dispose()
    by_area = {r.key: r.numerator for r in rows if r.grouping == "area"}
    assert by_area == TENTH
    assert rows[-1].grouping == "ambito" and rows[-1].numerator == 2821
