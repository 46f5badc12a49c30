"""Liste d'attesa RSA (and the other UDO that keep one): the application with its assessment clock, the equipe's
decision, urgency, the beds the UDO declare free, and the offers. Every fact reporting needs (application,
assessment requested/done, listing, urgency, offers, admission, exits) is a dated column on these rows.

Positions are never stored: they are computed when a list is read (ranking.py)."""
from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from domain.kernel import person_refs
from domain.kernel.columns import created_at_field, fk, id_field, ts_field


class EntryState(StrEnum):
    assessment_pending = "assessment_pending"  # application filed, the joint VMD requested (30-day clock)
    not_listed = "not_listed"
    listed = "listed"  # waiting (ordinary or urgent: urgency is a tier, not a state)
    suspended = "suspended"  # second refusal: off the offers until the person confirms
    admitted = "admitted"
    withdrawn = "withdrawn"
    deceased = "deceased"
    admitted_elsewhere = "admitted_elsewhere"


ENTRY_STATE_LABELS = {
    "assessment_pending": "In attesa di valutazione", "not_listed": "Non inserita in lista",
    "listed": "In lista d'attesa", "suspended": "Sospesa (in attesa di conferma dopo il secondo rifiuto)",
    "admitted": "Ammessa", "withdrawn": "Ritirata", "deceased": "Deceduta",
    "admitted_elsewhere": "Ammessa altrove",
}


# The events of an entry's history (entity_history, one row per version), in Italian.
HISTORY_ACTION_LABELS = {
    "applied": "Domanda presentata", "assessed": "Valutazione conclusa", "vmd_updated": "VMD aggiornata",
    "listed": "Inserita in lista", "not_listed": "Non inserita in lista", "urgency_raised": "Urgenza segnalata",
    "urgency_confirmed": "Urgenza confermata", "urgency_rejected": "Urgenza respinta", "offered": "Posto offerto",
    "refused": "Offerta rifiutata", "suspended": "Sospesa in attesa di conferma",
    "confirmed": "Permanenza in lista confermata", "admitted": "Ingresso in struttura",
    "withdrawn": "Uscita dalle liste",
}


class Applicant(StrEnum):
    person = "person"
    relative = "relative"
    ads = "ads"
    social_worker = "social_worker"


APPLICANT_LABELS = {"person": "La persona", "relative": "Un familiare", "ads": "L'amministratore di sostegno",
                    "social_worker": "L'assistente sociale"}


class Caregiver(StrEnum):
    none = "none"
    present = "present"
    overloaded = "overloaded"


CAREGIVER_LABELS = {"none": "Nessun caregiver", "present": "Caregiver presente",
                    "overloaded": "Caregiver presente ma sovraccarico"}


class UrgencyState(StrEnum):
    none = "none"
    raised = "raised"
    confirmed = "confirmed"
    rejected = "rejected"


URGENCY_STATE_LABELS = {"none": "Nessuna", "raised": "Richiesta, da confermare", "confirmed": "Confermata",
                        "rejected": "Respinta"}


class UrgencyReason(StrEnum):
    loss_of_home = "loss_of_home"
    loss_of_sole_caregiver = "loss_of_sole_caregiver"
    protected_discharge = "protected_discharge"  # raised by the discharge flow (RSA chosen at discharge)
    other = "other"


URGENCY_REASON_LABELS = {"loss_of_home": "Perdita del domicilio",
                         "loss_of_sole_caregiver": "Perdita del caregiver unico",
                         "protected_discharge": "Dimissione protetta verso RSA", "other": "Altro"}


class ExitReason(StrEnum):
    withdrawn = "withdrawn"
    deceased = "deceased"
    admitted_elsewhere = "admitted_elsewhere"


class OfferState(StrEnum):
    open = "open"
    accepted = "accepted"
    refused = "refused"
    expired = "expired"  # counts as a refusal
    withdrawn = "withdrawn"  # the person left the list while the offer was open


OFFER_STATE_LABELS = {"open": "In attesa di risposta", "accepted": "Accettata", "refused": "Rifiutata",
                      "expired": "Scaduta (vale come rifiuto)", "withdrawn": "Ritirata"}


class BedState(StrEnum):
    free = "free"
    occupied = "occupied"


class WaitingListEntry(SQLModel, table=True):
    """One application of a person to one UDO type (RSA, CDI...), with its preferences (WaitingListChoice)."""

    __tablename__ = "waiting_list_entry"
    __table_args__ = (
        # one open application per person and UDO type: the discharge seam and a second application find it
        sa.Index("ux_waiting_list_entry_open", "person_id", "udo_type", unique=True,
                 postgresql_where=sa.text("state in ('assessment_pending', 'listed', 'suspended')")),
        sa.Index("ix_waiting_list_entry_list", "ambito_id", "udo_type", "state"),
        sa.Index("ix_waiting_list_entry_comune", "comune_id", "applied_at"),
        sa.Index("ix_waiting_list_entry_clock", "state", "assessment_due_at"),
    )

    id: uuid.UUID = id_field()
    ambito_id: uuid.UUID = fk("organisation.id", index=False)
    person_id: uuid.UUID = fk("person.id")
    comune_id: uuid.UUID | None = fk("organisation.id", nullable=True, index=False)  # residence: the row filter
    udo_type: str = Field(max_length=40)
    state: EntryState = Field(default=EntryState.assessment_pending, sa_type=sa.String(30))
    # the application
    applicant: Applicant = Field(sa_type=sa.String(20))
    applicant_name: str | None = Field(default=None, max_length=200)
    application_date: date
    applied_at: datetime = created_at_field()
    applied_by: uuid.UUID | None = fk("app_user.id", nullable=True, index=False)
    discharge_id: uuid.UUID | None = Field(default=None)  # opened by a protected discharge (no FK: no back edge)
    # the assessment (R2: done within 30 days of the application)
    cartella_id: uuid.UUID | None = fk("cartella.id", nullable=True, index=False)
    vmd_id: uuid.UUID | None = fk("vmd.id", nullable=True, index=False)
    assessment_team_id: uuid.UUID | None = fk("team.id", nullable=True, index=False)
    assessment_requested_at: datetime | None = ts_field()
    assessment_due_at: datetime | None = ts_field()
    assessed_at: datetime | None = ts_field()
    at_risk_at: datetime | None = ts_field()
    overdue_at: datetime | None = ts_field()
    # the equipe's decision (R1: listings / assessments requested)
    decided_at: datetime | None = ts_field()
    decided_by: uuid.UUID | None = fk("app_user.id", nullable=True, index=False)
    not_listed_reason: str | None = Field(default=None, max_length=1000)
    listed_at: datetime | None = ts_field()
    listing_date: date | None = None
    temporary_plan_id: uuid.UUID | None = fk("care_plan.id", nullable=True, index=False)
    # what the score is computed from, recorded at the decision (and at each VMD update)
    barthel: int | None = None
    caregiver: Caregiver | None = Field(default=None, sa_type=sa.String(20))
    lives_alone: bool | None = None
    # urgency
    urgency: UrgencyState = Field(default=UrgencyState.none, sa_type=sa.String(20))
    urgency_reason: UrgencyReason | None = Field(default=None, sa_type=sa.String(30))
    urgency_note: str | None = Field(default=None, max_length=2000)
    urgency_raised_at: datetime | None = ts_field()
    urgency_raised_by: uuid.UUID | None = fk("app_user.id", nullable=True, index=False)
    urgency_decided_at: datetime | None = ts_field()
    urgency_decided_by: uuid.UUID | None = fk("app_user.id", nullable=True, index=False)
    # offers, suspension, admission and exits
    refusals: int = 0
    suspended_at: datetime | None = ts_field()
    admitted_at: datetime | None = ts_field()
    admitted_unit_id: uuid.UUID | None = fk("service_unit.id", nullable=True, index=False)
    exit_reason: ExitReason | None = Field(default=None, sa_type=sa.String(30))
    exit_note: str | None = Field(default=None, max_length=1000)
    exited_at: datetime | None = ts_field()
    version: int = 1


class WaitingListChoice(SQLModel, table=True):
    """A UDO the applicant chose, in order of preference (rank 1 first)."""

    __tablename__ = "waiting_list_choice"
    __table_args__ = (sa.UniqueConstraint("entry_id", "unit_id"), sa.UniqueConstraint("entry_id", "rank"))

    id: uuid.UUID = id_field()
    entry_id: uuid.UUID = fk("waiting_list_entry.id", index=False)
    unit_id: uuid.UUID = fk("service_unit.id")
    rank: int


class WaitingListBed(SQLModel, table=True):
    """A bed (or place) a UDO declared free; occupied by the admission that accepted its offer."""

    __tablename__ = "waiting_list_bed"
    __table_args__ = (sa.Index("ix_waiting_list_bed_unit", "unit_id", "state"),)

    id: uuid.UUID = id_field()
    ambito_id: uuid.UUID = fk("organisation.id", index=False)
    unit_id: uuid.UUID = fk("service_unit.id", index=False)
    label: str | None = Field(default=None, max_length=60)
    state: BedState = Field(default=BedState.free, sa_type=sa.String(20))
    declared_at: datetime = created_at_field()
    declared_by: uuid.UUID = fk("app_user.id", index=False)
    occupied_at: datetime | None = ts_field()
    version: int = 1


class WaitingListOffer(SQLModel, table=True):
    """A free bed proposed to the best-placed eligible entry. The two partial unique indexes are the concurrency
    guarantee: a bed has at most one open offer, a person holds at most one open offer."""

    __tablename__ = "waiting_list_offer"
    __table_args__ = (
        sa.Index("ux_waiting_list_offer_open_bed", "bed_id", unique=True,
                 postgresql_where=sa.text("state = 'open'")),
        sa.Index("ux_waiting_list_offer_open_person", "person_id", unique=True,
                 postgresql_where=sa.text("state = 'open'")),
        sa.Index("ux_waiting_list_offer_accepted_bed", "bed_id", unique=True,
                 postgresql_where=sa.text("state = 'accepted'")),
        sa.Index("ix_waiting_list_offer_entry", "entry_id", "proposed_at"),
        sa.Index("ix_waiting_list_offer_due", "reply_due_at", postgresql_where=sa.text("state = 'open'")),
    )

    id: uuid.UUID = id_field()
    ambito_id: uuid.UUID = fk("organisation.id", index=False)
    bed_id: uuid.UUID = fk("waiting_list_bed.id", index=False)
    unit_id: uuid.UUID = fk("service_unit.id", index=False)
    entry_id: uuid.UUID = fk("waiting_list_entry.id", index=False)
    person_id: uuid.UUID = fk("person.id", index=False)
    state: OfferState = Field(default=OfferState.open, sa_type=sa.String(20))
    proposed_at: datetime = created_at_field()
    proposed_by: uuid.UUID | None = fk("app_user.id", nullable=True, index=False)
    position: int  # the entry's position on the unit's list when the bed was offered
    score: float
    urgent: bool = False
    received_at: datetime | None = ts_field()  # the person (or their representative) received the offer
    received_by: str | None = Field(default=None, max_length=30)  # "person" or the representative's relation kind
    received_by_relation_id: uuid.UUID | None = Field(default=None)  # the representative (registry relation)
    reply_due_at: datetime | None = ts_field()
    replied_at: datetime | None = ts_field()
    refusal_reason: str | None = Field(default=None, max_length=1000)
    closed_at: datetime | None = ts_field()


person_refs.register(WaitingListEntry, "person_id")
person_refs.register(WaitingListOffer, "person_id")
