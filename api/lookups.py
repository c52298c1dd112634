"""Row lookups that answer 404 the same way on every endpoint."""

from __future__ import annotations

from flask_restx import abort

from monitor_app.store.models import Asset


def asset_or_404(session, asset_id: int) -> Asset:
    asset = session.get(Asset, asset_id)
    if asset is None:
        abort(404, f"no asset {asset_id}")
    return asset
