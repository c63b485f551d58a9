"""Backend settings: environment variables with the ``NX_`` prefix."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from backend.auth.principal import Role
from backend.db import PG_DEAD_LINK_S
from backend.stock import DEFAULT_LOW_THRESHOLD

DEV_MQTT_PASSWORD = "nx-backend-dev"  # noqa: S105 - refused outside development below


class Settings(BaseSettings):
    """Everything the API and the ingest workers can be told from outside."""

    model_config = SettingsConfigDict(env_prefix="NX_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite:///./var/naloxnet.db"
    # PostgreSQL: an open connection whose server stays silent this long is given up
    # (TCP keepalives and tcp_user_timeout, backend/db.py), so that a partition ends
    # in an error (ingest retries, the API answers 503) rather than a hang. Longer
    # than any pause of a healthy network; a slow query is not cut (the server's
    # kernel still acknowledges). Plus one probe interval (a sixth) for an idle one.
    database_dead_link_s: float = Field(default=PG_DEAD_LINK_S, ge=1, le=3600)

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(default=1883, ge=1, le=65535)
    mqtt_username: str = "nx-backend"
    mqtt_password: SecretStr = SecretStr(DEV_MQTT_PASSWORD)
    mqtt_tls_ca_file: Path | None = None
    mqtt_keepalive_s: int = Field(default=30, ge=5)
    # An ingest connection gives up when the broker leaves a probe of its own this
    # long unanswered (backend/ingest/link_probe.py); the keepalive when unset.
    ingest_link_probe_s: float | None = Field(default=None, gt=0)

    # Ingest: a stable client id per worker and one shared-subscription group.
    ingest_client_id_prefix: str = "nx-ingest"
    ingest_share_group: str = "nx-ingest"
    # The broker keeps a stopped worker's queue this long; a week covers a
    # weekend outage of the backend.
    ingest_session_expiry_s: int = Field(default=7 * 24 * 3600, ge=1)
    # How many unacknowledged QoS 1 messages the broker may push at a worker
    # (MQTT v5 Receive Maximum). Room for the inbox and the two batches a worker
    # with a writer process has in flight, so that a broker that keeps to it
    # never idles the writer.
    ingest_receive_maximum: int = Field(default=4000, ge=1, le=65535)
    # Validate and write in a child process with its own interpreter lock, so
    # that paho's network thread and the writer each get a core (docs/backend.md).
    ingest_writer_process: bool = True
    # Rows per transaction. Larger batches mean fewer round trips per message:
    # 1,000 instead of 500 raised the benchmark's PostgreSQL ratio 0.76 -> 0.82.
    ingest_batch_max_size: int = Field(default=1000, ge=1)
    # The worker's own bound on messages received and not yet taken by the
    # writer (Receive Maximum does not bound it on Mosquitto 2.0, see
    # docs/decisions.md). When it is full, paho's network thread waits and
    # stops reading the socket, so TCP holds the broker back. At least two
    # batches: one waiting while the writer commits the one it took.
    ingest_inbox_max: int = Field(default=2000, ge=2)
    ingest_batch_max_wait_s: float = Field(default=0.2, gt=0)
    # After the first message of a batch, wait this long for the next before
    # committing what is there: short, so that a trickle is committed at once.
    ingest_batch_linger_s: float = Field(default=0.005, ge=0)
    ingest_retry_backoff_s: float = Field(default=0.5, gt=0)
    ingest_maintenance_interval_s: float = Field(default=5.0, gt=0)
    # One worker watches the broker's dropped-message counter and alerts on any
    # increase (backend/ingest/broker_watch.py); off only for a broker without $SYS.
    ingest_broker_watch: bool = True
    # Periodic jobs (backend/jobs): how often a standby process tries to take a job
    # whose holder died, and how long the run log is kept.
    jobs_poll_s: float = Field(default=2.0, gt=0)
    jobs_run_log_days: float = Field(default=7.0, gt=0)
    ingest_reconnect_min_s: float = Field(default=0.5, gt=0)
    ingest_reconnect_max_s: float = Field(default=30.0, gt=0)
    # A standalone ``nx-backend ingest`` serves its Prometheus metrics here
    # (the API serves them at /metrics when ingest runs inside ``serve``).
    ingest_startup_wait_s: float = Field(default=10.0, ge=0)
    ingest_metrics_host: str = "127.0.0.1"
    ingest_metrics_port: int | None = Field(default=None, ge=1, le=65535)

    # Dead letters: what one machine's malformed messages may take. Within each
    # window a machine keeps at most this many dead letters and bytes of payload;
    # past either bound its malformed messages are counted (dead_letter_drops,
    # nx_ingest_dead_letters_dropped) and one dead_letter_flood alert opens, but
    # not stored. A hundred samples an hour are plenty to see what is wrong.
    dead_letter_quota_count: int = Field(default=100, ge=0)
    dead_letter_quota_bytes: int = Field(default=1024 * 1024, ge=0)
    dead_letter_quota_window_s: float = Field(default=3600.0, gt=0)
    # Dead letters older than this are deleted by ingest maintenance.
    dead_letter_retention_days: float = Field(default=30.0, gt=0)

    # Commands to machines (docs/backend.md, "Commands"): how long one stays
    # pending unless the caller says otherwise, the longest a caller may ask for,
    # how long to wait for a result before publishing it again, and how often
    # the resender looks for due commands (it also wakes when one is stored).
    commands_lifetime_s: int = Field(default=600, ge=1, le=86_400)
    commands_max_lifetime_s: int = Field(default=86_400, ge=1, le=7 * 86_400)
    commands_resend_s: float = Field(default=30.0, gt=0)
    commands_poll_s: float = Field(default=1.0, gt=0)
    commands_batch: int = Field(default=200, ge=1)
    commands_client_id_prefix: str = "nx-commands"
    # Finished commands (done, failed, expired) and machines' results older than
    # this are deleted by ingest upkeep; pending ones are never.
    commands_retention_days: float = Field(default=90.0, gt=0)

    # How far the fleet snapshot (GET /api/v1/machines) may lag the database: a
    # thread of the API reads the changes this often. 0 reads them on every request.
    api_snapshot_cache_s: float = Field(default=1.0, ge=0)
    # The largest request body the API reads; a larger one is refused (413)
    # before it is read. The largest real body, a restock visit, is under 4 KiB.
    api_max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # Origins (scheme://host[:port]) whose browser pages may write through the
    # API, e.g. '["https://console.example.org"]'. A write carrying any other
    # Origin header is refused (403); the API's own origin and clients that send
    # no Origin (the console's server side, scripts) are not affected.
    api_allowed_origins: list[str] = Field(default_factory=list)

    # The public feed (/public/v1) is read from the database at most once per
    # cache period per process, whatever the load; clients and proxies may keep
    # an answer for max-age seconds and then revalidate it with its ETag.
    public_feed_cache_s: float = Field(default=1.0, gt=0, le=60)
    public_feed_max_age_s: int = Field(default=10, ge=0, le=3600)

    # Dispense statistics and exports (docs/hotspots.md): counts from 1 to k-1
    # are shown as "<k" to everyone but admin; days are the city's (None: the
    # hotspot job's NX_HOTSPOT_TIMEZONE).
    stats_suppression_k: int = Field(default=5, ge=2, le=100)
    stats_timezone: str | None = None

    # Alert rules.
    default_low_threshold: int = Field(default=DEFAULT_LOW_THRESHOLD, ge=0)
    default_par: int | None = Field(default=None, ge=0)
    offline_timeout_s: float = Field(default=15 * 60, gt=0)
    gap_timeout_s: float = Field(default=10 * 60, gt=0)
    # Lots (docs/restock.md, "Lots, expiry and heat"): alert this many days before
    # a lot in a machine expires; replace a lot after this long outside 15-25 °C,
    # or any longer than these outside 4-40 °C or below freezing.
    expiring_stock_days: int = Field(default=60, ge=0, le=3650)
    heat_storage_limit_h: float = Field(default=72.0, ge=0)
    heat_excursion_limit_min: float = Field(default=0.0, ge=0)
    heat_freezing_limit_min: float = Field(default=0.0, ge=0)
    # A temperature reading counts until the next, at most this long (a silent machine).
    # Over an hour: heartbeats are kept at least every 30 min (backend/lots/exposure.py).
    temperature_hold_s: float = Field(default=2 * 3600, ge=3600)
    # Temperature readings older than this are deleted by ingest maintenance; longer
    # than a lot stays in a machine, so its exposure since loading is still known.
    temperature_retention_days: float = Field(default=400.0, ge=1)
    # How often an ingest worker settles the expiring-stock and heat-exposure alerts.
    lot_check_interval_s: float = Field(default=300.0, gt=0)

    # Restock planner (docs/restock.md): road distance is the straight line times
    # the detour factor, driven at the average speed, unless a matrix file is set.
    restock_detour_factor: float = Field(default=1.3, ge=1, le=5)
    restock_speed_kmh: float = Field(default=25.0, gt=0, le=130)
    restock_matrix_file: Path | None = None
    restock_service_minutes: float = Field(default=8.0, ge=0, le=240)
    restock_service_minutes_per_item: float = Field(default=0.5, ge=0, le=60)
    restock_van_capacity: int = Field(default=300, ge=1, le=100_000)
    restock_solver_seconds: float = Field(default=1.0, gt=0, le=60)

    # API tokens: the database is read on every request (a revocation holds at
    # once on every replica); last_used_at is written at most this often.
    auth_last_used_interval_s: float = Field(default=60.0, ge=0)

    # OpenID Connect access tokens from one issuer (docs/security.md). OIDC is
    # on when the issuer is set; the JWKS comes from its discovery document
    # unless given.
    oidc_issuer: str | None = None
    oidc_jwks_url: str | None = None
    oidc_audience: str | None = None
    # The claim holding the groups (a list or space-separated string; dotted
    # for nested claims such as realm_access.roles) and group -> role.
    oidc_role_claim: str = "groups"
    oidc_role_map: dict[str, Role] = Field(default_factory=dict)
    oidc_name_claim: str = "sub"
    oidc_algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256", "PS256"])
    oidc_leeway_s: float = Field(default=30.0, ge=0, le=300)
    oidc_jwks_cache_s: float = Field(default=300.0, gt=0)
    oidc_jwks_refresh_min_s: float = Field(default=30.0, ge=0)
    oidc_http_timeout_s: float = Field(default=5.0, gt=0)

    # Notifications (docs/notifications.md): how often the dispatcher looks for
    # due deliveries, how many run at once (one destination at a time each),
    # how long one may take, retries with backoff, and the circuit breaker.
    notify_console_url: str = "http://127.0.0.1:8501"
    notify_poll_s: float = Field(default=0.2, gt=0)
    notify_workers: int = Field(default=8, ge=1)
    notify_batch: int = Field(default=100, ge=1)
    notify_timeout_s: float = Field(default=10.0, gt=0)
    notify_lease_s: float = Field(default=300.0, gt=0)
    notify_max_attempts: int = Field(default=8, ge=1)
    notify_backoff_base_s: float = Field(default=5.0, gt=0)
    notify_backoff_max_s: float = Field(default=3600.0, gt=0)
    notify_breaker_failures: int = Field(default=3, ge=1)
    notify_breaker_cooldown_s: float = Field(default=60.0, gt=0)
    # How often escalations and quiet-hour digests are looked for.
    notify_jobs_interval_s: float = Field(default=10.0, gt=0)
    # E-mail routes go through this SMTP server (none set: e-mail deliveries fail).
    notify_smtp_host: str | None = None
    notify_smtp_port: int = Field(default=587, ge=1, le=65535)
    notify_smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    notify_smtp_username: str | None = None
    notify_smtp_password: SecretStr | None = None
    notify_smtp_from: str = "naloxnet@localhost"
    notify_smtp_ca_file: Path | None = None
    # The weekly situation report goes to routes listing report.weekly at this hour
    # (local, in the statistics' time zone) on the Monday after the week; the job
    # looks every NX_REPORT_WEEKLY_CHECK_S, so a process down on Monday sends it later.
    report_weekly_hour: int = Field(default=7, ge=0, le=23)
    report_weekly_check_s: float = Field(default=900.0, gt=0)

    # Provisioning (used by ``nx-backend device ...``).
    broker_password_file: Path | None = None
    broker_pid_file: Path | None = None
    # The device API routes (and the CLI's defaults): machines in the dynamic-security
    # plugin when its admin password is set, else in the password file.
    broker_dynsec_admin: str = "nx-dynsec-admin"
    broker_dynsec_admin_password: SecretStr | None = None
    broker_ca_dir: Path = Path("var/ca")
    broker_crl_file: Path | None = None

    @model_validator(mode="after")
    def _known_stats_timezone(self) -> Settings:
        if self.stats_timezone is not None:
            try:
                ZoneInfo(self.stats_timezone)
            except (ValueError, ZoneInfoNotFoundError):
                raise ValueError(f"unknown time zone {self.stats_timezone!r}") from None
        return self

    @model_validator(mode="after")
    def _inbox_holds_two_batches(self) -> Settings:
        if self.ingest_inbox_max < 2 * self.ingest_batch_max_size:
            raise ValueError(
                f"NX_INGEST_INBOX_MAX ({self.ingest_inbox_max}) must be at least twice "
                f"NX_INGEST_BATCH_MAX_SIZE ({self.ingest_batch_max_size})"
            )
        return self

    @model_validator(mode="after")
    def _lease_outlasts_a_delivery(self) -> Settings:
        if self.notify_lease_s < 2 * self.notify_timeout_s:
            raise ValueError(
                f"NX_NOTIFY_LEASE_S ({self.notify_lease_s}) must be at least twice "
                f"NX_NOTIFY_TIMEOUT_S ({self.notify_timeout_s})"
            )
        return self

    @model_validator(mode="after")
    def _oidc_complete(self) -> Settings:
        if self.oidc_issuer is not None and not self.oidc_audience:
            raise ValueError("NX_OIDC_AUDIENCE must be set when NX_OIDC_ISSUER is")
        return self

    @model_validator(mode="after")
    def _refuse_dev_secrets(self) -> Settings:
        if (
            self.environment == "production"
            and self.mqtt_password.get_secret_value() == DEV_MQTT_PASSWORD
        ):
            raise ValueError("NX_MQTT_PASSWORD must be set in production")
        return self


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings, read once from the environment."""
    return Settings()
