"""Long-running processes: each can run alone (scale-out) or together under `dbmon up`."""

from __future__ import annotations

import fcntl
import os
import logging
import socket
import sys

import click

from monitor_app.config.settings import get_settings
from monitor_app.platform.task_queues import QUEUES

log = logging.getLogger("dbmon")


def _share_own_metrics() -> None:
    """First thing in each long-running command: prometheus_client picks where values live when
    it is imported, and forked children (pool processes, gunicorn workers) inherit the choice."""
    from monitor_app.platform.own_metrics import claim_directory

    claim_directory(get_settings().resolved_prometheus_multiproc_dir)


def _api_worker_exited(server, worker) -> None:
    from monitor_app.platform.own_metrics import mark_process_dead

    mark_process_dead(worker.pid)


@click.command()
@click.option("-Q", "--queues", default=",".join(QUEUES), show_default=True, help="queues to consume")
@click.option("-c", "--concurrency", type=int, default=None, help="pool size (default DBMON_WORKER_CONCURRENCY)")
@click.option("-n", "--hostname", default=None, help="worker node name")
@click.option("--with-beat-and-watcher", "embedded", is_flag=True,
              help="single machine: a thread pool, and beat and the watcher as threads of this process")
def worker(queues: str, concurrency: int | None, hostname: str | None, embedded: bool) -> None:
    """Run a Celery worker."""
    unknown = set(queues.split(",")) - set(QUEUES)
    if unknown:
        raise click.BadParameter(f"unknown queue(s): {', '.join(sorted(unknown))}", param_hint="--queues")
    _share_own_metrics()
    from workers.celery_app import app

    settings = get_settings()
    argv = ["worker", "-Q", queues, "-c", str(concurrency or settings.worker_concurrency),
            "--loglevel", settings.log_level, "-E", "-n", hostname or f"dbmon@{socket.gethostname()}"]
    if embedded:
        argv += ["-P", "threads"]
        _embed_beat_and_watcher(app, settings)
    _sample_this_host()
    # SIGTERM: wait DBMON_WORKER_SHUTDOWN_SECONDS for running tasks, hand the rest back, stop.
    import workers.handback  # noqa: F401 - connects the hand-back to the shutdown signal

    app.worker_main(argv)


def _sample_this_host() -> None:
    from celery.signals import worker_ready, worker_shutting_down

    from monitor_app.platform.runtime import Runtime
    from workers.host_sampler import HostSampler

    sampler = HostSampler(Runtime)
    worker_ready.connect(lambda **_: sampler.start(), weak=False)
    worker_shutting_down.connect(lambda **_: sampler.stop(), weak=False)


def _embed_beat_and_watcher(app, settings) -> None:
    from celery.signals import worker_ready, worker_shutting_down

    from workers.embedded_services import EmbeddedServices

    services = EmbeddedServices(app, settings)
    worker_ready.connect(lambda **_: services.start(), weak=False)
    worker_shutting_down.connect(lambda **_: services.stop(), weak=False)


@click.command()
@click.option("--direct", is_flag=True, hidden=True, help="run Celery beat in this process, unsupervised")
def beat(direct: bool) -> None:
    """Run the periodic scheduler (exactly one per deployment: it takes a lock).

    Celery beat exits when it loses its broker, so it runs as a child that is
    restarted until the broker is back."""
    settings = get_settings()
    if direct:
        from workers.celery_app import app

        argv = ["beat", "--loglevel", settings.log_level]
        if settings.embedded_broker:
            argv += ["-s", str((settings.data_dir / "beat-schedule").resolve())]
        app.start(argv)
        return
    from monitor_app.platform.supervisor import Supervisor

    lock = None
    if settings.embedded_broker:
        # Two beats on one data directory would schedule everything twice: hold a file lock.
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        lock = open(settings.data_dir / "beat.lock", "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            click.echo("another beat already runs on this data directory; waiting for its lock", err=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
    from monitor_app.platform.heartbeat import touch

    sup = Supervisor({"beat": [sys.executable, "-m", "monitor_app.cli.main", "beat", "--direct"]}, grace=10,
                     on_all_running=lambda: touch(settings, "beat"))
    sup.install_signal_handlers()
    sys.exit(sup.run())


@click.command()
@click.option("--source", "sources", multiple=True, help="only these watch sources (default: all)")
def watcher(sources: tuple[str, ...]) -> None:
    """Run the watcher: pushes file, container and database events as tasks."""
    import signal

    _share_own_metrics()
    from monitor_app.platform.runtime import Runtime
    from workers.watch_sources import SOURCES
    from workers.watcher import Watcher

    unknown = set(sources) - set(SOURCES)
    if unknown:
        raise click.BadParameter(f"unknown source(s): {', '.join(sorted(unknown))}", param_hint="--source")
    rt = Runtime()
    w = Watcher(rt, list(sources) or None)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: w.stopping.set())
    try:
        w.run_forever()
    finally:
        rt.close()  # slots of listeners that did not stop in time are given back, not left to expire


@click.command()
@click.option("--host", default=None, help="bind address (default DBMON_API_HOST)")
@click.option("--port", type=int, default=None, help="port (default DBMON_API_PORT)")
def api(host: str | None, port: int | None) -> None:
    """Serve the REST API and status pages (gunicorn)."""
    from gunicorn.app.base import BaseApplication

    _share_own_metrics()
    settings = get_settings()

    class _App(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host or settings.api_host}:{port or settings.api_port}")
            self.cfg.set("workers", settings.resolved_api_workers)
            self.cfg.set("threads", 4)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("accesslog", "-")
            self.cfg.set("graceful_timeout", 10)
            self.cfg.set("child_exit", _api_worker_exited)
            # Replicas: several `dbmon api` processes may bind the same port; the kernel spreads
            # connections over them, and they share all state through the store.
            self.cfg.set("reuse_port", True)
            if settings.api_tls:
                self.cfg.set("certfile", str(settings.api_tls_cert))
                self.cfg.set("keyfile", str(settings.api_tls_key))

        def load(self):
            # Imported by the worker, not the arbiter: the arbiter only forks and watches.
            from api import create_app

            return create_app()

    _App().run()


@click.command()
@click.option("--port", type=int, default=None, help="port (default DBMON_FLOWER_PORT)")
@click.option("--address", default=None, help="bind address (default DBMON_FLOWER_HOST)")
@click.option("--basic-auth", envvar="DBMON_FLOWER_BASIC_AUTH", default=None,
              help="user:password pairs, comma-separated (env DBMON_FLOWER_BASIC_AUTH)")
def flower(port: int | None, address: str | None, basic_auth: str | None) -> None:
    """Serve Flower, the task queue dashboard, read-only and behind dbmon's own authentication.

    Every request needs an operator or admin API key (X-API-Key, or as the basic-auth password)
    or one of the basic-auth pairs; only reads pass, so Flower can neither run tasks nor
    control workers. HTTPS with DBMON_API_TLS_CERT/KEY."""

    import flower.command

    from monitor_app.platform.runtime import Runtime
    from workers.celery_app import app
    from workers.flower_guard import FlowerAccess, guarded_flower

    settings = get_settings()
    access = FlowerAccess(Runtime(settings).store, [p for p in (basic_auth or "").split(",") if p])
    # Flower's own check would refuse API-key logins; the guard authenticates every request instead.
    os.environ["FLOWER_UNAUTHENTICATED_API"] = "true"
    flower.command.Flower = guarded_flower(access)
    argv = ["flower", f"--port={port or settings.flower_port}", f"--address={address or settings.flower_host}"]
    if settings.api_tls:
        argv += [f"--certfile={settings.api_tls_cert}", f"--keyfile={settings.api_tls_key}"]
    app.start(argv)


@click.command()
@click.option("--no-api", is_flag=True, help="do not serve the API")
def up(no_api: bool) -> None:
    """Migrate the store, then run worker, beat, watcher and API until interrupted."""
    import subprocess

    from monitor_app.platform.supervisor import Supervisor

    settings = get_settings()
    # Claimed here, before any child starts, so the directory is emptied once for the whole tree.
    _share_own_metrics()
    me = [sys.executable, "-m", "monitor_app.cli.main"]
    # Migrating imports the whole store; a short-lived child keeps that memory out of this
    # long-lived supervisor.
    prepared = subprocess.run(me + ["db", "upgrade", "--sync-config"])
    if prepared.returncode != 0:
        sys.exit(prepared.returncode)
    if settings.embedded_broker:
        children = {"worker": me + ["worker", "--with-beat-and-watcher"]}
    else:
        children = {"worker": me + ["worker"], "beat": me + ["beat"], "watcher": me + ["watcher"]}
    if not no_api:
        children["api"] = me + ["api"]
    if settings.flower_enabled:
        children["flower"] = me + ["flower"]
    sup = Supervisor(children)
    sup.install_signal_handlers()
    click.echo(f"dbmon up: store {settings.resolved_database_url.split('@')[-1]}, "
               f"API {settings.api_base_url}/ (Ctrl-C stops)")
    sys.exit(sup.run())
