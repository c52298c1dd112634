"""Which discovered PostgreSQL containers dbmon may log into, and with what.

Two sources, first match wins: labels on the container (`dbmon.password_env=VAR`
names an environment variable *of dbmon* holding the password; `dbmon.user`,
`dbmon.database`, `dbmon.sslmode` complete it), then the config rules in order.
The container's own environment is never read for values, and a label can never turn off
TLS or SCRAM: only a config rule's `insecure: true` can (see pg_transport).
"""

from __future__ import annotations

import os
from fnmatch import fnmatchcase

from monitor_app.containers.config import CredentialRule
from monitor_app.containers.identify import Identification, image_path
from monitor_app.containers.inventory import ContainerRecord
from monitor_app.containers.registry import Credential
from monitor_app.errors import ConfigError
from monitor_app.pg_transport import SSLMODES

HANDED_ENGINES = ("postgresql",)


def matches(rule: CredentialRule, record: ContainerRecord) -> bool:
    m = rule.match
    if m.name and not fnmatchcase(record.name, m.name):
        return False
    if m.image and not (fnmatchcase(record.image, m.image) or fnmatchcase(image_path(record.image), m.image)):
        return False
    return all(record.labels.get(k) == v for k, v in m.labels.items())


def _env(var: str, field: str) -> str:
    value = os.environ.get(var)
    if value is None:
        raise ConfigError([(field, f"environment variable {var} is not set")], "containers")
    return value


def resolve(record: ContainerRecord, ident: Identification, rules: list[CredentialRule]) -> Credential | None:
    """Credentials for a PostgreSQL container, or None. Raises ConfigError naming the label or rule
    when one applies but its password cannot be read (the asset is still registered, without them)."""
    if not ident.is_database or ident.engine not in HANDED_ENGINES:
        return None
    labels = record.labels
    if labels.get("dbmon.password_env") or labels.get("dbmon.user"):
        sslmode = labels.get("dbmon.sslmode")
        if sslmode is not None and sslmode not in SSLMODES:
            raise ConfigError([(f"{record.name}: label dbmon.sslmode", f"must be one of {', '.join(SSLMODES)}")],
                              "containers")
        var = labels.get("dbmon.password_env")
        return Credential(user=labels.get("dbmon.user", "postgres"), database=labels.get("dbmon.database", "postgres"),
                          sslmode=sslmode, password=_env(var, f"{record.name}: label dbmon.password_env") if var else None,
                          rule="labels")
    for i, rule in enumerate(rules):
        if not matches(rule, record):
            continue
        password = None
        if rule.password_env:
            password = _env(rule.password_env, f"containers.credentials[{i}].password_env")
        elif rule.password_file:
            try:
                password = rule.password_file.read_text().strip()
            except OSError as exc:
                raise ConfigError([(f"containers.credentials[{i}].password_file", f"cannot read: {exc.strerror}")],
                                  "containers") from None
        return Credential(user=rule.user, database=rule.database, sslmode=rule.sslmode, password=password,
                          rule=f"containers.credentials[{i}]", insecure=rule.insecure,
                          sslrootcert=str(rule.sslrootcert) if rule.sslrootcert else None)
    return None
