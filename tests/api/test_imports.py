"""Imports over HTTP: a data steward uploads a file (dry run first), the worker's job handler runs it, the report
comes back as CSV or XLSX, the confirmation imports; bad files are problem+json naming the field, nothing written."""
from __future__ import annotations

import csv
import io
from datetime import date

import openpyxl
import sqlalchemy as sa

from domain.imports.mapping import template_dict
from domain.imports.models import ImportJob, ImportRow
from domain.kernel import jobs
from domain.kernel.settings import get_settings
from domain.registry.models import Cartella, Person
from domain.security.models import Role
from tests.factories.registry import encode_cf
from tests.support import bearer, make_user

PROBLEM = "application/problem+json"
HEADERS = list(template_dict()["columns"].values())


def _csv(rows: list[dict], *, encoding="cp1252", sep=";") -> bytes:
    out = io.StringIO(newline="")
    w = csv.writer(out, delimiter=sep)
    w.writerow(HEADERS)
    for r in rows:
        w.writerow([r.get(h, "") for h in HEADERS])
    return out.getvalue().encode(encoding)


ROWS = [
    {"id_origine": "H1", "codice_fiscale": encode_cf("Zanolli", "Niccolò", "M", date(1939, 9, 9), "Crema"),
     "cognome": "Zanolli", "nome": "Niccolò", "sesso": "M", "data_nascita": "09/09/1939", "comune_residenza": "Crema",
     "area": "anziani"},
    {"id_origine": "H2", "cognome": "Rovescalli", "nome": "Maria", "tipo_identificativo": "provvisorio",
     "sesso": "F", "data_nascita": "1950-02-03", "comune_residenza": "019035"},  # ISO date, ISTAT code
    {"id_origine": "H3", "codice_fiscale": "RSSMRA50A01D142Z", "cognome": "Rossi", "nome": "Mario"},  # bad check
]


async def _steward(session):
    return await make_user(session, Role.data_steward, "ambito-crema")


async def _count(session, model) -> int:
    return (await session.execute(sa.select(sa.func.count()).select_from(model))).scalar()


async def _upload(client, user, data: bytes, name="export.csv", mapping: bytes | None = None, **form):
    files = {"file": (name, data, "text/csv")}
    if mapping is not None:
        files["mapping"] = ("mappatura.yaml", mapping, "application/yaml")
    return await client.post("/api/imports", headers=bearer(user), files=files, data=form)


async def test_dry_run_report_then_confirm(client, session):
    user = await _steward(session)
    persons_before = await _count(session, Person)
    r = await _upload(client, user, _csv(ROWS))
    assert r.status_code == 202, r.text
    dry = r.json()
    assert (dry["dry_run"], dry["state"], dry["total_rows"], dry["file_format"]) == (True, "pending", 3, "csv")
    await jobs.run_ready_in_session(session)
    r = await client.get(f"/api/imports/{dry['id']}", headers=bearer(user))
    assert r.status_code == 200
    body = r.json()
    assert (body["state"], body["rows_done"]) == ("done", 3)
    assert body["counts"] == {"create": 2, "reject": 1} and body["rows_per_second"] > 0
    assert await _count(session, Person) == persons_before  # the dry run wrote nothing but its report

    r = await client.get(f"/api/imports/{dry['id']}/report", headers=bearer(user))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))
    assert [(x["riga"], x["esito"], x["campo"]) for x in lines] == [
        ("1", "create", ""), ("2", "create", ""), ("3", "reject", "codice_fiscale")]
    r = await client.get(f"/api/imports/{dry['id']}/report?format=xlsx", headers=bearer(user))
    ws = openpyxl.load_workbook(io.BytesIO(r.content)).active
    assert [c.value for c in ws[4]][:3] == [3, "H3", "reject"]

    r = await client.post(f"/api/imports/{dry['id']}/confirm", headers=bearer(user))
    assert r.status_code == 202, r.text
    real = r.json()
    assert (real["dry_run"], real["dry_run_of"]) == (False, dry["id"])
    await jobs.run_ready_in_session(session)
    assert (await session.get(ImportJob, real["id"])).counts == {"create": 2, "reject": 1}
    zanolli = (await session.execute(sa.select(Person).where(Person.surname == "Zanolli"))).scalar_one()
    assert (zanolli.given_name, zanolli.source) == ("Niccolò", "import")  # Windows-1252 read as such
    c = (await session.execute(sa.select(Cartella).where(Cartella.person_id == zanolli.id))).scalar_one()
    assert c.area == "anziani"
    r = await client.post(f"/api/imports/{dry['id']}/confirm", headers=bearer(user))
    assert r.status_code == 409 and r.json()["existing_id"] == real["id"]

    r = await client.get("/api/imports?limit=1", headers=bearer(user))
    assert r.status_code == 200 and [x["id"] for x in r.json()["items"]] == [real["id"]]
    nxt = r.json()["next_cursor"]
    r = await client.get(f"/api/imports?limit=1&cursor={nxt}", headers=bearer(user))
    assert [x["id"] for x in r.json()["items"]] == [dry["id"]]


async def test_xlsx_and_a_mapping_for_another_layout(client, session):
    user = await _steward(session)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["CODICE", "COGNOME", "NOME", "SESSO", "NATO_IL", "TIPO_DOC"])
    ws.append(["X-9", "Ferrandi", "Lucia", "Femmina", date(1948, 4, 1), "provvisorio"])
    buf = io.BytesIO()
    wb.save(buf)
    mapping = b"""source_system: gecas
columns: {source_key: CODICE, surname: COGNOME, given_name: NOME, sex: SESSO, birth_date: NATO_IL,
          other_identifier_type: TIPO_DOC}
"""
    r = await _upload(client, user, buf.getvalue(), name="gecas.xlsx", mapping=mapping)
    assert r.status_code == 202, r.text
    assert (r.json()["file_format"], r.json()["source_system"]) == ("xlsx", "gecas")
    await jobs.run_ready_in_session(session)
    row = (await session.execute(sa.select(ImportRow).where(ImportRow.job_id == r.json()["id"]))).scalar_one()
    # no residence and no owning comune: the field that would have settled it (this layout has no such column)
    assert row.outcome == "reject" and row.errors[0]["field"] == "owning_comune"


async def test_bad_files_are_refused_and_nothing_is_written(client, session, monkeypatch):
    user = await _steward(session)
    before = await _count(session, ImportJob)
    cases = [
        (b"%PDF-1.7\n\x00\x01\x02binary", None, "file"),  # not CSV or XLSX
        (b"", None, "file"),  # empty
        (";".join(HEADERS).encode(), None, "file"),  # a header and no rows
        (b"PK\x03\x04not really a workbook", None, "file"),
        (_csv(ROWS), b"columns: {source_key: id_origine, surname: cognome, given_name: nome, sex: SEX}\n",
         "columns.sex"),  # the mapping names a column the file does not have
        (_csv(ROWS), b"columns: {source_key: id_origine, surname: cognome, given_name: nome, shoe_size: nome2}\n",
         "columns.shoe_size"),
        (_csv(ROWS), b"format: {encoding: latin-9}\n", "format.encoding"),
    ]
    for data, mapping, field in cases:
        r = await _upload(client, user, data, mapping=mapping)
        assert r.status_code == 422, (field, r.text)
        assert r.headers["content-type"] == PROBLEM
        assert r.json()["errors"][0]["field"] == field
    monkeypatch.setattr(get_settings(), "import_max_bytes", 1024)
    r = await _upload(client, user, _csv(ROWS * 50))
    assert r.status_code == 413 and r.headers["content-type"] == PROBLEM
    assert await _count(session, ImportJob) == before


async def test_template_download(client, session):
    user = await _steward(session)
    r = await client.get("/api/imports/template?format=xlsx", headers=bearer(user))
    assert r.status_code == 200
    ws = openpyxl.load_workbook(io.BytesIO(r.content)).active
    header = [c.value for c in ws[1]]
    assert header[:5] == ["id_origine", "codice_fiscale", "tipo_identificativo", "identificativo", "cognome"]
    r = await client.get("/api/imports/template", headers=bearer(user))
    lines = r.content.decode("utf-8-sig").splitlines()
    assert lines[0].split(";") == header and "Bianchi" in lines[1]


async def test_the_reference_layout_needs_only_its_required_columns(client, session):
    user = await _steward(session)
    few = "id_origine;cognome;nome;tipo_identificativo;data_nascita;comune_residenza\n" \
          "P-1;Quaglieri;Ines;provvisorio;02/03/1951;Pandino\n"
    r = await _upload(client, user, few.encode())
    assert r.status_code == 202, r.text
    await jobs.run_ready_in_session(session)
    job = await session.get(ImportJob, r.json()["id"])
    assert job.counts == {"create": 1}
    assert set(job.mapping["columns"].values()) == set(few.splitlines()[0].split(";"))
    r = await _upload(client, user, b"id_origine;nome\nP-2;Ines\n")  # no surname: the required column is named
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "columns.surname"
