"""Celery broker and result tables on Postgres (kombu's SQLAlchemy transport, Celery's database backend).

The application role cannot create tables, so the tables kombu and Celery would create on first use are created
here by the owner, exactly as `metadata.create_all` of kombu 5.7 / Celery 5.7 would (tests compare them), and the
application role gets DML on them and nextval on their sequences. With BROKER_URL=redis://... they stay unused.

Revision ID: 0005_broker
Revises: 0004_registry
"""
import sqlalchemy as sa
from alembic import op

from domain.kernel.settings import get_settings

revision = "0005_broker"
down_revision = "0004_registry"
branch_labels = None
depends_on = None

TABLES = ("kombu_queue", "kombu_message", "celery_taskmeta", "celery_tasksetmeta")
SEQUENCES = ("queue_id_sequence", "message_id_sequence", "task_id_sequence", "taskset_id_sequence")


def upgrade() -> None:
    for seq in SEQUENCES:
        op.execute(sa.schema.CreateSequence(sa.Sequence(seq)))

    # kombu.transport.sqlalchemy.models (Queue / Message)
    op.create_table(
        "kombu_queue",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name="kombu_queue_pkey"),
        sa.UniqueConstraint("name", name="kombu_queue_name_key"),
    )
    op.create_table(
        "kombu_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visible", sa.Boolean(), nullable=True),
        sa.Column("timestamp", sa.DateTime(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("version", sa.SmallInteger(), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="kombu_message_pkey"),
        sa.ForeignKeyConstraint(["queue_id"], ["kombu_queue.id"], name="FK_kombu_message_queue"),
    )
    op.create_index("ix_kombu_message_timestamp", "kombu_message", ["timestamp"])
    op.create_index("ix_kombu_message_visible", "kombu_message", ["visible"])
    op.create_index("ix_kombu_message_timestamp_id", "kombu_message", ["timestamp", "id"])

    # celery.backends.database.models (TaskExtended shares celery_taskmeta with Task / TaskSet)
    op.create_table(
        "celery_taskmeta",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.String(155), nullable=True),
        sa.Column("status", sa.String(50), nullable=True),
        sa.Column("result", sa.LargeBinary(), nullable=True),
        sa.Column("date_done", sa.DateTime(), nullable=True),
        sa.Column("traceback", sa.Text(), nullable=True),
        sa.Column("children", sa.LargeBinary(), nullable=True),
        sa.Column("name", sa.String(155), nullable=True),
        sa.Column("args", sa.LargeBinary(), nullable=True),
        sa.Column("kwargs", sa.LargeBinary(), nullable=True),
        sa.Column("worker", sa.String(155), nullable=True),
        sa.Column("retries", sa.Integer(), nullable=True),
        sa.Column("queue", sa.String(155), nullable=True),
        sa.Column("stamps", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="celery_taskmeta_pkey"),
        sa.UniqueConstraint("task_id", name="celery_taskmeta_task_id_key"),
    )
    op.create_index("ix_celery_taskmeta_date_done", "celery_taskmeta", ["date_done"])
    op.create_table(
        "celery_tasksetmeta",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("taskset_id", sa.String(155), nullable=True),
        sa.Column("result", sa.LargeBinary(), nullable=True),
        sa.Column("date_done", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="celery_tasksetmeta_pkey"),
        sa.UniqueConstraint("taskset_id", name="celery_tasksetmeta_taskset_id_key"),
    )
    op.create_index("ix_celery_tasksetmeta_date_done", "celery_tasksetmeta", ["date_done"])

    app = get_settings().app_db_role
    op.execute(f'grant select, insert, update, delete on {", ".join(TABLES)} to "{app}"')
    op.execute(f'grant usage, select, update on sequence {", ".join(SEQUENCES)} to "{app}"')


def downgrade() -> None:
    for name in ("celery_tasksetmeta", "celery_taskmeta", "kombu_message", "kombu_queue"):
        op.drop_table(name)
    for seq in SEQUENCES:
        op.execute(sa.schema.DropSequence(sa.Sequence(seq)))
