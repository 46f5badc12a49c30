"""The OpenAPI document as an integrator reads it, and the documentation pages as an operator opens them offline:
bearer security on /api, every error an operation can answer declared with the one Problem schema, Italian tags,
descriptions and parameters, valid request examples (codice fiscale included), /docs and /redoc without a CDN."""
from __future__ import annotations

import json
import re
import typing
from datetime import date

import pytest
from fastapi.routing import iter_route_contexts
from httpx import ASGITransport, AsyncClient
from pydantic import BaseModel
from stdnum.it import codicefiscale as stdnum_cf

PROBLEM = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"
METHODS = ("get", "post", "put", "patch", "delete")
READ_ONLY_POSTS = {"/api/persons/duplicates-check", "/api/persons/search", "/api/instruments/{code}/score"}


@pytest.fixture(scope="module")
def app():
    from api.main import create_app

    return create_app()  # the document and the pages need no database


@pytest.fixture(scope="module")
def spec(app) -> dict:
    return app.openapi()


def api_operations(spec):
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method in METHODS and path.startswith("/api/"):
                yield method, path, op


ITALIAN_NAMES = {"ambito", "comune"}  # names whose default title is already the Italian word


def _default_title(name: str) -> str | None:
    """What FastAPI/pydantic would write ("Person Id"), unless that happens to be Italian."""
    return None if name in ITALIAN_NAMES else name.replace("_", " ").title()


class TestSecurity:
    def test_bearer_jwt_scheme_on_every_api_operation(self, spec):
        scheme = spec["components"]["securitySchemes"]["bearerAuth"]
        assert scheme == {**scheme, "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        missing = [(m, p) for m, p, op in api_operations(spec) if op.get("security") != [{"bearerAuth": []}]]
        assert missing == []
        assert "security" not in spec["paths"]["/health/live"]["get"]  # the probes need no token


class TestErrors:
    def test_problem_schema_is_what_the_server_sends(self, spec):
        schemas = spec["components"]["schemas"]
        problem = schemas["Problem"]
        assert {"type", "title", "status", "detail", "instance", "errors"} <= set(problem["properties"])
        assert set(problem["required"]) == {"type", "title", "status"}
        assert problem.get("additionalProperties") is True  # extension members: existing_id, state, missing...
        item = schemas[problem["properties"]["errors"]["anyOf"][0]["items"]["$ref"].rsplit("/", 1)[-1]]
        assert {"field", "reason", "in"} <= set(item["properties"]) and set(item["required"]) == {"field", "reason"}

    def test_every_operation_declares_its_error_statuses_as_problem_json(self, spec):
        wrong = []
        for method, path, op in api_operations(spec):
            params = op.get("parameters", [])
            expected = {"401", "403"}
            if "{" in path or "requestBody" in op:
                expected.add("404")  # ids in the path, or in the body (person_id, cartella_id...)
            if method != "get" and path not in READ_ONLY_POSTS:
                expected.add("409")
            if "requestBody" in op or params:
                expected.add("422")
            if "requestBody" in op:
                expected.add("413")  # the body limit of api/hardening.py
            if any(p["name"] == "cursor" and p["in"] == "query" for p in params):
                expected.add("400")
            responses = op["responses"]
            for status in sorted(expected):
                content = (responses.get(status) or {}).get("content", {})
                if content.get(PROBLEM, {}).get("schema", {}).get("$ref") != PROBLEM_REF or set(content) != {PROBLEM}:
                    wrong.append((method, path, status))
            for status, response in responses.items():  # no error answer in another shape
                if status[0] in "45" and set(response.get("content", {})) != {PROBLEM}:
                    wrong.append((method, path, status, "content"))
            if "401" in responses and "WWW-Authenticate" not in responses["401"].get("headers", {}):
                wrong.append((method, path, "401 without WWW-Authenticate"))
        assert wrong == []

    def test_no_fastapi_validation_error_schema_is_left(self, spec):
        text = json.dumps(spec)
        assert "HTTPValidationError" not in text and '"#/components/schemas/ValidationError"' not in text

    def test_a_real_422_validates_against_the_declared_problem(self, spec):
        from schemas.problem import Problem

        example = spec["paths"]["/api/persons"]["post"]["responses"]["422"]["content"][PROBLEM]["example"]
        assert Problem.model_validate(example).errors[0].field == "birth_date"


class TestItalianDocumentation:
    def test_every_tag_used_is_defined_with_an_italian_description(self, spec):
        defined = {t["name"]: t.get("description", "") for t in spec["tags"]}
        used = {tag for ops in spec["paths"].values() for op in ops.values() for tag in op.get("tags", [])}
        assert used - set(defined) == set()
        assert [n for n, d in defined.items() if len(d) < 20] == []
        assert {"pua", "vmd", "progetti individualizzati", "accessi e consenso"} <= used

    def test_the_tags_are_listed_once_in_api_openapi(self, spec):
        """The document's tags are api/openapi.py's TAGS; no other module of api/ keeps a list that it overrides."""
        import ast
        from pathlib import Path

        from api import openapi

        assert spec["tags"] == openapi.TAGS
        root = Path(__file__).resolve().parents[2] / "api"
        elsewhere = [f"{p.relative_to(root.parent)}:{n.lineno}" for p in sorted(root.rglob("*.py"))
                     if p.name != "openapi.py" for n in ast.walk(ast.parse(p.read_text()))
                     if isinstance(n, ast.keyword) and n.arg == "openapi_tags"]
        assert elsewhere == []

    def test_no_english_default_texts(self, spec):
        text = json.dumps(spec)
        assert "Successful Response" not in text and "Validation Error" not in text

    def test_every_operation_has_summary_and_description(self, app, spec):
        names = {(m.lower(), r.path_format): r.name for r in iter_route_contexts(app.routes)
                 if getattr(r, "dependant", None) is not None for m in r.methods or ()}
        lacking = [(m, p) for m, p, op in api_operations(spec)
                   if not op.get("description") or not op.get("summary")
                   or op["summary"] == _default_title(names[(m, p)])]  # FastAPI's "Get Comune"
        assert lacking == []

    def test_every_parameter_has_an_italian_title_and_description(self, spec):
        lacking = []
        for method, path, op in api_operations(spec):
            for p in op.get("parameters", []):
                title = p.get("schema", {}).get("title")
                if not p.get("description") or not title or title == _default_title(p["name"]):
                    lacking.append((method, path, p["name"], title))
        assert lacking == []
        person = next(p for p in spec["paths"]["/api/persons/{person_id}"]["get"]["parameters"]
                      if p["name"] == "person_id")
        assert person["schema"]["title"] == "Persona" and "persona" in person["description"]

    def test_body_properties_carry_no_english_default_titles(self, spec):
        titled = [(schema_name, prop_name) for schema_name, schema in spec["components"]["schemas"].items()
                  for prop_name, prop in (schema.get("properties") or {}).items()
                  if prop.get("title") and prop["title"] == _default_title(prop_name)]
        assert titled == []


def _body_models(app) -> dict[tuple[str, str], list[type[BaseModel]]]:
    found = {}
    for r in iter_route_contexts(app.routes):
        dependant = getattr(r, "dependant", None)
        if dependant is None or not r.path_format.startswith("/api/"):
            continue
        for param in dependant.body_params:
            ann = param.field_info.annotation
            models = [a for a in (typing.get_args(ann) or (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)]
            for m in r.methods:
                found[(m.lower(), r.path_format)] = models
    return found


class TestExamples:
    def test_every_json_request_body_has_examples_that_validate(self, app, spec):
        models = _body_models(app)
        problems = []
        for method, path, op in api_operations(spec):
            content = op.get("requestBody", {}).get("content", {})
            if "application/json" not in content:
                continue
            examples = content["application/json"].get("examples") or {}
            if not examples:
                problems.append((method, path, "no example"))
            for name, example in examples.items():
                for model in models[(method, path)]:
                    try:
                        model.model_validate(example["value"])
                    except Exception as e:  # noqa: BLE001
                        problems.append((method, path, name, str(e)))
        assert problems == []

    def test_multipart_fields_are_described(self, spec):
        body = spec["paths"]["/api/cartelle/{cartella_id}/attachments"]["post"]["requestBody"]
        ref = body["content"]["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[-1]
        props = spec["components"]["schemas"][ref]["properties"]
        assert [n for n, p in props.items() if not p.get("description")] == []

    def test_codice_fiscale_examples_are_valid_and_agree_with_the_person(self, spec):
        found = []

        def walk(node):
            if isinstance(node, dict):
                cf = node.get("codice_fiscale")
                if isinstance(cf, str):
                    found.append(node)
                for key, value in node.items():
                    if key == "codice_fiscale" and isinstance(value, dict):
                        found.extend({"codice_fiscale": v} for v in value.get("examples", []))
                    walk(value)
            elif isinstance(node, list):
                for item in node:
                    walk(item)

        walk(spec)
        assert len(found) >= 3  # PersonCreate, DuplicatesCheck, AccessRequestCreate.person, the field itself
        for example in found:
            code = example["codice_fiscale"]
            assert stdnum_cf.is_valid(code), code
            if "birth_date" in example:
                assert stdnum_cf.get_birth_date(code) == date.fromisoformat(example["birth_date"]), example
            if "sex" in example:
                assert stdnum_cf.get_gender(code) == example["sex"], example
            if "birth_place_code" in example:
                assert code[11:15] == example["birth_place_code"], example
        assert "RSSMRA85T10D142X" not in json.dumps(spec)


class TestOfflinePages:
    async def test_docs_pages_load_only_local_assets(self, app):
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://intranet") as http:
            for page in ("/docs", "/redoc"):
                r = await http.get(page)
                assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), page
                urls = re.findall(r'(?:src|href|spec-url)="([^"]*)"', r.text)
                assert urls and all(u.startswith("/") and not u.startswith("//") for u in urls), (page, urls)
                assert "http://" not in r.text and "https://" not in r.text, page
                for url in urls:
                    asset = await http.get(url)
                    assert asset.status_code == 200 and asset.content, url
            docs = (await http.get("/docs")).text
            assert re.findall(r"<script>", docs) == []  # no inline script: a strict CSP can forbid them
            bundle = await http.get("/docs/assets/swagger-ui-bundle.js")
            assert "SwaggerUIBundle" in bundle.text and bundle.headers["content-type"].startswith("text/javascript")
            init = (await http.get("/docs/swagger-init.js")).text
            spec_url = re.search(r'"url": "([^"]+)"', init).group(1)
            assert spec_url == "/openapi.json" and (await http.get(spec_url)).json()["info"]["title"]
