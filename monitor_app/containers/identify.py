"""Is this container a database server, and which engine? A scored rule set.

Each rule adds (or removes) weight for an engine and says why, so an operator can see
why a container was or was not taken for a database. Principles:

- Labels override everything: `dbmon.enable=false` excludes, `dbmon.engine=NAME` decides.
- A port alone never qualifies: port weight only counts next to another signal for the
  same engine (plenty of things listen on 5432 or 6379).
- Containers that *use* a database are not one: client connection variables
  (`DATABASE_URL`, `PGHOST` ...) and client binaries as main process weigh against.
- Admin tools, exporters, operators and client images are rejected by image name.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from monitor_app.containers.inventory import ContainerRecord

THRESHOLD = 0.5
W_IMAGE = 0.6
W_PROCESS = 0.6
W_ENV = 0.35
W_ENV_WEAK = 0.15
W_ENV_MAX = 0.45
W_PORT = 0.15
W_CLIENT_ENV = -0.5
W_CLIENT_PROCESS = -0.6


@dataclass(frozen=True)
class EngineRules:
    images: frozenset[str]  # image short names (last path component) or full paths
    ports: frozenset[int]
    env: frozenset[str] = frozenset()
    env_weak: frozenset[str] = frozenset()  # names clients also use: weigh less
    processes: frozenset[str] = frozenset()
    kind: str = "database"


def _r(images, ports, env=(), env_weak=(), processes=(), kind="database") -> EngineRules:
    return EngineRules(frozenset(images), frozenset(ports), frozenset(env), frozenset(env_weak), frozenset(processes), kind)


ENGINES: dict[str, EngineRules] = {
    "postgresql": _r({"postgres", "postgresql", "postgis", "timescaledb", "timescaledb-ha", "spilo", "crunchy-postgres",
                      "postgresql-repmgr", "supabase/postgres", "cloudnative-pg/postgresql"}, {5432},
                     {"POSTGRES_PASSWORD", "POSTGRES_USER", "POSTGRES_DB", "POSTGRES_INITDB_ARGS", "POSTGRES_HOST_AUTH_METHOD",
                      "POSTGRESQL_PASSWORD", "POSTGRESQL_USERNAME", "POSTGRESQL_DATABASE", "POSTGRESQL_POSTGRES_PASSWORD"},
                     {"PGDATA"}, {"postgres", "postmaster"}),
    "mysql": _r({"mysql", "mysql-server", "percona", "percona-server", "percona-xtradb-cluster"}, {3306, 33060},
                {"MYSQL_ROOT_PASSWORD", "MYSQL_ALLOW_EMPTY_PASSWORD", "MYSQL_RANDOM_ROOT_PASSWORD", "MYSQL_ROOT_HOST"},
                {"MYSQL_DATABASE", "MYSQL_USER", "MYSQL_PASSWORD"}, {"mysqld"}),
    "mariadb": _r({"mariadb", "mariadb-galera"}, {3306},
                  {"MARIADB_ROOT_PASSWORD", "MARIADB_ALLOW_EMPTY_ROOT_PASSWORD", "MARIADB_RANDOM_ROOT_PASSWORD"},
                  {"MARIADB_DATABASE", "MARIADB_USER", "MARIADB_PASSWORD"}, {"mariadbd"}),
    "mongodb": _r({"mongo", "mongodb", "mongodb-community-server", "mongodb-enterprise-server", "percona-server-mongodb"},
                  {27017}, {"MONGO_INITDB_ROOT_USERNAME", "MONGO_INITDB_ROOT_PASSWORD", "MONGO_INITDB_DATABASE",
                            "MONGODB_ROOT_PASSWORD", "MONGODB_REPLICA_SET_MODE"}, (), {"mongod"}),
    "redis": _r({"redis", "redis-stack-server", "redis-stack", "valkey", "keydb"}, {6379},
                {"REDIS_ARGS", "REDIS_AOF_ENABLED", "REDIS_REPLICATION_MODE"}, {"REDIS_PASSWORD"},
                {"redis-server", "valkey-server", "keydb-server"}),
    "sqlserver": _r({"mssql/server", "mssql/rhel/server", "mssql-server", "azure-sql-edge"}, {1433},
                    {"MSSQL_SA_PASSWORD", "SA_PASSWORD", "MSSQL_PID"}, {"ACCEPT_EULA"}, {"sqlservr"}),
    "clickhouse": _r({"clickhouse-server", "clickhouse"}, {8123, 9000, 9009},
                     {"CLICKHOUSE_DB", "CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT"}, {"CLICKHOUSE_USER", "CLICKHOUSE_PASSWORD"},
                     {"clickhouse-server", "clickhouse"}),
    "cockroachdb": _r({"cockroach", "cockroachdb"}, {26257}, {"COCKROACH_DATABASE"},
                      {"COCKROACH_USER", "COCKROACH_PASSWORD"}, {"cockroach"}),
    "cassandra": _r({"cassandra", "scylla", "dse-server"}, {9042, 7000, 7001, 9160},
                    {"CASSANDRA_CLUSTER_NAME", "CASSANDRA_SEEDS", "CASSANDRA_DC", "CASSANDRA_ENDPOINT_SNITCH",
                     "CASSANDRA_NUM_TOKENS"}, (), {"scylla"}),
    "elasticsearch": _r({"elasticsearch"}, {9200, 9300}, {"ELASTIC_PASSWORD", "discovery.type", "xpack.security.enabled"},
                        {"ES_JAVA_OPTS", "cluster.name", "node.name"}),
    "opensearch": _r({"opensearch"}, {9200, 9600}, {"OPENSEARCH_INITIAL_ADMIN_PASSWORD", "DISABLE_SECURITY_PLUGIN"},
                     {"OPENSEARCH_JAVA_OPTS", "discovery.type", "cluster.name"}),
    "influxdb": _r({"influxdb"}, {8086, 8088},
                   {"DOCKER_INFLUXDB_INIT_MODE", "DOCKER_INFLUXDB_INIT_USERNAME", "DOCKER_INFLUXDB_INIT_PASSWORD",
                    "DOCKER_INFLUXDB_INIT_ORG", "DOCKER_INFLUXDB_INIT_BUCKET", "INFLUXDB_ADMIN_USER", "INFLUXDB_DB"},
                   (), {"influxd"}),
    "couchdb": _r({"couchdb"}, {5984}, {"COUCHDB_SECRET", "COUCHDB_ERLANG_COOKIE"},
                  {"COUCHDB_USER", "COUCHDB_PASSWORD", "NODENAME"}, {"couchdb"}),
    "neo4j": _r({"neo4j"}, {7474, 7687}, {"NEO4J_AUTH", "NEO4J_ACCEPT_LICENSE_AGREEMENT", "NEO4J_PLUGINS"}),
    "pgbouncer": _r({"pgbouncer"}, {6432},
                    {"PGBOUNCER_DATABASE", "PGBOUNCER_PORT", "PGBOUNCER_AUTH_TYPE", "POOL_MODE", "MAX_CLIENT_CONN",
                     "DEFAULT_POOL_SIZE"}, (), {"pgbouncer"}, kind="pooler"),
}

ALIASES = {"postgres": "postgresql", "pg": "postgresql", "mongo": "mongodb", "mssql": "sqlserver",
           "sql-server": "sqlserver", "cockroach": "cockroachdb", "elastic": "elasticsearch",
           "scylla": "cassandra", "influx": "influxdb", "valkey": "redis"}

# Images that talk to, administer or export metrics of a database without being one.
REJECT_IMAGES = frozenset({
    "pgadmin", "pgadmin4", "adminer", "phpmyadmin", "mongo-express", "redis-commander", "redisinsight",
    "kibana", "opensearch-dashboards", "cerebro", "elasticvue", "cloudbeaver", "dbgate", "pgweb", "sqlpad",
    "metabase", "grafana", "chronograf", "pghero", "temboard", "flyway", "liquibase", "sqitch", "mongosh",
    "wal-g", "pgbackrest", "barman",
})
REJECT_TOKENS = frozenset({"exporter", "client", "cli", "admin", "ui", "dashboards", "dashboard", "commander",
                           "insight", "express", "browser", "backup", "operator", "migrate", "migrations", "web"})

CLIENT_ENV = frozenset({
    "DATABASE_URL", "DATABASE_HOST", "DB_HOST", "DB_URL", "DB_CONNECTION", "JDBC_URL", "SPRING_DATASOURCE_URL",
    "SQLALCHEMY_DATABASE_URI", "PGHOST", "PGPASSWORD", "POSTGRES_HOST", "POSTGRES_URL", "POSTGRESQL_HOST",
    "MYSQL_HOST", "MYSQL_URL", "MARIADB_HOST", "MONGO_URL", "MONGO_URI", "MONGO_HOST", "MONGODB_URI", "MONGODB_URL",
    "MONGODB_HOST", "REDIS_URL", "REDIS_HOST", "ELASTICSEARCH_URL", "ELASTICSEARCH_HOSTS", "OPENSEARCH_HOSTS",
    "INFLUXDB_URL", "INFLUX_HOST", "NEO4J_URI", "CASSANDRA_HOST", "CASSANDRA_CONTACT_POINTS", "CLICKHOUSE_HOST",
    "COUCHDB_URL", "MSSQL_HOST", "COCKROACH_URL",
})
CLIENT_PROCESSES = frozenset({
    "psql", "pg_dump", "pg_dumpall", "pg_restore", "pg_basebackup", "mysql", "mysqldump", "mariadb-dump", "mongo",
    "mongosh", "mongodump", "mongorestore", "redis-cli", "cqlsh", "clickhouse-client", "sqlcmd", "cypher-shell",
    "influx", "cockroach-sql",
})


@dataclass
class Identification:
    is_database: bool
    engine: str | None
    kind: str | None  # database | pooler
    confidence: float
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def image_path(image: str) -> str:
    """`registry:5000/ns/name:tag@sha256:..` -> `ns/name`; Docker Hub's `library/` is dropped."""
    ref = image.split("@", 1)[0]
    parts = ref.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    last = parts[-1].split(":", 1)[0]
    parts = parts[:-1] + [last]
    if parts[0] == "library" and len(parts) > 1:
        parts = parts[1:]
    return "/".join(parts).lower()


def _image_engine(path: str) -> tuple[str | None, str]:
    short = path.rsplit("/", 1)[-1]
    for engine, rules in ENGINES.items():
        if path in rules.images or any(path.endswith("/" + img) for img in rules.images if "/" in img):
            return engine, f"image '{path}'"
    for engine, rules in ENGINES.items():
        if short in rules.images:
            return engine, f"image short name '{short}'"
    # `postgresql-repmgr`, `redis-stack-server`, `mongodb-community-server`: known name then a suffix.
    for engine, rules in ENGINES.items():
        for img in rules.images:
            if "/" not in img and re.match(rf"{re.escape(img)}[-_.]", short):
                return engine, f"image short name '{short}' starts with '{img}'"
    return None, ""


def _rejected_image(path: str) -> str | None:
    short = path.rsplit("/", 1)[-1]
    if short in REJECT_IMAGES or path in REJECT_IMAGES:
        return f"image '{path}' is a database tool, not a database"
    tokens = set(re.split(r"[-_.]", short))
    hit = tokens & REJECT_TOKENS
    if hit:
        return f"image '{path}' looks like a {sorted(hit)[0]}, not a database"
    return None


def _normalise_engine(name: str) -> str:
    name = name.strip().lower()
    return ALIASES.get(name, name)


def _label_true(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.strip().lower() in ("1", "true", "yes", "on")


def identify(record: ContainerRecord) -> Identification:
    """Labels decide first; otherwise signals are scored per engine and the best one is judged."""
    labels = record.labels or {}
    enable = _label_true(labels.get("dbmon.enable"))
    by_label = _label_decision(labels, enable)
    if by_label is not None:
        return by_label
    path = image_path(record.image)
    image_engine, why = _image_engine(path)
    scores = _Scores()
    if image_engine:
        scores.add(image_engine, W_IMAGE, why)
    _score_server_signals(record, scores)
    _score_client_signals(record, scores)
    return _judge(record, scores, image_engine, enable, _rejected_image(path))


def _label_decision(labels: dict, enable: bool | None) -> Identification | None:
    if enable is False:
        return Identification(False, None, None, 0.0, ["label dbmon.enable=false"])
    forced = labels.get("dbmon.engine")
    if forced:
        engine = _normalise_engine(forced)
        kind = ENGINES[engine].kind if engine in ENGINES else "database"
        return Identification(True, engine, kind, 1.0, [f"label dbmon.engine={forced}"])
    return None


class _Scores:
    def __init__(self) -> None:
        self.scores: dict[str, float] = {}
        self.reasons: dict[str, list[str]] = {}

    def add(self, engine: str, weight: float, why: str) -> None:
        self.scores[engine] = self.scores.get(engine, 0.0) + weight
        self.reasons.setdefault(engine, []).append(f"{weight:+.2f} {why}")


def _score_server_signals(record: ContainerRecord, scores: _Scores) -> None:
    process = (record.process or "").lower()
    for engine, rules in ENGINES.items():
        if process and process in rules.processes:
            scores.add(engine, W_PROCESS, f"process '{process}'")
        names = set(record.env_names)
        strong, weak = sorted(names & rules.env), sorted(names & rules.env_weak)
        if strong or weak:
            weight = min(W_ENV_MAX, (W_ENV if strong else 0) + (W_ENV_WEAK if weak else 0)
                         + 0.05 * max(0, len(strong) - 1))
            scores.add(engine, round(weight, 2), f"server env names {', '.join(strong + weak)}")
    # Ports only corroborate an engine something else already pointed at.
    for engine in list(scores.scores):
        ports = sorted(record.all_ports & ENGINES[engine].ports)
        if ports:
            scores.add(engine, W_PORT, f"port {', '.join(map(str, ports))}")


def _score_client_signals(record: ContainerRecord, scores: _Scores) -> None:
    process = (record.process or "").lower()
    client_env = sorted(set(record.env_names) & CLIENT_ENV)
    client_process = process in CLIENT_PROCESSES
    for engine in list(scores.scores):
        if ENGINES[engine].kind == "pooler":
            continue  # a pooler is by nature configured as a client of its backend
        if client_env:
            scores.add(engine, W_CLIENT_ENV, f"client connection env {', '.join(client_env)}")
        if client_process:
            scores.add(engine, W_CLIENT_PROCESS, f"client process '{process}'")


def _judge(record: ContainerRecord, scores: _Scores, image_engine: str | None, enable: bool | None,
           rejection: str | None) -> Identification:
    if not scores.scores:
        port_hint = [f"port {p} alone does not qualify" for p in sorted(record.all_ports)
                     if any(p in r.ports for r in ENGINES.values())]
        if enable:
            return Identification(True, "unknown", "database", 1.0, ["label dbmon.enable=true", *port_hint])
        return Identification(False, None, None, 0.0, [rejection] if rejection else port_hint or ["no database signal"])
    best = max(scores.scores, key=lambda e: (scores.scores[e], e == image_engine))
    confidence = round(max(0.0, min(1.0, scores.scores[best])), 2)
    why = scores.reasons[best]
    if enable:
        return Identification(True, best, ENGINES[best].kind, 1.0, ["label dbmon.enable=true", *why])
    if rejection:
        return Identification(False, best, None, 0.0, [rejection, *why])
    if confidence < THRESHOLD:
        return Identification(False, best, None, confidence, [*why, f"below threshold {THRESHOLD}"])
    return Identification(True, best, ENGINES[best].kind, confidence, why)
