"""Fixtures of the metrics tests."""

from __future__ import annotations

import pytest

from monitor_app.access.api_keys import create_key
from monitor_app.config.settings import load_settings
from monitor_app.platform.runtime import Runtime


@pytest.fixture()
def api(store, tmp_path):
    from api import create_app

    settings = load_settings(_env_file=None, data_dir=tmp_path, database_url=store.url, secret_key="k",
                             config_file=tmp_path / "none.yaml")
    rt = Runtime(settings, sender=lambda *a: None)
    rt.__dict__["store"] = store
    client = create_app(rt).test_client()
    with store.session() as s:
        client.headers = {"X-API-Key": create_key(s, name="viewer", role="viewer")[1]}
    return client
