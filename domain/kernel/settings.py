"""Configuration, read once from the environment (and `.env`)."""
from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # Database: the application role (no DDL, no UPDATE/DELETE on audit) and the owner role for migrations.
    database_url: str = "postgresql+asyncpg://pua_app@127.0.0.1:54329/pua"
    migration_database_url: str | None = None
    app_db_role: str = "pua_app"
    db_pool_size: int = 10
    db_echo: bool = False
    # Database faults (docs/operations.md, runbook): opening a connection, waiting for a pooled one and running one
    # statement are bounded, so a database that is down or restarting is answered with 503 and Retry-After
    # (DB_RETRY_AFTER_SECONDS) instead of a hang; the pool is renewed by itself once the server is back.
    db_connect_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    db_pool_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    db_command_timeout_seconds: float = Field(default=60.0, gt=0)
    db_retry_after_seconds: int = Field(default=5, ge=1, le=3600)

    # Embedded Postgres used by `make run` when DATABASE_URL is not given.
    pg_data_dir: Path = Path("/var/tmp/pua-crema/pg")
    pg_port: int = 54329

    # Celery: the broker defaults to the same Postgres; BROKER_URL=redis://... switches to Redis.
    broker_url: str | None = None
    result_backend: str | None = None
    job_lease_seconds: int = 60
    job_max_attempts: int = 5
    job_sweep_seconds: float = 15.0
    job_backoff_base_seconds: float = 15.0
    job_backoff_max_seconds: float = 3600.0
    job_relay_seconds: float = 5.0
    job_relay_budget_seconds: float = 25.0
    job_wake_min_interval_seconds: float = 0.2
    daily_jobs_seconds: float = 3600.0

    # Tokens
    jwt_issuer: str = "https://pua.ambito-crema.example/auth"
    jwt_audience: str = "pua-crema-api"
    jwt_algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"])
    jwt_public_key_file: Path | None = None
    jwt_private_key_file: Path | None = None
    jwks_url: str | None = None
    jwks_cache_seconds: int = 300
    # Floor on JWKS downloads for a token whose kid is unknown (a rotation): at most one per this many seconds, so
    # tokens with made-up kids cannot hammer the identity provider. A dropped key is refused at the latest
    # JWKS_CACHE_SECONDS after it left the provider's JWKS (docs/operations.md, key rotation).
    jwks_min_refetch_seconds: float = Field(default=10.0, ge=0.1, le=3600)
    dev_keys_dir: Path = ROOT / ".data" / "keys"
    dev_token_minutes: int = 480
    principal_cache_seconds: float = 30.0
    # Longest lifetime (exp - iat) a token may claim: a stolen token without a sane expiry stays usable for ever.
    jwt_max_lifetime_seconds: int = 12 * 3600

    # Development switch: development signing keys (no JWKS_URL / JWT_PUBLIC_KEY_FILE) and demo users are allowed
    # only when it is on. `make run` and the tests turn it on; a production deployment never does.
    dev_mode: bool = False

    # Request bodies: JSON routes get request_max_bytes; the attachment upload gets ATTACHMENT_MAX_BYTES plus the
    # multipart overhead (boundaries, part headers, the form fields). Refused with 413 before the body is read.
    request_max_bytes: int = 1024 * 1024
    fhir_bundle_max_bytes: int = 2 * 1024 * 1024  # POST /fhir: a transaction Bundle (FHIR_BUNDLE_MAX_BYTES)
    # Outbound to ASST (docs/readme/fhir.md "Outbound to ASST"): unset base URL = nothing is sent, messages stay
    # pending and visible. A message is dead after OUTBOX_MAX_ATTEMPTS failed attempts, spaced base * 2**(n-1) s.
    asst_fhir_base_url: str | None = None
    asst_fhir_token: str | None = None  # bearer token for ASST's FHIR server, when it wants one
    asst_fhir_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    outbox_max_attempts: int = Field(default=8, ge=1, le=50)
    outbox_backoff_base_seconds: float = Field(default=30.0, ge=0)
    outbox_backoff_max_seconds: float = Field(default=3600.0, ge=0)
    attachment_upload_overhead_bytes: int = 64 * 1024
    # Key that seals list cursors (domain.kernel.cursor); every API replica needs the same one.
    cursor_key: str | None = None

    # Person search: searches per user per minute (0 switches the brake off); see domain.kernel.ratelimit.
    person_search_per_minute: int = 60

    # De-duplication
    dedup_candidate_threshold: float = 0.55
    dedup_name_similarity_floor: float = 0.3

    # Imports from an older platform (domain.imports): largest file accepted, most rows per file, rows a worker
    # commits at a time (a killed worker loses at most one chunk and redoes it).
    import_max_bytes: int = 50 * 1024 * 1024
    import_max_rows: int = 200_000
    import_chunk_rows: int = 500
    # New persons with nothing else to decide are written together (domain.imports.service._fast); off: one by one.
    import_fast_path: bool = True

    # Report export jobs (domain.reporting.exports): hours a finished file stays downloadable, where the files
    # live (content-addressed like attachments, a directory of their own so expiry never touches an attachment),
    # and an optional cap on that directory (bytes; 0 = the volume's size; reached, the export fails as "disk full").
    report_export_ttl_hours: float = Field(default=72, gt=0, le=24 * 365)
    report_exports_dir: Path = ROOT / ".data" / "report-exports"
    report_exports_quota_bytes: int = Field(default=0, ge=0)

    # Audit trail (0043_audit_partitions): monthly partitions are made this many months ahead by a daily job.
    audit_partitions_ahead_months: int = Field(default=3, ge=1, le=24)

    # Extra folders of instrument definitions (YAML) beside schemas/instruments/.
    instruments_extra_dirs: list[Path] = Field(default_factory=list)
    # Attachments: stored outside the row data, addressed by checksum.
    attachments_dir: Path = ROOT / ".data" / "attachments"
    attachment_max_bytes: int = 10 * 1024 * 1024
    # Optional cap on the whole store (bytes; 0 = only the volume's size). Reached, an upload gets 507 like a full
    # volume. It adds up the store's files at each upload: for a small volume, or to emulate a full disk in a test.
    attachments_quota_bytes: int = Field(default=0, ge=0)
    attachment_content_types: list[str] = Field(default_factory=lambda: [
        "application/pdf", "image/jpeg", "image/png", "text/plain",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"])

    # PUA: working days to triage a registered request.
    pua_triage_due_working_days: int = 2
    # PUA referral of an adult (18-64) without an area: the cartella area the request's needs point to, when they
    # all point to one; otherwise "non_noto" (never "disabili" by default).
    pua_adult_area_by_need: dict[str, str] = Field(default_factory=lambda: {
        "economic": "emarginazione_poverta", "housing": "emarginazione_poverta"})

    # VMD (docs/decisions/vmd.md): calendar days from the request to the due time, by default and per trigger
    # (VMD_DUE_DAYS='{"measure_b1": 45}'); whether CSC counts as the Ambito side of an integrated VMD; which
    # domains of ASST answers are masked without the person's share_asst consent.
    vmd_default_due_days: int = Field(default=30, ge=1, le=365)
    vmd_due_days: dict[str, int] = Field(default_factory=dict)
    vmd_csc_counts_as_ambito: bool = True
    vmd_masked_domains: list[str] = Field(default_factory=lambda: ["functional", "health", "cognitive"])

    # Progetti individualizzati: default review interval and how early a review reminder appears.
    care_plan_review_interval_days: int = 180
    care_plan_review_reminder_days: int = 14

    # Dimissioni protette (docs/decisions/discharge.md §5): when a pending COT evaluation is marked at risk and
    # overdue. `elapsed` counts calendar hours from the COT request; `working_hours` counts only the hours between
    # DISCHARGE_WORKDAY_START and DISCHARGE_WORKDAY_END of working days (kernel calendar). Only the marks move:
    # the D6 deadline stays 48 elapsed hours.
    discharge_clock: Literal["elapsed", "working_hours"] = "elapsed"
    discharge_at_risk_hours: float = Field(default=36, gt=0, le=720)
    discharge_overdue_hours: float = Field(default=48, gt=0, le=720)
    discharge_workday_start: time = time(8, 0)
    discharge_workday_end: time = time(18, 0)

    # Liste d'attesa RSA e UDO (docs/decisions/waiting_list.md): which UDO types keep a list; the assessment clock
    # (calendar days from the application, marks at risk and overdue); the default priority (score = weight x
    # (100 - Barthel) / 100 + caregiver points + living-alone points + points per full period on the list, capped);
    # the reply deadline of an offer (working days from the recorded receipt); refusals before suspension.
    waiting_list_udo_types: list[str] = Field(default_factory=lambda: ["rsa", "cdi", "rsd", "css", "cdd",
                                                                       "cure_intermedie"])
    waiting_list_assessment_days: int = Field(default=30, ge=1, le=365)
    waiting_list_at_risk_days: int = Field(default=25, ge=1, le=365)
    waiting_list_barthel_weight: float = Field(default=40, ge=0)
    waiting_list_no_caregiver_points: float = Field(default=20, ge=0)
    waiting_list_overloaded_caregiver_points: float = Field(default=10, ge=0)
    waiting_list_lives_alone_points: float = Field(default=10, ge=0)
    waiting_list_wait_period_days: int = Field(default=30, ge=1)
    waiting_list_wait_points_per_period: float = Field(default=1, ge=0)
    waiting_list_wait_points_max: float = Field(default=20, ge=0)
    waiting_list_reply_working_days: int = Field(default=2, ge=1, le=30)
    waiting_list_refusals_before_suspension: int = Field(default=2, ge=1, le=10)

    # Servizi e misure (docs/decisions/services.md): a week delivered below this share of the planned hours or
    # accesses puts one work item in the case manager's queue; the rank of applications waiting for funds (keys in
    # order: application_date, need_score — the VMD's Barthel read as need, 100 - Barthel, higher first).
    services_below_threshold_percent: float = Field(default=80, gt=0, le=100)
    measures_waiting_rank: list[Literal["application_date", "need_score"]] = Field(
        default_factory=lambda: ["application_date", "need_score"], min_length=1)

    @model_validator(mode="after")
    def _discharge_marks(self):
        if self.discharge_at_risk_hours > self.discharge_overdue_hours:
            raise ValueError("DISCHARGE_AT_RISK_HOURS must not exceed DISCHARGE_OVERDUE_HOURS")
        if not self.discharge_workday_start < self.discharge_workday_end:
            raise ValueError("DISCHARGE_WORKDAY_START must precede DISCHARGE_WORKDAY_END")
        if self.waiting_list_at_risk_days > self.waiting_list_assessment_days:
            raise ValueError("WAITING_LIST_AT_RISK_DAYS must not exceed WAITING_LIST_ASSESSMENT_DAYS")
        return self

    log_level: str = "INFO"
    log_json: bool = True
    timezone: str = "Europe/Rome"

    @property
    def owner_database_url(self) -> str:
        return self.migration_database_url or self.database_url

    @property
    def sync_database_url(self) -> str:
        """psycopg URL of the application role, for kombu and Celery's result backend."""
        return self.database_url.replace("postgresql+asyncpg://", "postgresql+psycopg://")

    @property
    def celery_broker_url(self) -> str:
        return self.broker_url or "sqla+" + self.sync_database_url

    @property
    def celery_result_backend(self) -> str:
        return self.result_backend or "db+" + self.sync_database_url


@lru_cache
def get_settings() -> Settings:
    return Settings()
