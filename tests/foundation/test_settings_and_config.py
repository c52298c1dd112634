from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from monitor_app.config.declarative import load_config, parse_config
from monitor_app.errors import ConfigError
from monitor_app.config.settings import load_settings
from tests.harness import ROOT


def test_it_names_the_variable_of_a_bad_setting(monkeypatch):
    monkeypatch.setenv("DBMON_API_PORT", "eighty")
    monkeypatch.setenv("DBMON_WORKER_CONCURRENCY", "0")
    with pytest.raises(ConfigError) as err:
        load_settings(_env_file=None)
    fields = dict(err.value.errors)
    assert set(fields) == {"DBMON_API_PORT", "DBMON_WORKER_CONCURRENCY"}
    assert "integer" in fields["DBMON_API_PORT"]


def test_it_reads_secrets_from_file_variables(monkeypatch, tmp_path):
    secret = tmp_path / "key"
    secret.write_text("from-a-file\n")
    monkeypatch.setenv("DBMON_SECRET_KEY_FILE", str(secret))
    monkeypatch.delenv("DBMON_SECRET_KEY", raising=False)
    assert load_settings(_env_file=None).secret_key == "from-a-file"


def test_it_reports_an_unreadable_secret_file_by_name(monkeypatch, tmp_path):
    monkeypatch.setenv("DBMON_SECRET_KEY_FILE", str(tmp_path / "absent"))
    with pytest.raises(ConfigError) as err:
        load_settings(_env_file=None)
    assert err.value.errors[0][0] == "DBMON_SECRET_KEY_FILE"


def test_it_generates_a_private_secret_key_once(tmp_path):
    settings = load_settings(_env_file=None, data_dir=tmp_path, secret_key=None)
    first = settings.resolved_secret_key()
    assert first == settings.resolved_secret_key() and len(first) >= 40
    assert stat.S_IMODE((tmp_path / "secret.key").stat().st_mode) == 0o600


def test_it_defaults_to_the_embedded_store_and_broker(tmp_path):
    settings = load_settings(_env_file=None, data_dir=tmp_path, database_url="", broker_url="")
    assert settings.resolved_database_url == f"sqlite:///{tmp_path.resolve() / 'dbmon.sqlite3'}"
    assert settings.embedded_broker


def test_it_lists_every_config_error_with_its_field_path():
    with pytest.raises(ConfigError) as err:
        parse_config({"assets": [
            {"name": "a", "engine": "postgresql", "host": "h", "database": "d", "port": 70000},
            {"name": "b", "engine": "oracle"},
            {"name": "c", "engine": "sqlite", "path": "/x", "colour": "red"},
        ], "watch": "nope"})
    paths = [p for p, _ in err.value.errors]
    assert paths == ["assets[0].port", "assets[1].engine", "assets[2].colour", "watch"]


def test_it_rejects_engine_specific_omissions_and_conflicting_passwords():
    with pytest.raises(ConfigError) as err:
        parse_config({"assets": [{"name": "a", "engine": "postgresql", "database": "d"}]})
    assert err.value.errors == [("assets[0]", "host is required for a postgresql asset")]
    with pytest.raises(ConfigError) as err:
        parse_config({"assets": [{"name": "a", "engine": "postgresql", "host": "h", "database": "d",
                                  "password": "x", "password_env": "Y"}]})
    assert "give only one of" in err.value.errors[0][1]


def test_it_rejects_duplicate_names_and_unknown_watch_assets():
    asset = {"name": "a", "engine": "sqlite", "path": "/x.db"}
    with pytest.raises(ConfigError) as err:
        parse_config({"assets": [asset, asset]})
    assert err.value.errors[0] == ("assets", "asset name 'a' is used twice")
    with pytest.raises(ConfigError) as err:
        parse_config({"assets": [asset], "watch": [{"path": "/tmp", "asset": "b"}]})
    assert "no asset named 'b'" in err.value.errors[0][1]


def test_it_points_at_the_line_of_a_yaml_syntax_error(tmp_path):
    path = tmp_path / "dbmon.yaml"
    path.write_text("assets:\n  - name: a\n    engine: [sqlite\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    where, message = err.value.errors[0]
    assert where.startswith("line 4") and "invalid YAML" in message


def run_cli(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "monitor_app.cli.main", *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, cwd=cwd, timeout=60)


@pytest.mark.slow  # two CLI processes
def test_check_config_exits_2_with_field_errors_and_leaves_the_store_alone(tmp_path):
    env = {"DBMON_DATA_DIR": str(tmp_path / "var")}
    assert run_cli("db", "upgrade", env=env).returncode == 0
    store_file = tmp_path / "var" / "dbmon.sqlite3"
    before = store_file.read_bytes()
    bad = tmp_path / "bad.yaml"
    bad.write_text("assets:\n  - name: x\n    engine: sqlite\n")
    result = run_cli("check-config", str(bad), env=env)
    assert result.returncode == 2
    assert "assets[0]: path is required for a sqlite asset" in result.stderr
    assert "Traceback" not in result.stderr
    assert store_file.read_bytes() == before


@pytest.mark.slow  # a CLI process
def test_check_config_accepts_a_valid_file(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("assets:\n  - name: app\n    engine: sqlite\n    path: /srv/app.db\nwatch:\n  - path: /srv\n    asset: app\n")
    result = run_cli("check-config", str(good))
    assert result.returncode == 0, result.stderr
    assert "valid (1 assets, 1 watch paths)" in result.stdout


@pytest.mark.slow  # a CLI process
def test_a_bad_setting_stops_the_cli_with_a_message_not_a_traceback(tmp_path):
    result = run_cli("db", "current", env={"DBMON_API_PORT": "x", "DBMON_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "DBMON_API_PORT" in result.stderr and "Traceback" not in result.stderr


def test_env_example_documents_every_setting():
    from monitor_app.config.settings import Settings

    documented = (ROOT / ".env.example").read_text()
    assert [n for n in Settings.model_fields if f"DBMON_{n.upper()}=" not in documented] == []


def test_a_per_server_connection_budget_is_validated_field_by_field():
    with pytest.raises(ConfigError) as err:
        parse_config({"servers": [{"host": "db1", "connection_budget": 0},
                                  {"host": "db2", "port": 0, "connection_budget": 101},
                                  {"port": 5432, "connection_budget": "many"},
                                  {"host": " ", "connection_budget": 2, "budget": 2}]})
    paths = [p for p, _ in err.value.errors]
    assert paths == ["servers[0].connection_budget", "servers[1].port", "servers[1].connection_budget",
                     "servers[2].host", "servers[2].connection_budget", "servers[3].host", "servers[3].budget"]
    with pytest.raises(ConfigError) as err:
        parse_config({"servers": [{"host": "DB1", "connection_budget": 2}, {"host": "db1", "port": 5432,
                                                                           "connection_budget": 5}]})
    assert err.value.errors == [("servers", "server db1:5432 is listed twice (servers[0] and servers[1])")]
    config = parse_config({"servers": [{"host": "DB1", "connection_budget": 6},
                                       {"host": "/run/pg", "port": 5433, "connection_budget": 1}]})
    assert config.server_budgets() == {"db1:5432": 6, "/run/pg:5433": 1}
