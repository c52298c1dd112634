"""The `metrics:` section of the config file. Nothing in it is needed: every PostgreSQL asset
with credentials gets the fast tier, and every SQLite asset the file collector, at the default
intervals.

    metrics:
      fast_interval: 10          # seconds between fast-tier polls of one PostgreSQL asset
      medium_interval: 60        # seconds between medium-tier polls (statements, checkpointer, archiver, vacuums)
      statements_top: 10         # statements reported per medium poll, by time spent in the interval
      statements_tracked: 50     # statements compared between polls (most time, most calls since reset)
      slow_interval: 600         # seconds between slow-tier polls (sizes, vacuum health, unused indexes, settings)
      relations_top: 10          # largest tables and unused indexes reported per slow poll
      statement_timeout: 2       # seconds one collector query may run
      sqlite_interval: 60        # seconds between polls of one SQLite file
      container_interval: 15     # seconds between Docker stats of one database container
      sqlite_quick_check_interval: 86400   # PRAGMA quick_check this often (it reads the whole file)
      sqlite_quick_check_seconds: 5        # and abandons it after this long
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
    medium_interval: float | None = Field(None, ge=5, le=86400)
    slow_interval: float | None = Field(None, ge=30, le=86400)
    sqlite_interval: float | None = Field(None, ge=1, le=86400)
    enabled: bool = True


class MetricsConfig(ConfigSection):

    fast_interval: float = Field(10.0, ge=1, le=3600, description="Seconds between fast-tier polls of one asset.")
    medium_interval: float = Field(60.0, ge=5, le=86400, description="Seconds between medium-tier polls of one asset.")
    statements_top: int = Field(10, ge=1, le=100, description="Statements reported per medium-tier poll.")
    statements_tracked: int = Field(50, ge=10, le=500, description="Statements compared between medium-tier polls.")
    slow_interval: float = Field(600.0, ge=30, le=86400, description="Seconds between slow-tier polls of one asset.")
    relations_top: int = Field(10, ge=1, le=100, description="Largest tables and unused indexes per slow-tier poll.")
    statement_timeout: float = Field(2.0, gt=0, le=60, description="Seconds one collector query may run.")
    lock_timeout: float = Field(0.5, gt=0, le=60, description="Seconds one collector query may wait for a lock.")
    sqlite_interval: float = Field(60.0, ge=1, le=86400, description="Seconds between polls of one SQLite file.")
    container_interval: float = Field(15.0, ge=1, le=3600, description="Seconds between Docker stats of one container.")
    sqlite_quick_check_interval: float = Field(86400.0, ge=60, description="Seconds between integrity checks of one SQLite file.")
    sqlite_quick_check_seconds: float = Field(5.0, gt=0, le=600, description="An integrity check still running after this is abandoned.")
    assets: dict[str, MetricsAssetConfig] = Field(default_factory=dict)

    def for_asset(self, name: str) -> MetricsAssetConfig:
        return self.assets.get(name) or MetricsAssetConfig(fast_interval=None, medium_interval=None,
                                                           slow_interval=None, sqlite_interval=None)

    def fast_interval_for(self, name: str) -> float:
        return self.for_asset(name).fast_interval or self.fast_interval

    def medium_interval_for(self, name: str) -> float:
        return self.for_asset(name).medium_interval or self.medium_interval

    def slow_interval_for(self, name: str) -> float:
        return self.for_asset(name).slow_interval or self.slow_interval

    def sqlite_interval_for(self, name: str) -> float:
        return self.for_asset(name).sqlite_interval or self.sqlite_interval
