"""Organization ⇄ organisation tree and EpisodeOfCare ⇄ cartella: round trips and what is refused."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from domain.kernel.errors import Invalid
from integrations.fhir import episode_of_care, organization, r4, systems

pytestmark = pytest.mark.unit


class TestOrganization:
    def test_a_comune_comes_back_the_same(self):
        o = SimpleNamespace(id=uuid.uuid4(), code="comune-crema", name="Comune di Crema", kind="comune",
                            part_of_id=uuid.uuid4(), istat_code="019035", belfiore_code="D142", active=True)
        res = r4.dump(organization.to_fhir(o))
        r4.check_r4(res)
        assert res["partOf"] == {"reference": f"Organization/{o.part_of_id}"}
        assert {"system": systems.ORG_TYPE, "code": "govt"} in res["type"][0]["coding"]
        assert organization.from_fhir(res) == {"code": "comune-crema", "istat_code": "019035", "belfiore_code": "D142",
                                               "name": "Comune di Crema", "kind": "comune",
                                               "part_of_id": o.part_of_id, "active": True}

    def test_an_unknown_kind_and_a_missing_name_are_refused(self):
        with pytest.raises(Invalid, match="Organization.name"):
            organization.from_fhir({"resourceType": "Organization"})
        with pytest.raises(Invalid) as exc:
            organization.from_fhir({"resourceType": "Organization", "name": "X", "type": [
                {"coding": [{"system": systems.ORGANISATION_KIND, "code": "ospedale"}]}]})
        assert exc.value.field == "Organization.type"


class TestEpisodeOfCare:
    def test_a_closed_cartella(self):
        c = SimpleNamespace(id=uuid.uuid4(), person_id=uuid.uuid4(), owning_comune_id=uuid.uuid4(), area="anziani",
                            status="closed", opened_at=datetime(2025, 1, 2, 9, tzinfo=UTC),
                            closed_at=datetime(2026, 2, 1, 9, tzinfo=UTC), case_manager_id=uuid.uuid4(),
                            legacy_code="CART-77", version=4)
        res = r4.dump(episode_of_care.to_fhir(c))
        r4.check_r4(res)
        assert res["status"] == "finished" and res["period"] == {"start": "2025-01-02T09:00:00Z",
                                                                 "end": "2026-02-01T09:00:00Z"}
        assert res["careManager"] == {"identifier": {"system": systems.USER, "value": str(c.case_manager_id)}}
        assert episode_of_care.from_fhir(res) == {"person_id": c.person_id, "area": "anziani",
                                                  "owning_comune_id": c.owning_comune_id}

    def test_an_area_that_is_not_ours_is_refused(self):
        with pytest.raises(Invalid) as exc:
            episode_of_care.from_fhir({"resourceType": "EpisodeOfCare", "status": "active",
                                       "patient": {"reference": f"Patient/{uuid.uuid4()}"}})
        assert exc.value.field == "EpisodeOfCare.type"
