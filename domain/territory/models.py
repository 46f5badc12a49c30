"""Territory: the Ambito and its organisation tree (sub-ambiti, comuni, ASST units, CSC, ETS, UDO operators),
the service catalogue, funding sources and the Unità d'Offerta with their places."""
from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field, SQLModel

from domain.kernel.columns import created_at_field, fk, id_field, jsonb_field


# ---------------------------------------------------------------- territory and organisations
class OrgKind(StrEnum):
    ambito = "ambito"
    sub_ambito = "sub_ambito"
    comune = "comune"
    ufficio_di_piano = "ufficio_di_piano"
    asst = "asst"
    asst_unit = "asst_unit"
    ats = "ats"
    csc = "csc"
    ets = "ets"
    udo_operator = "udo_operator"
    mmg_practice = "mmg_practice"
    regione = "regione"  # the Region: a root of its own, above no Ambito (0050; docs/decisions/regional-search.md)


class Side(StrEnum):
    """Which institution an organisation speaks for: an assessment is integrated when both ASST and
    comune/Ambito sides took part."""

    asst = "asst"
    comune = "comune"
    ambito = "ambito"
    csc = "csc"
    third_sector = "third_sector"
    provider = "provider"
    ats = "ats"
    primary_care = "primary_care"
    regione = "regione"


class Organisation(SQLModel, table=True):
    """One `partOf` tree per Ambito: Ambito → sub-ambiti → comuni, and ASST → units, CSC, ETS, UDO operators."""

    __tablename__ = "organisation"
    __table_args__ = (
        sa.Index("ix_organisation_ancestors", "ancestor_ids", postgresql_using="gin"),
        sa.UniqueConstraint("ambito_id", "istat_code"),
    )

    id: uuid.UUID = id_field()
    ambito_id: uuid.UUID | None = fk("organisation.id", nullable=True)
    code: str = Field(max_length=80, unique=True)
    name: str = Field(max_length=200)
    kind: OrgKind = Field(sa_type=sa.String(30), index=True)
    unit_type: str | None = Field(default=None, max_length=40)
    side: Side = Field(sa_type=sa.String(30))
    part_of_id: uuid.UUID | None = fk("organisation.id", nullable=True)
    # Every ancestor up to the Ambito, kept on write, so "orgs under X" is one GIN lookup.
    ancestor_ids: list[uuid.UUID] = Field(default_factory=list, sa_type=ARRAY(sa.Uuid()))
    istat_code: str | None = Field(default=None, max_length=6)
    belfiore_code: str | None = Field(default=None, max_length=4, index=True)
    population_estimate: int | None = None
    provisional: bool = False
    attributes: dict[str, Any] = jsonb_field()
    active: bool = True
    created_at: datetime = created_at_field()


class ServiceType(SQLModel, table=True):
    __tablename__ = "service_type"

    code: str = Field(primary_key=True, max_length=40)
    label: str = Field(max_length=200)
    category: str = Field(max_length=40)
    leps: bool = False
    active: bool = True


class FundingSource(SQLModel, table=True):
    __tablename__ = "funding_source"

    code: str = Field(primary_key=True, max_length=40)
    label: str = Field(max_length=200)
    active: bool = True


class ServiceUnit(SQLModel, table=True):
    """An Unità d'Offerta (RSA, CDI, RSD...) with its places authorised / accredited / under contract."""

    __tablename__ = "service_unit"

    id: uuid.UUID = id_field()
    ambito_id: uuid.UUID = fk("organisation.id")
    code: str = Field(max_length=80, unique=True)
    name: str = Field(max_length=200)
    udo_type: str = Field(max_length=40, index=True)
    operator_id: uuid.UUID = fk("organisation.id")
    sub_ambito_id: uuid.UUID | None = fk("organisation.id", nullable=True)
    comune_id: uuid.UUID | None = fk("organisation.id", nullable=True)
    places_authorised: int | None = None
    places_accredited: int | None = None
    places_contracted: int | None = None
    measures: list[str] = Field(default_factory=list, sa_type=ARRAY(sa.String(40)))
    provisional: bool = False
    active: bool = True
