"""`evaluate` alone: catalogue facts and a release list in, findings out."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from monitor_app.errors import ConfigError
from monitor_app.posture.evaluate import evaluate
from monitor_app.posture.releases import load_release_list, parse_release_list

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)
RELEASES = parse_release_list({
    "as_of": "2026-11-12",
    "branches": {
        "17": {"latest": "17.9", "released": "2026-11-12", "end_of_life": "2029-11-08"},
        "15": {"latest": "15.17", "released": "2026-11-12", "end_of_life": "2027-11-11"},
        "14": {"latest": "14.22", "released": "2026-11-12", "end_of_life": "2026-11-12"},
    },
}, "test list")


def facts(**overrides) -> dict:
    base = {"server_version_num": 150017, "ssl": "off", "listen_addresses": "localhost",
            "password_encryption": "scram-sha-256", "hba_rules": [], "md5_roles": [],
            "privileged_roles": [], "public_create": False,
            "data_directory": {"path": "/srv/pg", "mode": 0o700}, "not_checked": {}}
    return {**base, **overrides}


def ids(posture) -> set[str]:
    return {f.id for f in posture.findings}


def test_a_clean_server_has_no_findings():
    result = evaluate(facts(), RELEASES, NOW)
    assert result.findings == [] and result.not_checked == {}


@pytest.mark.parametrize("version_num, expected", [
    (150017, set()),                         # latest
    (150016, set()),                         # one behind: tolerated
    (150015, {"minor_release_behind"}),      # two behind
    (150020, set()),                         # newer than the list knows
    (140022, {"major_end_of_life"}),         # branch past its end of life on NOW
    (120020, {"major_end_of_life"}),         # older than every branch listed
])
def test_version_against_the_release_list(version_num, expected):
    result = evaluate(facts(server_version_num=version_num), RELEASES, NOW)
    assert ids(result) == expected
    for finding in result.findings:
        assert "2026-11-12" in finding.detail  # which list was used


def test_a_branch_newer_than_the_list_is_not_checked():
    result = evaluate(facts(server_version_num=190002), RELEASES, NOW)
    assert ids(result) == set()
    assert "19" in result.not_checked["version"] and "2026-11-12" in result.not_checked["version"]


def test_pre_10_versions_are_read_as_major_dot_minor():
    result = evaluate(facts(server_version_num=90624), RELEASES, NOW)
    assert ids(result) == {"major_end_of_life"}
    assert "9.6.24" in result.findings[0].detail


def hba(line, type_, address, netmask, method, database=("all",), user=("all",)):
    return {"line_number": line, "type": type_, "database": list(database), "user_name": list(user),
            "address": address, "netmask": netmask, "auth_method": method}


def test_pg_hba_trust_and_world_open_rules():
    rules = [hba(1, "local", None, None, "trust"),
             hba(2, "host", "127.0.0.1", "255.255.255.255", "trust"),
             hba(3, "host", "10.0.0.0", "255.0.0.0", "trust"),
             hba(4, "hostssl", "0.0.0.0", "0.0.0.0", "scram-sha-256"),
             hba(7, "host", "::", "::", "md5"),
             hba(8, "host", "::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "trust"),
             hba(5, "host", "all", None, "reject"),
             hba(6, "host", "db.example.org", None, "trust")]
    result = evaluate(facts(hba_rules=rules), RELEASES, NOW)
    by_id = {f.id: f for f in result.findings}
    assert set(by_id) == {"hba_trust_remote", "hba_trust_local", "hba_open_to_all_addresses"}
    assert by_id["hba_trust_remote"].severity == "critical"
    assert "line 3" in by_id["hba_trust_remote"].detail and "line 6" in by_id["hba_trust_remote"].detail
    assert "line 1" in by_id["hba_trust_local"].detail and "line 2" in by_id["hba_trust_local"].detail
    assert "line 4" in by_id["hba_open_to_all_addresses"].detail and "line 7" in by_id["hba_open_to_all_addresses"].detail
    assert "line 8" in by_id["hba_trust_local"].detail


@pytest.mark.parametrize("listen, ssl, expected", [
    ("localhost", "off", set()),
    ("127.0.0.1, ::1", "off", set()),
    ("", "off", set()),                      # Unix socket only
    ("*", "off", {"ssl_off_remote"}),
    ("127.0.0.1,10.1.2.3", "off", {"ssl_off_remote"}),
    ("*", "on", set()),
])
def test_ssl_off_matters_only_when_reachable_from_other_hosts(listen, ssl, expected):
    assert ids(evaluate(facts(listen_addresses=listen, ssl=ssl), RELEASES, NOW)) == expected


def test_roles_passwords_public_schema_and_data_directory():
    result = evaluate(facts(password_encryption="md5", md5_roles=["app"], public_create=True,
                            privileged_roles=[{"name": "app", "superuser": True, "createrole": True},
                                              {"name": "hr", "superuser": False, "createrole": True}],
                            data_directory={"path": "/srv/pg", "mode": 0o755}), RELEASES, NOW)
    severities = {f.id: f.severity for f in result.findings}
    assert severities == {"password_encryption_md5": "warning", "md5_role_password:app": "warning",
                          "public_schema_create": "warning", "superuser_role:app": "critical",
                          "createrole_role:hr": "warning", "data_directory_permissions": "warning"}
    for finding in result.findings:
        assert finding.title and finding.detail and finding.remediation


@pytest.mark.parametrize("mode, severity", [(0o700, None), (0o750, None), (0o740, None), (0o755, "warning"),
                                            (0o770, "critical"), (0o757, "critical")])
def test_data_directory_modes(mode, severity):
    result = evaluate(facts(data_directory={"path": "/srv/pg", "mode": mode}), RELEASES, NOW)
    assert [f.severity for f in result.findings] == ([severity] if severity else [])


def test_what_could_not_be_read_is_reported_not_guessed():
    result = evaluate(facts(hba_rules=None, md5_roles=None, data_directory=None,
                            not_checked={"pg_hba": "needs superuser"}), RELEASES, NOW)
    assert result.findings == [] and result.not_checked == {"pg_hba": "needs superuser"}


def test_hostile_names_are_kept_as_data_and_bounded():
    name = "x'); DROP TABLE t; --<script>" + "é" * 300
    result = evaluate(facts(privileged_roles=[{"name": name, "superuser": True, "createrole": False}]),
                      RELEASES, NOW)
    (finding,) = result.findings
    assert len(finding.id) <= 255 and finding.id.startswith("superuser_role:x'); DROP")


def test_the_shipped_release_list_is_dated_and_complete():
    shipped = load_release_list()
    assert shipped.as_of.year >= 2025
    assert {"13", "14", "15", "16", "17"} <= set(shipped.branches)


def test_a_broken_release_list_names_the_field(tmp_path):
    path = tmp_path / "releases.json"
    path.write_text(json.dumps({"as_of": "2026-13-01", "branches": {"15": {"latest": "fifteen"}}}))
    with pytest.raises(ConfigError) as info:
        load_release_list(path)
    fields = dict(info.value.errors)
    assert "as_of" in fields and "branches.15.latest" in fields
