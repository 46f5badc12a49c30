"""The mapping: which column of the file holds which field, the code lists and the date formats. The reference
layout is `template.yaml`; another platform's export is read by writing a mapping like it, without code changes.

A mapping is checked against the file's header before anything is staged: a field mapped to a column the file does
not have is an error naming the mapping key. Values are cleaned row by row; a value that does not parse is an
error naming the column (the header as the file spells it), which is what the steward sees in the report.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from domain.kernel.errors import Invalid

TEMPLATE_PATH = Path(__file__).with_name("template.yaml")

# Canonical fields, in the order the report and the template list them.
FIELDS = (
    "source_key", "codice_fiscale", "other_identifier_type", "other_identifier", "surname", "given_name", "sex",
    "birth_date", "birth_place_code", "citizenship", "residence_comune", "residence_address", "domicile_comune",
    "domicile_address", "homeless", "phone", "email", "area", "legacy_code", "owning_comune", "case_manager",
    "opened_on", "related_to", "relation_kind", "decree_reference", "court", "decree_scope", "sole_caregiver",
    "cohabiting",
)
REQUIRED_FIELDS = ("source_key", "surname", "given_name")
DATE_FIELDS = ("birth_date", "opened_on")
BOOLEAN_FIELDS = ("homeless", "sole_caregiver", "cohabiting")
CODED_FIELDS = {"sex": "sex", "other_identifier_type": "other_identifier_type", "area": "area",
                "relation_kind": "relation_kind"}
CODE_LISTS = ("sex", "boolean", "other_identifier_type", "area", "relation_kind", "decree_scope")
ENCODINGS = ("auto", "utf-8", "cp1252")
DELIMITERS = ("auto", ",", ";")
MAX_VALUE_LENGTH = 500


def fold(value: str) -> str:
    """Case- and accent-insensitive key for code lists and comune names ("Forlì" = "FORLI'" = "forli")."""
    text = unicodedata.normalize("NFKD", value.strip().lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(text.replace("'", " ").replace("’", " ").split())


@dataclass(frozen=True)
class Mapping:
    source_system: str
    columns: dict[str, str]  # field → header
    codes: dict[str, dict[str, Any]]  # list → folded value → code
    encoding: str = "auto"
    delimiter: str = "auto"
    date_formats: tuple[str, ...] = ("%d/%m/%Y", "%Y-%m-%d")
    sheet: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # header → field

    def as_dict(self) -> dict[str, Any]:
        return {"source_system": self.source_system, "columns": self.columns,
                "codes": {k: dict(v) for k, v in self.codes.items()},
                "format": {"encoding": self.encoding, "delimiter": self.delimiter,
                           "date_formats": list(self.date_formats), "sheet": self.sheet}}

    def header_of(self, name: str) -> str:
        """The column the steward knows a field by (the canonical name when the field is not mapped)."""
        return self.columns.get(name, name)

    def narrowed(self, headers: list[str]) -> Mapping:
        """The reference layout read leniently: its optional columns that the file does not have are left out (a
        mapping written for a file stays strict: `check_headers`)."""
        present = {h.strip() for h in headers if h}
        columns = {f: h for f, h in self.columns.items() if f in REQUIRED_FIELDS or h in present}
        return replace(self, columns=columns, headers={h: f for f, h in columns.items()})

    def check_headers(self, headers: list[str]) -> None:
        """Every mapped column must be in the file: the error names the mapping key."""
        present = {h.strip() for h in headers if h}
        missing = [(f"columns.{f}", f"colonna '{h}' assente nel file (intestazioni: {', '.join(sorted(present))})")
                   for f, h in self.columns.items() if h not in present]
        if missing:
            raise Invalid.many(missing[:20])

    def apply(self, raw: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """A staged row → (field values, errors by header). Unparseable values are errors, never guessed."""
        values: dict[str, Any] = {}
        errors: list[tuple[str, str]] = []
        for name, header in self.columns.items():
            text = raw.get(header)
            text = None if text is None else str(text).strip()
            if not text:
                values[name] = None
                continue
            if len(text) > MAX_VALUE_LENGTH:
                errors.append((header, f"valore troppo lungo (oltre {MAX_VALUE_LENGTH} caratteri)"))
                values[name] = None
                continue
            try:
                values[name] = self._convert(name, text)
            except ValueError as e:
                errors.append((header, str(e)))
                values[name] = None
        for name in FIELDS:
            values.setdefault(name, None)
        return values, errors

    def _convert(self, name: str, text: str) -> Any:
        if name in DATE_FIELDS:
            return self.parse_date(text)
        if name in BOOLEAN_FIELDS:
            return self._code("boolean", text, "valore sì/no non riconosciuto")
        if name in CODED_FIELDS:
            return self._code(CODED_FIELDS[name], text, "valore non previsto dalla lista dei codici")
        if name == "decree_scope":
            return sorted({self._code("decree_scope", part, "valore non previsto dalla lista dei codici")
                           for part in text.split("|") if part.strip()})
        return " ".join(text.split())

    def _code(self, code_list: str, text: str, message: str) -> Any:
        codes = self.codes.get(code_list, {})
        key = fold(text)
        if key in codes:
            return codes[key]
        raise ValueError(f"{message}: '{text}'")

    def parse_date(self, text: str) -> date:
        # XLSX cells arrive as ISO datetimes ("2024-03-01 00:00:00")
        head = text[:10] if len(text) >= 19 and text[4] == "-" and text[10] in " T" else text
        for fmt in self.date_formats:
            try:
                return datetime.strptime(head, fmt).date()
            except ValueError:
                continue
        raise ValueError(f"data non valida: '{text}' (formati ammessi: {', '.join(self.date_formats)})")


def template_dict() -> dict[str, Any]:
    return yaml.safe_load(TEMPLATE_PATH.read_text(encoding="utf-8"))


def parse_mapping(data: Any) -> Mapping:
    """A mapping from its YAML text or a dict; a mapping that omits a section inherits the template's, so a
    platform whose export differs only in the column names writes only `columns`."""
    if isinstance(data, str | bytes):
        try:
            data = yaml.safe_load(data)
        except yaml.YAMLError as e:
            raise Invalid("mapping", f"YAML non valido: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise Invalid("mapping", "deve essere un oggetto YAML con le sezioni columns, codes, format")
    base = template_dict()
    errors: list[tuple[str, str]] = []
    unknown = sorted(set(data) - {"source_system", "columns", "codes", "format"})
    errors.extend((f"mapping.{k}", "sezione sconosciuta") for k in unknown)
    columns = data.get("columns", base["columns"])
    if not isinstance(columns, dict) or not columns:
        errors.append(("mapping.columns", "deve elencare le colonne: campo: intestazione"))
        columns = {}
    columns = {str(k): str(v).strip() for k, v in columns.items() if v is not None and str(v).strip()}
    errors.extend((f"columns.{k}", "campo sconosciuto") for k in columns if k not in FIELDS)
    errors.extend((f"columns.{k}", "campo obbligatorio: indicare la colonna") for k in REQUIRED_FIELDS
                  if k not in columns)
    seen: dict[str, str] = {}
    for k, h in columns.items():
        if h in seen:
            errors.append((f"columns.{k}", f"colonna '{h}' già usata per {seen[h]}"))
        seen[h] = k
    codes_in = data.get("codes") or {}
    if not isinstance(codes_in, dict):
        errors.append(("mapping.codes", "deve essere un oggetto: lista: {valore: codice}"))
        codes_in = {}
    codes: dict[str, dict[str, Any]] = {}
    for name in CODE_LISTS:
        values = codes_in.get(name, base["codes"][name])
        if not isinstance(values, dict):
            errors.append((f"codes.{name}", "deve essere un oggetto valore: codice"))
            continue
        codes[name] = {fold(str(k)): v for k, v in values.items()}
    errors.extend((f"codes.{k}", "lista sconosciuta") for k in codes_in if k not in CODE_LISTS)
    fmt = {**base["format"], **(data.get("format") or {})}
    if fmt.get("encoding") not in ENCODINGS:
        errors.append(("format.encoding", f"valori ammessi: {', '.join(ENCODINGS)}"))
    if fmt.get("delimiter") not in DELIMITERS:
        errors.append(("format.delimiter", "valori ammessi: auto, \",\", \";\""))
    date_formats = fmt.get("date_formats") or []
    if not isinstance(date_formats, list) or not all(isinstance(f, str) and "%" in f for f in date_formats):
        errors.append(("format.date_formats", "elenco di formati strftime, ad esempio \"%d/%m/%Y\""))
        date_formats = []
    source_system = str(data.get("source_system") or base["source_system"]).strip()
    if not source_system or len(source_system) > 60:
        errors.append(("mapping.source_system", "obbligatorio, al più 60 caratteri"))
    if errors:
        raise Invalid.many(errors)
    return Mapping(source_system=source_system, columns=columns, codes=codes, encoding=fmt["encoding"],
                   delimiter=fmt["delimiter"], date_formats=tuple(date_formats), sheet=fmt.get("sheet"),
                   headers={h: k for k, h in columns.items()})
