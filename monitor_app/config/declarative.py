"""The declarative config file: assets, watch paths, and each concern's own section.

Validation reports every problem at once with its field path (`assets[1].port`),
so `dbmon check-config` can be run in CI before a deploy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from monitor_app.alerting.config import AlertingConfig, AlertingSection
from monitor_app.containers.config import ContainersConfig
from monitor_app.config.password_source import resolve_password
from monitor_app.config.section import ConfigSection, validation_errors
from monitor_app.errors import ConfigError
from monitor_app.assets.connection_budget import server_key
from monitor_app.assets import mysql_transport
from monitor_app.assets.pg_transport import ENCRYPTED_SSLMODES, SSLMODES, default_sslmode, weak_sslmode_error
from monitor_app.files.config import FilesConfig, WatchConfig
from monitor_app.metrics.config import MetricsConfig
from monitor_app.schema.config import SchemaConfig

ENGINES_WITH_DSN = ("postgresql",)


class AssetConfig(ConfigSection):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")
    engine: Literal["postgresql", "sqlite", "pgbouncer", "mysql", "mariadb"]
    host: str | None = None
    # Unset: 5432, 6432 for PgBouncer, 3306 for MySQL and MariaDB.
    port: int | None = Field(None, ge=1, le=65535)
    database: str | None = None
    user: str | None = None
    # A password may be inline, but a reference keeps it out of the file.
    password: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    # PostgreSQL's modes, or MySQL's (disable, preferred, required, verify_ca, verify_identity) for
    # mysql and mariadb. Unset: verify with sslrootcert, else encrypt (see pg_transport, mysql_transport).
    sslmode: str | None = Field(None, max_length=32)
    sslrootcert: Path | None = None
    insecure: bool = False
    path: Path | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    check_interval: float | None = Field(None, gt=0)

    @field_validator("sslmode")
    @classmethod
    def _sslmode_of_the_engine(cls, sslmode: str | None, info: ValidationInfo) -> str | None:
        engine = info.data.get("engine")
        modes = mysql_transport.MYSQL_SSLMODES if engine in mysql_transport.MYSQL_ENGINES else SSLMODES
        if sslmode is not None and sslmode not in modes:
            raise ValueError(f"{sslmode!r} is not an sslmode for a {engine or 'database'} asset; "
                             f"use one of {', '.join(modes)}")
        return sslmode

    @model_validator(mode="after")
    def _engine_fields(self) -> "AssetConfig":
        if self.engine == "postgresql":
            if not self.host:
                raise ValueError("host is required for a postgresql asset")
            if not self.database:
                raise ValueError("database is required for a postgresql asset")
        if self.engine == "pgbouncer":
            if not self.host:
                raise ValueError("host is required for a pgbouncer asset")
            # Its statistics are read from the admin console, a database of its own.
            self.database = self.database or "pgbouncer"
        if self.engine in mysql_transport.MYSQL_ENGINES:
            if not self.host:
                raise ValueError(f"host is required for a {self.engine} asset")
            # A server-wide login: the database is optional, but the account must be named.
            if not self.user:
                raise ValueError(f"user is required for a {self.engine} asset")
        if self.port is None:
            self.port = {"pgbouncer": 6432, "mysql": mysql_transport.DEFAULT_PORT,
                         "mariadb": mysql_transport.DEFAULT_PORT}.get(self.engine, 5432)
        if self.engine == "sqlite" and not self.path:
            raise ValueError("path is required for a sqlite asset")
        if self.engine in mysql_transport.MYSQL_ENGINES:
            if self.sslmode and self.sslmode not in mysql_transport.ENCRYPTED_MYSQL_SSLMODES and not self.insecure:
                raise ValueError(f"sslmode: {mysql_transport.weak_sslmode_error(self.sslmode)}")
        elif self.sslmode and self.sslmode not in ENCRYPTED_SSLMODES and not self.insecure:
            raise ValueError(f"sslmode: {weak_sslmode_error(self.sslmode)}")
        given = [k for k in ("password", "password_env", "password_file") if getattr(self, k)]
        if len(given) > 1:
            raise ValueError(f"give only one of password, password_env, password_file (got {', '.join(given)})")
        return self

    def connection(self) -> dict:
        """What may be stored and shown: everything but the password."""
        if self.engine == "sqlite":
            return {"path": str(self.path)}
        rootcert = str(self.sslrootcert) if self.sslrootcert else None
        if self.engine in mysql_transport.MYSQL_ENGINES:
            sslmode = self.sslmode or ("preferred" if self.insecure else mysql_transport.default_sslmode(rootcert))
        else:
            sslmode = self.sslmode or ("prefer" if self.insecure else default_sslmode(rootcert))
        return {"host": self.host, "port": self.port, "database": self.database, "user": self.user,
                "sslmode": sslmode, "sslrootcert": rootcert, "insecure": self.insecure}

    def resolve_password(self) -> str | None:
        return resolve_password(f"assets.{self.name}", inline=self.password, env=self.password_env,
                                file=self.password_file)


class ServerConfig(ConfigSection):
    """What one monitored database server lends dbmon, where it differs from the settings' default
    (a MySQL or MariaDB server names its port: the default is PostgreSQL's)."""

    host: str = Field(min_length=1, max_length=200)
    port: int = Field(5432, ge=1, le=65535)
    # Bounded like DBMON_SERVER_CONNECTION_BUDGET; the share of max_connections still caps it.
    connection_budget: int = Field(ge=1, le=100)

    @field_validator("host")
    @classmethod
    def _host_given(cls, host: str) -> str:
        if not host.strip():
            raise ValueError("host must not be blank")
        return host

    @property
    def key(self) -> str:
        return server_key({"host": self.host, "port": self.port})


class DbmonConfig(ConfigSection):
    assets: list[AssetConfig] = Field(default_factory=list)
    servers: list[ServerConfig] = Field(default_factory=list)
    watch: list[WatchConfig] = Field(default_factory=list)
    containers: ContainersConfig = Field(default_factory=ContainersConfig)
    schema_checks: SchemaConfig = Field(default_factory=SchemaConfig, alias="schema")
    alerting: AlertingSection = Field(default_factory=AlertingConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    files: FilesConfig = Field(default_factory=FilesConfig)

    @field_validator("assets")
    @classmethod
    def _unique_names(cls, assets: list[AssetConfig]) -> list[AssetConfig]:
        seen: set[str] = set()
        for asset in assets:
            if asset.name in seen:
                raise ValueError(f"asset name {asset.name!r} is used twice")
            seen.add(asset.name)
        return assets

    @field_validator("servers")
    @classmethod
    def _servers_once(cls, servers: list[ServerConfig]) -> list[ServerConfig]:
        seen: dict[str, int] = {}
        for i, server in enumerate(servers):
            if server.key in seen:
                raise ValueError(f"server {server.key} is listed twice (servers[{seen[server.key]}] and servers[{i}])")
            seen[server.key] = i
        return servers

    def server_budgets(self) -> dict[str, int]:
        """{server key: connection budget} for the servers the file sets one for."""
        return {server.key: server.connection_budget for server in self.servers}

    @model_validator(mode="after")
    def _watch_assets_exist(self) -> "DbmonConfig":
        names = {a.name for a in self.assets}
        for i, w in enumerate(self.watch):
            if w.asset and w.asset not in names:
                raise ValueError(f"watch[{i}].asset: no asset named {w.asset!r}")
        return self

    def asset(self, name: str) -> AssetConfig | None:
        return next((a for a in self.assets if a.name == name), None)


def parse_config(data: object, source: str = "config") -> DbmonConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([("(file)", "top level must be a mapping")], source)
    try:
        return DbmonConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_errors(exc), source) from None


def load_config(path: Path | str, *, missing_ok: bool = False) -> DbmonConfig:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        if missing_ok:
            return DbmonConfig()
        raise ConfigError([("(file)", "file not found")], str(path)) from None
    except OSError as exc:
        raise ConfigError([("(file)", exc.strerror or str(exc))], str(path)) from None
    return parse_config_text(text, str(path))


def parse_config_text(text: str, source: str = "config") -> DbmonConfig:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        raise ConfigError([(where, f"invalid YAML: {getattr(exc, 'problem', None) or exc}")], source) from None
    return parse_config(data, source)
