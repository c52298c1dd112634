"""The Inventory page: what dbmon watches, where each asset came from, and what it chose not to watch.

Facts are read where the collectors already keep them, nothing is probed for the page:
- version: the posture check's `server_version`, else the last probe's, else a container's image tag
  (said which, since an image tag is what was asked for, not what runs);
- TLS certificate expiry: the container TLS probe's certificates in `details["tls"]`, per endpoint,
  with the days left computed now (the stored `days_left` is as of the probe);
- ignored containers: `container_states` rows discovery judged not to be databases, with its reasons.
Everything here came from a monitored system or a container's labels: bounded, and labels redacted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor_app.access.label_redaction import LabelRedactor
from monitor_app.status.incidents_view import bounded
from monitor_app.store.models import Asset
from monitor_app.store.models.containers import ContainerState
from monitor_app.store.models.posture import PostureState

MAX_ENDPOINTS = 20
MAX_REASONS = 12
MAX_IGNORED = 500
EXPIRING_DAYS = 30


@dataclass(frozen=True)
class Version:
    value: str
    source: str  # posture | probe | image tag


@dataclass(frozen=True)
class CertificateExpiry:
    endpoint: str
    not_after: datetime
    days_left: float
    subject: str
    self_signed: bool

    @property
    def state(self) -> str:
        return "expired" if self.days_left <= 0 else ("expiring" if self.days_left <= EXPIRING_DAYS else "ok")


@dataclass
class InventoryAsset:
    id: int
    name: str
    kind: str
    engine: str | None
    source: str
    status: str
    labels: dict
    version: Version | None
    certificates: list[CertificateExpiry] = field(default_factory=list)


@dataclass
class IgnoredContainer:
    name: str
    image: str
    status: str
    engine_guess: str | None
    confidence: float
    reasons: list[str]
    last_seen_at: datetime


@dataclass
class Inventory:
    assets: list[InventoryAsset]
    ignored: list[IgnoredContainer]
    sources: dict[str, int]


def version_of(asset: Asset, posture_version: str | None) -> Version | None:
    if posture_version:
        return Version(bounded(posture_version, 100), "posture")
    details = asset.details if isinstance(asset.details, dict) else {}
    probe = details.get("probe")
    if isinstance(probe, dict) and isinstance(probe.get("server_version"), str) and probe["server_version"]:
        return Version(bounded(probe["server_version"], 100), "probe")
    image = details.get("image")
    if isinstance(image, str) and ":" in image.rsplit("/", 1)[-1]:
        tag = image.rsplit("/", 1)[-1].split(":", 1)[1].split("@", 1)[0]
        if tag:
            return Version(bounded(tag, 100), "image tag")
    return None


def certificates_of(asset: Asset, now: datetime) -> list[CertificateExpiry]:
    details = asset.details if isinstance(asset.details, dict) else {}
    tls = details.get("tls")
    if not isinstance(tls, dict):
        return []
    found = []
    for endpoint, cert in list(tls.items())[:MAX_ENDPOINTS]:
        if not isinstance(cert, dict) or not isinstance(cert.get("not_after"), str):
            continue
        try:
            not_after = datetime.fromisoformat(cert["not_after"])
        except ValueError:
            continue
        if not_after.tzinfo is None:
            continue  # the probe always stores an offset; anything else was not written by it
        found.append(CertificateExpiry(endpoint=bounded(endpoint, 200), not_after=not_after,
                                       days_left=round((not_after - now).total_seconds() / 86400, 1),
                                       subject=bounded(cert.get("subject"), 300),
                                       self_signed=cert.get("self_signed") is True))
    return sorted(found, key=lambda c: c.not_after)


def ignored_containers(session: Session, limit: int = MAX_IGNORED) -> list[IgnoredContainer]:
    rows = session.scalars(select(ContainerState).where(ContainerState.is_database.is_(False),
                                                        ContainerState.status != "gone")
                           .order_by(ContainerState.name).limit(limit)).all()
    return [IgnoredContainer(name=bounded(r.name, 255), image=bounded(r.image, 300), status=bounded(r.status, 32),
                             engine_guess=r.engine, confidence=float(r.confidence or 0.0),
                             reasons=[bounded(x, 300) for x in (r.reasons if isinstance(r.reasons, list) else [])
                                      ][:MAX_REASONS], last_seen_at=r.last_seen_at)
            for r in rows]


def inventory(session: Session, *, redactor: LabelRedactor, now: datetime) -> Inventory:
    assets = session.scalars(select(Asset).where(Asset.status != "gone").order_by(Asset.source, Asset.name)).all()
    versions = dict(session.execute(select(PostureState.asset_id, PostureState.server_version)).all())
    rows = [InventoryAsset(id=a.id, name=a.name, kind=a.kind, engine=a.engine, source=a.source, status=a.status,
                           labels=redactor.labels(a.labels) if isinstance(a.labels, dict) else {},
                           version=version_of(a, versions.get(a.id)), certificates=certificates_of(a, now))
            for a in assets]
    sources: dict[str, int] = {}
    for r in rows:
        sources[r.source] = sources.get(r.source, 0) + 1
    return Inventory(assets=rows, ignored=ignored_containers(session), sources=sources)
