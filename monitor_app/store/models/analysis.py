"""What the series rules remember: each detector's state, and the anomaly windows they found."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from monitor_app.store.base import BigId, Base, UTCDateTime, utcnow


class SeriesDetectorState(Base):
    """One rule's detector on one series: fed up to `fed_until`, its state packed (zlib'd JSON)."""

    __tablename__ = "series_detector_states"

    rule: Mapped[str] = mapped_column(String(128), primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("metric_series.id", ondelete="CASCADE"), primary_key=True)
    fed_until: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MetricAnomaly(Base):
    """A window in which a series was off its baseline; `end_at` is None while it lasts."""

    __tablename__ = "metric_anomalies"
    __table_args__ = (UniqueConstraint("rule", "series_id", "start", name="uq_metric_anomalies_window"),
                      Index("ix_metric_anomalies_asset_start", "asset_id", "start"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    series_id: Mapped[int] = mapped_column(ForeignKey("metric_series.id", ondelete="CASCADE"), index=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    metric: Mapped[str] = mapped_column(String(128))
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    direction: Mapped[str] = mapped_column(String(8))
    score: Mapped[float] = mapped_column(Float)
    baseline: Mapped[float | None] = mapped_column(Float)
    peak: Mapped[float] = mapped_column(Float)
    adapted: Mapped[bool] = mapped_column(Boolean, default=False)
