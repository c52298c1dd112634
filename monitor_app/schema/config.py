"""The `schema:` section of the config file.

    schema:
      check_interval: 300        # scheduled check (pre-check hash first) for every database asset
      event_triggers: true       # install the event trigger where dbmon connects as a superuser
      quiet_seconds: 0.05        # a burst of DDL notifications ends after this much silence...
      max_wait_seconds: 0.5      # ...or this long after its first notification
      assets:
        orders-db:
          expected: app.models:Base     # or expected.sql, or a snapshot .json
          event_trigger: false          # opt this asset out of the trigger
"""

from __future__ import annotations

from pydantic import Field

from monitor_app.config.section import ConfigSection


class SchemaAssetConfig(ConfigSection):

    expected: str | None = Field(None, description="Snapshot .json, .sql file or module:MetaData the app expects.")
    event_trigger: bool | None = Field(None, description="Override schema.event_triggers for this asset.")
    check_interval: float | None = Field(None, gt=0)


class SchemaConfig(ConfigSection):

    check_interval: float = Field(300.0, gt=0, description="Seconds between scheduled checks of one asset.")
    event_triggers: bool = Field(False, description="Install the DDL event trigger where dbmon is superuser.")
    quiet_seconds: float = Field(0.05, gt=0, le=10)
    max_wait_seconds: float = Field(0.5, gt=0, le=60)
    assets: dict[str, SchemaAssetConfig] = Field(default_factory=dict)

    def for_asset(self, name: str) -> SchemaAssetConfig:
        return self.assets.get(name) or SchemaAssetConfig()

    def trigger_allowed(self, name: str) -> bool:
        override = self.for_asset(name).event_trigger
        return self.event_triggers if override is None else override

    def interval_for(self, name: str) -> float:
        return self.for_asset(name).check_interval or self.check_interval
