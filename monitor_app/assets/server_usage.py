"""What each monitored PostgreSQL, MySQL or MariaDB server lends dbmon: its budget, the slots
held now, back-off.

The rows behind `GET /api/v1/servers` and `dbmon servers`: every server dbmon has connected to
or has a database asset on, with the connections dbmon holds there right now.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select

from monitor_app.assets.connection_budget import MYSQL_ENGINES, ConnectionBudget, held_per_server, server_key
from monitor_app.store.base import iso, utcnow
from monitor_app.store.models import Asset
from monitor_app.store.models.servers import MonitoredServer


def server_usage(store, budget: ConnectionBudget, now: datetime | None = None) -> list[dict]:
    now = now or utcnow()
    held = held_per_server(store, now)
    with store.session() as s:
        rows = {row.server: row for row in s.scalars(select(MonitoredServer))}
        found = s.execute(select(Asset.engine, Asset.connection).where(
            Asset.engine.in_(("postgresql", *MYSQL_ENGINES)),
            or_(Asset.status.is_(None), Asset.status != "gone")).order_by(Asset.id)).all()
    assets: dict[str, int] = {}
    engines: dict[str, str] = {}
    for engine, connection in found:
        # What dbmon logs into: a PostgreSQL database, a MySQL account (its database is optional).
        if (connection or {}).get("user" if engine in MYSQL_ENGINES else "database"):
            key = server_key(connection, engine)
            assets[key] = assets.get(key, 0) + 1
            engines.setdefault(key, engine)
    items = []
    for server in sorted(set(rows) | set(assets) | set(held)):
        row, slots = rows.get(server), held.get(server, [])
        backing_off = row is not None and row.backoff_until is not None and row.backoff_until > now
        configured, source = budget.configured(server)
        items.append({
            "server": server, "engine": engines.get(server), "budget": budget.budget_for(row, server),
            "configured_budget": configured,
            "budget_from": source, "held": len(slots), "databases": assets.get(server, 0),
            "max_connections": row.max_connections if row else None,
            "reserved_connections": row.reserved_connections if row else None,
            "limits_read_at": iso(row.limits_read_at) if row else None,
            "backoff_until": iso(row.backoff_until) if backing_off and row else None,
            "refusals": row.refusals if row else 0, "last_refusal": row.last_refusal if row else None,
            "slots": [{"slot": slot.slot, "purpose": slot.purpose, "holder": slot.holder,
                       "acquired_at": iso(slot.acquired_at), "expires_at": iso(slot.expires_at)} for slot in slots],
        })
    return items
