"""Which discovered PostgreSQL (and PgBouncer) containers dbmon may log into, and with what.

Two sources, first match wins: labels on the container (`dbmon.password_env=VAR`
names an environment variable *of dbmon* holding the password; `dbmon.user`,
`dbmon.database`, `dbmon.sslmode` complete it), then the config rules in order.
The container's own environment is never read for values.

Labels are written by whoever starts the container, so they count only when the config
opts in (`containers.label_credentials`), may only name variables listed there, and
their connections demand a verified certificate and SCRAM: a server that asks for the
password in clear text, or cannot prove who it is, gets nothing.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from monitor_app.containers.config import CredentialRule, LabelCredentials
from monitor_app.containers.identify import Identification, image_path
from monitor_app.containers.inventory import ContainerRecord
from monitor_app.containers.asset_upsert import Credential
from monitor_app.config.password_source import resolve_password
from monitor_app.errors import ConfigError
from monitor_app.assets.pg_transport import libpq_supports_require_auth

# The engines handed a login, and where it goes unless the rule or label names a database:
# PgBouncer's statistics are in its admin console.
DEFAULT_DATABASE = {"postgresql": "postgres", "pgbouncer": "pgbouncer"}
HANDED_ENGINES = tuple(DEFAULT_DATABASE)
LABEL_SSLMODES = ("verify-ca", "verify-full")
LABEL_KEYS = ("dbmon.password_env", "dbmon.user", "dbmon.database", "dbmon.sslmode")


def matches(rule: CredentialRule, record: ContainerRecord) -> bool:
    m = rule.match
    if m.name and not fnmatchcase(record.name, m.name):
        return False
    if m.image and not (fnmatchcase(record.image, m.image) or fnmatchcase(image_path(record.image), m.image)):
        return False
    return all(record.labels.get(k) == v for k, v in m.labels.items())


def _from_labels(record: ContainerRecord, policy: LabelCredentials, default_database: str) -> Credential:
    labels = record.labels

    def refuse(label: str, problem: str) -> ConfigError:
        return ConfigError([(f"{record.name}: label {label}", problem)], "containers")

    sslmode = labels.get("dbmon.sslmode", policy.sslmode)
    if sslmode not in LABEL_SSLMODES:
        raise refuse("dbmon.sslmode", f"must be one of {', '.join(LABEL_SSLMODES)} for label credentials")
    var = labels.get("dbmon.password_env")
    if var and (var not in policy.allowed_env or var.upper().startswith("DBMON_")):
        raise refuse("dbmon.password_env", f"{var} is not listed in containers.label_credentials.allowed_env")
    # pg_transport adds require_auth=scram-sha-256 to every connection that is not `insecure`
    # (a label can never make it so); without libpq 16 that option does not exist.
    if not libpq_supports_require_auth():
        raise refuse("dbmon.password_env", "this libpq cannot require SCRAM authentication (needs 16 or later)")
    return Credential(user=labels.get("dbmon.user", "postgres"), database=labels.get("dbmon.database", default_database),
                      sslmode=sslmode, password=resolve_password(f"{record.name}: label dbmon", env=var, source="containers"),
                      rule="labels",
                      sslrootcert=str(policy.sslrootcert) if policy.sslrootcert else None)


def resolve(record: ContainerRecord, ident: Identification, rules: list[CredentialRule],
            label_policy: LabelCredentials | None = None) -> Credential | None:
    """Credentials for a PostgreSQL container, or None. Raises ConfigError naming the label or rule
    when one applies but its password cannot be read or is not allowed (the asset is still
    registered, without them). Credential labels are ignored unless `label_policy` enables them."""
    if not ident.is_database or ident.engine not in HANDED_ENGINES:
        return None
    if label_policy is not None and label_policy.enabled and any(record.labels.get(k) for k in LABEL_KEYS):
        return _from_labels(record, label_policy, DEFAULT_DATABASE[ident.engine])
    for i, rule in enumerate(rules):
        if not matches(rule, record):
            continue
        password = resolve_password(f"containers.credentials[{i}]", env=rule.password_env,
                                    file=rule.password_file, source="containers")
        return Credential(user=rule.user, database=rule.database or DEFAULT_DATABASE[ident.engine],
                          sslmode=rule.sslmode, password=password,
                          rule=f"containers.credentials[{i}]", insecure=rule.insecure,
                          sslrootcert=str(rule.sslrootcert) if rule.sslrootcert else None)
    return None
