"""An in-process API over a real store with a key per role, for the hostile-input tests."""

from __future__ import annotations

import pytest
import yaml

CONFIG = {"alerting": {
    "rules": [{"name": "AssetDown", "kind": "event", "event_types": ["asset.down"], "severity": "page"}],
    # The sender is a stub, so nothing is ever delivered to this address.
    "channels": {"ops": {"type": "webhook", "url": "http://127.0.0.1:9/hook"}},
    "route": {"channels": ["ops"]},
}}


def build_api(store, tmp_path, **settings_overrides):
    from api import create_app
    from monitor_app.access.api_keys import create_key
    from monitor_app.platform.runtime import Runtime
    from monitor_app.config.settings import load_settings

    config_file = tmp_path / "dbmon.yaml"
    if not config_file.exists():
        config_file.write_text(yaml.safe_dump(CONFIG))
    settings = load_settings(_env_file=None, data_dir=tmp_path, database_url=store.url, secret_key="input-test-key",
                             config_file=config_file, **settings_overrides)
    sent: list = []
    rt = Runtime(settings, sender=lambda *a: sent.append(a))
    rt.__dict__["store"] = store
    keys = {None: {}}
    with store.session() as s:
        for role in ("viewer", "operator", "admin"):
            keys[role] = {"X-API-Key": create_key(s, name=role, role=role)[1]}
    client = create_app(rt).test_client()
    client.keys, client.sent, client.rt = keys, sent, rt
    return client


@pytest.fixture()
def api(store, tmp_path):
    return build_api(store, tmp_path)


def pytest_collection_modifyitems(config, items):
    """The long fuzz runs only when asked for by marker; the bounded one always runs."""
    if "fuzz_long" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="long fuzz: select it with -m fuzz_long")
    for item in items:
        if "fuzz_long" in item.keywords:
            item.add_marker(skip)
