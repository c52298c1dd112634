"""API namespaces: "module:attribute" paths, imported when the app is built."""

NAMESPACES: list[str] = [
    "api.namespaces.assets:ns",
    "api.namespaces.events:ns",
    "api.namespaces.scans:ns",
    "api.namespaces.metrics:ns",
    "api.namespaces.audit:ns",
    "api.namespaces.apikeys:ns",
    "api.namespaces.containers:ns",
    "api.namespaces.schema:ns",
    "api.namespaces.alerts:ns",
    "api.namespaces.posture:ns",
    "api.namespaces.config:ns",
    "api.namespaces.collectors:ns",
    "api.namespaces.servers:ns",
    "api.namespaces.files:ns",
    "api.namespaces.system:ns",
]
