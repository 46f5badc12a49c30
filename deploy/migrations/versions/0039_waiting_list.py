"""waiting_list: RSA (and other UDO) waiting lists: applications with their preferences, beds declared free, offers.
Two partial unique indexes on open offers (one per bed, one per person) are the concurrency guarantee.

Revision ID: 0039_waiting_list
Revises: 0038_person_nocf_indexes
"""
import sqlalchemy as sa
from alembic import op

from domain.kernel.settings import get_settings

revision = "0039_waiting_list"
down_revision = "0038_person_nocf_indexes"
branch_labels = None
depends_on = None

TABLES = ("waiting_list_entry", "waiting_list_choice", "waiting_list_bed", "waiting_list_offer")


def upgrade() -> None:
    op.create_table(
        "waiting_list_entry",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("comune_id", sa.Uuid(), nullable=True),
        sa.Column("udo_type", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=30), nullable=False),
        sa.Column("applicant", sa.String(length=20), nullable=False),
        sa.Column("applicant_name", sa.String(length=200), nullable=True),
        sa.Column("application_date", sa.Date(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), server_default=sa.text("app_now()"), nullable=False),
        sa.Column("applied_by", sa.Uuid(), nullable=True),
        sa.Column("discharge_id", sa.Uuid(), nullable=True),
        sa.Column("cartella_id", sa.Uuid(), nullable=True),
        sa.Column("vmd_id", sa.Uuid(), nullable=True),
        sa.Column("assessment_team_id", sa.Uuid(), nullable=True),
        sa.Column("assessment_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("assessment_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("assessed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("at_risk_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("overdue_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("not_listed_reason", sa.String(length=1000), nullable=True),
        sa.Column("listed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("listing_date", sa.Date(), nullable=True),
        sa.Column("temporary_plan_id", sa.Uuid(), nullable=True),
        sa.Column("barthel", sa.Integer(), nullable=True),
        sa.Column("caregiver", sa.String(length=20), nullable=True),
        sa.Column("lives_alone", sa.Boolean(), nullable=True),
        sa.Column("urgency", sa.String(length=20), nullable=False),
        sa.Column("urgency_reason", sa.String(length=30), nullable=True),
        sa.Column("urgency_note", sa.String(length=2000), nullable=True),
        sa.Column("urgency_raised_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("urgency_raised_by", sa.Uuid(), nullable=True),
        sa.Column("urgency_decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("urgency_decided_by", sa.Uuid(), nullable=True),
        sa.Column("refusals", sa.Integer(), nullable=False),
        sa.Column("suspended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("admitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("admitted_unit_id", sa.Uuid(), nullable=True),
        sa.Column("exit_reason", sa.String(length=30), nullable=True),
        sa.Column("exit_note", sa.String(length=1000), nullable=True),
        sa.Column("exited_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["admitted_unit_id"], ["service_unit.id"]),
        sa.ForeignKeyConstraint(["ambito_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["applied_by"], ["app_user.id"]),
        sa.ForeignKeyConstraint(["assessment_team_id"], ["team.id"]),
        sa.ForeignKeyConstraint(["cartella_id"], ["cartella.id"]),
        sa.ForeignKeyConstraint(["comune_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["decided_by"], ["app_user.id"]),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.ForeignKeyConstraint(["temporary_plan_id"], ["care_plan.id"]),
        sa.ForeignKeyConstraint(["urgency_decided_by"], ["app_user.id"]),
        sa.ForeignKeyConstraint(["urgency_raised_by"], ["app_user.id"]),
        sa.ForeignKeyConstraint(["vmd_id"], ["vmd.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_waiting_list_entry_clock", "waiting_list_entry", ["state", "assessment_due_at"], unique=False)
    op.create_index("ix_waiting_list_entry_comune", "waiting_list_entry", ["comune_id", "applied_at"], unique=False)
    op.create_index("ix_waiting_list_entry_list", "waiting_list_entry", ["ambito_id", "udo_type", "state"], unique=False)
    op.create_index("ix_waiting_list_entry_person_id", "waiting_list_entry", ["person_id"], unique=False)
    op.create_index("ux_waiting_list_entry_open", "waiting_list_entry", ["person_id", "udo_type"], unique=True,
                    postgresql_where=sa.text("state in ('assessment_pending', 'listed', 'suspended')"))
    op.create_table(
        "waiting_list_choice",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["waiting_list_entry.id"]),
        sa.ForeignKeyConstraint(["unit_id"], ["service_unit.id"]),
        sa.UniqueConstraint("entry_id", "rank"),
        sa.UniqueConstraint("entry_id", "unit_id"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_waiting_list_choice_unit_id", "waiting_list_choice", ["unit_id"], unique=False)
    op.create_table(
        "waiting_list_bed",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("label", sa.String(length=60), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("declared_at", sa.DateTime(timezone=True), server_default=sa.text("app_now()"), nullable=False),
        sa.Column("declared_by", sa.Uuid(), nullable=False),
        sa.Column("occupied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["ambito_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["declared_by"], ["app_user.id"]),
        sa.ForeignKeyConstraint(["unit_id"], ["service_unit.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_waiting_list_bed_unit", "waiting_list_bed", ["unit_id", "state"], unique=False)
    op.create_table(
        "waiting_list_offer",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("bed_id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), server_default=sa.text("app_now()"), nullable=False),
        sa.Column("proposed_by", sa.Uuid(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_by", sa.String(length=30), nullable=True),
        sa.Column("received_by_relation_id", sa.Uuid(), nullable=True),
        sa.Column("reply_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refusal_reason", sa.String(length=1000), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["ambito_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["bed_id"], ["waiting_list_bed.id"]),
        sa.ForeignKeyConstraint(["entry_id"], ["waiting_list_entry.id"]),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.ForeignKeyConstraint(["proposed_by"], ["app_user.id"]),
        sa.ForeignKeyConstraint(["unit_id"], ["service_unit.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_waiting_list_offer_due", "waiting_list_offer", ["reply_due_at"], unique=False,
                    postgresql_where=sa.text("state = 'open'"))
    op.create_index("ix_waiting_list_offer_entry", "waiting_list_offer", ["entry_id", "proposed_at"], unique=False)
    op.create_index("ux_waiting_list_offer_accepted_bed", "waiting_list_offer", ["bed_id"], unique=True,
                    postgresql_where=sa.text("state = 'accepted'"))
    op.create_index("ux_waiting_list_offer_open_bed", "waiting_list_offer", ["bed_id"], unique=True,
                    postgresql_where=sa.text("state = 'open'"))
    op.create_index("ux_waiting_list_offer_open_person", "waiting_list_offer", ["person_id"], unique=True,
                    postgresql_where=sa.text("state = 'open'"))
    app = get_settings().app_db_role
    for table in TABLES:
        op.execute(f'grant select, insert, update, delete on {table} to "{app}"')


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
