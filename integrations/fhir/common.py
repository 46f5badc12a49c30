"""Small pieces every converter shares: references to our resources, extensions, telecom, periods."""
from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

from domain.kernel.errors import Invalid
from integrations.fhir import systems


def iso(value: Any) -> str | None:
    """ISO 8601 as the R4B models write it: UTC instants end in Z."""
    if value is None:
        return None
    if isinstance(value, datetime) and value.utcoffset() is not None and not value.utcoffset():
        return value.replace(tzinfo=None).isoformat() + "Z"
    return value.isoformat() if isinstance(value, (date, datetime)) else str(value)


def versioned(res: dict[str, Any], version: Any) -> None:
    """Give a resource of a versioned row its `meta.versionId` (what vread and `_history` name)."""
    if version is not None:
        res["meta"] = {"versionId": str(version)}


def ref(resource_type: str, id_: Any) -> dict[str, str]:
    return {"reference": f"{resource_type}/{id_}"}


def reference_id(reference: Any, resource_type: str, where: str) -> uuid.UUID:
    """The id of a literal reference `Type/<uuid>` to one of our resources; `Invalid` at `where` otherwise."""
    text = (reference.reference if reference is not None else None) or ""
    kind, _, raw = text.partition("/")
    try:
        if kind != resource_type:
            raise ValueError
        return uuid.UUID(raw)
    except ValueError:
        raise Invalid(where, f"atteso un riferimento {resource_type}/<id>") from None


def ext(owner: Any, url: str) -> Any:
    return next((e for e in (getattr(owner, "extension", None) or []) if e.url == url), None)


def exts(owner: Any, url: str) -> list[Any]:
    return [e for e in (getattr(owner, "extension", None) or []) if e.url == url]


def telecom(contacts: dict[str, Any] | None) -> list[dict[str, Any]]:
    c = contacts or {}
    out = []
    if c.get("phone"):
        out.append({"system": "phone", "use": "home", "value": c["phone"]})
    if c.get("mobile"):
        out.append({"system": "phone", "use": "mobile", "value": c["mobile"]})
    if c.get("email"):
        out.append({"system": "email", "value": c["email"]})
    if c.get("pec"):
        out.append({"system": "email", "value": c["pec"], "extension": [{"url": systems.PEC, "valueBoolean": True}]})
    return out


def contacts(points: list[Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for t in points or []:
        if t.system == "phone":
            out["mobile" if t.use == "mobile" else "phone"] = t.value
        elif t.system == "email":
            out["pec" if ext(t, systems.PEC) is not None else "email"] = t.value
    return out


# Our validity periods are half-open ([valid_from, valid_to): valid_to is the first day that no longer applies);
# a FHIR Period of dates includes its end. The day before `valid_to` is the last one the Period shows.
def period(valid_from: date | str | None, valid_to: date | str | None) -> dict[str, str] | None:
    """Dates or ISO texts (history snapshots keep them as text)."""
    valid_from, valid_to = (date.fromisoformat(d) if isinstance(d, str) else d for d in (valid_from, valid_to))
    p = {}
    if valid_from is not None:
        p["start"] = valid_from.isoformat()
    if valid_to is not None:
        p["end"] = (valid_to - timedelta(days=1)).isoformat()
    return p or None


def validity(p: Any, where: str) -> tuple[date | None, date | None]:
    if p is None:
        return None, None

    def day(value: Any, at: str) -> date | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        raise Invalid(at, "indicare una data completa (AAAA-MM-GG)")

    start, end = day(p.start, f"{where}.start"), day(p.end, f"{where}.end")
    return start, (end + timedelta(days=1)) if end is not None else None
