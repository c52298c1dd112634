"""The Celery app. It imports no tasks itself: the worker loads TASK_MODULES."""

from __future__ import annotations

from celery import Celery
from celery.signals import beat_init, heartbeat_sent, worker_ready, worker_shutting_down
from kombu import Exchange, Queue

from monitor_app.platform.heartbeat import touch
from monitor_app.selfmon import process_hooks as selfmon
from workers import broker_reconnect
from monitor_app.config.settings import Settings, get_settings
from monitor_app.platform.task_queues import QUEUES, queue_for

TASK_MODULES = [
    "workers.tasks.assets",
    "workers.tasks.metrics",
    "workers.tasks.files",
    "workers.tasks.maintenance",
    "workers.tasks.containers",
    "workers.tasks.schema",
    "workers.tasks.alerting",
    "workers.tasks.posture",
    "workers.tasks.selfmon",
]


def _route(name, args, kwargs, options, task=None, **_):
    return {"queue": queue_for(name)} if not name.startswith("celery.") else None


def celery_config(settings: Settings) -> dict:
    broker = settings.resolved_broker_url
    conf: dict = dict(
        broker_url=broker,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_heartbeat=10,
        task_queues=[Queue(q, Exchange(q, type="direct"), routing_key=q) for q in QUEUES],
        task_default_queue="maintenance",
        task_routes=(_route,),
        task_create_missing_queues=False,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,  # results live in the task ledger, not in a result backend
        task_track_started=True,
        task_send_sent_event=True,
        worker_send_task_events=True,
        worker_prefetch_multiplier=1,
        worker_concurrency=settings.worker_concurrency,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_hijack_root_logger=False,
        task_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        enable_utc=True,
        include=TASK_MODULES,
    )
    if settings.embedded_broker:
        queue_dir = settings.broker_dir / "queue"
        queue_dir.mkdir(parents=True, exist_ok=True)
        (settings.broker_dir / "processed").mkdir(parents=True, exist_ok=True)
        conf["broker_transport"] = "workers.filesystem_broker:Transport"
        conf["broker_transport_options"] = {
            "data_folder_in": str(queue_dir),
            "data_folder_out": str(queue_dir),
            "processed_folder": str(settings.broker_dir / "processed"),
            "store_processed": False,
            "control_folder": str(settings.broker_dir / "control"),
            "polling_interval": settings.filesystem_polling_interval,
        }
        conf["beat_schedule_filename"] = str((settings.data_dir / "beat-schedule").resolve())
    else:
        conf["broker_transport_options"] = {
            "visibility_timeout": settings.broker_visibility_timeout,
            "socket_keepalive": True,
            "retry_on_timeout": True,
        }
        # Beat takes a lease in Redis, so a second beat (on this machine or another) waits instead of
        # double-scheduling, and takes over within the lease once the first died. Beat renews it
        # on every tick, so it ticks at least three times per lease.
        conf["beat_scheduler"] = "redbeat.RedBeatScheduler"
        conf["redbeat_redis_url"] = broker
        conf["redbeat_lock_timeout"] = int(max(3, settings.leader_lease_seconds))
        conf["beat_max_loop_interval"] = max(1, int(settings.leader_lease_seconds) // 3)
        conf["redbeat_key_prefix"] = "dbmon:redbeat:"
    return conf


def make_celery(settings: Settings) -> Celery:
    broker_reconnect.install()
    app = Celery("dbmon")
    app.conf.update(celery_config(settings))
    from beat_schedule import entries

    app.conf.beat_schedule = entries(settings)
    return app


app = make_celery(get_settings())


@heartbeat_sent.connect
def _worker_alive(**_) -> None:
    # Sent every few seconds by a worker whose consumer talks to the broker: `dbmon health worker`.
    touch(get_settings(), "worker")


# Component heartbeats in the store (docs/self-monitoring.md): a worker's row names the queues it consumes.
worker_ready.connect(lambda sender=None, **_: selfmon.start_worker(get_settings(), sender), weak=False)
worker_shutting_down.connect(lambda **_: selfmon.stop_worker(), weak=False)
beat_init.connect(lambda sender=None, **_: selfmon.start_beat(get_settings(), sender), weak=False)


def send(task_name: str, kwargs: dict, run_id: str, queue: str) -> None:
    app.send_task(task_name, kwargs=kwargs, task_id=run_id, queue=queue, routing_key=queue)
