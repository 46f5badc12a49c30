"""discharge: protected discharges (dimissioni protette), one row per case with the facts D3-D7 are computed from.

Revision ID: 0034_discharge
Revises: 0033_business_clock
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

from domain.kernel.settings import get_settings

revision = "0034_discharge"
down_revision = "0033_business_clock"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "discharge_case",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=30), nullable=False),
        sa.Column("ward_org_id", sa.Uuid(), nullable=False),
        sa.Column("opened_by", sa.Uuid(), nullable=False),
        sa.Column("signalled_at", sa.DateTime(timezone=True), server_default=sa.text("app_now()"), nullable=False),
        sa.Column("admission_date", sa.Date(), nullable=False),
        sa.Column("expected_discharge_date", sa.Date(), nullable=False),
        sa.Column("criteria", postgresql.ARRAY(sa.String(length=60)), nullable=False),
        sa.Column("social_risk", sa.Boolean(), nullable=False),
        sa.Column("clinician_summary", sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=False),
        sa.Column("cot_org_id", sa.Uuid(), nullable=True),
        sa.Column("comune_id", sa.Uuid(), nullable=True),
        sa.Column("out_of_ambito", sa.Boolean(), nullable=False),
        sa.Column("cot_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("evaluation_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("at_risk_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("overdue_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("vmd_id", sa.Uuid(), nullable=True),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("evaluation_hours", sa.Float(), nullable=True),
        sa.Column("setting", sa.String(length=30), nullable=True),
        sa.Column("setting_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("plan_id", sa.Uuid(), nullable=True),
        sa.Column("project_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("services", postgresql.ARRAY(sa.String(length=30)), nullable=False),
        sa.Column("services_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("discharged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("exit_reason", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("exit_note", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["ambito_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.ForeignKeyConstraint(["ward_org_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["opened_by"], ["app_user.id"]),
        sa.ForeignKeyConstraint(["cot_org_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["comune_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["vmd_id"], ["vmd.id"]),
        sa.ForeignKeyConstraint(["plan_id"], ["care_plan.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_discharge_case_person_id"), "discharge_case", ["person_id"], unique=False)
    op.create_index("ix_discharge_case_cot_open", "discharge_case", ["cot_org_id", "evaluation_due_at"],
                    unique=False)
    op.create_index("ix_discharge_case_ward", "discharge_case", ["ward_org_id", "signalled_at"], unique=False)
    op.create_index("ix_discharge_case_comune", "discharge_case", ["comune_id", "signalled_at"], unique=False)
    op.create_index("ix_discharge_case_ambito", "discharge_case", ["ambito_id", "signalled_at", "id"],
                    unique=False)
    app = get_settings().app_db_role
    op.execute(f'grant select, insert, update, delete on discharge_case to "{app}"')


def downgrade() -> None:
    op.drop_table("discharge_case")
