"""The Celery app: `celery -A workers.celery_app worker --pool=threads -c 2` and `celery -A workers.celery_app beat`.

Broker: settings.celery_broker_url — by default kombu's SQLAlchemy transport on the application's own Postgres
(`sqla+postgresql+psycopg://…`, tables from migration 0005_broker); BROKER_URL=redis://… switches to Redis.
Only JSON crosses the broker. Messages carry no durable state: the relay reads the `job` table, so a lost message
(kombu's SQL transport loses the one a killed worker had fetched) costs at most one beat interval.
"""
from __future__ import annotations

from datetime import timedelta

from celery import Celery, signals

from domain.kernel.settings import get_settings


def relay_seconds() -> float:
    return float(get_settings().job_relay_seconds)


def make_app() -> Celery:
    s = get_settings()
    app = Celery("pua", broker=s.celery_broker_url, backend=s.celery_result_backend, include=["workers.tasks"])
    relay, sweep = relay_seconds(), float(s.job_sweep_seconds)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,  # durable outcomes live in our tables; tasks that need a result opt in
        result_expires=timedelta(days=1),
        broker_connection_retry_on_startup=True,
        enable_utc=True,
        timezone=s.timezone,
        worker_hijack_root_logger=False,
        beat_schedule={
            # `expires`: while no worker runs, stale wake-ups are dropped instead of piling up.
            "relay-jobs": {"task": "workers.tasks.relay_jobs", "schedule": relay, "options": {"expires": relay * 2}},
            "sweep-leases": {"task": "workers.tasks.sweep_leases", "schedule": sweep,
                             "options": {"expires": sweep * 2}},
            # Hourly, so a service started late in the day still runs today's; the jobs dedupe per day.
            "daily-jobs": {"task": "workers.tasks.daily_jobs", "schedule": s.daily_jobs_seconds,
                           "options": {"expires": s.daily_jobs_seconds}},
        },
    )
    return app


app = make_app()


@signals.worker_init.connect
def _load_handlers(**_kwargs) -> None:
    import domain.kernel.db  # noqa: F401  (a shifted business clock reaches column defaults)
    from deploy.composition import compose

    compose()
