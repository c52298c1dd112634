"""A day of routine operations: pages must be exactly the five real faults, each paged once.

Runs `dbmon up` (embedded) with the alert rules documented in docs/alerting.md against real
PostgreSQL (a scratch database on the shared server, a private cluster), a SQLite file and the
Docker engine, then replays a compressed day: planned restarts and stops, a deploy that recreates
a container, additive migrations, VACUUM/ANALYZE/REINDEX, config reloads, backups, and five
faults (crash, OOM kill, dropped column, dropped table, unreachable database). A local webhook
receiver plays the pager. Each page is attributed to the operation that preceded it.

    python -m bench.routine_day [--runs 1] [--pause 10]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import docker  # noqa: E402
import psycopg2  # noqa: E402
import yaml  # noqa: E402
from sqlalchemy import select  # noqa: E402

from bench.stats import write  # noqa: E402
from monitor_app.store.models import Event  # noqa: E402
from tests.alerting.peers import HttpReceiver  # noqa: E402
from tests.containers.conftest import cleanup, make_image  # noqa: E402
from tests.harness import Deployment, wait_for  # noqa: E402
from tests.services import create_pg_database, drop_pg_database, free_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```yaml(?P<info>[^\n]*)\n(?P<body>.*?)^```", re.S | re.M)
PG_BIN = "/usr/lib/postgresql/15/bin"
PAGE_KINDS = {"firing", "followup"}


def documented_alerting(severities: dict[str, str] | None = None) -> dict:
    """The first docs/alerting.md example that defines rules: the documented rule set, as written
    unless `severities` (rule name -> severity) asks what a changed rule would do."""
    for m in FENCE.finditer((ROOT / "docs" / "alerting.md").read_text()):
        alerting = (yaml.safe_load(m.group("body")) or {}).get("alerting") or {}
        if alerting.get("rules"):
            for rule in alerting["rules"]:
                if rule["name"] in (severities or {}):
                    rule["severity"] = (severities or {})[rule["name"]]
            return alerting
    raise SystemExit("docs/alerting.md has no rule example")


def page_matchers(doc: dict) -> list[str]:
    """The documented route that pages: the one sending critical/page severities to people."""
    for route in doc["route"].get("routes", []):
        if any("severity" in m for m in route.get("matchers", [])):
            return route["matchers"]
    raise SystemExit("docs/alerting.md routes no severity to a pager")


def config_text(doc: dict, receiver: HttpReceiver, pg_url: dict, sqlite_path: Path, edge_port: int,
                extra_label: str = "") -> str:
    alerting = {
        "rules": doc["rules"],
        "inhibit_rules": doc.get("inhibit_rules", []),
        "channels": {"pager": {"type": "webhook", "url": receiver.url("/pager"), "allow_private_targets": True},
                     "tickets": {"type": "webhook", "url": receiver.url("/tickets"), "allow_private_targets": True}},
        "route": {"channels": ["tickets"], "group_interval": "5s",
                  "routes": [{"matchers": page_matchers(doc), "channels": ["pager"]}]},
    }
    labels = {"env": "bench", **({"deploy": extra_label} if extra_label else {})}
    assets = [
        {"name": "orders", "engine": "postgresql", "host": "127.0.0.1", "port": 5432, "database": pg_url["db"],
         "user": "postgres", "insecure": True, "labels": labels},
        {"name": "edge", "engine": "postgresql", "host": "127.0.0.1", "port": edge_port, "database": "postgres",
         "user": "postgres", "insecure": True, "labels": {"env": "bench"}},
        {"name": "cache", "engine": "sqlite", "path": str(sqlite_path), "labels": {"env": "bench"}},
    ]
    # Event triggers as the docs recommend for a superuser; scheduled checks also catch an unreachable server.
    schema = {"event_triggers": True, "check_interval": 20}
    return yaml.safe_dump({"assets": assets, "containers": {"enabled": True}, "schema": schema,
                           "alerting": alerting}, sort_keys=False)


class PrivateCluster:
    """A PostgreSQL cluster of our own, so stopping it harms nobody (RECIPES: run as `postgres`)."""

    def __init__(self, port: int):
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix="rday-pg-"))
        os.chown(self.dir, *_postgres_ids())

    def _as_postgres(self, cmd: str) -> None:
        subprocess.run(["su", "postgres", "-c", cmd], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        if not (self.dir / "data").exists():
            self._as_postgres(f"{PG_BIN}/initdb -D {self.dir}/data -A trust -U postgres")
        self._as_postgres(f"{PG_BIN}/pg_ctl -D {self.dir}/data -l {self.dir}/log -w start "
                          f"-o '-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1'")

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(["su", "postgres", "-c", f"{PG_BIN}/pg_ctl -D {self.dir}/data -m {mode} -w stop"],
                       capture_output=True, timeout=60)

    def sql(self, statement: str) -> None:
        _sql(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", statement)


def _postgres_ids() -> tuple[int, int]:
    import pwd

    pw = pwd.getpwnam("postgres")
    return pw.pw_uid, pw.pw_gid


def _sql(dsn: str, *statements: str) -> None:
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for s in statements:
                cur.execute(s)
    finally:
        conn.close()


class Day:
    """The world one run acts on: containers, databases and the dbmon deployment."""

    def __init__(self, tmp: Path, client, tag: str, receiver: HttpReceiver, severities: dict[str, str]):
        self.tmp, self.client, self.tag, self.receiver = tmp, client, tag, receiver
        self.doc = documented_alerting(severities)
        self.pg_name, _ = create_pg_database("rday")
        self.pg_dsn = f"host=127.0.0.1 port=5432 user=postgres dbname={self.pg_name}"
        self.sqlite = tmp / "cache.db"
        self.edge = PrivateCluster(free_port())
        self.pg_port = free_port()
        self.d: Deployment | None = None

    def name(self, base: str) -> str:
        return f"{self.tag}-{base}"

    # -- the world before the day starts -------------------------------------
    def prepare(self) -> None:
        _sql(self.pg_dsn, "CREATE TABLE users (id bigserial PRIMARY KEY, name text NOT NULL, email text)",
             "INSERT INTO users (name, email) SELECT 'u' || g, 'u' || g || '@x' FROM generate_series(1, 1000) g")
        with sqlite3.connect(self.sqlite) as db:
            db.executescript("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER);"
                             "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);"
                             "CREATE INDEX items_name ON items(name);"
                             "INSERT INTO items (name, qty) VALUES ('a', 1), ('b', 2);")
        self.edge.start()
        self.run_real_postgres()
        self.run_app("app:1")
        self.run_oom_candidate()

    def run_real_postgres(self) -> None:
        data = Path(tempfile.mkdtemp(prefix="rday-pgd-", dir=self.tmp))
        uid, gid = _postgres_ids()
        os.chown(data, uid, gid)
        vols = {p: {"bind": p, "mode": "ro"} for p in ("/usr", "/lib", "/lib64", "/etc", "/bin")}
        vols[str(data)] = {"bind": "/data", "mode": "rw"}
        script = (f"[ -d /data/db ] || {PG_BIN}/initdb -D /data/db -A trust >/data/init.log 2>&1; "
                  f"exec {PG_BIN}/postgres -D /data/db -p {self.pg_port} -k /data -c listen_addresses=127.0.0.1")
        self.client.containers.run(f"{self.tag}/postgres:15-local", ["/bin/sh", "-c", script], name=self.name("pg"),
                                   detach=True, network_mode="host", user=f"{uid}:{gid}", volumes=vols,
                                   labels={"dbmon-test": self.tag})
        wait_for(lambda: _answers(self.pg_port), 60, 0.2, what="PostgreSQL in a container")

    def run_app(self, version: str) -> None:
        self.client.containers.run(f"{self.tag}/postgres:{version.split(':')[1]}", name=self.name("app"), detach=True,
                                   network_mode="none", environment={"POSTGRES_PASSWORD": "x"},
                                   labels={"dbmon-test": self.tag})

    def run_oom_candidate(self) -> None:
        # Waits for a flag file, then allocates without bound as the main process: a real OOM kill.
        script = "while [ ! -f /tmp/go ]; do sleep 0.2; done; exec tail /dev/zero"
        self.client.containers.run(f"{self.tag}/redis:7", ["/bin/sh", "-c", script], name=self.name("cache"),
                                   detach=True, network_mode="none", mem_limit="16m", memswap_limit="16m",
                                   labels={"dbmon-test": self.tag})

    def write_config(self, extra_label: str = "") -> None:
        assert self.d is not None
        self.d.write_config(config_text(self.doc, self.receiver, {"db": self.pg_name}, self.sqlite, self.edge.port,
                                        extra_label))

    def start_dbmon(self) -> None:
        self.d = Deployment("embedded", self.tmp / "dbmon", extra_env={
            "DBMON_REACHABILITY_INTERVAL": "3", "DBMON_ALERT_SWEEP_INTERVAL": "1",
            "DBMON_CONTAINERS_RECONCILE_INTERVAL": "30", "DBMON_HOST_SAMPLE_INTERVAL": "10"})
        (self.tmp / "dbmon").mkdir(exist_ok=True)
        self.write_config()
        self.d.start("up", "up", "--no-api")

    def close(self) -> None:
        if self.d is not None:
            self.d.kill("up", signal.SIGTERM)
            self.d.close()
        for c in self.client.containers.list(all=True, filters={"label": f"dbmon-test={self.tag}"}):
            c.remove(force=True)
        self.edge.stop("immediate")
        shutil.rmtree(self.edge.dir, ignore_errors=True)
        drop_pg_database(self.pg_name)

    # -- routine operations ----------------------------------------------------
    def restart_container(self) -> None:
        self.client.containers.get(self.name("pg")).restart(timeout=10)

    def stop_then_start_container(self) -> None:
        c = self.client.containers.get(self.name("pg"))
        c.stop(timeout=10)
        time.sleep(4)
        c.start()

    def deploy_recreating_container(self) -> None:
        c = self.client.containers.get(self.name("app"))
        c.stop(timeout=5)
        c.remove()
        self.run_app("app:2")

    def migrate_postgres(self) -> None:
        _sql(self.pg_dsn, "CREATE TABLE orders (id bigserial PRIMARY KEY, user_id bigint REFERENCES users(id), "
                          "total numeric(12,2) NOT NULL DEFAULT 0)",
             "ALTER TABLE users ADD COLUMN nickname text",
             "CREATE INDEX CONCURRENTLY users_name_idx ON users(name)")

    def migrate_sqlite(self) -> None:
        with sqlite3.connect(self.sqlite) as db:
            db.executescript("CREATE TABLE tags (id INTEGER PRIMARY KEY, label TEXT NOT NULL);"
                             "ALTER TABLE items ADD COLUMN price REAL;")

    def maintain_postgres(self) -> None:
        _sql(self.pg_dsn, "VACUUM (ANALYZE) users", "ANALYZE", "REINDEX TABLE users")

    def maintain_sqlite(self) -> None:
        db = sqlite3.connect(self.sqlite)
        try:
            db.execute("VACUUM")
            db.execute("ANALYZE")
            db.execute("REINDEX")
            db.commit()
        finally:
            db.close()

    def reload_configs(self) -> None:
        _sql(f"host=127.0.0.1 port={self.pg_port} user=postgres dbname=postgres", "SELECT pg_reload_conf()")
        self.edge.sql("SELECT pg_reload_conf()")
        self.write_config(extra_label="2026-12-02")  # dbmon's own file: a label added to an asset

    def back_up(self) -> None:
        subprocess.run(["pg_dump", "-h", "127.0.0.1", "-U", "postgres", "-Fc", "-f", str(self.tmp / "orders.dump"),
                        self.pg_name], check=True, capture_output=True, timeout=120)
        src, dst = sqlite3.connect(self.sqlite), sqlite3.connect(self.tmp / "cache-backup.db")
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()

    # -- faults -----------------------------------------------------------------
    def crash(self) -> None:
        """The main process dies on its own (no stop request): SIGKILL from outside the engine."""
        pid = self.client.api.inspect_container(self.name("app"))["State"]["Pid"]
        os.kill(pid, signal.SIGKILL)

    def out_of_memory(self) -> None:
        self.client.containers.get(self.name("cache")).exec_run(["/bin/sh", "-c", ": > /tmp/go"])

    def drop_column(self) -> None:
        _sql(self.pg_dsn, "ALTER TABLE users DROP COLUMN email")

    def drop_table(self) -> None:
        with sqlite3.connect(self.sqlite) as db:
            db.execute("DROP TABLE notes")

    def unreachable(self) -> None:
        self.edge.stop("immediate")


def _answers(port: int) -> bool:
    try:
        _sql(f"host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=1", "SELECT 1")
        return True
    except psycopg2.Error:
        return False


ROUTINE = [
    ("planned restart (docker restart, PostgreSQL container)", "restart_container"),
    ("planned stop, then start (PostgreSQL container)", "stop_then_start_container"),
    ("deploy recreating a container (new image tag, same name)", "deploy_recreating_container"),
    ("additive migration, PostgreSQL (new table, new nullable column, index)", "migrate_postgres"),
    ("additive migration, SQLite (new table, new column)", "migrate_sqlite"),
    ("VACUUM/ANALYZE/REINDEX, PostgreSQL", "maintain_postgres"),
    ("VACUUM/ANALYZE/REINDEX, SQLite", "maintain_sqlite"),
    ("config reloads (pg_reload_conf x2, dbmon.yaml label added)", "reload_configs"),
    ("backup (pg_dump, SQLite online backup)", "back_up"),
]
FAULTS = [
    ("FAULT crash (main process SIGKILLed, no stop request)", "crash"),
    ("FAULT OOM kill (16 MiB limit)", "out_of_memory"),
    ("FAULT dropped column (PostgreSQL users.email)", "drop_column"),
    ("FAULT dropped table (SQLite notes)", "drop_table"),
    ("FAULT unreachable database (private cluster stopped)", "unreachable"),
]


def notifications(receiver: HttpReceiver, since: float, until: float) -> list[dict]:
    out = []
    for r in receiver.requests:
        if since <= r.at < until:
            body = r.json()
            out.append({"channel": r.path.strip("/"), "kind": body["dbmon"]["kind"], "status": body["status"],
                        "alerts": [{"alertname": a["labels"].get("alertname"), "asset": a["labels"].get("asset"),
                                    "severity": a["labels"].get("severity"), "status": a["status"],
                                    "summary": a["annotations"].get("summary")} for a in body["alerts"]]})
    return out


CONFIG_ASSETS = {"orders", "edge", "cache"}


def is_page(n: dict) -> bool:
    return n["channel"] == "pager" and n["kind"] in PAGE_KINDS


def is_ours(n: dict, tag: str) -> bool:
    """The Docker engine is shared: other people's test containers are discovered (and page) too."""
    return any(a["asset"] in CONFIG_ASSETS or str(a["asset"]).startswith(f"{tag}-") for a in n["alerts"])


def window_events(d: Deployment, since: float, until: float) -> list[str]:
    """Every event stored in a window: what a reader needs to explain a page or a miss."""
    lo, hi = (datetime.fromtimestamp(t, timezone.utc) for t in (since, until))
    with d.runtime.store.session() as s:
        rows = s.execute(select(Event.type, Event.severity, Event.summary).where(
            Event.detected_at >= lo, Event.detected_at < hi).order_by(Event.id)).all()
    return [f"{t} [{sev}] {summary}"[:200] for t, sev, summary in rows]


def replay(day: Day, pause: float, tail: float) -> list[dict]:
    steps = []
    for label, method in [*ROUTINE, *FAULTS]:
        wall, mono = time.time(), time.monotonic()
        getattr(day, method)()
        time.sleep(pause)
        steps.append({"operation": label, "fault": label.startswith("FAULT"), "wall": (wall, time.time()),
                      "mono": (mono, time.monotonic())})
    time.sleep(tail)  # a late page (a 30 s schema check, a retry) still counts against the last step
    steps[-1]["mono"] = (steps[-1]["mono"][0], time.monotonic())
    steps[-1]["wall"] = (steps[-1]["wall"][0], time.time())
    return steps


def one_run(client, tag: str, pause: float, settle: float, tail: float, severities: dict[str, str]) -> dict:
    receiver = HttpReceiver()
    with tempfile.TemporaryDirectory(prefix="rday-") as tmp:
        day = Day(Path(tmp), client, tag, receiver, severities)
        try:
            day.prepare()
            started = time.monotonic()
            day.start_dbmon()
            time.sleep(settle)  # first probes, schema baselines, discovery: not part of the day
            setup = notifications(receiver, started, time.monotonic())
            steps = replay(day, pause, tail)
            assert day.d is not None
            for step in steps:
                sent = notifications(receiver, *step["mono"])
                step["pages"] = [n for n in sent if is_page(n) and is_ours(n, tag)]
                step["other_notifications"] = [n for n in sent if not is_page(n) and is_ours(n, tag)]
                step["foreign_pages"] = [n for n in sent if is_page(n) and not is_ours(n, tag)]
                step["events"] = window_events(day.d, *step["wall"])
                del step["mono"], step["wall"]
        finally:
            up_log = day.d.log("up") if day.d else ""
            day.close()
            receiver.stop()
    return score(steps, setup, up_log)


def score(steps: list[dict], setup: list[dict], up_log: str) -> dict:
    false_pages = [{"after": s["operation"], **p} for s in steps if not s["fault"] for p in s["pages"]]
    missed = [s["operation"] for s in steps if s["fault"] and not s["pages"]]
    repeated = [s["operation"] for s in steps if s["fault"] and len(s["pages"]) > 1]
    pages = sum(len(s["pages"]) for s in steps)
    return {"pages": pages, "fault_pages": pages - len(false_pages), "false_pages": len(false_pages),
            "missed_faults": missed, "faults_paged_more_than_once": repeated,
            "false_page_details": false_pages, "setup_pages": [n for n in setup if is_page(n)],
            "foreign_pages_ignored": sum(len(s["foreign_pages"]) for s in steps),
            "meets_target": not false_pages and not missed and not repeated,
            "steps": steps, "errors_in_log": [ln for ln in up_log.splitlines() if "Traceback" in ln][:5]}


def images(client, tag: str) -> None:
    make_image(client, f"{tag}/postgres:1", expose=[5432], label_value=tag)
    make_image(client, f"{tag}/postgres:2", expose=[5432], label_value=tag)
    make_image(client, f"{tag}/redis:7", expose=[6379], label_value=tag)
    empty = subprocess.run(["tar", "-C", tempfile.mkdtemp(), "-c", "."], capture_output=True, check=True).stdout
    subprocess.run(["docker", "import", "--change", "EXPOSE 5432", "--change", f"LABEL dbmon-test={tag}", "-",
                    f"{tag}/postgres:15-local"], input=empty, check=True, capture_output=True, timeout=60)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--pause", type=float, default=10.0, help="seconds after each operation")
    ap.add_argument("--severity", action="append", default=[], metavar="RULE=SEVERITY",
                    help="what if a documented rule had this severity (results in routine_day_what_if.json)")
    ap.add_argument("--tail", type=float, default=45.0, help="seconds after the last fault (> schema check interval)")
    ap.add_argument("--settle", type=float, default=25.0, help="seconds between `dbmon up` and the day")
    args = ap.parse_args(argv if argv is not None else [])
    severities = dict(item.split("=", 1) for item in args.severity)
    client = docker.from_env(timeout=60)
    tag = f"rday-{os.getpid()}"
    runs = []
    try:
        images(client, tag)
        for r in range(args.runs):
            runs.append(one_run(client, tag, args.pause, args.settle, args.tail, severities))
            print(f"run {r + 1}: pages={runs[-1]['pages']} false={runs[-1]['false_pages']} "
                  f"missed={runs[-1]['missed_faults']}", flush=True)
    finally:
        cleanup(client, tag)
    path = write("routine_day" + ("_what_if" if severities else ""), {
        "rule_severity_changes": severities,
        "what": "pages sent during a compressed day of routine operations and five faults, documented rules",
        "target": "5 pages, one per fault; 0 false pages; 0 missed faults",
        "page_definition": "a firing/followup notification on the route the docs send critical|page severities to",
        "pause_seconds": args.pause, "runs": runs,
        "summary": {"runs": len(runs), "meets_target": sum(r["meets_target"] for r in runs),
                    "pages": [r["pages"] for r in runs], "false_pages": [r["false_pages"] for r in runs],
                    "missed_faults": [len(r["missed_faults"]) for r in runs]}})
    print(path.read_text())


if __name__ == "__main__":
    main(sys.argv[1:])
