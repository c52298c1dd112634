"""Handing discovered PostgreSQL containers to schema and metrics monitoring: which credentials apply."""

from __future__ import annotations

import pytest

from monitor_app.config.declarative import parse_config
from monitor_app.containers.label_credentials import resolve
from monitor_app.containers.identify import identify
from monitor_app.containers.inventory import ContainerRecord
from monitor_app.errors import ConfigError


def pg(name="pg-orders", image="postgres:16", labels=None):
    rec = ContainerRecord(id="c" * 64, name=name, image=image, env_names=["POSTGRES_PASSWORD"], exposed_ports=[5432],
                          labels=labels or {})
    return rec, identify(rec)


def rules(*items):
    return parse_config({"containers": {"credentials": list(items)}}).containers.credentials


def test_the_first_matching_rule_supplies_user_database_and_password(monkeypatch, tmp_path):
    monkeypatch.setenv("ORDERS_PW", "pw-from-env")
    secret = tmp_path / "pw"
    secret.write_text("pw-from-file\n")
    rs = rules({"match": {"name": "pg-billing*"}, "user": "billing", "password_file": str(secret)},
               {"match": {"image": "postgres:*", "labels": {"team": "orders"}}, "user": "monitor",
                "database": "orders", "password_env": "ORDERS_PW", "sslmode": "require"})
    cred = resolve(*pg(labels={"team": "orders"}), rs)
    assert (cred.user, cred.database, cred.sslmode, cred.password, cred.rule) == (
        "monitor", "orders", "require", "pw-from-env", "containers.credentials[1]")
    assert resolve(*pg(name="pg-billing-1"), rs).password == "pw-from-file"
    assert resolve(*pg(labels={"team": "other"}), rs) is None


def label_policy(**kw):
    return parse_config({"containers": {"label_credentials": {"enabled": True, **kw}}}).containers.label_credentials


def test_labels_name_an_allowed_environment_variable_of_dbmon_and_demand_scram_over_verified_tls(monkeypatch):
    monkeypatch.setenv("PG_LABEL_PW", "from-label")
    labels = {"dbmon.password_env": "PG_LABEL_PW", "dbmon.user": "mon", "dbmon.database": "app"}
    cred = resolve(*pg(labels=labels), [], label_policy(allowed_env=["PG_LABEL_PW"], sslrootcert="/etc/ca.crt"))
    assert (cred.user, cred.database, cred.password, cred.rule) == ("mon", "app", "from-label", "labels")
    assert (cred.sslmode, cred.insecure, cred.sslrootcert) == ("verify-full", False, "/etc/ca.crt")


def test_credential_labels_are_ignored_unless_the_config_opts_in(monkeypatch):
    monkeypatch.setenv("PG_LABEL_PW", "from-label")
    labels = {"dbmon.password_env": "PG_LABEL_PW", "team": "orders"}
    assert resolve(*pg(labels=labels), []) is None
    assert resolve(*pg(labels=labels), [], parse_config({}).containers.label_credentials) is None
    # the config's own rules still apply to such a container
    cred = resolve(*pg(labels=labels), rules({"match": {"labels": {"team": "orders"}}, "user": "monitor"}))
    assert (cred.user, cred.rule, cred.insecure) == ("monitor", "containers.credentials[0]", False)


@pytest.mark.parametrize("labels,field", [
    ({"dbmon.password_env": "DBMON_SECRET_KEY"}, "pg-orders: label dbmon.password_env"),
    ({"dbmon.password_env": "HOME"}, "pg-orders: label dbmon.password_env"),
    ({"dbmon.user": "x", "dbmon.sslmode": "prefer"}, "pg-orders: label dbmon.sslmode"),
])
def test_an_opted_in_label_outside_the_policy_is_refused_naming_the_label(labels, field):
    with pytest.raises(ConfigError) as exc:
        resolve(*pg(labels=labels), [], label_policy(allowed_env=["PG_LABEL_PW"]))
    assert exc.value.errors[0][0] == field


def test_a_missing_password_names_the_label_or_rule(monkeypatch):
    monkeypatch.delenv("NOPE", raising=False)
    with pytest.raises(ConfigError) as exc:
        resolve(*pg(labels={"dbmon.password_env": "NOPE"}), [], label_policy(allowed_env=["NOPE"]))
    assert exc.value.errors == [("pg-orders: label dbmon.password_env", "environment variable NOPE is not set")]
    with pytest.raises(ConfigError) as exc:
        resolve(*pg(), rules({"match": {"name": "*"}, "password_env": "NOPE"}))
    assert exc.value.errors[0][0] == "containers.credentials[0].password_env"


def test_only_postgresql_databases_and_pgbouncers_are_handed_over():
    rec = ContainerRecord(id="c" * 64, name="cache", image="redis:7", exposed_ports=[6379])
    assert resolve(rec, identify(rec), rules({"match": {"name": "*"}})) is None


def test_a_pgbouncer_container_logs_into_its_admin_console_unless_told_otherwise():
    rec = ContainerRecord(id="c" * 64, name="pool", image="edoburu/pgbouncer:1.18", exposed_ports=[6432])
    ident = identify(rec)
    assert (ident.engine, ident.kind) == ("pgbouncer", "pooler")
    cred = resolve(rec, ident, rules({"match": {"image": "*pgbouncer*"}, "user": "stats", "insecure": True}))
    assert (cred.user, cred.database) == ("stats", "pgbouncer")
    assert resolve(*pg(), rules({"match": {"name": "*"}})).database == "postgres"


@pytest.mark.parametrize("section,path", [
    ({"credentials": [{"match": {}}]}, "containers.credentials[0].match"),
    ({"credentials": [{"match": {"name": "x"}, "password_env": "A", "password_file": "/b"}]}, "containers.credentials[0]"),
    ({"tls_warn_days": [30, 0]}, "containers.tls_warn_days"),
    ({"flapping": {"restarts": 1}}, "containers.flapping.restarts"),
    ({"docker": "x"}, "containers.docker"),
])
def test_bad_config_names_the_field(section, path):
    with pytest.raises(ConfigError) as exc:
        parse_config({"containers": section})
    assert exc.value.errors[0][0].startswith(path), exc.value.errors
