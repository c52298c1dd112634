"""collect + evaluate against real private clusters: exact findings for an exposed and a hardened one."""

from __future__ import annotations

from datetime import datetime, timezone

import psycopg2

from monitor_app.posture.evaluate import evaluate
from monitor_app.posture.facts import collect
from tests.posture.conftest import release_list_for

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)
EXPOSED = {"hba_trust_remote", "hba_trust_local", "hba_open_to_all_addresses", "ssl_off_remote",
           "password_encryption_md5", "md5_role_password:app", "superuser_role:app", "createrole_role:mgr",
           "public_schema_create", "minor_release_behind", "data_directory_permissions"}


def assess(dsn: str, behind: int = 0):
    conn = psycopg2.connect(dsn)
    try:
        facts = collect(conn, same_host=True)
    finally:
        conn.close()
    return facts, evaluate(facts, release_list_for(facts["server_version_num"], behind), NOW)


def test_an_exposed_cluster_has_exactly_the_expected_findings(exposed_cluster):
    facts, result = assess(exposed_cluster.dsn(), behind=2)
    assert {f.id for f in result.findings} == EXPOSED
    assert result.not_checked == {}
    severities = {f.id: f.severity for f in result.findings}
    assert {k for k, v in severities.items() if v == "critical"} == {"hba_trust_remote", "ssl_off_remote",
                                                                  "superuser_role:app"}
    assert facts["listen_addresses"] == "*" and facts["ssl"] == "off"


def test_a_hardened_cluster_has_no_findings(hardened_cluster):
    _, result = assess(hardened_cluster.dsn())
    assert result.findings == []
    assert result.not_checked == {}


def test_an_unprivileged_role_says_what_it_could_not_check(exposed_cluster):
    _, result = assess(exposed_cluster.dsn(user="watcher"), behind=2)
    assert set(result.not_checked) == {"pg_hba", "role_passwords", "data_directory"}
    assert "superuser" in result.not_checked["pg_hba"]
    assert "pg_read_all_settings" in result.not_checked["data_directory"]
    assert {f.id for f in result.findings} == EXPOSED - {
        "hba_trust_remote", "hba_trust_local", "hba_open_to_all_addresses", "md5_role_password:app",
        "data_directory_permissions"}


def test_pg_monitor_is_enough_for_the_data_directory(exposed_cluster):
    exposed_cluster.run("CREATE ROLE watcher_monitor LOGIN IN ROLE pg_monitor")
    try:
        _, result = assess(exposed_cluster.dsn(user="watcher_monitor"), behind=2)
        assert set(result.not_checked) == {"pg_hba", "role_passwords"}
        assert "data_directory_permissions" in {f.id for f in result.findings}
    finally:
        exposed_cluster.run("DROP ROLE watcher_monitor")


def test_a_remote_server_data_directory_is_not_stat_ed(exposed_cluster):
    conn = psycopg2.connect(exposed_cluster.dsn())
    try:
        facts = collect(conn, same_host=False)
    finally:
        conn.close()
    assert facts["data_directory"] is None
    assert "same host" in facts["not_checked"]["data_directory"]
