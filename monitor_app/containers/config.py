"""The `containers:` section of the config file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from monitor_app.config.section import ConfigSection
from monitor_app.assets.pg_transport import ENCRYPTED_SSLMODES, SslMode, weak_sslmode_error


class CredentialMatch(ConfigSection):
    """Every given criterion must hold; globs use shell syntax (`pg-*`)."""

    name: str | None = None
    image: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _not_empty(self) -> "CredentialMatch":
        if not (self.name or self.image or self.labels):
            raise ValueError("give at least one of name, image, labels (an empty match would take every container)")
        return self


class CredentialRule(ConfigSection):
    match: CredentialMatch
    user: str = "postgres"
    # Unset: `postgres`, or `pgbouncer` (the admin console) for a PgBouncer container.
    database: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    # Unset: verify-full with sslrootcert, else require (see pg_transport).
    sslmode: SslMode | None = None
    sslrootcert: Path | None = None
    insecure: bool = False

    @model_validator(mode="after")
    def _one_password_source(self) -> "CredentialRule":
        if self.password_env and self.password_file:
            raise ValueError("give only one of password_env, password_file")
        if self.sslmode and self.sslmode not in ENCRYPTED_SSLMODES and not self.insecure:
            raise ValueError(f"sslmode: {weak_sslmode_error(self.sslmode)}")
        return self


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class LabelCredentials(ConfigSection):
    """`dbmon.password_env` and friends on a container. Off by default: whoever can start a
    container can set labels, and a label that names any variable would make dbmon read its own
    environment and send it to an endpoint the container chose."""

    enabled: bool = False
    allowed_env: list[str] = Field(default_factory=list,
                                   description="The only variables a label may name; never DBMON_*.")
    sslmode: Literal["verify-ca", "verify-full"] = "verify-full"
    sslrootcert: Path | None = Field(None, description="CA bundle the servers' certificates must chain to.")

    @field_validator("allowed_env")
    @classmethod
    def _plain_names_not_dbmon(cls, names: list[str]) -> list[str]:
        for name in names:
            if not _ENV_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not an environment variable name")
            if name.upper().startswith("DBMON_"):
                raise ValueError(f"{name} is one of dbmon's own settings and cannot be handed to a container")
        return names


class FlappingConfig(ConfigSection):
    restarts: int = Field(3, ge=2, le=1000)
    minutes: float = Field(10.0, gt=0, le=1440)


class ContainersConfig(ConfigSection):
    enabled: bool = True
    docker_url: str | None = Field(None, description="Engine address; default: DOCKER_HOST or the local socket.")
    probe_timeout: float = Field(3.0, gt=0, le=60)
    flapping: FlappingConfig = Field(default_factory=FlappingConfig)
    tls_warn_days: list[int] = Field(default_factory=lambda: [30, 7, 1])
    credentials: list[CredentialRule] = Field(default_factory=list)
    label_credentials: LabelCredentials = Field(default_factory=LabelCredentials)

    @field_validator("tls_warn_days")
    @classmethod
    def _positive_days(cls, days: list[int]) -> list[int]:
        if any(d <= 0 for d in days):
            raise ValueError("thresholds are days before expiry and must be positive")
        return sorted(set(days), reverse=True)
