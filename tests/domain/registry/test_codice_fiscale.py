"""Codice fiscale: checksum, omocodia, Belfiore, the century rule and the cross-check with typed data.
The clock is fixed at 2026-03-02 (fixture `clock`, autouse)."""
from datetime import date

import pytest
from stdnum.it.codicefiscale import calc_check_digit

from domain.kernel.errors import Invalid
from domain.registry import codice_fiscale as cf


def with_check(body15: str) -> str:
    return body15 + calc_check_digit(body15)


MARIO = with_check("RSSMRA85T10D142")  # Mario Rossi, M, 1985-12-10, Crema (D142)
ANNA_1926 = "BNCNNA26T45D142B"   # F, 05/12/(19)26: 2026-12-05 would be in the future
ANNA_2010 = "BNCNNA10L45D142G"   # F, 05/07/(20)10: 1910 would be 116 years old
LUIGI_25 = "VRDLGU25D09G004E"    # M, 09/04/(19|20)25, Offanengo (G004)
SAID = "HMDSDA90A31Z330S"        # M, 1990-01-31, born in Morocco (Z330)
LUIGI_1915 = "VRDLGU15D09D142V"  # 1915-04-09: 110 years and 11 months old
LEAP_2000 = "VRDLGU00B29D142M"   # 29/02/2000 (1900 was not a leap year)


def errors_of(exc: pytest.ExceptionInfo) -> dict[str, str]:
    return {e["field"]: e["reason"] for e in exc.value.errors}


async def test_valid_code_is_decoded():
    d = cf.decode(MARIO)
    assert (d.code, d.sex, d.birth_date, d.birth_place_code) == (MARIO, "M", date(1985, 12, 10), "D142")
    assert d.birth_place_name == "Crema" and not d.foreign_birth and not d.omocode


async def test_spaces_and_lower_case_are_normalised():
    messy = f" {MARIO[:6].lower()} {MARIO[6:11]}-{MARIO[11:]} "
    assert cf.decode(messy).code == MARIO


async def test_wrong_check_letter_is_refused_in_italian():
    wrong = MARIO[:-1] + ("A" if MARIO[-1] != "A" else "B")
    with pytest.raises(Invalid) as e:
        cf.decode(wrong)
    assert e.value.field == "codice_fiscale" and "controllo" in e.value.reason


@pytest.mark.parametrize("bad, words", [("RSSMRA85T10D142", "16 caratteri"), ("RSSMRA85T10D142XX", "16 caratteri"),
                                         ("1SSMRA85T10D142X", "formato"), ("RSSMRA85Z10D142X", "formato")])
async def test_bad_shape_is_refused(bad, words):
    with pytest.raises(Invalid) as e:
        cf.decode(bad)
    assert e.value.field == "codice_fiscale" and words in e.value.reason


async def test_unknown_belfiore_code_is_refused():
    with pytest.raises(Invalid) as e:
        cf.decode(with_check("RSSMRA85T10Z999"))
    assert "Belfiore" in e.value.reason


async def test_impossible_day_is_refused():
    with pytest.raises(Invalid) as e:
        cf.decode(with_check("RSSMRA85T75D142"))  # day 75 - 40 = 35
    assert e.value.field == "codice_fiscale"


async def test_omocode_variant_decodes_to_the_same_person_data():
    variant = with_check(MARIO[:14] + "N")  # the last Belfiore digit 2 → N
    d = cf.decode(variant)
    assert d.omocode and d.birth_place_code == "D142" and d.birth_date == date(1985, 12, 10)
    assert cf.base_code(variant) == MARIO and cf.is_omocode(variant) and not cf.is_omocode(MARIO)


async def test_foreign_birth_is_recognised():
    d = cf.decode(SAID)
    assert d.foreign_birth and d.birth_place_code == "Z330" and d.birth_date == date(1990, 1, 31)


# ---------------------------------------------------------------- the century is ours to decide
async def test_century_follows_the_given_birth_date():
    assert cf.decode(LUIGI_25, birth_date=date(1925, 4, 9)).birth_date == date(1925, 4, 9)
    assert cf.decode(LUIGI_25, birth_date=date(2025, 4, 9)).birth_date == date(2025, 4, 9)


async def test_without_birth_date_the_only_plausible_century_is_taken():
    assert cf.decode(ANNA_1926).birth_date == date(1926, 12, 5)    # 2026-12-05 is in the future
    assert cf.decode(ANNA_2010).birth_date == date(2010, 7, 5)     # 1910 → older than 110


async def test_two_plausible_centuries_are_never_guessed():
    # Born 1925-04-09 or 2025-04-09: a centenarian registered without a birth date used to become a newborn.
    with pytest.raises(Invalid) as e:
        cf.decode(LUIGI_25)
    assert e.value.field == "birth_date" and "1925 o 2025" in e.value.reason
    assert cf.decode(LUIGI_25, birth_date=date(1925, 4, 9)).birth_date == date(1925, 4, 9)
    assert cf.decode(LUIGI_25, birth_date=date(2025, 4, 9)).birth_date == date(2025, 4, 9)


async def test_a_given_birth_date_may_be_older_than_110():
    assert cf.decode(LUIGI_1915, birth_date=date(1915, 4, 9)).birth_date == date(1915, 4, 9)
    with pytest.raises(Invalid):  # 110 years old or 10: both fit
        cf.decode(LUIGI_1915)


async def test_leap_day_only_exists_in_the_right_century():
    assert cf.decode(LEAP_2000).birth_date == date(2000, 2, 29)


async def test_birth_date_that_disagrees_is_reported_on_birth_date():
    with pytest.raises(Invalid) as e:
        cf.decode(LUIGI_25, birth_date=date(1925, 4, 10))
    assert e.value.field == "birth_date"


# ---------------------------------------------------------------- cross-check with typed data
async def test_check_accepts_consistent_data():
    d = cf.check(MARIO, birth_date=date(1985, 12, 10), sex="M", birth_place_code="d142")
    assert d.code == MARIO


async def test_check_reports_every_disagreeing_field():
    with pytest.raises(Invalid) as e:
        cf.check(MARIO, birth_date=date(1985, 12, 11), sex="F", birth_place_code="G004")
    assert set(errors_of(e)) == {"birth_date", "sex", "birth_place_code"}
    assert all("codice fiscale" in r for r in errors_of(e).values())


async def test_check_compares_the_birthplace_name_when_no_code_is_given():
    assert cf.check(MARIO, birth_place_name="crema").birth_place_code == "D142"
    with pytest.raises(Invalid) as e:
        cf.check(MARIO, birth_place_name="Offanengo")
    assert e.value.field == "birth_place_name"


# ---------------------------------------------------------------- other identifiers
async def test_stp_and_eni_have_their_own_16_character_format():
    assert cf.check_other_identifier("stp", "stp 030 321 0000123") == "STP0303210000123"
    assert cf.check_other_identifier("eni", "ENI0303210000456") == "ENI0303210000456"
    with pytest.raises(Invalid) as e:
        cf.check_other_identifier("stp", "ENI0303210000456")
    assert "iniziare con 'STP'" in e.value.reason
    with pytest.raises(Invalid) as e:
        cf.check_other_identifier("eni", "ENI03032100004")
    assert "16 caratteri" in e.value.reason
    with pytest.raises(Invalid):
        cf.check_other_identifier("stp", "STP030321000012X")


async def test_passport_and_provisional_formats():
    assert cf.check_other_identifier("passport", "ya 1234567") == "YA1234567"
    with pytest.raises(Invalid):
        cf.check_other_identifier("passport", "X1")
    assert cf.check_other_identifier("provisional", "prv-ab12") == "PRV-AB12"
    with pytest.raises(Invalid) as e:
        cf.check_other_identifier("codice_fiscale", MARIO)
    assert e.value.field == "other_identifier_type"
