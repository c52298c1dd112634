"""The `metrics:` section of the config file. Nothing in it is needed: every PostgreSQL asset
with credentials gets the fast tier at the default interval.

    metrics:
      fast_interval: 10          # seconds between fast-tier polls of one PostgreSQL asset
      statement_timeout: 2       # seconds one collector query may run
      assets:
        orders-db:
          fast_interval: 30      # a per-asset override
          enabled: false         # or no metrics collection for this asset at all
"""

from __future__ import annotations

from pydantic import Field

from monitor_app.config.section import ConfigSection


class MetricsAssetConfig(ConfigSection):

    fast_interval: float | None = Field(None, ge=1, le=3600)
    enabled: bool = True


class MetricsConfig(ConfigSection):

    fast_interval: float = Field(10.0, ge=1, le=3600, description="Seconds between fast-tier polls of one asset.")
    statement_timeout: float = Field(2.0, gt=0, le=60, description="Seconds one collector query may run.")
    lock_timeout: float = Field(0.5, gt=0, le=60, description="Seconds one collector query may wait for a lock.")
    assets: dict[str, MetricsAssetConfig] = Field(default_factory=dict)

    def for_asset(self, name: str) -> MetricsAssetConfig:
        return self.assets.get(name) or MetricsAssetConfig(fast_interval=None)

    def fast_interval_for(self, name: str) -> float:
        return self.for_asset(name).fast_interval or self.fast_interval
