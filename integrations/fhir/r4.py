"""FHIR R4 (4.0.1) on the wire, `fhir.resources.R4B` in memory.

`parse` is the one way a FHIR document enters the service: it refuses every element that R4 does not define (the
list in r4_elements/r4_elements.json, generated from an R4 source by r4_elements/generate.py) and every code outside
an R4 required value set, then lets the R4B model check types and cardinalities. Every failure is an `Invalid`
whose field is the FHIRPath of the element (`Patient.name[0].family`), so the façade can name it in the
OperationOutcome. `dump` is the way out: JSON without empty elements.
"""
from __future__ import annotations

import importlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import fhir_core.types
import pydantic
from fhir.resources.R4B.resource import Resource

from domain.kernel.errors import Invalid

ELEMENTS_FILE = Path(__file__).parent / "r4_elements" / "r4_elements.json"
FHIR_VERSION = "4.0.1"
MEDIA_TYPE = "application/fhir+json"
MAX_ISSUES = 20  # enough to fix a document; a document wrong everywhere does not make a megabyte of answer


@lru_cache
def elements() -> dict[str, Any]:
    data = json.loads(ELEMENTS_FILE.read_text())
    if data["fhirVersion"] != FHIR_VERSION:
        raise RuntimeError(f"{ELEMENTS_FILE}: not the FHIR {FHIR_VERSION} element list")
    return data


def resource_types() -> frozenset[str]:
    return frozenset(elements()["resources"])


def element(path: str) -> dict[str, Any] | None:
    """The R4 definition of an element path such as `Patient.contact.name` (None: not an R4 element)."""
    root = path.split(".", 1)[0]
    table = elements()["resources"].get(root) or elements()["datatypes"].get(root) or {}
    return table.get(path)


class _Walker:
    def __init__(self) -> None:
        self.errors: list[tuple[str, str]] = []

    def fail(self, where: str, reason: str) -> None:
        if len(self.errors) < MAX_ISSUES:
            self.errors.append((where, reason))

    def resource(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            self.fail(where, "atteso un oggetto JSON con resourceType")
            return
        rtype = data.get("resourceType")
        if rtype not in elements()["resources"]:
            self.fail(f"{where}.resourceType" if where else "resourceType",
                      f"tipo di risorsa '{rtype}' non definito in FHIR R4 ({FHIR_VERSION})")
            return
        self.object(data, table=elements()["resources"][rtype], defn=rtype, where=where or rtype, root=True)

    def object(self, data: Any, *, table: dict[str, Any], defn: str, where: str, root: bool = False) -> None:
        if not isinstance(data, dict):
            self.fail(where, "atteso un oggetto JSON")
            return
        for key, value in data.items():
            if root and key == "resourceType":
                continue
            name = key[1:] if key.startswith("_") else key  # `_birthDate`: the extensions of a primitive
            spec = table.get(f"{defn}.{name}")
            at = f"{where}.{key}"
            if spec is None:
                self.fail(at, f"elemento non definito in FHIR R4 ({FHIR_VERSION})")
                continue
            items = value if isinstance(value, list) else [value]
            if isinstance(value, list) != spec["array"] and not key.startswith("_"):
                self.fail(at, "atteso un elenco (array JSON)" if spec["array"] else "atteso un solo valore, non un "
                                                                                     "elenco")
                continue
            for i, item in enumerate(items):
                item_at = f"{at}[{i}]" if isinstance(value, list) else at
                if item is None:
                    continue
                if key.startswith("_"):
                    self.object(item, table=elements()["datatypes"]["Element"], defn="Element", where=item_at)
                else:
                    self.value(item, spec, table=table, path=f"{defn}.{name}", where=item_at)

    def value(self, item: Any, spec: dict[str, Any], *, table: dict[str, Any], path: str, where: str) -> None:
        kind = spec["type"]
        if kind == "BackboneElement":
            self.object(item, table=table, defn=path, where=where)
        elif kind.startswith("#"):
            self.object(item, table=table, defn=kind[1:], where=where)
        elif kind == "Resource":
            self.resource(item, where)
        elif kind[0].isupper():
            self.object(item, table=elements()["datatypes"][kind], defn=kind, where=where)
        elif spec.get("codes") and isinstance(item, str) and item not in spec["codes"]:
            self.fail(where, "codice non ammesso: usare " + ", ".join(spec["codes"]))


def check_r4(data: Any) -> None:
    """Refuse what R4 does not define: unknown resource types, elements, codes of required bindings."""
    w = _Walker()
    w.resource(data, "")
    if w.errors:
        raise Invalid.many(w.errors)


def fhirpath(root: str, loc: tuple) -> str:
    out = root
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


# fhir_core finds the class of every contained resource (a Bundle's entries) by importing its dotted path again on
# each validation; the path → class answer never changes in a process.
fhir_core.types.import_string = lru_cache(maxsize=None)(fhir_core.types.import_string)


@lru_cache
def _model(resource_type: str) -> type[Resource]:
    module = importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}")
    return getattr(module, resource_type)


def parse(data: Any, *, expected: str | set[str] | None = None) -> Resource:
    """An R4 document as an R4B model; `Invalid` (FHIRPath, Italian reason) for anything R4 does not allow."""
    wanted = {expected} if isinstance(expected, str) else expected
    if not isinstance(data, dict):
        raise Invalid("resourceType", "atteso un oggetto JSON con resourceType")
    rtype = data.get("resourceType")
    if wanted and rtype not in wanted:
        raise Invalid("resourceType", "atteso " + " o ".join(sorted(wanted)))
    check_r4(data)
    try:
        return _model(rtype).model_validate(data)
    except pydantic.ValidationError as e:
        raise Invalid.many([(fhirpath(rtype, tuple(x["loc"])), _reason(x)) for x in e.errors()[:MAX_ISSUES]]) from None


# fhir.resources speaks English and knows the FHIR types; the façade answers in Italian with what to send instead.
_REASONS = {
    "missing": "elemento obbligatorio",
    "extra_forbidden": "elemento non previsto",
    "string_type": "atteso un testo (stringa JSON)",
    "bool_type": "atteso true o false", "bool_parsing": "atteso true o false",
    "int_type": "atteso un numero intero", "int_parsing": "atteso un numero intero",
    "int_from_float": "atteso un numero intero",
    "decimal_type": "atteso un numero", "decimal_parsing": "atteso un numero",
    "list_type": "atteso un elenco (array JSON)",
    "model_type": "atteso un oggetto JSON", "dict_type": "atteso un oggetto JSON",
}
_SPEC_HINTS = (
    ("Date value", "data non valida: usare AAAA, AAAA-MM o AAAA-MM-GG"),
    ("DateTime value", "data e ora non valide: usare AAAA-MM-GG o AAAA-MM-GGThh:mm:ss+01:00"),
    ("Instant value", "istante non valido: usare AAAA-MM-GGThh:mm:ss+01:00"),
)


def _reason(e: dict[str, Any]) -> str:
    if e["type"] in _REASONS:
        return _REASONS[e["type"]]
    message = str(e.get("msg", ""))
    for english, italian in _SPEC_HINTS:
        if english in message:
            return italian
    if "one of" in message and "[x]" in message or "choice" in message.lower():
        return "un solo tipo per l'elemento a scelta [x]"
    return "valore non valido per il tipo FHIR dell'elemento"


def dump(model: Resource) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_none=True)
