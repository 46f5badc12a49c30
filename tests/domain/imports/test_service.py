"""The import service on the session's Postgres: dry run report, real run in chunks, idempotence, provenance."""
from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from domain.imports import service
from domain.imports.mapping import parse_mapping, template_dict
from domain.imports.models import ImportRecord, ImportRow, ImportState
from domain.kernel import history
from domain.kernel.errors import Conflict, Invalid
from domain.kernel.settings import get_settings
from domain.registry import persons
from domain.registry.models import Cartella, Person, PersonRelation, PossibleMatch
from domain.security.principal import load_principal
from schemas.persons import PersonCreate
from tests.factories.registry import encode_cf
from tests.support import make_user

HEADERS = list(template_dict()["columns"].values())


async def steward(session):
    user = await make_user(session, "data_steward", "ambito-crema")
    return await load_principal(session, str(user.id))


async def social_worker(session):
    user = await make_user(session, "comune_social_worker", "comune-crema", username="as.import")
    return user


def person_row(key, surname, given, sex, born, place="Crema", **kw):
    cf = kw.pop("cf", None)
    if cf is None and kw.pop("with_cf", True):
        cf = encode_cf(surname, given, sex, born, place)
    return {"id_origine": key, "codice_fiscale": cf or "", "cognome": surname, "nome": given, "sesso": sex,
            "data_nascita": born.strftime("%d/%m/%Y"), "comune_residenza": "Crema", **kw}


async def counts(session) -> dict[str, int]:
    out = {}
    for model in (Person, Cartella, PersonRelation, PossibleMatch, ImportRecord):
        out[model.__tablename__] = (await session.execute(sa.select(sa.func.count()).select_from(model))).scalar()
    return out


async def run_all(session, job_id, max_rows=None):
    for _ in range(1000):
        job = await service.run_chunk(session, import_id=job_id, max_rows=max_rows)
        if job.state in (ImportState.done, ImportState.failed):
            return job
    raise AssertionError("import did not finish")


async def report(session, job_id) -> dict[int, ImportRow]:
    rows = (await session.execute(sa.select(ImportRow).where(ImportRow.job_id == job_id))).scalars()
    return {r.row_number: r for r in rows}


@pytest.fixture
async def registry_person(session):
    """Somebody already registered (the import must match them, not register them twice)."""
    user = await make_user(session, "comune_social_worker", "comune-crema")
    p = await load_principal(session, str(user.id))
    cf = encode_cf("Ferrari", "Giulia", "F", date(1941, 2, 3), "Crema")
    return (await persons.create_person(session, principal=p, data=PersonCreate(
        codice_fiscale=cf, surname="Ferrari", given_name="Giulia"))).person


def messy_rows(registry_cf: str) -> list[dict]:
    return [
        person_row("A1", "Zanfrolli", "Ottavia", "F", date(1938, 5, 6), area="anziani", case_manager="as.import"),
        person_row("A2", "Ferrari", "Giulia", "F", date(1941, 2, 3), cf=registry_cf, area="Area Anziani"),
        person_row("A3", "Zanfroli", "Ottavia", "F", date(1938, 5, 6),
                   cf=encode_cf("Zanfrolli", "Ottavia", "F", date(1938, 5, 6), "Crema")),  # same CF as row 1
        person_row("A4", "Zanfrolli", "Otavia", "F", date(1938, 5, 6), with_cf=False, tipo_identificativo="STP",
                   identificativo="STP019035" + "0000123"),  # look-alike of row 1 without its CF
        person_row("A5", "Quaglieri", "Bruno", "M", date(1950, 1, 1), cf="QGLBRN50A01D142X"),  # bad checksum
        person_row("A6", "Sbardolini", "Ivo", "M", date(1960, 3, 3), comune_residenza="Atlantide"),
        person_row("A7", "Trombetti", "Lia", "F", date(1970, 4, 4)),  # no area: non noto
        person_row("M1", "Pedrazzini", "Nina", "F", date(2015, 6, 7), area="minori e famiglia"),
        person_row("P1", "Pedrazzini", "Marco", "M", date(1980, 1, 2), relazione_di="M1", tipo_relazione="genitore"),
        person_row("P2", "Ghisetti", "Elena", "F", date(1982, 3, 4), relazione_di="M1", tipo_relazione="genitore"),
        {"id_origine": "S1", "cognome": "Avvocati", "nome": "Paola", "relazione_di": "A7",
         "tipo_relazione": "amministratore di sostegno", "decreto": "R.G. 12/2024", "tribunale": "Cremona",
         "ambito_decreto": "cura e salute"},
        {"id_origine": "S2", "cognome": "Senza", "nome": "Decreto", "relazione_di": "A1",
         "tipo_relazione": "amministratore di sostegno", "ambito_decreto": "cura e salute"},
        person_row("A8", "Futuri", "Dario", "M", date(2090, 1, 1), with_cf=False, tipo_identificativo="provvisorio"),
        person_row("A9", "Cmanager", "Ugo", "M", date(1955, 5, 5), case_manager="nessuno"),
    ]


async def test_dry_run_reports_every_row_and_writes_nothing(session, registry_person):
    await social_worker(session)
    p = await steward(session)
    rows = messy_rows(registry_person.codice_fiscale)
    before = await counts(session)
    job = await service.create_import(session, principal=p, file_name="export.csv", file_format="csv",
                                      sha256="0" * 64, headers=HEADERS, rows=rows,
                                      mapping=parse_mapping(template_dict()), enqueue=False)
    job = await run_all(session, job.id)
    assert job.state == ImportState.done and job.rows_done == len(rows)
    assert await counts(session) == before  # nothing but the report
    r = await report(session, job.id)
    assert r[1].outcome == "create" and r[1].cartella_id is not None
    assert (r[2].outcome, r[2].person_id, r[2].reason) == ("match", registry_person.id, "codice_fiscale")
    assert (r[3].outcome, r[3].matched_row) == ("match", 1)
    assert r[4].outcome == "possible_match" and r[4].candidate_rows == [1]
    assert (r[5].outcome, r[5].errors[0]["field"]) == ("reject", "codice_fiscale")
    assert (r[6].outcome, r[6].errors[0]["field"]) == ("reject", "comune_residenza")
    assert r[7].outcome == "create" and any("Non noto" in n for n in r[7].notes)
    assert [r[n].outcome for n in (8, 9, 10)] == ["create", "create", "create"]
    assert r[9].relation_id is not None and r[10].relation_id is not None
    assert r[11].outcome == "create" and r[11].person_id is None and r[11].relation_id is not None  # name only
    assert (r[12].outcome, r[12].errors[0]["field"]) == ("reject", "decreto")
    assert (r[13].outcome, r[13].errors[0]["field"]) == ("reject", "data_nascita")
    assert (r[14].outcome, r[14].errors[0]["field"]) == ("reject", "case_manager")
    assert r[3].notes == ["area non indicata: collegata alla cartella già aperta"]
    assert job.counts == {"create": 6, "match": 2, "possible_match": 1, "reject": 5}


async def test_real_run_in_chunks_then_a_second_run_changes_nothing(session, registry_person):
    await social_worker(session)
    p = await steward(session)
    rows = messy_rows(registry_person.codice_fiscale)
    mapping = parse_mapping(template_dict())
    dry = await service.create_import(session, principal=p, file_name="export.csv", file_format="csv",
                                      sha256="0" * 64, headers=HEADERS, rows=rows, mapping=mapping, enqueue=False)
    with pytest.raises(Conflict):
        await service.confirm_import(session, principal=p, import_id=dry.id, enqueue=False)  # not finished yet
    await run_all(session, dry.id)
    real = await service.confirm_import(session, principal=p, import_id=dry.id, enqueue=False)
    before = await counts(session)
    real = await run_all(session, real.id, max_rows=3)  # five chunks
    assert real.counts == (await session.get(type(real), dry.id)).counts  # the dry run said what happened
    after = await counts(session)
    assert after["person"] - before["person"] == 6  # 4 created or flagged + 2 parents; the AdS by name only
    assert after["possible_match"] - before["possible_match"] == 1
    assert after["import_record"] - before["import_record"] == 9
    dry_report, real_report = await report(session, dry.id), await report(session, real.id)
    assert [(n, x.outcome, x.matched_row) for n, x in sorted(dry_report.items())] == \
        [(n, x.outcome, x.matched_row) for n, x in sorted(real_report.items())]

    # provenance: the person's history says it came from an import, which file and row
    created = real_report[1].person_id
    first = (await history.versions(session, entity_type="person", entity_id=created))[0]
    assert first.data["source"] == "import"
    assert first.data["provenance"] == {"source_system": "piattaforma-sociale", "source_key": "A1",
                                        "file": "export.csv", "row": 1, "import_id": str(real.id)}
    cartella = await session.get(Cartella, real_report[7].cartella_id)
    assert cartella.area == "non_noto" and cartella.legacy_code == "piattaforma-sociale:A7"
    case = await session.get(Cartella, real_report[1].cartella_id)
    assert case.case_manager_id is not None

    again = await service.create_import(session, principal=p, file_name="export-bis.csv", file_format="csv",
                                        sha256="1" * 64, headers=HEADERS, rows=rows, mapping=mapping, dry_run=False,
                                        enqueue=False)
    again = await run_all(session, again.id)
    assert await counts(session) == after
    assert again.counts == {"unchanged": 9, "reject": 5}


async def test_mapping_naming_an_unknown_column_writes_nothing(session):
    p = await steward(session)
    data = template_dict()
    data["columns"]["codice_fiscale"] = "CF_ASSISTITO"
    with pytest.raises(Invalid) as e:
        await service.create_import(session, principal=p, file_name="x.csv", file_format="csv", sha256="0" * 64,
                                    headers=HEADERS, rows=[{"id_origine": "1"}], mapping=parse_mapping(data),
                                    enqueue=False)
    assert e.value.errors[0]["field"] == "columns.codice_fiscale"
    assert (await session.execute(sa.select(sa.func.count()).select_from(ImportRow))).scalar() == 0


async def test_rows_written_together_end_as_they_would_one_by_one(session, registry_person, monkeypatch):
    """The batch of new persons (`_fast`) changes the cost, not the outcome: the same report row by row."""
    await social_worker(session)
    p = await steward(session)
    rows = messy_rows(registry_person.codice_fiscale) * 2  # the second copy: same keys, same persons again
    rows = [{**r, "id_origine": f"{r['id_origine']}-{i}"} for i, r in enumerate(rows)]
    reports = []
    for fast in (True, False):
        monkeypatch.setattr(get_settings(), "import_fast_path", fast)
        job = await service.create_import(session, principal=p, file_name="x.csv", file_format="csv",
                                          sha256="0" * 64, headers=HEADERS, rows=rows,
                                          mapping=parse_mapping(template_dict()), enqueue=False)
        await run_all(session, job.id)
        reports.append([(n, x.outcome, x.matched_row, x.candidate_rows, x.errors, x.notes)
                        for n, x in sorted((await report(session, job.id)).items())])
    assert reports[0] == reports[1]
    assert {r[1] for r in reports[0]} == {"create", "match", "possible_match", "reject"}
