"""The generator of the R4 element list reads the package as data: inherited elements, inline (backbone) elements
flattened under their path, a repeated definition as `#Path`, value sets only where the source lists them whole."""
from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from integrations.fhir.r4_elements import generate

pytestmark = pytest.mark.unit

HEADER = '"""\nProfile: x\nRelease: R4\nVersion: 4.0.1\n"""\nfrom pydantic import Field\nfrom . import fhirtypes\n'


def field(name: str, annotation: str, **extra: object) -> str:
    kw = "".join(f", {k}={v!r}" for k, v in extra.items())
    return f"    {name}: {annotation} = Field(None, alias={name!r}, element_property=True{kw})\n"


FILES = {
    "fhirtypes": "class ElementType:\n    __resource_type__ = 'Element'\n"
                 "class ExtensionType:\n    __resource_type__ = 'Extension'\n"
                 "class ThingPartType:\n    __resource_type__ = 'ThingPart'\n"
                 "class ResourceType:\n    __resource_type__ = 'Resource'\n",
    "element": HEADER + "class Element:\n" + field("id", "fhirtypes.String")
    + field("extension", "typing.List[fhirtypes.ExtensionType]"),
    "extension": HEADER + "class Extension(element.Element):\n" + field("url", "fhirtypes.Uri"),
    "backboneelement": HEADER + "class BackboneElement(element.Element):\n"
    + field("modifierExtension", "typing.List[fhirtypes.ExtensionType]"),
    "resource": HEADER + "class Resource:\n" + field("id", "fhirtypes.Id"),
    "domainresource": HEADER + "class DomainResource(resource.Resource):\n"
    + field("contained", "typing.List[fhirtypes.ResourceType]"),
    "thing": HEADER + "class Thing(domainresource.DomainResource):\n"
    + field("status", "fhirtypes.Code", title="on | off", enum_values=["on", "off"])
    + field("mode", "fhirtypes.Code", title="a | b +", enum_values=["a", "b", "+"])
    + field("kind", "fhirtypes.Code", title="kinds (x | y)", enum_values=["kinds", "x"])
    + field("part", "typing.List[fhirtypes.ThingPartType]") + field("flag", "bool", element_required=True)
    + "class ThingPart(backboneelement.BackboneElement):\n" + field("label", "fhirtypes.String")
    + field("part", "typing.List[fhirtypes.ThingPartType]"),
}


@pytest.fixture
def wheel(tmp_path: Path) -> Path:
    path = tmp_path / "fhir.resources-6.1.0-py2.py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for module, text in FILES.items():
            z.writestr(f"fhir/resources/{module}.py", text)
        z.writestr("fhir/resources/STU3/thing.py", "not read: another FHIR version")
    return path


def test_a_small_package_becomes_its_element_list(wheel):
    data = generate.generate(wheel)
    thing = data["resources"]["Thing"]
    assert data["fhirVersion"] == "4.0.1" and set(data["resources"]) == {"Thing"}
    assert thing["Thing.id"] == {"type": "id", "array": False}  # inherited from Resource
    assert thing["Thing.contained"] == {"type": "Resource", "array": True}
    assert thing["Thing.flag"] == {"type": "boolean", "array": False, "required": True}
    assert thing["Thing.status"]["codes"] == ["on", "off"]
    assert "codes" not in thing["Thing.mode"] and "codes" not in thing["Thing.kind"]  # partial or prose lists
    assert thing["Thing.part"] == {"type": "BackboneElement", "array": True}
    assert thing["Thing.part.label"]["type"] == "string"
    assert thing["Thing.part.modifierExtension"]["type"] == "Extension"  # from BackboneElement
    assert thing["Thing.part.part"] == {"type": "#Thing.part", "array": True}  # recursion as a reference
    assert data["datatypes"]["Extension"]["Extension.url"]["type"] == "uri"


def test_a_wheel_of_another_release_is_refused(tmp_path, wheel):
    other = tmp_path / "fhir.resources-6.5.0-py2.py3-none-any.whl"
    other.write_bytes(wheel.read_bytes())
    with pytest.raises(SystemExit, match="expected fhir.resources 6.1.0"):
        generate.generate(other)
