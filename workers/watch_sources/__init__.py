"""Watcher sources: kind -> "module:Class", imported only when the watcher starts.

A source is built as `Source(runtime, emit)`; `start()` returns at once (it runs
its own thread), `stop()` ends it. `emit(task_name, kwargs)` enqueues a task
through the ledger. An optional classmethod `wanted(runtime) -> bool` lets a
source sit out when it has nothing to watch.
"""

SOURCES: dict[str, str] = {
    "config": "workers.watch_sources.config_file:ConfigFileSource",
    "files": "workers.watch_sources.file_changes:FileChangesSource",
    "docker": "workers.watch_sources.docker_events:DockerEventsSource",
    "pg_notify": "workers.watch_sources.pg_notify:PgNotifySource",
    "sqlite_schema": "workers.watch_sources.sqlite_schema:SqliteSchemaSource",
}
