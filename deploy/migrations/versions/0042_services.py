"""services and measures: accreditations, activation orders, the delivery log and the weeks flagged below the
threshold; the measure catalogue (seeded with the measures the seed names), calls with their budget, applications.

Revision ID: 0042_services
Revises: 0041_fhir_search
"""
import sqlalchemy as sa
from alembic import op

from domain.kernel.settings import get_settings

revision = "0042_services"
down_revision = "0041_fhir_search"
branch_labels = None
depends_on = None

TABLES = ('measure', 'measure_call', 'service_accreditation', 'measure_application', 'service_activation', 'service_delivery', 'service_suspension', 'service_week_flag')

# The measures the seed names (domain brief §3.6). Amounts and caps are left empty where the seed gives none; the
# Ambito sets them (docs/decisions/services.md). Pro.Vi runs May → April.
MEASURES = [
    {"code": "b1", "label": "Misura B1 (FNA - disabilità gravissima)", "funding_source": "fna",
      "vmd_trigger": "measure_b1", "period_rule": "from_start", "start_month": None, "months": 12,
      "eligibility_notes": "VMD della CSC con ASST e comuni; regole operative in definizione (default in docs)."},
    {"code": "b2", "label": "Misura B2 (FNA - disabilità grave e non autosufficienza)", "funding_source": "fna",
      "vmd_trigger": "measure_b2", "period_rule": "from_start", "start_month": None, "months": 12,
      "eligibility_notes": "Accordo Ambito-ASST in definizione (default in docs)."},
    {"code": "dopo_di_noi", "label": "Dopo di Noi (L. 112/2016)", "funding_source": "dopo_di_noi",
      "vmd_trigger": "dopo_di_noi", "period_rule": "from_start", "start_month": None, "months": 12,
      "eligibility_notes": "Disabilità grave, percorsi di autonomia o residenzialità; VMD richiesta."},
    {"code": "pro_vi", "label": "Progetto di Vita Indipendente (Pro.Vi)", "funding_source": "fna",
      "vmd_trigger": "pro_vi", "period_rule": "fixed_months", "start_month": 5, "months": 12,
      "eligibility_notes": "Un anno da maggio ad aprile dopo l'ammissione di ATS; VMD richiesta."},
    {"code": "voucher_autismo", "label": "Voucher autismo", "funding_source": "fna", "vmd_trigger": "asd",
      "period_rule": "from_start", "start_month": None, "months": 12, "eligibility_notes": None},
    {"code": "voucher_sociosanitario", "label": "Voucher sociosanitario", "funding_source": "fna",
      "vmd_trigger": "measure_b1", "period_rule": "from_start", "start_month": None, "months": 12,
      "eligibility_notes": None},
]


def upgrade() -> None:

    op.create_table('measure',
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('funding_source', sa.String(length=40), nullable=True),
    sa.Column('vmd_trigger', sa.String(length=30), nullable=True),
    sa.Column('period_rule', sa.String(length=20), nullable=False),
    sa.Column('start_month', sa.Integer(), nullable=True),
    sa.Column('months', sa.Integer(), nullable=False),
    sa.Column('max_amount', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('yearly_budget', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('eligibility_notes', sa.String(length=2000), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('code')
    )
    op.create_table('measure_call',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('ambito_id', sa.Uuid(), nullable=False),
    sa.Column('measure_code', sa.String(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('opens_on', sa.Date(), nullable=False),
    sa.Column('closes_on', sa.Date(), nullable=False),
    sa.Column('budget', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('app_now()'), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['ambito_id'], ['organisation.id'], ),
    sa.ForeignKeyConstraint(['created_by'], ['app_user.id'], ),
    sa.ForeignKeyConstraint(['measure_code'], ['measure.code'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_measure_call_measure', 'measure_call', ['ambito_id', 'measure_code', 'opens_on'], unique=False)
    op.create_table('service_accreditation',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('ambito_id', sa.Uuid(), nullable=False),
    sa.Column('organisation_id', sa.Uuid(), nullable=False),
    sa.Column('service_type', sa.String(), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.Column('unit_cost', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('reference', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('app_now()'), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.ForeignKeyConstraint(['ambito_id'], ['organisation.id'], ),
    sa.ForeignKeyConstraint(['created_by'], ['app_user.id'], ),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], ),
    sa.ForeignKeyConstraint(['service_type'], ['service_type.code'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_service_accreditation_org', 'service_accreditation', ['organisation_id', 'service_type', 'valid_from'], unique=False)
    op.create_table('measure_application',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('ambito_id', sa.Uuid(), nullable=False),
    sa.Column('call_id', sa.Uuid(), nullable=False),
    sa.Column('measure_code', sa.String(), nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('comune_id', sa.Uuid(), nullable=True),
    sa.Column('cartella_id', sa.Uuid(), nullable=True),
    sa.Column('application_date', sa.Date(), nullable=False),
    sa.Column('applied_at', sa.DateTime(timezone=True), server_default=sa.text('app_now()'), nullable=False),
    sa.Column('applied_by', sa.Uuid(), nullable=True),
    sa.Column('state', sa.String(length=30), nullable=False),
    sa.Column('requested_amount', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('vmd_id', sa.Uuid(), nullable=True),
    sa.Column('need_score', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.Uuid(), nullable=True),
    sa.Column('not_eligible_reason', sa.String(length=1000), nullable=True),
    sa.Column('plan_id', sa.Uuid(), nullable=True),
    sa.Column('amount', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('period_start', sa.Date(), nullable=True),
    sa.Column('period_end', sa.Date(), nullable=True),
    sa.Column('waiting_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('activated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('monitoring_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.String(length=30), nullable=True),
    sa.Column('end_note', sa.String(length=1000), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['ambito_id'], ['organisation.id'], ),
    sa.ForeignKeyConstraint(['applied_by'], ['app_user.id'], ),
    sa.ForeignKeyConstraint(['call_id'], ['measure_call.id'], ),
    sa.ForeignKeyConstraint(['cartella_id'], ['cartella.id'], ),
    sa.ForeignKeyConstraint(['comune_id'], ['organisation.id'], ),
    sa.ForeignKeyConstraint(['decided_by'], ['app_user.id'], ),
    sa.ForeignKeyConstraint(['measure_code'], ['measure.code'], ),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['plan_id'], ['care_plan.id'], ),
    sa.ForeignKeyConstraint(['vmd_id'], ['vmd.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_measure_application_call', 'measure_application', ['call_id', 'state'], unique=False)
    op.create_index('ix_measure_application_comune', 'measure_application', ['comune_id'], unique=False)
    op.create_index('ix_measure_application_list', 'measure_application', ['ambito_id', 'applied_at', 'id'], unique=False)
    op.create_index('ix_measure_application_period', 'measure_application', ['state', 'period_end'], unique=False)
    op.create_index(op.f('ix_measure_application_person_id'), 'measure_application', ['person_id'], unique=False)
    op.create_index('ux_measure_application_open', 'measure_application', ['person_id', 'call_id'], unique=True, postgresql_where=sa.text("state not in ('not_eligible', 'ended', 'withdrawn')"))
    op.create_table('service_activation',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('ambito_id', sa.Uuid(), nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('comune_id', sa.Uuid(), nullable=True),
    sa.Column('cartella_id', sa.Uuid(), nullable=False),
    sa.Column('plan_id', sa.Uuid(), nullable=False),
    sa.Column('intervention_id', sa.Uuid(), nullable=False),
    sa.Column('case_manager_id', sa.Uuid(), nullable=True),
    sa.Column('provider_org_id', sa.Uuid(), nullable=False),
    sa.Column('service_type', sa.String(), nullable=False),
    sa.Column('intensity_value', sa.Numeric(precision=8, scale=2), nullable=False),
    sa.Column('intensity_unit', sa.String(length=20), nullable=False),
    sa.Column('unit_cost', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('funding_source', sa.String(), nullable=True),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=True),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), server_default=sa.text('app_now()'), nullable=False),
    sa.Column('requested_by', sa.Uuid(), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('answered_by', sa.Uuid(), nullable=True),
    sa.Column('decline_reason', sa.String(length=1000), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('suspended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('suspension_reason', sa.String(length=1000), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.String(length=30), nullable=True),
    sa.Column('end_note', sa.String(length=1000), nullable=True),
    sa.Column('notes', sa.String(length=2000), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['ambito_id'], ['organisation.id'], ),
    sa.ForeignKeyConstraint(['answered_by'], ['app_user.id'], ),
    sa.ForeignKeyConstraint(['cartella_id'], ['cartella.id'], ),
    sa.ForeignKeyConstraint(['case_manager_id'], ['app_user.id'], ),
    sa.ForeignKeyConstraint(['comune_id'], ['organisation.id'], ),
    sa.ForeignKeyConstraint(['funding_source'], ['funding_source.code'], ),
    sa.ForeignKeyConstraint(['intervention_id'], ['care_plan_intervention.id'], ),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['plan_id'], ['care_plan.id'], ),
    sa.ForeignKeyConstraint(['provider_org_id'], ['organisation.id'], ),
    sa.ForeignKeyConstraint(['requested_by'], ['app_user.id'], ),
    sa.ForeignKeyConstraint(['service_type'], ['service_type.code'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_service_activation_comune', 'service_activation', ['comune_id', 'requested_at'], unique=False)
    op.create_index('ix_service_activation_list', 'service_activation', ['ambito_id', 'requested_at', 'id'], unique=False)
    op.create_index(op.f('ix_service_activation_person_id'), 'service_activation', ['person_id'], unique=False)
    op.create_index(op.f('ix_service_activation_plan_id'), 'service_activation', ['plan_id'], unique=False)
    op.create_index('ix_service_activation_provider', 'service_activation', ['provider_org_id', 'state'], unique=False)
    op.create_index('ix_service_activation_running', 'service_activation', ['state', 'service_type'], unique=False)
    op.create_index('ux_service_activation_open', 'service_activation', ['intervention_id'], unique=True, postgresql_where=sa.text("state in ('requested', 'accepted', 'active', 'suspended')"))
    op.create_table('service_delivery',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('activation_id', sa.Uuid(), nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('provider_org_id', sa.Uuid(), nullable=False),
    sa.Column('delivered_on', sa.Date(), nullable=False),
    sa.Column('hours', sa.Numeric(precision=8, scale=2), nullable=True),
    sa.Column('accesses', sa.Integer(), nullable=True),
    sa.Column('operator_user_id', sa.Uuid(), nullable=False),
    sa.Column('operator_name', sa.String(length=200), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), server_default=sa.text('app_now()'), nullable=False),
    sa.Column('recorded_by', sa.Uuid(), nullable=False),
    sa.CheckConstraint('accesses is null or accesses >= 0', name='ck_service_delivery_accesses'),
    sa.CheckConstraint('hours is null or hours >= 0', name='ck_service_delivery_hours'),
    sa.ForeignKeyConstraint(['activation_id'], ['service_activation.id'], ),
    sa.ForeignKeyConstraint(['operator_user_id'], ['app_user.id'], ),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['provider_org_id'], ['organisation.id'], ),
    sa.ForeignKeyConstraint(['recorded_by'], ['app_user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_service_delivery_activation', 'service_delivery', ['activation_id', 'delivered_on', 'id'], unique=False)
    op.create_index(op.f('ix_service_delivery_person_id'), 'service_delivery', ['person_id'], unique=False)
    op.create_table('service_suspension',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('activation_id', sa.Uuid(), nullable=False),
    sa.Column('from_date', sa.Date(), nullable=False),
    sa.Column('to_date', sa.Date(), nullable=True),
    sa.Column('reason', sa.String(length=1000), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('app_now()'), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.ForeignKeyConstraint(['activation_id'], ['service_activation.id'], ),
    sa.ForeignKeyConstraint(['created_by'], ['app_user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_service_suspension_activation', 'service_suspension', ['activation_id', 'from_date'], unique=False)
    op.create_table('service_week_flag',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('activation_id', sa.Uuid(), nullable=False),
    sa.Column('week_start', sa.Date(), nullable=False),
    sa.Column('planned', sa.Numeric(precision=8, scale=2), nullable=False),
    sa.Column('delivered', sa.Numeric(precision=8, scale=2), nullable=False),
    sa.Column('flagged_at', sa.DateTime(timezone=True), server_default=sa.text('app_now()'), nullable=False),
    sa.Column('work_item_id', sa.Uuid(), nullable=True),
    sa.ForeignKeyConstraint(['activation_id'], ['service_activation.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('activation_id', 'week_start', name='ux_service_week_flag')
    )
    measure = sa.table("measure", *(sa.column(c) for c in ("code", "label", "funding_source", "vmd_trigger",
                                                             "period_rule", "start_month", "months",
                                                             "eligibility_notes", "active")))
    op.bulk_insert(measure, [{**m, "active": True} for m in MEASURES])
    app = get_settings().app_db_role
    for table in TABLES:
        op.execute(f'grant select, insert, update, delete on {table} to "{app}"')


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
