"""`dbmon posture findings` against a real store."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from monitor_app.store.models import Asset, PostureFinding


@pytest.fixture()
def posture_cli(sqlite_store, tmp_path, monkeypatch):
    from monitor_app.cli.main import cli as root
    from monitor_app.config.settings import get_settings

    for key, value in {"DATABASE_URL": sqlite_store.url, "CONFIG_FILE": str(tmp_path / "none.yaml"),
                       "DATA_DIR": str(tmp_path), "SECRET_KEY": "cli-test", "BROKER_URL": "filesystem://"}.items():
        monkeypatch.setenv(f"DBMON_{key}", value)
    get_settings.cache_clear()
    runner = CliRunner()
    yield lambda *args: runner.invoke(root, ["posture", *args])
    get_settings.cache_clear()


def _finding(s, asset_id: int, finding: str, severity: str) -> None:
    s.add(PostureFinding(asset_id=asset_id, finding=finding, severity=severity, title=f"{finding} title",
                         detail="d", remediation="r"))


def test_it_lists_critical_findings_first_and_fails_on_them(sqlite_store, posture_cli):
    with sqlite_store.session() as s:
        app, billing = Asset(kind="database", engine="postgresql", name="app", source="config", external_id="app"), \
            Asset(kind="database", engine="postgresql", name="billing", source="config", external_id="billing")
        s.add_all([app, billing])
        s.flush()
        _finding(s, app.id, "ssl_off", "warning")
        _finding(s, billing.id, "trust_auth", "critical")

    out = posture_cli("findings", "--json")
    rows = json.loads(out.output)
    assert [(r["asset"], r["id"], r["severity"]) for r in rows] == [
        ("billing", "trust_auth", "critical"), ("app", "ssl_off", "warning")]
    assert out.exit_code == 1

    only_app = posture_cli("findings", "--asset", "app")
    assert only_app.exit_code == 0
    assert "ssl_off" in only_app.output and "trust_auth" not in only_app.output


def test_an_unknown_asset_is_a_clear_error(sqlite_store, posture_cli):
    out = posture_cli("findings", "--asset", "nope")
    assert out.exit_code == 2
    assert "no asset named 'nope'" in out.output


def test_no_findings_says_so(sqlite_store, posture_cli):
    out = posture_cli("findings")
    assert (out.exit_code, out.output.strip()) == (0, "no open findings")
