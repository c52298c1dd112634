"""Numeric samples: per-sample rows (host and probe samples), and series packed into chunks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from monitor_app.store.base import BigId, Base, JSONType, UTCDateTime, utcnow


class MetricSample(Base):
    __tablename__ = "metric_samples"
    __table_args__ = (Index("ix_metric_samples_name_asset_at", "name", "asset_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    value: Mapped[float] = mapped_column(Float)
    labels: Mapped[dict] = mapped_column(JSONType, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MetricSeries(Base):
    """One series: a metric of an asset with one set of labels, and its latest value."""

    __tablename__ = "metric_series"
    __table_args__ = (UniqueConstraint("asset_id", "name", "labels_key", name="uq_metric_series_identity"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    labels: Mapped[dict] = mapped_column(JSONType, default=dict)
    # A digest of the canonical labels: JSON columns cannot be part of a unique key on every backend.
    labels_key: Mapped[str] = mapped_column(String(40))
    last_value: Mapped[float | None] = mapped_column(Float)
    last_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MetricPoint(Base):
    """A sample not yet packed into a chunk (the current hour); (series, at) makes a rewrite a no-op."""

    __tablename__ = "metric_points"

    series_id: Mapped[int] = mapped_column(ForeignKey("metric_series.id", ondelete="CASCADE"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    value: Mapped[float] = mapped_column(Float)


class MetricChunk(Base):
    """A series' samples (tier `raw`) or rollup buckets (`1m`, `10m`, `1h`) over one span, packed."""

    __tablename__ = "metric_chunks"

    series_id: Mapped[int] = mapped_column(ForeignKey("metric_series.id", ondelete="CASCADE"), primary_key=True)
    tier: Mapped[str] = mapped_column(String(8), primary_key=True)
    start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer)
    payload: Mapped[bytes] = mapped_column(LargeBinary)


class MetricPollState(Base):
    """Where one collector tier stands on one asset: when it was last sent and polled, and the raw
    counters of that poll, which the next poll's rates are computed against."""

    __tablename__ = "metric_poll_state"

    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True)
    tier: Mapped[str] = mapped_column(String(32), primary_key=True)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    counters: Mapped[dict] = mapped_column(JSONType, default=dict)
