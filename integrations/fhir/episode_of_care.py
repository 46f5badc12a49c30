"""EpisodeOfCare ⇄ a cartella sociale: one per person per area, owned by a comune, open or closed, with its case
manager (one of our users, referenced by identifier: users are not exposed as Practitioner)."""
from __future__ import annotations

from typing import Any

from fhir.resources.R4B.episodeofcare import EpisodeOfCare

from domain.kernel.errors import Invalid
from domain.registry.models import AREA_LABELS, Area
from integrations.fhir import common, r4, systems

STATUS = {"open": "active", "closed": "finished"}


def to_fhir(c: Any) -> EpisodeOfCare:
    """From a `Cartella` row (or anything with its attributes)."""
    identifiers = [{"system": systems.CARTELLA_ID, "value": str(c.id)}]
    if getattr(c, "legacy_code", None):
        identifiers.append({"system": systems.LEGACY_CARTELLA, "value": c.legacy_code})
    area = str(c.area)
    res: dict[str, Any] = {
        "resourceType": "EpisodeOfCare", "id": str(c.id), "identifier": identifiers, "status": STATUS[str(c.status)],
        "type": [{"coding": [{"system": systems.CARTELLA_AREA, "code": area, "display": AREA_LABELS.get(area, area)}]}],
        "patient": common.ref("Patient", c.person_id),
        "managingOrganization": common.ref("Organization", c.owning_comune_id),
        "period": {"start": common.iso(c.opened_at)},
    }
    if c.closed_at is not None:
        res["period"]["end"] = common.iso(c.closed_at)
    if c.case_manager_id is not None:
        res["careManager"] = {"identifier": {"system": systems.USER, "value": str(c.case_manager_id)}}
    common.versioned(res, getattr(c, "version", None))
    return EpisodeOfCare.model_validate(res)


def from_fhir(data: dict[str, Any] | EpisodeOfCare) -> dict[str, Any]:
    """`person_id` and `area` of the cartella to open (the owning comune is the registry's choice)."""
    ep = data if isinstance(data, EpisodeOfCare) else r4.parse(data, expected="EpisodeOfCare")
    out: dict[str, Any] = {"person_id": common.reference_id(ep.patient, "Patient", "EpisodeOfCare.patient")}
    areas = [c.code for t in ep.type or [] for c in t.coding or [] if c.system == systems.CARTELLA_AREA]
    if len(areas) != 1 or areas[0] not in Area.__members__:
        raise Invalid("EpisodeOfCare.type", f"indicare un'area del sistema {systems.CARTELLA_AREA}: "
                                            + ", ".join(Area.__members__))
    out["area"] = areas[0]
    if ep.managingOrganization is not None:
        out["owning_comune_id"] = common.reference_id(ep.managingOrganization, "Organization",
                                                      "EpisodeOfCare.managingOrganization")
    return out
