"""A runtime on each store backend with a config file the test writes, and helpers to read
what a scan stored."""

from __future__ import annotations

import pytest
import yaml
from sqlalchemy import select

from monitor_app.config.settings import load_settings
from monitor_app.platform.runtime import Runtime
from monitor_app.store.models import Event
from monitor_app.store.models.files import FileChange


class FilesRuntime(Runtime):
    def write_config(self, data: dict) -> None:
        self.settings.config_file.write_text(yaml.safe_dump(data))

    def events(self, prefix: str = "") -> list[Event]:
        with self.store.session() as s:
            rows = s.scalars(select(Event).where(Event.type.startswith(prefix)).order_by(Event.id)).all()
            s.expunge_all()
            return list(rows)

    def changes(self) -> list[FileChange]:
        with self.store.session() as s:
            rows = s.scalars(select(FileChange).order_by(FileChange.id)).all()
            s.expunge_all()
            return list(rows)


@pytest.fixture()
def files_rt(store, tmp_path):
    settings = load_settings(_env_file=None, data_dir=tmp_path / "data", database_url=store.url,
                             secret_key="files-test-key", config_file=tmp_path / "dbmon.yaml")
    (tmp_path / "data").mkdir()
    rt = FilesRuntime(settings, sender=lambda *a: rt.sent.append(a))
    rt.sent = []
    rt.__dict__["store"] = store
    rt.write_config({})
    return rt
