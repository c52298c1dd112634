"""The one validated settings object, read from the environment and `.env`.

Every variable is `DBMON_<FIELD>`; any of them may instead be given as
`DBMON_<FIELD>_FILE` pointing at a file holding the value (Docker/K8s secrets).
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from monitor_app.errors import ConfigError

ENV_PREFIX = "DBMON_"


class _FileSecretsSource(PydanticBaseSettingsSource):
    """Reads `DBMON_X_FILE` for any field `x` so secrets need not sit in the environment."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        path = os.environ.get(f"{ENV_PREFIX}{field_name.upper()}_FILE")
        if not path:
            return None, field_name, False
        try:
            return Path(path).read_text().strip(), field_name, False
        except OSError as exc:
            raise ConfigError([(f"{ENV_PREFIX}{field_name.upper()}_FILE", f"cannot read {path}: {exc.strerror}")], "settings")

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                values[key] = value
        return values


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("var"), description="Holds the embedded store, broker folders and beat state.")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite file in data_dir.")
    broker_url: str | None = Field(None, description="Celery broker; default: filesystem broker in data_dir.")
    config_file: Path = Field(Path("dbmon.yaml"), description="Declarative assets, watch paths, rules, channels.")
    secret_key: str | None = Field(None, description="Encrypts stored credentials and signs links; generated into data_dir if unset.")
    secret_key_previous: str | None = Field(None, description="Earlier secret keys, comma-separated: they still decrypt and verify, never encrypt or sign.")

    api_host: str = "127.0.0.1"
    api_port: int = Field(8080, ge=1, le=65535)
    api_workers: int | None = Field(None, ge=1, le=64, description="API worker processes; default 1 on a single machine (no broker URL), 2 otherwise.")
    public_status_page: bool = Field(True, description="Serve the status page without an API key.")
    public_status_detail: Literal["status", "full"] = Field(
        "status", description="What the status page shows without a key: status counts only, or assets and events.")
    label_denylist: str = Field(
        "*pass*,*secret*,*token*,*key*,*credential*,*auth*,dbmon.user,dbmon.database",
        description="Comma-separated label name globs (case-insensitive) whose values the API redacts.")
    audit_anonymous_per_minute: int = Field(20, ge=0, le=100000, description="Audit rows per source address per minute for requests without a valid key; the rest are counted in one summary row.")
    api_tls_cert: Path | None = Field(None, description="PEM certificate (chain) for HTTPS; with api_tls_key the API and Flower serve HTTPS only.")
    api_tls_key: Path | None = Field(None, validate_default=True, description="PEM private key of api_tls_cert.")
    api_trusted_proxies: int = Field(0, ge=0, le=10, description="Reverse proxies in front of the API whose X-Forwarded-* headers are trusted; 0 ignores them.")
    flower_enabled: bool = Field(False, description="Start Flower under `dbmon up` (it always requires an operator API key or a basic-auth pair).")
    flower_host: str = "127.0.0.1"
    flower_port: int = Field(5555, ge=1, le=65535)
    api_max_body_bytes: int = Field(1_048_576, ge=1024, le=1_073_741_824, description="Larger request bodies get a 413.")

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    worker_concurrency: int = Field(2, ge=1, le=256)
    worker_shutdown_seconds: float = Field(3.0, ge=0, le=600, description="How long a stopping worker waits for its tasks before handing unfinished runs back.")
    filesystem_polling_interval: float = Field(0.1, gt=0, le=5)
    broker_visibility_timeout: int = Field(600, ge=5, description="Seconds before Redis redelivers an unacked task.")

    host_sample_interval: float = Field(30.0, gt=0)
    host_name: str | None = Field(None, min_length=1, max_length=253, description="The name this machine's host samples are filed under (default: its hostname).")
    host_sampler_missed_intervals: int = Field(3, ge=1, le=1000, description="A host whose sampler has not reported for this many sampling intervals is down.")
    reachability_interval: float = Field(30.0, gt=0)
    sweep_tick: float = Field(5.0, gt=0, le=300, description="How often the schema and reachability sweeps look for due assets: the resolution at which their checks are spread over each interval.")
    containers_reconcile_interval: float = Field(60.0, gt=0, description="Full Docker reconcile, the event stream's safety net.")
    redeliver_interval: float = Field(15.0, gt=0, description="How often lost or stalled tasks are sent again.")
    leader_lease_seconds: float = Field(10.0, ge=1, le=300, description="The watcher and beat lead while they renew this lease (in Redis; a file lock on a single machine): a standby takes over this long after the leader died.")
    task_lease_seconds: float = Field(30.0, gt=0, description="A running task renews its lease; a dead worker's run is re-sent after this.")
    task_queued_grace: float = Field(60.0, gt=0, description="A queued run not started within this is published again.")
    alert_sweep_interval: float = Field(2.0, gt=0, description="Due notifications, retries and escalations are checked this often.")
    alert_metrics_interval: float = Field(15.0, gt=0, description="Threshold rules are evaluated this often.")
    silence_max_days: float = Field(90.0, gt=0, le=3650, description="Longest silence the API accepts (and how far ahead it may start).")
    channel_test_per_minute: int = Field(6, ge=1, le=600, description="Test sends allowed per channel and minute.")
    probe_timeout: float = Field(5.0, gt=0, le=120)
    server_connection_budget: int = Field(3, ge=1, le=100, description="Connections all dbmon processes together may hold on one monitored PostgreSQL, MySQL or MariaDB server (host and port); work beyond it waits.")
    server_connection_share: float = Field(0.05, gt=0, le=0.5, description="The budget never exceeds this share of the server's max_connections less its reserved slots (at least 1).")
    server_connection_wait: float = Field(30.0, ge=0, le=600, description="How long work waits for a free connection slot before it is deferred to its next run.")
    server_connection_lease: float = Field(30.0, ge=2, le=3600, description="A held slot is renewed by its process; a dead process's slot is free again after this.")
    schema_fallback_interval: float = Field(5.0, gt=0, le=3600, description="Databases beyond a server's LISTEN budget are pre-checked in turn, a round at most this often.")
    server_refusal_backoff: float = Field(30.0, ge=1, le=3600, description="After a server refuses a connection for lack of slots, no dbmon process connects to it for this long.")
    metrics_retention_days: int = Field(90, ge=1, description="Days metric rollups (1 min, 10 min, 1 h) and per-sample rows are kept.")
    metrics_bearer_token: str | None = Field(None, min_length=16, repr=False, description="A bearer token Prometheus may scrape GET /metrics with (an API key with the viewer role works too).")
    metrics_stale_seconds: float = Field(900.0, gt=0, description="GET /metrics leaves out series not written to for this long.")
    prometheus_multiproc_dir: Path | None = Field(None, description="Where this machine's dbmon processes write their own metrics for GET /metrics to add up (PROMETHEUS_MULTIPROC_DIR); default: data_dir/prometheus. Emptied when the first dbmon process of a deployment starts.")
    metrics_raw_retention_hours: int = Field(48, ge=2, le=24 * 90, description="Hours raw metric samples are kept before only their rollups remain.")
    posture_interval: float = Field(86400.0, gt=0, description="Seconds between security posture checks of each PostgreSQL asset.")
    posture_release_list: Path | None = Field(None, description="JSON list of the latest PostgreSQL minor per branch; default: the dated list shipped with dbmon.")
    collector_failures_before_event: int = Field(1, ge=1, le=1000, description="Consecutive failures of one collector on one asset before <collector>.check_failed is recorded.")
    selfmon_heartbeat_interval: float = Field(10.0, ge=0.2, le=300, description="How often workers, beat and the watcher write their heartbeat row in the store; a component silent for three of its intervals is dead.")
    selfmon_check_interval: float = Field(30.0, ge=1, le=3600, description="How often selfmon.check writes dbmon's own series (queues, consumers, beat age, watch sources, task failures).")
    selfmon_forget_after: float = Field(86400.0, ge=60, description="Heartbeat rows of components not seen for this long are deleted.")
    deadman_url: str | None = Field(None, repr=False, description="Dead-man's switch: pinged while the self-check finds dbmon healthy, so an outside service notices when the pings stop. Treated as a secret (never logged).")
    deadman_interval: float = Field(60.0, ge=1, le=86400, description="At most one dead-man ping per this many seconds.")
    deadman_method: Literal["GET", "POST"] = Field("GET", description="HTTP method of the dead-man ping.")
    deadman_timeout: float = Field(5.0, gt=0, le=60, description="Timeout of one dead-man ping.")
    deadman_allow_private: bool = Field(False, description="Let the dead-man URL resolve to a private, loopback or link-local address.")

    @field_validator("database_url", "broker_url")
    @classmethod
    def _blank_is_default(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("deadman_url")
    @classmethod
    def _deadman_url(cls, value: str | None) -> str | None:
        if not value or not value.strip():
            return None
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(value.strip())
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            raise ValueError("not a URL") from None
        # The message never repeats the value: it may carry a token.
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http:// or https:// URL with a host")
        return value.strip()

    @field_validator("api_tls_cert", "api_tls_key", "prometheus_multiproc_dir", mode="before")
    @classmethod
    def _blank_path_is_unset(cls, value):
        # Compose passes `${DBMON_API_TLS_CERT:-}` as an empty string, which would read as ".".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("api_tls_cert", "api_tls_key")
    @classmethod
    def _tls_file_readable(cls, path: Path | None) -> Path | None:
        if path is not None and not os.access(path, os.R_OK):
            raise ValueError(f"cannot read {path}")
        return path

    @field_validator("api_tls_key")
    @classmethod
    def _tls_pair(cls, key: Path | None, info: ValidationInfo) -> Path | None:
        # Runs for an unset key too (validate_default), so a certificate alone is refused.
        if (key is None) != (info.data.get("api_tls_cert") is None) and "api_tls_cert" in info.data:
            raise ValueError("give both DBMON_API_TLS_CERT and DBMON_API_TLS_KEY, or neither")
        return key

    @property
    def api_tls(self) -> bool:
        return self.api_tls_cert is not None

    @property
    def api_base_url(self) -> str:
        """Where this process's own API answers, for links when no public URL is configured."""
        return f"{'https' if self.api_tls else 'http'}://{self.api_host}:{self.api_port}"

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings):
        return (init_settings, env_settings, _FileSecretsSource(settings_cls), dotenv_settings)

    @property
    def label_deny_patterns(self) -> list[str]:
        return [p.strip() for p in self.label_denylist.split(",") if p.strip()]

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'dbmon.sqlite3').resolve()}"

    @property
    def resolved_broker_url(self) -> str:
        return self.broker_url or "filesystem://"

    @property
    def resolved_api_workers(self) -> int:
        return self.api_workers or (1 if self.embedded_broker else 2)

    @property
    def embedded_broker(self) -> bool:
        return self.resolved_broker_url.startswith("filesystem://")

    @property
    def broker_dir(self) -> Path:
        return (self.data_dir / "broker").resolve()

    @property
    def resolved_prometheus_multiproc_dir(self) -> Path:
        return (self.prometheus_multiproc_dir or self.data_dir / "prometheus").resolve()

    def resolved_secret_key(self) -> str:
        """The configured key, else one generated once and kept in the data dir (mode 0600)."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret.key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        return key

    def secret_keys(self):
        """The current key and the previous ones still accepted during a rotation."""
        from monitor_app.access.secret_keys import KeyRing

        return KeyRing.parse(self.resolved_secret_key(), self.secret_key_previous)


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning validation failures into a ConfigError naming each variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        errors = [(ENV_PREFIX + ".".join(str(p) for p in err["loc"]).upper(), err["msg"]) for err in exc.errors()]
        raise ConfigError(errors, "settings") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
