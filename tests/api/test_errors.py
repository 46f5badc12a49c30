"""Errors a person can act on: problem+json in Italian with how to fix the input, one problem type per kind of
failure, every field error of a request in one answer, actions that need no input accept an empty body."""
from __future__ import annotations

import re
import uuid

import pytest
from pydantic_core._pydantic_core import list_all_errors

from api.errors import reason_for
from domain.security.models import Role
from schemas.problem import Problem
from tests.factories.registry import insert_person
from tests.support import bearer, make_user

PROBLEM = "application/problem+json"
ENGLISH = re.compile(r"\b(Input|should|valid|Field required|Value error|Method Not Allowed|Not Found|"
                     r"dictionary|timezone|Extra inputs|JSON decode error)\b")


async def _operator(session) -> dict[str, str]:
    user = await make_user(session, "asst_pua_operator", "asst-crema-pua")
    await session.commit()  # an error answer rolls back the request's savepoint: the user must survive it
    return bearer(user)


def _problem(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers["content-type"]
    body = r.json()
    Problem.model_validate(body)  # the schema the OpenAPI document declares
    assert not ENGLISH.search(r.text), r.text
    return body


def _reasons(body: dict) -> dict[str, str]:
    return {e["field"]: e["reason"] for e in body.get("errors", [])}


class TestValidationMessages:
    async def test_datetime_without_timezone_says_which_format(self, client, session):
        h = await _operator(session)
        r = await client.post(f"/api/vmd/{uuid.uuid4()}/schedule", json={"scheduled_for": "2026-03-10T10:30:00"},
                              headers=h)
        body = _problem(r, 422)
        reason = _reasons(body)["scheduled_for"]
        assert "fuso orario" in reason and "AAAA-MM-GG" in reason and "+01:00" in reason

    async def test_missing_content_type_is_named(self, client, session):
        h = await _operator(session)
        r = await client.post("/api/persons", content=b'{"surname": "Bianchi", "given_name": "Anna"}', headers=h)
        body = _problem(r, 422)
        assert _reasons(body)["body"] == ("il corpo non è stato letto come JSON: manca l'intestazione "
                                          "Content-Type: application/json")

    async def test_invalid_json_is_reported_on_the_body_with_its_position(self, client, session):
        h = await _operator(session)
        raw = b'{"surname": "Bianchi",, "given_name": "Anna"}'
        r = await client.post("/api/persons", content=raw, headers={**h, "content-type": "application/json"})
        body = _problem(r, 422)
        assert [e["field"] for e in body["errors"]] == ["body"]
        reason = body["errors"][0]["reason"]
        assert reason.startswith(f"corpo JSON non valido alla posizione {raw.index(b',,') + 1}"), reason
        assert "JSON non valido" in body["detail"]

    async def test_bytes_that_are_not_text_are_an_invalid_json_body_not_a_400(self, client, session):
        h = await _operator(session)
        r = await client.post("/api/persons", content=b'{"surname": "\xff\xfe"}',
                              headers={**h, "content-type": "application/json"})
        body = _problem(r, 422)
        assert body["type"].endswith("/invalid")
        assert _reasons(body) == {"body": "corpo JSON non valido: il testo non è codificato in UTF-8"}

    async def test_every_field_error_of_a_body_comes_in_one_answer(self, client, session):
        h = await _operator(session)
        r = await client.post(f"/api/vmd/{uuid.uuid4()}/meetings", headers=h, json={
            "held_at": "ieri", "participants": [], "minutes": "", "decision": 12, "unexpected": True})
        reasons = _reasons(_problem(r, 422))
        assert reasons == {
            "held_at": "data e ora non valide (troppo corto): usare il formato AAAA-MM-GGThh:mm:ss con fuso orario "
                       "(es. 2026-03-02T09:30:00+01:00, o Z per UTC)",
            "participants": "troppo pochi elementi: almeno 1 elemento",
            "minutes": "non può essere vuoto",
            "decision": "atteso un testo (stringa JSON tra virgolette)",
            "unexpected": "campo non previsto",
        }

    async def test_date_that_does_not_exist_and_bad_enum(self, client, session):
        h = await _operator(session)
        r = await client.post("/api/persons", headers=h, json={
            "surname": "Bianchi", "given_name": "Anna", "sex": "X", "birth_date": "1942-02-30",
            "birth_place_code": "12", "contacts": {"email": "anna"}})
        reasons = _reasons(_problem(r, 422))
        assert reasons["sex"] == "valore non ammesso: usare 'M' o 'F'"
        assert reasons["birth_date"].startswith("data non valida (giorno inesistente in quel mese)")
        assert reasons["birth_place_code"].startswith("codice catastale (Belfiore) non valido")
        assert reasons["contacts.email"] == "indirizzo di posta non valido"  # our validator, without "Value error"

    async def test_query_parameters_are_explained(self, client, session):
        h = await _operator(session)
        r = await client.get("/api/pua/requests", params={"limit": 0, "registered_from": "02/03/2026",
                                                          "person_id": "abc"}, headers=h)
        reasons = _reasons(_problem(r, 422))
        assert reasons["limit"] == "deve essere almeno 1"
        assert reasons["registered_from"].endswith("usare il formato AAAA-MM-GG (es. 2026-03-02)")
        assert reasons["person_id"].startswith("identificativo non valido: atteso un UUID")

    def test_every_pydantic_error_type_has_an_italian_reason(self):
        leaks = []
        for info in list_all_errors():
            error = {"type": info["type"], "loc": ("body", "x"), "msg": info["example_message_python"],
                     "ctx": info.get("example_context") or {}, "input": "x"}
            reason = reason_for(error)
            if info["type"] not in ("value_error", "assertion_error") and (not reason or ENGLISH.search(reason)):
                leaks.append((info["type"], reason))
        assert leaks == []


class TestOneTypePerTitle:
    async def test_schema_and_domain_validation_are_the_same_problem_type(self, client, session):
        h = await _operator(session)
        schema = _problem(await client.post("/api/persons", json={"given_name": "Anna"}, headers=h), 422)
        domain = _problem(await client.post("/api/persons", headers=h, json={
            "surname": "Bianchi", "given_name": "Anna", "codice_fiscale": "BNCNNA42C55D142X"}), 422)
        assert schema["type"] == domain["type"] and schema["type"].endswith("/invalid")
        assert schema["title"] == domain["title"] == "Dati non validi"
        assert "codice_fiscale" in _reasons(domain) and _reasons(schema)["surname"] == "campo obbligatorio"

    async def test_unknown_route_is_the_domain_not_found(self, client, session):
        h = await _operator(session)
        route = _problem(await client.get("/api/nessuna-risorsa", headers=h), 404)
        row = _problem(await client.get(f"/api/persons/{uuid.uuid4()}", headers=h), 404)
        assert route["type"] == row["type"] and route["title"] == row["title"] == "Risorsa non trovata"
        assert route["detail"].startswith("Nessuna risorsa a questo indirizzo")


class TestHttpErrors:
    async def test_method_not_allowed_in_italian_with_the_allowed_methods(self, client):
        r = await client.delete("/api/persons")
        body = _problem(r, 405)
        assert body["title"] == "Metodo non consentito"
        allowed = r.headers["allow"]
        assert body["detail"] == f"Metodo DELETE non consentito su questo indirizzo: metodi ammessi {allowed}."
        assert "POST" in {m.strip() for m in r.headers["allow"].split(",")}


class TestEmptyBodies:
    """Actions that need no input accept no body at all (and `{}`): the domain answers, not a 422."""

    @pytest.mark.parametrize("path", ["/api/pua/requests/{id}/refer-vmd", "/api/pua/requests/{id}/refer-cot",
                                      "/api/cartelle/{id}/transfer", "/api/vmd/{id}/reassessment",
                                      "/api/pua/requests/{id}/reception", "/api/care-plans/{id}/activate",
                                      "/api/care-plans/{id}/resume", "/api/care-plans/{id}/propose"])
    async def test_no_body_reaches_the_domain(self, client, session, path):
        if path.startswith("/api/cartelle/"):
            user = await make_user(session, "comune_social_worker", "comune-crema")  # cartella.write
            await session.commit()
            h = bearer(user)
        else:
            h = await _operator(session)
        url = path.format(id=uuid.uuid4())
        for kwargs in ({}, {"json": {}}):
            body = _problem(await client.post(url, headers=h, **kwargs), 404)  # the row does not exist
            assert body["type"].endswith("/not_found"), (url, kwargs, body)

    async def test_a_body_that_is_given_is_still_validated(self, client, session):
        h = await _operator(session)
        r = await client.post(f"/api/pua/requests/{uuid.uuid4()}/refer-vmd", json={"area": "nessuna"}, headers=h)
        assert "area" in _reasons(_problem(r, 422))


async def test_values_the_database_cannot_take_are_a_problem_422_not_a_500(client, session):
    """Found by the fuzzer: PostgreSQL refuses text with a NUL character and asyncpg an integer out of the
    column's range; that is bad input (422 problem+json), not a 500."""
    # Kept out of test_schemathesis.py: while its module fixture lives, the process engine belongs to the fuzzer's
    # event loop in another thread, and the audit row of a refused request must not be written through it.
    h = bearer(await make_user(session, Role.comune_social_worker, "comune-offanengo"))
    person = await insert_person(session, comune="comune-offanengo")  # no cartella yet: its registrars see it
    for url, kind in (("/api/work-items/mine?kind=a%00b", "invalid-character"),
                      ("/api/persons?q=Ros%00si", "invalid-character"),
                      (f"/api/persons/{person.id}/history?cursor=2665188801145991", "out-of-range")):
        r = await client.get(url, headers=h)
        assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM), (url, r.status_code, r.text)
        assert r.json()["type"].endswith("/" + kind), r.json()
