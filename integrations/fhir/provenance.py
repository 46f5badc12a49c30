"""Provenance ⇐ an inbound transaction we acted on: what it created or matched (the locations we answered), when,
through which client, and the Bundle it came in (its identifier). Built from the stored answer of the
transaction (`domain.kernel.idempotency`), so it says exactly what the sender was told."""
from __future__ import annotations

from typing import Any

from fhir.resources.R4B.provenance import Provenance

from integrations.fhir import common, systems


def from_transaction(row: Any) -> Provenance:
    system, _, value = row.key.partition("|")
    targets = [{"reference": e["response"]["location"]} for e in row.response.get("entry", [])
               if e.get("response", {}).get("location")]
    agent: dict[str, Any] = {"type": {"coding": [{"system": systems.PROVENANCE_AGENT_TYPE, "code": "author"}]},
                             "who": {"display": "ASST (transazione FHIR)"}}
    if row.created_by is not None:
        agent["who"] = {"identifier": {"system": systems.USER, "value": str(row.created_by)}}
    return Provenance.model_validate({
        "resourceType": "Provenance", "id": str(row.id), "target": targets, "recorded": common.iso(row.created_at),
        "activity": {"coding": [{"system": systems.DATA_OPERATION, "code": "CREATE"}]},
        "agent": [agent],
        "entity": [{"role": "source", "what": {"identifier": {"system": system, "value": value},
                                              "display": "Bundle transaction"}}],
    })
