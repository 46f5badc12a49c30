"""The kernel kit every context uses: validity periods, the state-machine helper, the sealed keyset cursor, the
Italian calendar and ages."""
from __future__ import annotations

import base64
import uuid
from datetime import date, datetime, time
from enum import StrEnum

import pytest

from domain.kernel import calendar, cursor, validity
from domain.kernel.errors import Conflict
from domain.kernel.states import StateMachine

pytestmark = pytest.mark.unit


class TestValidity:
    def test_periods_are_half_open(self):
        assert validity.active_on(date(2026, 1, 1), date(2026, 2, 1), date(2026, 1, 1))
        assert validity.active_on(date(2026, 1, 1), date(2026, 2, 1), date(2026, 1, 31))
        assert not validity.active_on(date(2026, 1, 1), date(2026, 2, 1), date(2026, 2, 1))  # the end day is out
        assert not validity.active_on(date(2026, 1, 2), None, date(2026, 1, 1))
        assert validity.active_on(None, None, date(1900, 1, 1))

    def test_overlaps_follows_the_same_convention(self):
        jan = (date(2026, 1, 1), date(2026, 2, 1))
        assert not validity.overlaps(*jan, date(2026, 2, 1), None)  # February starts where January ends
        assert validity.overlaps(*jan, date(2026, 1, 31), date(2026, 3, 1))
        assert not validity.overlaps(*jan, date(2026, 1, 15), date(2026, 1, 15))  # an empty period
        assert validity.overlaps(None, None, *jan)

    def test_the_sql_twin_agrees(self):
        from domain.registry.models import CartellaAssignment

        sql = str(validity.active_sql(CartellaAssignment, datetime(2026, 1, 1)).compile(
            compile_kwargs={"literal_binds": True}))
        assert "valid_to IS NULL OR cartella_assignment.valid_to >" in sql
        assert "cartella_assignment.valid_from <=" in sql


class Light(StrEnum):
    red = "red"
    green = "green"
    off = "off"


MACHINE = StateMachine(
    "il semaforo", {"red": "rosso", "green": "verde", "off": "spento"}, {"go": "partire", "stop": "fermarsi",
                                                                     "switch_off": "spegnere", "reset": "ripristinare"},
    {("red", "go"): "green", ("green", "stop"): "red", ("red", "switch_off"): "off", ("green", "switch_off"): "off",
     ("off", "reset"): "red"},
    internal=frozenset({"reset"}), hints={("green", "go"): "è già verde"}, state_type=Light)


class TestStateMachine:
    def test_a_legal_move_returns_the_next_state(self):
        assert MACHINE.next_state(Light.red, "go") is Light.green

    def test_an_illegal_move_is_one_409_body(self):
        with pytest.raises(Conflict) as e:
            MACHINE.next_state("red", "stop")
        assert e.value.status == 409
        assert e.value.extra == {"state": "red", "action": "stop", "allowed_actions": ["go", "switch_off"]}
        assert "fermarsi" in e.value.detail and "rosso" in e.value.detail

    def test_internal_actions_are_not_offered_and_hints_name_the_missing_step(self):
        assert MACHINE.allowed_actions("off") == []
        with pytest.raises(Conflict) as e:
            MACHINE.next_state("green", "go")
        assert "è già verde" in e.value.detail
        with pytest.raises(Conflict) as e:
            MACHINE.next_state("off", "go")
        assert "stato finale" in e.value.detail and e.value.extra["allowed_actions"] == []

    def test_a_guard_raises_the_same_body(self):
        MACHINE.require("red", {"red", "green"}, "edit")
        with pytest.raises(Conflict) as e:
            MACHINE.require("off", {"red", "green"}, "edit", "si modifica solo acceso")
        assert e.value.extra == {"state": "off", "action": "edit", "allowed_actions": []}


class TestCursor:
    def test_round_trip_and_nothing_readable(self):
        token = cursor.encode("persons.search", {"sn": "BONIZZI", "gn": "TERESA", "id": str(uuid.uuid4())})
        assert cursor.decode("persons.search", token)["sn"] == "BONIZZI"
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        assert b"BONIZZI" not in raw and b"TERESA" not in raw

    @pytest.mark.parametrize("mangle", [
        lambda t: t[:-2] + ("A" if t[-2] != "A" else "B") + t[-1],  # one character changed
        lambda t: t[:20],  # truncated
        lambda t: "not-a-cursor",
        lambda t: "",
    ])
    def test_a_tampered_cursor_is_400(self, mangle):
        token = cursor.encode("pua.requests", ["2026-03-02T09:00:00+01:00", str(uuid.uuid4())])
        with pytest.raises(cursor.BadCursor) as e:
            cursor.decode("pua.requests", mangle(token))
        assert e.value.status == 400 and e.value.errors[0]["field"] == "cursor"

    def test_a_cursor_of_another_list_is_refused(self):
        token = cursor.encode("pua.requests", [1, 2])
        with pytest.raises(cursor.BadCursor):
            cursor.decode("work_items.queue", token)


class TestCalendar:
    def test_holidays_and_easter(self):
        assert calendar.easter(2026) == date(2026, 4, 5)
        assert date(2026, 4, 6) in calendar.italian_holidays(2026)  # Pasquetta
        assert not calendar.is_working_day(date(2026, 6, 2)) and calendar.is_working_day(date(2026, 6, 3))

    def test_working_days_skip_weekends_and_holidays(self):
        thursday = datetime.fromisoformat("2026-04-02T10:00:00+02:00")
        assert calendar.add_working_days(thursday, 2) == datetime.fromisoformat("2026-04-07T10:00:00+02:00")

    def test_working_hours_count_only_the_open_window_of_working_days(self):
        nine_to_six = {"day_start": time(9), "day_end": time(18)}
        thursday = datetime.fromisoformat("2026-04-02T16:00:00+02:00")  # Easter Monday 6 April is a holiday
        assert calendar.add_working_hours(thursday, 2, **nine_to_six) == thursday.replace(hour=18)
        assert calendar.add_working_hours(thursday, 12, **nine_to_six) == datetime.fromisoformat(
            "2026-04-07T10:00:00+02:00")
        night = datetime.fromisoformat("2026-04-07T22:30:00+02:00")  # outside the window: from the next opening
        assert calendar.add_working_hours(night, 1.5, **nine_to_six) == datetime.fromisoformat(
            "2026-04-08T10:30:00+02:00")
        with pytest.raises(ValueError):
            calendar.add_working_hours(night, 1, day_start=time(18), day_end=time(9))

    def test_age_on_a_date(self):
        assert calendar.age_on(date(1944, 3, 2), date(2026, 3, 2)) == 82
        assert calendar.age_on(date(1944, 3, 3), date(2026, 3, 2)) == 81
        assert calendar.age_on(None, date(2026, 3, 2)) is None
        assert calendar.age_on(date(2008, 2, 29), date(2026, 2, 28)) == 17


def test_default_factories_keep_their_meaning_once_their_signature_is_remembered():
    from pydantic import BaseModel, Field
    from pydantic._internal import _fields

    import domain.kernel.columns  # noqa: F401  (installs the memo)

    class Row(BaseModel):
        a: int = 1
        doubled: int = Field(default_factory=lambda data: data["a"] * 2)  # a factory of the validated data
        items: list[int] = Field(default_factory=list)

    first, second = Row(a=4), Row()
    assert (first.doubled, second.doubled) == (8, 2)
    assert first.items == [] and first.items is not second.items  # each row its own list
    assert Row.model_fields["items"].get_default(call_default_factory=True) == []

    class Unhashable:
        __hash__ = None

        def __call__(self, data):
            return data

    assert _fields.takes_validated_data_argument(Unhashable()) is True  # asked directly, as before
    assert _fields.takes_validated_data_argument(list) is False
    assert _fields.takes_validated_data_argument.__wrapped__ is not _fields.takes_validated_data_argument
