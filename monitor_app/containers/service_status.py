"""Probing a container asset's service ports and storing the outcome: per-port up/down
transitions, connect-time samples, TLS certificate state, and (for engines dbmon cannot
log into) the asset's own up/down status."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from monitor_app.assets.reachability import ProbeResult, apply_probe, can_probe
from monitor_app.platform.collector_health import Attempt, asset_subject, record_attempt
from monitor_app.containers.probes import (SSLREQUEST_ENGINES, Certificate, PortProbe, read_certificate, tcp_probe,
                                           tls_findings)
from monitor_app.platform.event_log import record_event
from monitor_app.store.base import utcnow
from monitor_app.store.models import Asset, MetricSample


@dataclass
class ServiceProbe:
    ports: list[PortProbe]
    certificates: dict[str, Certificate | None]
    tls_errors: dict[str, str] = field(default_factory=dict)


def probe_endpoints(endpoints: list[dict], engine: str | None, timeout: float) -> ServiceProbe:
    """Network only, no store: run it outside any transaction."""
    ports = [tcp_probe(ep["host"], ep["port"], timeout) for ep in endpoints]
    tls = {p.key: read_certificate(p.host, p.port, engine, timeout) for p in ports if p.up}
    return ServiceProbe(ports, {k: t.certificate for k, t in tls.items()},
                        {k: t.error for k, t in tls.items() if t.error})


def tls_attempt(asset: Asset, result: ServiceProbe, tls_before: dict) -> Attempt | None:
    """The TLS probe's outcome for collector health. A failed handshake is a failure only where
    TLS is expected: the endpoint had a certificate before, or the engine said 'S' to the
    SSLRequest. Elsewhere it is just a plain-text service, and neither success nor failure."""
    failed = {key: error for key, error in result.tls_errors.items()
              if key in tls_before or asset.engine in SSLREQUEST_ENGINES}
    if failed:
        error = "; ".join(f"{key}: {error}" for key, error in sorted(failed.items()))
        return Attempt("tls", asset_subject(asset.id), asset.id, asset.name, error)
    if any(result.certificates.values()):
        return Attempt("tls", asset_subject(asset.id), asset.id, asset.name)
    return None


def apply(session: Session, asset: Asset, result: ServiceProbe, *, thresholds: list[int], interval: float,
          judge_status: bool = True, failures_before_event: int = 1) -> dict:
    """Store per-port and TLS state; with `judge_status`, the primary port also sets the asset's
    status for engines dbmon cannot log into."""
    now = utcnow()
    details = dict(asset.details or {})
    before = dict(details.get("ports_probe") or {})
    tls_before = dict(details.get("tls") or {})
    events = 0
    ports_now = {}
    for p in result.ports:
        ports_now[p.key] = {"up": p.up, "connect_ms": p.connect_ms, "error": p.error, "at": now.isoformat()}
        if p.up:
            session.add(MetricSample(name="container.tcp_connect_ms", asset_id=asset.id, value=p.connect_ms,
                                     labels={"endpoint": p.key}, at=now))
        was = before.get(p.key)
        if was is not None and was.get("up") != p.up:
            events += record_event(session, type="service.port_up" if p.up else "service.port_down",
                                   severity="info" if p.up else "warning", asset_id=asset.id,
                                   summary=f"{asset.name} {p.key} is {'accepting' if p.up else 'refusing'} connections"
                                           + (f" ({p.error})" if p.error else ""),
                                   payload={"endpoint": p.key, "connect_ms": p.connect_ms, "error": p.error}) is not None
    tls_now = dict(tls_before)
    for key, cert in result.certificates.items():
        for f in tls_findings(asset.name, key, tls_before.get(key), cert, thresholds):
            events += record_event(session, type=f.type, severity=f.severity, asset_id=asset.id, summary=f.summary,
                                   payload=f.payload, dedupe_key=f.dedupe_key and f"{asset.id}:{f.dedupe_key}") is not None
        if cert is None:
            tls_now.pop(key, None)
        else:
            tls_now[key] = cert.to_dict()
            tls_now[key]["checked_at"] = now.isoformat()
    details["ports_probe"], details["tls"] = ports_now, tls_now
    asset.details = details
    attempt = tls_attempt(asset, result, tls_before)
    if attempt is not None:
        record_attempt(session, attempt, failures_before_event=failures_before_event)
    status_changed = None
    if judge_status and not can_probe(asset) and result.ports:
        # No login possible: the primary port answering is what "reachable" means here.
        first = result.ports[0]
        status_changed = apply_probe(session, asset, ProbeResult(first.up, first.connect_ms or 0.0, first.error),
                                     interval)
    return {"asset_id": asset.id, "ports": ports_now, "tls": sorted(k for k, v in result.certificates.items() if v),
            "events": events, "status": asset.status, "status_changed": status_changed}
