"""Persons, relations, cartelle sociali, their assignments, possible matches and merges."""
from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, ExcludeConstraint
from sqlmodel import Field, SQLModel

from domain.kernel import person_refs
from domain.kernel.columns import created_at_field, fk, id_field, jsonb_field, ts_field


# ---------------------------------------------------------------- persons
class Sex(StrEnum):
    M = "M"
    F = "F"


class IdentifierType(StrEnum):
    codice_fiscale = "codice_fiscale"
    stp = "stp"  # Straniero Temporaneamente Presente
    eni = "eni"  # Europeo Non Iscritto
    passport = "passport"
    provisional = "provisional"  # not yet known: assigned by the office


class PersonStatus(StrEnum):
    active = "active"
    merged = "merged"


class Person(SQLModel, table=True):
    __tablename__ = "person"
    __table_args__ = (
        sa.Index("uq_person_cf", "ambito_id", "codice_fiscale", unique=True,
                 postgresql_where=sa.text("codice_fiscale is not null and status = 'active'")),
        # 0046_regional_search: the trigram index leads with the Ambito (btree_gin), so a search of one Ambito
        # reads that Ambito's candidates only, and one across all Ambiti still uses it.
        sa.Index("ix_person_ambito_name_trgm", "ambito_id", "name_search", postgresql_using="gin",
                 postgresql_ops={"name_search": "gin_trgm_ops"}),
        sa.Index("ix_person_keyset", "ambito_id", "surname", "given_name", "id"),
        # 0050_regional_role: the regional search's exact-name page, every Ambito in one probe.
        sa.Index("ix_person_name_exact", "name_search", postgresql_where=sa.text("status = 'active'")),
        sa.Index("ix_person_birth", "ambito_id", "birth_date"),
        # 0004_registry: another identifier (STP, ENI, passport, provisional) is unique per Ambito too.
        sa.Index("uq_person_other_id", "ambito_id", "other_identifier_type", "other_identifier", unique=True,
                 postgresql_where=sa.text("other_identifier is not null and status = 'active'")),
        # 0004_registry: a merge re-points earlier merges into the merged person (chains stay one hop long).
        sa.Index("ix_person_merged_into", "merged_into_id", postgresql_where=sa.text("merged_into_id is not null")),
        # 0004_registry: de-duplication reads the names of one birth year with an index-only scan.
        sa.Index("ix_person_birth_name", "ambito_id", "birth_date", postgresql_include=["name_search", "id"],
                 postgresql_where=sa.text("status = 'active'")),
        # 0048_reporting_indexes: the indicators join a year's facts to the person's residence and merge target
        # with an index-only look-up (domain/reporting/sources.py).
        sa.Index("ix_person_reporting", "id", postgresql_include=["residence_comune_id", "merged_into_id"]),
        # 0038: the persons without a codice fiscale, whom de-duplication scores in full against a coded probe.
        sa.Index("ix_person_nocf_birth_name", "ambito_id", "birth_date", postgresql_include=["name_search", "id"],
                 postgresql_where=sa.text("codice_fiscale is null and status = 'active'")),
        sa.Index("ix_person_nocf_name_trgm", "name_search", postgresql_using="gin",
                 postgresql_ops={"name_search": "gin_trgm_ops"},
                 postgresql_where=sa.text("codice_fiscale is null and status = 'active'")),
    )

    id: uuid.UUID = id_field()
    ambito_id: uuid.UUID = fk("organisation.id", index=False)
    codice_fiscale: str | None = Field(default=None, max_length=16)
    other_identifier_type: IdentifierType | None = Field(default=None, sa_type=sa.String(20))
    other_identifier: str | None = Field(default=None, max_length=40)
    surname: str = Field(max_length=120)
    given_name: str = Field(max_length=120)
    name_search: str | None = Field(
        default=None,
        sa_column_args=[sa.Computed("lower(surname || ' ' || given_name)", persisted=True)],
        sa_type=sa.Text,
    )
    sex: Sex | None = Field(default=None, sa_type=sa.String(1))
    birth_date: date | None = None
    birth_place_code: str | None = Field(default=None, max_length=4)  # Belfiore: comune or foreign state
    birth_place_name: str | None = Field(default=None, max_length=120)
    citizenship: str | None = Field(default=None, max_length=60)
    residence_comune_id: uuid.UUID | None = fk("organisation.id", nullable=True)
    residence_address: str | None = Field(default=None, max_length=200)
    domicile_comune_id: uuid.UUID | None = fk("organisation.id", nullable=True)
    domicile_address: str | None = Field(default=None, max_length=200)
    fictitious_residence: bool = False
    homeless: bool = False
    lives_alone: bool | None = None
    contacts: dict[str, Any] = jsonb_field()
    date_of_death: date | None = None
    status: PersonStatus = Field(default=PersonStatus.active, sa_type=sa.String(20))
    merged_into_id: uuid.UUID | None = fk("person.id", nullable=True, index=False)
    needs_review: bool = False
    source: str = Field(default="api", max_length=40)
    version: int = 1
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()


class RelationKind(StrEnum):
    caregiver = "caregiver"
    family_member = "family_member"
    parent_responsibility = "parent_responsibility"
    tutore = "tutore"
    curatore = "curatore"
    ads = "ads"
    foster_family = "foster_family"


RELATION_LABELS = {
    "caregiver": "Caregiver", "family_member": "Familiare",
    "parent_responsibility": "Genitore con responsabilità genitoriale", "tutore": "Tutore",
    "curatore": "Curatore", "ads": "Amministratore di sostegno", "foster_family": "Famiglia affidataria",
}
# Who may represent the person (sign consent and plans on their behalf). A curatore assists but does not
# represent; an amministratore di sostegno represents only for what the decree says (`decree_scope`).
LEGAL_REPRESENTATIVE_KINDS = {"parent_responsibility", "tutore", "ads"}
# Appointed by a court: the decree's reference is required.
DECREE_REQUIRED_KINDS = frozenset({RelationKind.tutore.value, RelationKind.ads.value})


class DecreeScope(StrEnum):
    """What the decree of an amministratore di sostegno covers."""

    care_health = "care_health"  # represents the person in care and health decisions (consent included)
    assets = "assets"  # represents the person in managing their assets
    assistance = "assistance"  # assists only: the person decides, with the AdS beside them


DECREE_SCOPE_LABELS = {"care_health": "Rappresentanza per cura e salute", "assets": "Rappresentanza patrimoniale",
                       "assistance": "Sola assistenza"}


# At most one of these appointments at a time (a decree replaces the previous one).
EXCLUSIVE_LEGAL_KINDS = frozenset({RelationKind.ads.value, RelationKind.tutore.value})


class PersonRelation(SQLModel, table=True):
    """Validity is the half-open period [valid_from, valid_to)."""

    __tablename__ = "person_relation"
    __table_args__ = (
        # 0004_registry: at most one tutore or amministratore di sostegno at a time.
        ExcludeConstraint(
            (sa.column("person_id"), "="),
            (sa.text("daterange(valid_from, valid_to, '[)')"), "&&"),
            using="gist", where=sa.text("kind in ('ads', 'tutore')"), name="ex_relation_one_legal_guardian",
        ),
    )

    id: uuid.UUID = id_field()
    person_id: uuid.UUID = fk("person.id")
    related_person_id: uuid.UUID | None = fk("person.id", nullable=True)
    kind: RelationKind = Field(sa_type=sa.String(30))
    # When the related person is not registered: name and contacts only.
    surname: str | None = Field(default=None, max_length=120)
    given_name: str | None = Field(default=None, max_length=120)
    contacts: dict[str, Any] = jsonb_field()
    sole_caregiver: bool = False
    cohabiting: bool | None = None
    decree_reference: str | None = Field(default=None, max_length=120)
    # For an amministratore di sostegno: what the decree covers (DecreeScope codes). A tutore represents in all.
    decree_scope: list[str] = Field(default_factory=list, sa_type=ARRAY(sa.String(20)),
                                    sa_column_kwargs={"server_default": sa.text("'{}'")})
    court: str | None = Field(default=None, max_length=120)
    valid_from: date | None = None
    valid_to: date | None = None
    created_at: datetime = created_at_field()


# ---------------------------------------------------------------- cartella sociale
class Area(StrEnum):
    anziani = "anziani"
    minori_famiglia = "minori_famiglia"
    disabili = "disabili"
    emarginazione_poverta = "emarginazione_poverta"
    dipendenze_salute_mentale = "dipendenze_salute_mentale"
    immigrazione = "immigrazione"
    servizi_sociali = "servizi_sociali"
    non_noto = "non_noto"


AREA_LABELS = {
    "anziani": "Area Anziani", "minori_famiglia": "Area Minori-famiglia", "disabili": "Area Disabili",
    "emarginazione_poverta": "Area Emarginazione-povertà",
    "dipendenze_salute_mentale": "Area Dipendenze e Salute mentale",
    "immigrazione": "Area Immigrazione", "servizi_sociali": "Area servizi sociali", "non_noto": "Non noto",
}


class CartellaStatus(StrEnum):
    open = "open"
    closed = "closed"


class Cartella(SQLModel, table=True):
    """One per person per area; access rules key on the owning comune, fixed when it opens."""

    __tablename__ = "cartella"
    __table_args__ = (
        sa.Index("uq_cartella_open_area", "person_id", "area", unique=True,
                 postgresql_where=sa.text("status = 'open'")),
        sa.Index("ix_cartella_owner", "owning_comune_id", "status"),
    )

    id: uuid.UUID = id_field()
    ambito_id: uuid.UUID = fk("organisation.id")
    person_id: uuid.UUID = fk("person.id")
    area: Area = Field(sa_type=sa.String(40))
    owning_comune_id: uuid.UUID = fk("organisation.id", index=False)
    case_manager_id: uuid.UUID | None = fk("app_user.id", nullable=True)
    status: CartellaStatus = Field(default=CartellaStatus.open, sa_type=sa.String(20))
    opened_at: datetime = created_at_field()
    closed_at: datetime | None = ts_field()
    close_reason: str | None = Field(default=None, max_length=200)
    opened_by: uuid.UUID | None = None
    legacy_code: str | None = Field(default=None, max_length=60)
    version: int = 1


class CartellaTransfer(SQLModel, table=True):
    """The person moved: the cartella changes owner; the row keeps who, when and from where."""

    __tablename__ = "cartella_transfer"

    id: uuid.UUID = id_field()
    cartella_id: uuid.UUID = fk("cartella.id")
    from_comune_id: uuid.UUID = fk("organisation.id", index=False)
    to_comune_id: uuid.UUID = fk("organisation.id", index=False)
    reason: str | None = Field(default=None, max_length=200)
    by_user_id: uuid.UUID | None = None
    at: datetime = created_at_field()


class AssignmentReason(StrEnum):
    case_manager = "case_manager"
    assessor = "assessor"
    provider = "provider"
    referring_mmg = "referring_mmg"
    team = "team"
    break_glass = "break_glass"


class CartellaAssignment(SQLModel, table=True):
    """Who works on a cartella and why, for a period: the access rules filter on these rows."""

    __tablename__ = "cartella_assignment"
    __table_args__ = (
        sa.CheckConstraint("num_nonnulls(user_id, team_id, organisation_id) = 1", name="ck_assignment_one_assignee"),
    )

    id: uuid.UUID = id_field()
    cartella_id: uuid.UUID = fk("cartella.id")
    reason: AssignmentReason = Field(sa_type=sa.String(30))
    user_id: uuid.UUID | None = fk("app_user.id", nullable=True)
    team_id: uuid.UUID | None = fk("team.id", nullable=True)
    organisation_id: uuid.UUID | None = fk("organisation.id", nullable=True)
    valid_from: datetime = created_at_field()
    valid_to: datetime | None = ts_field()
    source_type: str | None = Field(default=None, max_length=60)
    source_id: uuid.UUID | None = None
    # When set, cross-organisation reads through this assignment rest on it instead of the person's consent.
    legal_basis: str | None = Field(default=None, max_length=200)
    created_by: uuid.UUID | None = None


# ---------------------------------------------------------------- de-duplication
class MatchStatus(StrEnum):
    pending = "pending"
    merged = "merged"
    not_duplicate = "not_duplicate"
    superseded = "superseded"  # one side was merged into a third person: replaced by a match on the kept one


class PossibleMatch(SQLModel, table=True):
    """A pair of persons that may be the same one, waiting for a steward's decision. Keeps the original ids."""

    __tablename__ = "possible_match"
    __table_args__ = (
        sa.UniqueConstraint("person_a_id", "person_b_id"),
        sa.CheckConstraint("person_a_id < person_b_id", name="ck_match_ordered"),
        sa.Index("ix_possible_match_queue", "ambito_id", "status", "score"),
    )

    id: uuid.UUID = id_field()
    ambito_id: uuid.UUID = fk("organisation.id", index=False)
    person_a_id: uuid.UUID = fk("person.id", index=False)
    person_b_id: uuid.UUID = fk("person.id")
    score: float
    reasons: dict[str, Any] = jsonb_field()
    status: MatchStatus = Field(default=MatchStatus.pending, sa_type=sa.String(20))
    source: str = Field(default="api", max_length=40)
    decided_by: uuid.UUID | None = None
    decided_at: datetime | None = ts_field()
    decision_reason: str | None = None
    created_at: datetime = created_at_field()


class PersonMerge(SQLModel, table=True):
    """The merge record: the merged id resolves to the kept one for history, audit and old links."""

    __tablename__ = "person_merge"

    id: uuid.UUID = id_field()
    kept_id: uuid.UUID = fk("person.id")
    merged_id: uuid.UUID = Field(foreign_key="person.id", unique=True)
    match_id: uuid.UUID | None = fk("possible_match.id", nullable=True, index=False)
    reason: str
    by_user_id: uuid.UUID | None = None
    repointed: dict[str, Any] = jsonb_field()
    at: datetime = created_at_field()


# ---------------------------------------------------------------- consent and break-glass (access to a person)
class ConsentPurpose(StrEnum):
    care = "care"
    share_asst = "share_asst"
    share_rsa = "share_rsa"
    share_ets = "share_ets"
    share_cvi = "share_cvi"


CONSENT_PURPOSE_LABELS = {
    "care": "Presa in carico e cura", "share_asst": "Condivisione con ASST", "share_rsa": "Condivisione con RSA",
    "share_ets": "Condivisione con enti del Terzo Settore", "share_cvi": "Condivisione con il Centro Vita Indipendente",
}


class GrantorKind(StrEnum):
    self = "self"
    parent_responsibility = "parent_responsibility"
    tutore = "tutore"
    ads = "ads"


class Consent(SQLModel, table=True):
    """A consent given by the person or their legal representative for one purpose and period.
    Revocation takes effect at once: checks read this table on every request, nothing is cached."""

    __tablename__ = "consent"
    __table_args__ = (sa.Index("ix_consent_person_purpose", "person_id", "purpose"),)

    id: uuid.UUID = id_field()
    person_id: uuid.UUID = fk("person.id", index=False)
    purpose: ConsentPurpose = Field(sa_type=sa.String(30))
    grantor_kind: GrantorKind = Field(sa_type=sa.String(30))
    grantor_relation_id: uuid.UUID | None = fk("person_relation.id", nullable=True)
    valid_from: date
    valid_to: date | None = None
    scope_note: str | None = Field(default=None, max_length=500)
    document_ref: str | None = Field(default=None, max_length=200)
    recorded_by: uuid.UUID = fk("app_user.id", index=False)
    recorded_at: datetime = created_at_field()
    revoked_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    revoked_by: uuid.UUID | None = None
    revocation_reason: str | None = Field(default=None, max_length=500)


class BreakGlassGrant(SQLModel, table=True):
    """Emergency access to one person outside the user's scope: mandatory reason, limited time, ends by itself."""

    __tablename__ = "break_glass_grant"
    __table_args__ = (sa.Index("ix_break_glass_active", "user_id", "person_id", "expires_at"),)

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = fk("app_user.id", index=False)
    person_id: uuid.UUID = fk("person.id")
    reason: str = Field(max_length=1000)
    started_at: datetime = created_at_field()
    expires_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    ended_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))



# Every foreign key to person.id is either re-pointed on merge or keeps the old id on purpose.
person_refs.register(PersonRelation, "person_id")
person_refs.register(PersonRelation, "related_person_id")
person_refs.register(Cartella, "person_id")  # its hook (close duplicate open cartelle first): deploy.composition
person_refs.register(Consent, "person_id")
person_refs.register(BreakGlassGrant, "person_id")
person_refs.keep_old_id(Person, "merged_into_id")
person_refs.keep_old_id(PossibleMatch, "person_a_id")
person_refs.keep_old_id(PossibleMatch, "person_b_id")
person_refs.keep_old_id(PersonMerge, "kept_id")
person_refs.keep_old_id(PersonMerge, "merged_id")
