"""Which discovered PostgreSQL, PgBouncer, MySQL and MariaDB containers dbmon may log into, and with what.

Two sources, first match wins: labels on the container (`dbmon.password_env=VAR`
names an environment variable *of dbmon* holding the password; `dbmon.user`,
`dbmon.database`, `dbmon.sslmode` complete it), then the config rules in order.
The container's own environment is never read for values.

Labels are written by whoever starts the container, so they count only when the config
opts in (`containers.label_credentials`), may only name variables listed there, and
their connections demand a verified certificate, and for PostgreSQL SCRAM: a server that
asks for the password in clear text, or cannot prove who it is, gets nothing. MySQL has no
SCRAM to demand; there the verified certificate is what lets the password go (see
`mysql_transport`), and an unverified server is never reached at all.

Config rules hand credentials to PostgreSQL and PgBouncer containers only: they match by name,
image and labels, and a rule written before MySQL support must not start sending its password
to a MySQL server that happens to match. MySQL and MariaDB containers take labels.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from monitor_app.containers.config import CredentialRule, LabelCredentials
from monitor_app.containers.identify import Identification, image_path
from monitor_app.containers.inventory import ContainerRecord
from monitor_app.containers.asset_upsert import Credential
from monitor_app.config.password_source import resolve_password
from monitor_app.errors import ConfigError
from monitor_app.assets.mysql_transport import MYSQL_ENGINES
from monitor_app.assets.pg_transport import libpq_supports_require_auth

# The engines handed a login, and where it goes unless the rule or label names a database:
# PgBouncer's statistics are in its admin console; MySQL and MariaDB log into the server itself.
DEFAULT_DATABASE: dict[str, str | None] = {"postgresql": "postgres", "pgbouncer": "pgbouncer",
                                           "mysql": None, "mariadb": None}
HANDED_ENGINES = tuple(DEFAULT_DATABASE)
RULE_ENGINES = ("postgresql", "pgbouncer")
# The only account every MySQL and MariaDB image has, as `postgres` is PostgreSQL's.
DEFAULT_USER = {"mysql": "root", "mariadb": "root"}
LABEL_SSLMODES = ("verify-ca", "verify-full")
# A MySQL container's label may use MySQL's names or PostgreSQL's (as the policy's `sslmode` does).
MYSQL_LABEL_SSLMODES = {"verify_ca": "verify_ca", "verify_identity": "verify_identity",
                        "verify-ca": "verify_ca", "verify-full": "verify_identity"}
LABEL_KEYS = ("dbmon.password_env", "dbmon.user", "dbmon.database", "dbmon.sslmode")


def matches(rule: CredentialRule, record: ContainerRecord) -> bool:
    m = rule.match
    if m.name and not fnmatchcase(record.name, m.name):
        return False
    if m.image and not (fnmatchcase(record.image, m.image) or fnmatchcase(image_path(record.image), m.image)):
        return False
    return all(record.labels.get(k) == v for k, v in m.labels.items())


def _from_labels(record: ContainerRecord, policy: LabelCredentials, engine: str) -> Credential:
    labels = record.labels

    def refuse(label: str, problem: str) -> ConfigError:
        return ConfigError([(f"{record.name}: label {label}", problem)], "containers")

    mysql = engine in MYSQL_ENGINES
    sslmode: str | None = labels.get("dbmon.sslmode", policy.sslmode)
    if mysql:
        if sslmode not in MYSQL_LABEL_SSLMODES:
            raise refuse("dbmon.sslmode", "must be one of verify_ca, verify_identity for label credentials")
        sslmode = MYSQL_LABEL_SSLMODES[str(sslmode)]
    elif sslmode not in LABEL_SSLMODES:
        raise refuse("dbmon.sslmode", f"must be one of {', '.join(LABEL_SSLMODES)} for label credentials")
    var = labels.get("dbmon.password_env")
    if var and (var not in policy.allowed_env or var.upper().startswith("DBMON_")):
        raise refuse("dbmon.password_env", f"{var} is not listed in containers.label_credentials.allowed_env")
    # pg_transport adds require_auth=scram-sha-256 to every connection that is not `insecure`
    # (a label can never make it so); without libpq 16 that option does not exist.
    if not mysql and not libpq_supports_require_auth():
        raise refuse("dbmon.password_env", "this libpq cannot require SCRAM authentication (needs 16 or later)")
    return Credential(user=labels.get("dbmon.user", DEFAULT_USER.get(engine, "postgres")),
                      database=labels.get("dbmon.database", DEFAULT_DATABASE[engine]),
                      sslmode=sslmode, password=resolve_password(f"{record.name}: label dbmon", env=var, source="containers"),
                      rule="labels",
                      sslrootcert=str(policy.sslrootcert) if policy.sslrootcert else None)


def resolve(record: ContainerRecord, ident: Identification, rules: list[CredentialRule],
            label_policy: LabelCredentials | None = None) -> Credential | None:
    """Credentials for a database container dbmon logs into (`HANDED_ENGINES`), or None. Raises ConfigError naming the label or rule
    when one applies but its password cannot be read or is not allowed (the asset is still
    registered, without them). Credential labels are ignored unless `label_policy` enables them."""
    if not ident.is_database or ident.engine not in HANDED_ENGINES:
        return None
    if label_policy is not None and label_policy.enabled and any(record.labels.get(k) for k in LABEL_KEYS):
        return _from_labels(record, label_policy, ident.engine)
    if ident.engine not in RULE_ENGINES:
        return None
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
