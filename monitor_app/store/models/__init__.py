"""Every model module is imported here so `Base.metadata` is complete for migrations."""

from monitor_app.store.models.analysis import MetricAnomaly, SeriesDetectorState  # noqa: F401
from monitor_app.store.models.alerting import Alert, Incident, Notification  # noqa: F401
from monitor_app.store.models.audit import AnonymousAuditWindow  # noqa: F401
from monitor_app.store.models.collectors import CollectorHealth  # noqa: F401
from monitor_app.store.models.containers import ContainerEventCursor, ContainerState  # noqa: F401
from monitor_app.store.models.files import FileBackup, FileChange, FileEntry, FileWatch  # noqa: F401
from monitor_app.store.models.core import ApiKey, Asset, AuditEntry, Event
from monitor_app.store.models.metrics import MetricChunk, MetricPoint, MetricPollState, MetricSample, MetricSeries  # noqa: F401
from monitor_app.store.models.posture import PostureFinding, PostureState  # noqa: F401
from monitor_app.store.models.servers import MonitoredServer, ServerConnectionSlot  # noqa: F401
from monitor_app.store.models.schema import SchemaChange, SchemaChangeSet, SchemaSnapshot, SchemaWatchState  # noqa: F401
from monitor_app.store.models.selfmon import ComponentHeartbeat, SelfmonState  # noqa: F401
from monitor_app.store.models.tasks import TaskRun

__all__ = ["ApiKey", "Asset", "AuditEntry", "Event", "MetricSample", "TaskRun"]
