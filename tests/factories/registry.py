"""Factories for persons and related persons.

    PersonFactory.build(ambito_id=...)          # a Person row: Faker it_IT names, a valid codice fiscale
                                                 # consistent with name, sex, birth date and an Italian birthplace
    payload = person_payload(sex="F")            # a PersonCreate-shaped dict (for the service or the API)
    p = await insert_person(session, comune="comune-crema")     # bypasses the service (no history, no dedup)
    rel = relation_payload("ads", decree_reference="R.G. 123/2025")

Use the service (domain.registry.persons) when the behaviour is under test.

The data is random but reproducible: tests/conftest.py seeds factory_boy's random (`factory.random.randgen`, used
here through `_random()`) and Faker from each test's node id, so a failing test draws the same persons again.
Draw randomness only through `_random()` and `_fake`, never the `random` module, so the seed covers it.
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import factory
import factory.random
from codicefiscale import codicefiscale as cflib
from faker import Faker
from sqlalchemy.ext.asyncio import AsyncSession

from domain.kernel import clock
from domain.registry.models import Person
from tests.support import org

# Italian birthplaces (comuni of the Ambito and around, big cities): name as python-codicefiscale knows it.
BIRTHPLACES = ["Crema", "Cremona", "Offanengo", "Pandino", "Castelleone", "Soncino", "Rivolta d'Adda", "Lodi",
               "Milano", "Bergamo", "Brescia", "Treviglio", "Piacenza", "Napoli", "Palermo", "Bari"]

_fake = Faker("it_IT")


def _random() -> Any:
    return factory.random.randgen


# Adults by default: a test that needs a minor (consent by a parent, the minori area...) says so with birth_date.
ADULT_AGES = (18, 99)


def _birth_date(min_age: int = 0, max_age: int = 100) -> date:
    today = clock.today_rome()
    days = _random().randint(min_age * 365 + 1, max_age * 365)
    return today - timedelta(days=days)


def _given_name(sex: str) -> str:
    return _fake.first_name_male() if sex == "M" else _fake.first_name_female()


def encode_cf(surname: str, given_name: str, sex: str, birth_date: date, birth_place: str) -> str:
    return cflib.encode(lastname=surname, firstname=given_name, gender=sex, birthdate=birth_date.isoformat(),
                        birthplace=birth_place)


def belfiore(birth_place: str, birth_date: date | None = None) -> str:
    return cflib.encode_birthplace(birth_place, birth_date.isoformat() if birth_date else None)


class PersonFactory(factory.Factory):
    class Meta:
        model = Person

    class Params:
        birth_place = factory.LazyFunction(lambda: _random().choice(BIRTHPLACES))

    sex = factory.LazyFunction(lambda: _random().choice(["M", "F"]))
    surname = factory.LazyFunction(_fake.last_name)
    given_name = factory.LazyAttribute(lambda o: _given_name(o.sex))
    birth_date = factory.LazyFunction(lambda: _birth_date(*ADULT_AGES))
    birth_place_name = factory.LazyAttribute(lambda o: o.birth_place)
    birth_place_code = factory.LazyAttribute(lambda o: belfiore(o.birth_place, o.birth_date))
    codice_fiscale = factory.LazyAttribute(
        lambda o: encode_cf(o.surname, o.given_name, o.sex, o.birth_date, o.birth_place))
    contacts = factory.LazyFunction(dict)
    source = "test"
    version = 1


def person_payload(*, with_cf: bool = True, birth_place: str | None = None, **overrides: Any) -> dict[str, Any]:
    """A PersonCreate-shaped dict (JSON-safe) with a codice fiscale consistent with the other fields."""
    sex = overrides.get("sex") or _random().choice(["M", "F"])
    surname = overrides.get("surname") or _fake.last_name()
    given_name = overrides.get("given_name") or _given_name(sex)
    born = overrides.get("birth_date") or _birth_date(*ADULT_AGES)
    if isinstance(born, str):
        born = date.fromisoformat(born)
    place = birth_place or _random().choice(BIRTHPLACES)
    body: dict[str, Any] = {"surname": surname, "given_name": given_name, "sex": sex,
                            "birth_date": born.isoformat(), "birth_place_code": belfiore(place, born)}
    if with_cf:
        body["codice_fiscale"] = encode_cf(surname, given_name, sex, born, place)
    body.update({k: (v.isoformat() if isinstance(v, date) else v) for k, v in overrides.items()
                 if k not in ("sex", "surname", "given_name", "birth_date")})
    return body


async def insert_person(session: AsyncSession, *, ambito: str = "ambito-crema", comune: str | None = "comune-crema",
                        **kw: Any) -> Person:
    """A person row written directly (no history, no de-duplication)."""
    amb = await org(session, ambito)
    if comune and "residence_comune_id" not in kw:
        kw["residence_comune_id"] = (await org(session, comune)).id
    p = PersonFactory.build(ambito_id=amb.id, **kw)
    session.add(p)
    await session.flush()
    return p


def relation_payload(kind: str = "caregiver", *, registered: Person | None = None, **overrides: Any) -> dict[str, Any]:
    """A RelationCreate-shaped dict: a registered related person, or a name with contacts."""
    body: dict[str, Any] = {"kind": kind}
    if registered is not None:
        body["related_person_id"] = str(registered.id)
    else:
        body.update(surname=_fake.last_name(), given_name=_fake.first_name(),
                    contacts={"mobile": "+39 333 1234567"})
    if kind in ("ads", "tutore"):
        body["decree_reference"] = "R.G. V.G. 1234/2025"
        body["court"] = "Tribunale di Cremona"
    if kind == "ads":
        body["decree_scope"] = ["care_health"]
    body.update({k: (v.isoformat() if isinstance(v, date) else v) for k, v in overrides.items()})
    return body
