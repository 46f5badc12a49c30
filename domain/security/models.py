"""Who acts: users and system clients, their role assignments, and teams across organisations."""
from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field, SQLModel

from domain.kernel import clock
from domain.kernel.columns import created_at_field, fk, id_field, jsonb_field
from domain.kernel.validity import active_sql


class Role(StrEnum):
    comune_social_worker = "comune_social_worker"
    sub_ambito_coordinator = "sub_ambito_coordinator"
    ambito_pua_social_worker = "ambito_pua_social_worker"
    asst_pua_operator = "asst_pua_operator"
    asst_front_desk = "asst_front_desk"
    cdc_assessor = "cdc_assessor"
    cot_operator = "cot_operator"
    ward_staff = "ward_staff"
    mmg = "mmg"
    csc_operator = "csc_operator"
    analyst = "analyst"
    ets_operator = "ets_operator"
    rsa_operator = "rsa_operator"
    system_admin = "system_admin"
    dpo = "dpo"
    data_steward = "data_steward"
    integration_operator = "integration_operator"
    regional_operator = "regional_operator"


ROLE_LABELS: dict[str, str] = {
    "comune_social_worker": "Assistente sociale comunale",
    "sub_ambito_coordinator": "Coordinatore di sub-ambito",
    "ambito_pua_social_worker": "Assistente sociale d'Ambito (PUA)",
    "asst_pua_operator": "Operatore PUA ASST (assistente sociale, IFeC)",
    "asst_front_desk": "Operatore di sportello PUA ASST",
    "cdc_assessor": "Valutatore Casa di Comunità / infermiere di distretto",
    "cot_operator": "Operatore COT",
    "ward_staff": "Personale di reparto / dimissioni",
    "mmg": "Medico di medicina generale / pediatra di libera scelta",
    "csc_operator": "Operatore CSC",
    "analyst": "Analista CSC / Ufficio di Piano",
    "ets_operator": "Operatore ETS / ente accreditato",
    "rsa_operator": "Operatore RSA",
    "system_admin": "Amministratore di sistema",
    "dpo": "Responsabile della protezione dei dati (DPO)",
    "data_steward": "Data steward (importazioni e duplicati)",
    "integration_operator": "Operatore integrazioni (messaggi verso ASST)",
    "regional_operator": "Operatore regionale (Regione / ATS)",
}


class UserKind(StrEnum):
    person = "person"
    system = "system"


class AppUser(SQLModel, table=True):
    """A person who logs in, or a system client (e.g. the ASST) acting for a practitioner."""

    __tablename__ = "app_user"

    id: uuid.UUID = id_field()
    username: str = Field(max_length=120, unique=True)
    display_name: str = Field(max_length=200)
    kind: UserKind = Field(default=UserKind.person, sa_type=sa.String(20))
    profession: str | None = Field(default=None, max_length=60)
    email: str | None = Field(default=None, max_length=200)
    ambito_id: uuid.UUID = fk("organisation.id")
    scopes: list[str] = Field(default_factory=list, sa_type=ARRAY(sa.String(80)))
    active: bool = True
    created_at: datetime = created_at_field()


class RoleAssignment(SQLModel, table=True):
    """A role held in an organisation for a period. A social worker may hold several, in several comuni."""

    __tablename__ = "role_assignment"

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = fk("app_user.id")
    role: Role = Field(sa_type=sa.String(40))
    organisation_id: uuid.UUID = fk("organisation.id")
    valid_from: date
    valid_to: date | None = None
    created_at: datetime = created_at_field()
    # A role that reaches personal data, granted by an administrator, waits for a second administrator's approval
    # (separation of duties): until then it gives nothing.
    pending: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    requested_by: uuid.UUID | None = None
    approved_by: uuid.UUID | None = None
    approved_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))

    @classmethod
    def effective_sql(cls, at):
        """The assignment gives its role on `at`: within its period and approved."""
        return sa.and_(active_sql(cls, at), cls.pending.is_(False))


class TeamType(StrEnum):
    pua = "pua"
    vmd_equipe = "vmd_equipe"
    sub_ambito_team = "sub_ambito_team"
    micro_equipe = "micro_equipe"
    monoprofessional = "monoprofessional"
    autism_unit = "autism_unit"
    marginality_team = "marginality_team"
    emergency_team = "emergency_team"
    data_stewards = "data_stewards"


TEAM_TYPE_LABELS = {
    "pua": "Équipe PUA", "vmd_equipe": "Équipe VMD", "sub_ambito_team": "Équipe multiprofessionale di sub-ambito",
    "micro_equipe": "Micro-équipe", "monoprofessional": "Équipe monoprofessionale",
    "autism_unit": "Nucleo Funzionale Autismo", "marginality_team": "Équipe d'Ambito grave marginalità",
    "emergency_team": "Équipe multidisciplinare emergenze", "data_stewards": "Gestione anagrafica e duplicati",
}


class Team(SQLModel, table=True):
    __tablename__ = "team"

    id: uuid.UUID = id_field()
    ambito_id: uuid.UUID = fk("organisation.id")
    code: str = Field(max_length=80, unique=True)
    name: str = Field(max_length=200)
    type: TeamType = Field(sa_type=sa.String(40))
    organisation_id: uuid.UUID | None = fk("organisation.id", nullable=True)
    active: bool = True
    created_at: datetime = created_at_field()


class TeamMember(SQLModel, table=True):
    """Membership across organisations: the member's organisation gives the side (ASST, comune...) they bring."""

    __tablename__ = "team_member"
    __table_args__ = (sa.UniqueConstraint("team_id", "user_id", "valid_from"),)

    id: uuid.UUID = id_field()
    team_id: uuid.UUID = fk("team.id")
    user_id: uuid.UUID = fk("app_user.id")
    organisation_id: uuid.UUID = fk("organisation.id")
    role_in_team: str | None = Field(default=None, max_length=60)
    valid_from: date
    valid_to: date | None = None
    data: dict[str, Any] = jsonb_field()


# ---------------------------------------------------------------- audit
class AuditEvent(SQLModel, table=True):
    """Append-only: the application role may INSERT and SELECT, never UPDATE or DELETE (revoked in the migration).
    Person ids are the ones at the time; a merged id resolves through person_merge."""

    __tablename__ = "audit_event"
    __table_args__ = (
        sa.Index("ix_audit_person_ids", "person_ids", postgresql_using="gin"),
        sa.Index("ix_audit_actor_at", "actor_id", "at"),
        sa.Index("ix_audit_request", "request_id"),
        # 0051: the regional helpdesk's searches, for the DPOs (domain/registry/access_log.regional_searches).
        sa.Index("ix_audit_regional_search", "at", "id", postgresql_where=sa.text(
            "action = 'search' AND route IN ('GET /api/regional/persons', 'POST /api/regional/persons/search')")),
    )

    # Partitioned by month on `at` (0043_audit_partitions): the key must hold the partition key, so it is (id, at);
    # ids still come from one sequence and stay unique. Look a row up by both, or select by id.
    id: int | None = Field(default=None, primary_key=True, sa_type=sa.BigInteger,
                           sa_column_kwargs={"autoincrement": True})
    at: datetime = Field(default_factory=clock.now, primary_key=True, sa_type=sa.DateTime(timezone=True),
                         sa_column_kwargs={"server_default": sa.text("app_now()")})
    request_id: str | None = Field(default=None, max_length=64)
    actor_id: uuid.UUID | None = None
    actor_username: str | None = Field(default=None, max_length=120)
    acting_for: str | None = Field(default=None, max_length=120)
    roles: list[str] = Field(default_factory=list, sa_type=ARRAY(sa.String(40)))
    organisation_ids: list[uuid.UUID] = Field(default_factory=list, sa_type=ARRAY(sa.Uuid()))
    action: str = Field(max_length=40)
    route: str | None = Field(default=None, max_length=200)
    object_type: str | None = Field(default=None, max_length=60)
    object_ids: list[uuid.UUID] = Field(default_factory=list, sa_type=ARRAY(sa.Uuid()))
    person_ids: list[uuid.UUID] = Field(default_factory=list, sa_type=ARRAY(sa.Uuid()))
    purpose: str | None = Field(default=None, max_length=60)
    legal_basis: str | None = Field(default=None, max_length=200)
    result_count: int | None = None
    status: int | None = None
    outcome: str = Field(default="ok", max_length=20)
    break_glass: bool = False
