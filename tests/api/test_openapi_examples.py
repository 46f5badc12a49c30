"""Every request-body example of the OpenAPI document is posted to the live app and succeeds (issue 15).

The examples name rows by id (a person, a cartella, a team...) that exist only in the documentation: the test takes
the example's own fields and lends it the ids, versions and codes of the permission-matrix scenario (the same body
the matrix sends for that route), then posts it as the first role the expected matrix allows on its own case. The
few examples that cannot succeed are listed with the reason in NOT_2XX, which a passing example makes stale.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import pytest

from tests.api import permission_matrix as M  # noqa: N812  (the matrix is the subject of every line here)
from tests.api.matrix_scenario import body_for, param
from tests.api.test_permission_matrix import matrix  # noqa: F401  (the module fixture: scenario and client)

# Fields the scenario must supply: they name rows or states that exist only there.
_LENT = re.compile(r"(_id|_ids|^version|^code|^username|^consent_id)$")


@lru_cache
def examples() -> list[tuple[str, str, str, dict[str, Any]]]:
    from api.main import create_app

    out = []
    for path, ops in create_app().openapi()["paths"].items():
        for method, op in ops.items():
            media = ((op.get("requestBody") or {}).get("content") or {}).get("application/json")
            # /api/dev moves the business clock of the whole process: its examples are run by its own tests
            if not media or not path.startswith("/api/") or path.startswith("/api/dev/"):
                continue
            for name, ex in (media.get("examples") or {}).items():
                out.append((method.upper(), path, name, ex["value"]))
    return out


# Where the first allowed role is not the one the example is written for.
ROLE_FOR = {("POST", "/api/vmd/{vmd_id}/responses"): "asst_pua_operator"}  # Barthel: an ASST-side instrument


def _role(method: str, path: str) -> str | None:
    if (method, path) in ROLE_FOR:
        return ROLE_FOR[(method, path)]
    row = M.EXPECTED.get((method, path), {})
    return next((r for r in M.ROLES if row.get(r, ("",))[0] == M.ALLOW), None)


def _lend(example: Any, scenario_body: Any) -> Any:
    """The example with the scenario's ids, versions and codes in place of its own: an example names the ids it
    needs (with placeholder values), the scenario says which rows they are; one the scenario lacks is dropped."""
    if not isinstance(example, dict) or not isinstance(scenario_body, dict):
        return example
    out = {k: v for k, v in example.items() if not _LENT.search(k) or k in scenario_body}
    for key in out:
        theirs = scenario_body.get(key)
        if _LENT.search(key):
            out[key] = theirs
        elif isinstance(out[key], dict):
            out[key] = _lend(out[key], theirs)
        elif isinstance(out[key], list) and isinstance(theirs, list) and theirs:
            # each item of the example takes the ids of the scenario's item at the same place (or its last one)
            out[key] = [_lend(item, theirs[min(i, len(theirs) - 1)]) for i, item in enumerate(out[key])]
    return out


# Examples that cannot answer 2xx as posted, and why (they must still pass the schema: never 422 on a field the
# example itself got wrong).
_TRIAGED_VMD = ("the scenario's request was triaged complex with a VMD suggested: another path needs an "
                "`override_reason`, which an example written for a request triaged that way does not carry")
NOT_2XX: dict[tuple[str, str, str], str] = {
    ("POST", "/api/persons/{person_id}/consents", "esempio_2"):
        "a consent given by an amministratore di sostegno needs the person's AdS relation: the scenario's person has "
        "none, so `grantor_relation_id` has nothing to point to",
    ("POST", "/api/admin/teams/{team_id}/members", "esempio_1"):
        "the example names the organisation the member represents; the scenario's user holds no role there",
    ("POST", "/api/persons/{person_id}/cartelle", "esempio_1"):
        "the scenario's person already has an open cartella in the example's area (one per area)",
    ("POST", "/api/cartelle/{cartella_id}/transfer", "esempio_1"):
        "the destination comune is a row of the example: the scenario's person did not move, so there is none",
    ("POST", "/api/cartelle/{cartella_id}/assignments", "esempio_1"):
        "the example assigns a team; the scenario lends an operator for this route, not a team",
    ("POST", "/api/person-matches/{match_id}/decision", "esempio_1"):
        "a merge names the person kept; the scenario decides its pair as not a duplicate and lends no kept person",
    ("POST", "/api/vmd/{vmd_id}/meetings", "esempio_1"):
        "the example's participants are operators named by id; the scenario's meeting names its participants by name "
        "only, so the example's operators have no row to point to",
    ("POST", "/api/pua/requests/{request_id}/orient", "esempio_1"): _TRIAGED_VMD,
    **{("POST", "/api/pua/requests/{request_id}/refer-cot", f"esempio_{n}"): _TRIAGED_VMD for n in (1, 2, 3)},
}


def test_every_body_has_an_example():
    from api.main import create_app

    missing = [(m.upper(), p) for p, ops in create_app().openapi()["paths"].items() for m, op in ops.items()
               if "application/json" in ((op.get("requestBody") or {}).get("content") or {})
               and not op["requestBody"]["content"]["application/json"].get("examples")]
    assert missing == []


@pytest.mark.parametrize(("method", "path", "name", "example"),
                         [pytest.param(*e, id=f"{e[0]} {e[1]} {e[2]}") for e in examples()])
async def test_the_example_succeeds(matrix, method, path, name, example):  # noqa: F811
    role = _role(method, path)
    assert role is not None, f"{method} {path}: no role may call it on its own case"
    sc = matrix.sc
    caller = sc.user(role, "own")
    url = re.sub(r"\{(\w+)\}", lambda m: param(sc, path, m.group(1), role, "own"), path)
    scenario_body = body_for(sc, method, path, role, "own", caller).get("json", {})
    body = _lend(example, scenario_body)
    r = await matrix.http.request(method, url, json=body, headers=sc.headers[caller])
    reason = NOT_2XX.get((method, path, name))
    if reason is None:
        assert 200 <= r.status_code < 300, f"{method} {path} {name} as {role}: {r.status_code} {r.text}\n{body}"
    else:  # past authorisation and the schema: refused by a rule the scenario's rows do not meet
        assert r.status_code in (409, 422), (reason, r.status_code, r.text)


def test_the_list_of_examples_that_cannot_succeed_is_short():
    assert len(NOT_2XX) <= 12 and set(NOT_2XX) <= {(m, p, n) for m, p, n, _ in examples()}
