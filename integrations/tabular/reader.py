"""Reading an exported table: CSV (UTF-8 or Windows-1252, `,` or `;`) or XLSX, into a header and rows of text.

The format is recognised from the bytes, not the file name: an XLSX is a ZIP with a workbook inside; anything else
must decode as text (no NUL bytes) to be read as CSV. Encoding and separator are detected unless the mapping
states them: UTF-8 when the bytes are valid UTF-8 (a BOM is dropped), Windows-1252 otherwise; the separator is the
one of `;` and `,` that splits the header into more columns. Every refusal is `Invalid("file", ...)`.
"""
from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from domain.kernel.errors import Invalid, TooLarge

XLSX_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class Table:
    file_format: str  # csv | xlsx
    encoding: str | None
    delimiter: str | None
    headers: list[str]
    rows: list[dict[str, str]]
    sha256: str


def _refuse(reason: str) -> Invalid:
    return Invalid("file", reason)


def read_table(data: bytes, *, encoding: str = "auto", delimiter: str = "auto", sheet: str | None = None,
               max_bytes: int | None = None, max_rows: int | None = None) -> Table:
    if max_bytes is not None and len(data) > max_bytes:
        raise TooLarge("file", f"oltre il massimo consentito di {max_bytes} byte (IMPORT_MAX_BYTES)")
    if not data.strip():
        raise _refuse("il file è vuoto")
    sha = hashlib.sha256(data).hexdigest()
    if data.startswith(XLSX_MAGIC):
        headers, rows = _read_xlsx(data, sheet)
        table = Table("xlsx", None, None, headers, rows, sha)
    else:
        text, used = _decode(data, encoding)
        sep = _delimiter(text, delimiter)
        headers, rows = _read_csv(text, sep)
        table = Table("csv", used, sep, headers, rows, sha)
    if not table.rows:
        raise _refuse("il file contiene solo l'intestazione: nessuna riga da importare")
    if max_rows is not None and len(table.rows) > max_rows:
        raise _refuse(f"{len(table.rows)} righe: il massimo per un'importazione è {max_rows}")
    return table


def _decode(data: bytes, encoding: str) -> tuple[str, str]:
    if b"\x00" in data[:65536]:
        raise _refuse("non è un file CSV né XLSX (contenuto binario)")
    if encoding in ("auto", "utf-8"):
        try:
            return data.decode("utf-8-sig"), "utf-8"
        except UnicodeDecodeError:
            if encoding == "utf-8":
                raise _refuse("il file non è codificato in UTF-8 come indica la mappatura") from None
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        raise _refuse("codifica non riconosciuta: il file non è UTF-8 né Windows-1252") from None


def _delimiter(text: str, delimiter: str) -> str:
    if delimiter != "auto":
        return delimiter
    first = text.split("\n", 1)[0]
    return ";" if first.count(";") > first.count(",") else ","


def _clean_headers(raw: list[Any]) -> list[str]:
    headers = [("" if h is None else str(h)).strip() for h in raw]
    while headers and not headers[-1]:
        headers.pop()
    if not any(headers):
        raise _refuse("la prima riga deve contenere le intestazioni delle colonne")
    named = [h for h in headers if h]
    dupes = sorted({h for h in named if named.count(h) > 1})
    if dupes:
        raise _refuse(f"intestazioni ripetute: {', '.join(dupes)}")
    return headers


def _row(headers: list[str], values: list[Any]) -> dict[str, str] | None:
    out: dict[str, str] = {}
    for h, v in zip(headers, values, strict=False):
        if not h or v is None:
            continue
        text = _text(v)
        if text:
            out[h] = text
    return out or None  # a blank line is not a row


def _text(v: Any) -> str:
    if isinstance(v, datetime):
        return v.date().isoformat() if v.time() == datetime.min.time() else v.isoformat(sep=" ")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))  # a code typed as a number in a spreadsheet ("019035.0")
    return str(v).strip()


def _read_csv(text: str, sep: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    try:
        first = next(reader, None)
        if first is None:
            raise _refuse("il file è vuoto")
        headers = _clean_headers(first)
        rows = [r for values in reader if (r := _row(headers, values)) is not None]
    except csv.Error as e:
        raise _refuse(f"CSV non leggibile alla riga {reader.line_num}: {e}") from None
    return headers, rows


def _read_xlsx(data: bytes, sheet: str | None) -> tuple[list[str], list[dict[str, str]]]:
    import openpyxl  # only XLSX files need it, and loading it costs a third of a second

    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
        raise _refuse(f"non è un file XLSX leggibile ({type(e).__name__})") from None
    try:
        if sheet is not None and sheet not in wb.sheetnames:
            raise _refuse(f"il foglio '{sheet}' non esiste (fogli: {', '.join(wb.sheetnames)})")
        ws = wb[sheet] if sheet is not None else wb.worksheets[0]
        it = ws.iter_rows(values_only=True)
        first = next(it, None)
        if first is None:
            raise _refuse("il foglio è vuoto")
        headers = _clean_headers(list(first))
        rows = [r for values in it if (r := _row(headers, list(values))) is not None]
    finally:
        wb.close()
    return headers, rows
