"""Codice fiscale: checksum (python-stdnum), omocodia and Belfiore decoding (python-codicefiscale data), and the
cross-check with the birth date, sex and birthplace the user typed.

The code stores only the last two digits of the birth year, so the century is decided here, never by the
libraries (both guess from the machine's current date):
- with a given birth date, the century is the one that makes the code agree with it (else `birth_date` is wrong);
- without one, the only century whose date is not in the future and gives an age of at most `MAX_AGE_YEARS`
  (110); where two centuries fit (born in 1925 or in 2025), the birth date is required: never guessed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from stdnum import exceptions as stdnum_exc
from stdnum.it import codicefiscale as stdnum_cf

from domain.kernel import clock
from domain.kernel.calendar import age_on
from domain.kernel.errors import Invalid

MAX_AGE_YEARS = 110
FIELD = "codice_fiscale"

_MONTHS = "ABCDEHLMPRST"
# Omocodia: a digit in positions 7-8, 10-11, 13-15 (1-based) may be replaced by one of these letters.
_OMOCODIA_LETTERS = "LMNPQRSTUV"
_DECODE_OMOCODIA = str.maketrans(_OMOCODIA_LETTERS, "0123456789")
_OMOCODIA_POSITIONS = (6, 7, 9, 10, 12, 13, 14)  # 0-based
_SHAPE = re.compile(r"^[A-Z]{6}[0-9A-Z]{2}[A-Z][0-9A-Z]{2}[A-Z][0-9A-Z]{3}[A-Z]$")


@dataclass(frozen=True)
class DecodedCF:
    code: str               # normalised: upper case, no spaces
    sex: str                # "M" / "F"
    birth_date: date        # with the century decided by `decode`
    birth_place_code: str   # Belfiore code, omocodia letters turned back into digits
    birth_place_name: str | None
    foreign_birth: bool     # born abroad (Belfiore Z...)
    omocode: bool           # some digits were replaced because of omocodia


def normalize(value: str) -> str:
    return re.sub(r"[\s\-.]", "", value or "").upper()


def base_code(code: str) -> str:
    """The code with omocodia letters turned back into digits (check letter recomputed): equal for the
    omocode variants of one code."""
    chars = list(normalize(code)[:15])
    for i in _OMOCODIA_POSITIONS:
        if i < len(chars):
            chars[i] = chars[i].translate(_DECODE_OMOCODIA)
    body = "".join(chars)
    return body + stdnum_cf.calc_check_digit(body) if len(body) == 15 else body


def is_omocode(code: str) -> bool:
    code = normalize(code)
    return any(code[i] in _OMOCODIA_LETTERS for i in _OMOCODIA_POSITIONS if i < len(code))


def _checksum(code: str) -> None:
    if len(code) != 16:
        raise Invalid(FIELD, "deve essere di 16 caratteri")
    if not _SHAPE.match(code):
        raise Invalid(FIELD, "formato non valido")
    try:
        stdnum_cf.validate(code)
    except stdnum_exc.InvalidChecksum:
        raise Invalid(FIELD, "carattere di controllo errato: codice fiscale non valido") from None
    except stdnum_exc.InvalidFormat:
        raise Invalid(FIELD, "formato non valido") from None
    except stdnum_exc.InvalidComponent:
        raise Invalid(FIELD, "data di nascita non valida nel codice fiscale") from None
    except stdnum_exc.ValidationError:
        raise Invalid(FIELD, "codice fiscale non valido") from None


def _places() -> dict:
    from codicefiscale.codicefiscale import _get_data  # the bundled Belfiore table (19k records, cached)

    return _get_data()["codes"]


def _place_name(belfiore: str, born: date) -> tuple[str | None, bool] | None:
    options = _places().get(belfiore)
    if not options:
        return None
    chosen = options[-1]
    for opt in options:
        created = (opt.get("date_created") or "")[:10]
        deleted = (opt.get("date_deleted") or "")[:10]
        if (not created or created <= born.isoformat()) and (not deleted or born.isoformat() <= deleted):
            chosen = opt
            break
    return chosen.get("name"), chosen.get("province") == "EE"


def validated(value: str) -> str:
    """The normalised code if its checksum holds (no decoding: the century may still be undecided)."""
    code = normalize(value)
    _checksum(code)
    return code


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def decode(value: str, *, birth_date: date | None = None, today: date | None = None) -> DecodedCF:
    """Validate and decode. With `birth_date`, the century is chosen to agree with it; a code that cannot agree
    raises Invalid("birth_date")."""
    code = normalize(value)
    _checksum(code)
    today = today or clock.today_rome()
    yy = int(code[6:8].translate(_DECODE_OMOCODIA))
    month = _MONTHS.index(code[8]) + 1
    day_code = int(code[9:11].translate(_DECODE_OMOCODIA))
    if day_code > 40:
        sex, day = "F", day_code - 40
    else:
        sex, day = "M", day_code
    if not 1 <= day <= 31:
        raise Invalid(FIELD, "giorno di nascita non valido nel codice fiscale")
    belfiore = code[11] + code[12:15].translate(_DECODE_OMOCODIA)

    candidates = [d for c in (2000, 1900, 1800) if (d := _safe_date(c + yy, month, day)) is not None]
    if not candidates:
        raise Invalid(FIELD, "data di nascita non valida nel codice fiscale")
    if birth_date is not None:
        born = next((d for d in candidates if d == birth_date), None)
        if born is None:
            raise Invalid("birth_date", "non coerente con il codice fiscale")
    else:
        plausible = [d for d in candidates if d <= today and age_on(d, today) <= MAX_AGE_YEARS]
        if not plausible:
            raise Invalid(FIELD, "la data di nascita nel codice fiscale è nel futuro o troppo lontana")
        if len(plausible) > 1:
            # Two centuries fit (a newborn or a centenarian): guessing would make one of them the other.
            years = " o ".join(str(d.year) for d in sorted(plausible))
            raise Invalid("birth_date", f"il codice fiscale indica l'anno {years}: indicare la data di nascita")
        born = plausible[0]

    place = _place_name(belfiore, born)
    if place is None:
        raise Invalid(FIELD, "codice del luogo di nascita (Belfiore) sconosciuto")
    name, foreign = place
    return DecodedCF(code=code, sex=sex, birth_date=born, birth_place_code=belfiore, birth_place_name=name,
                     foreign_birth=foreign or belfiore.startswith("Z"), omocode=is_omocode(code))


def _slug(s: str) -> str:
    import unicodedata

    s = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", s).strip("-")


def belfiore_codes_for_name(name: str) -> set[str]:
    """Every Belfiore code (comune, historical comune or foreign state) whose name matches `name`."""
    from codicefiscale.codicefiscale import _get_data

    data = _get_data()
    slug = _slug(name)
    out: set[str] = set()
    for table in ("municipalities", "countries"):
        for opt in data[table].get(slug, []):
            out.add(opt["code"])
    return out


def place_name_for_code(code: str, born: date | None = None) -> str | None:
    found = _place_name(code.upper(), born or clock.today_rome())
    return found[0] if found else None


def check(value: str, *, birth_date: date | None = None, sex: str | None = None,
          birth_place_code: str | None = None, birth_place_name: str | None = None,
          today: date | None = None) -> DecodedCF:
    """Validate a codice fiscale and cross-check it with what else was given; every disagreement is reported
    on the field that disagrees (several at once)."""
    errors: list[tuple[str, str]] = []
    try:
        decoded = decode(value, birth_date=birth_date, today=today)
    except Invalid as e:
        if e.field != "birth_date":
            raise
        errors.append((e.field, e.reason))
        try:
            decoded = decode(value, today=today)
        except Invalid:
            raise Invalid.many(errors) from None
    if sex is not None and str(sex) != decoded.sex:
        errors.append(("sex", "non coerente con il codice fiscale"))
    if birth_place_code is not None and birth_place_code.strip().upper() != decoded.birth_place_code:
        errors.append(("birth_place_code", "non coerente con il codice fiscale"))
    if birth_place_code is None and birth_place_name:
        codes = belfiore_codes_for_name(birth_place_name)
        if codes and decoded.birth_place_code not in codes:
            errors.append(("birth_place_name", "non coerente con il codice fiscale"))
    if errors:
        raise Invalid.many(errors)
    return decoded


# ---------------------------------------------------------------- other identifiers
# STP (Straniero Temporaneamente Presente) and ENI (Europeo Non Iscritto): 16 characters, the prefix, then the
# 3-digit region code, the 3-digit ASL code and a 7-digit progressive number (e.g. STP0303210000123).
_STP_ENI = re.compile(r"^(STP|ENI)(\d{3})(\d{3})(\d{7})$")
_PASSPORT = re.compile(r"^[A-Z0-9]{5,20}$")
_PROVISIONAL = re.compile(r"^[A-Z0-9][A-Z0-9\-/]{2,39}$")


def check_other_identifier(kind: str, value: str, *, field: str = "other_identifier") -> str:
    v = normalize(value) if kind in ("stp", "eni", "passport") else (value or "").strip().upper()
    if kind in ("stp", "eni"):
        prefix = kind.upper()
        if len(v) != 16:
            raise Invalid(field, f"il codice {prefix} deve essere di 16 caratteri")
        if not v.startswith(prefix):
            raise Invalid(field, f"il codice {prefix} deve iniziare con '{prefix}'")
        if not _STP_ENI.match(v):
            raise Invalid(field, f"formato {prefix} non valido: {prefix} seguito da 13 cifre "
                                 "(regione, ASL, progressivo)")
        return v
    if kind == "passport":
        if not _PASSPORT.match(v):
            raise Invalid(field, "numero di passaporto non valido: da 5 a 20 lettere o cifre")
        return v
    if kind == "provisional":
        if not _PROVISIONAL.match(v):
            raise Invalid(field, "identificativo provvisorio non valido: da 3 a 40 lettere, cifre, '-' o '/'")
        return v
    if kind == "codice_fiscale":
        raise Invalid("other_identifier_type", "usare il campo codice_fiscale")
    raise Invalid("other_identifier_type", "tipo di identificativo sconosciuto")
