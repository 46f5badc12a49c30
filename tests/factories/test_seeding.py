"""Factory data is reproducible: every test starts from a seed derived from its node id (tests/conftest.py,
`_seeded_test`), so the same factory calls in the same test give the same persons on every run."""
from __future__ import annotations

import uuid

from tests.conftest import reseed_factories, seed_of
from tests.factories.registry import PersonFactory, person_payload, relation_payload

AMBITO = uuid.UUID("00000000-0000-0000-0000-000000000001")


def _draw() -> list:
    """A few factory calls, as a test would make them (Faker names, random sex, birth date and birthplace)."""
    people = [PersonFactory.build(ambito_id=AMBITO) for _ in range(3)]
    return [[(p.surname, p.given_name, p.sex, p.birth_date, p.birth_place_name, p.codice_fiscale) for p in people],
            person_payload(), relation_payload()]


def test_the_same_test_id_gives_the_same_data(request):
    first = _draw()  # drawn after the autouse fixture seeded this test
    # A second run of this test: the same seed (the fixture's, from the same node id), the same calls.
    assert reseed_factories(request.node.nodeid) == dict(request.node.user_properties)["factory_seed"]
    assert _draw() == first
    # Another test id draws other data (the seed is not a constant).
    reseed_factories(request.node.nodeid + "[another]")
    assert _draw() != first


def test_the_seed_is_stable_across_processes():
    # Not Python's salted hash(): the same node id has the same seed in every run.
    assert seed_of("tests/factories/test_seeding.py::x") == seed_of("tests/factories/test_seeding.py::x")
    assert seed_of("tests/factories/test_seeding.py::x") == 992605131
