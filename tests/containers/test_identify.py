"""Identification of database containers from normalised records (no engine needed)."""

from __future__ import annotations

import pytest

from monitor_app.containers.identify import ENGINES, identify, image_path
from monitor_app.containers.inventory import ContainerRecord, env_names


def rec(image, *, env=(), ports=(), labels=None, process="", published=()):
    return ContainerRecord(id="c" * 64, name="x", image=image, env_names=env_names(env), exposed_ports=list(ports),
                           labels=labels or {}, process=process,
                           published_ports=[{"port": p, "proto": "tcp", "host_ip": "0.0.0.0", "host_port": p + 10000}
                                            for p in published])


@pytest.mark.parametrize("image,engine", [
    ("postgres:16", "postgresql"),
    ("docker.io/library/postgres:16-alpine", "postgresql"),
    ("bitnami/postgresql:15", "postgresql"),
    ("bitnami/postgresql-repmgr:15", "postgresql"),
    ("postgis/postgis:16-3.4", "postgresql"),
    ("timescale/timescaledb:latest-pg16", "postgresql"),
    ("timescale/timescaledb-ha:pg16", "postgresql"),
    ("registry.example.com:5000/team/postgres@sha256:abc", "postgresql"),
    ("mysql:8", "mysql"),
    ("percona/percona-server:8.0", "mysql"),
    ("mariadb:11", "mariadb"),
    ("bitnami/mariadb-galera", "mariadb"),
    ("mongo:7", "mongodb"),
    ("mongodb/mongodb-community-server:7.0-ubi8", "mongodb"),
    ("percona/percona-server-mongodb:6", "mongodb"),
    ("redis:7", "redis"),
    ("redis/redis-stack-server:latest", "redis"),
    ("mcr.microsoft.com/mssql/server:2022-latest", "sqlserver"),
    ("mcr.microsoft.com/azure-sql-edge", "sqlserver"),
    ("clickhouse/clickhouse-server:24", "clickhouse"),
    ("cockroachdb/cockroach:v23.2", "cockroachdb"),
    ("cassandra:4", "cassandra"),
    ("scylladb/scylla:5", "cassandra"),
    ("docker.elastic.co/elasticsearch/elasticsearch:8.12.0", "elasticsearch"),
    ("opensearchproject/opensearch:2", "opensearch"),
    ("influxdb:2.7", "influxdb"),
    ("couchdb:3", "couchdb"),
    ("neo4j:5", "neo4j"),
    ("edoburu/pgbouncer:latest", "pgbouncer"),
    ("bitnami/pgbouncer:1", "pgbouncer"),
])
def test_it_identifies_every_engine_by_image_name_across_registries(image, engine):
    port = sorted(ENGINES[engine].ports)[0]
    result = identify(rec(image, ports=[port]))
    assert result.is_database, result.reasons
    assert result.engine == engine
    assert result.confidence >= 0.5
    assert any("image" in r for r in result.reasons)


def test_it_marks_pgbouncer_as_a_pooler():
    result = identify(rec("edoburu/pgbouncer", ports=[6432], env=["DATABASE_URL=postgres://u:p@db/app"]))
    assert result.is_database and result.kind == "pooler" and result.engine == "pgbouncer"


@pytest.mark.parametrize("port", [5432, 3306, 27017, 6379, 1433, 9200])
def test_it_never_qualifies_a_port_alone(port):
    result = identify(rec("acme/app:1", ports=[port], published=[port]))
    assert not result.is_database
    assert any("alone does not qualify" in r for r in result.reasons)


@pytest.mark.parametrize("env,engine", [
    (["POSTGRES_PASSWORD=x"], "postgresql"),
    (["MYSQL_ROOT_PASSWORD=x"], "mysql"),
    (["MARIADB_ROOT_PASSWORD=x"], "mariadb"),
    (["MONGO_INITDB_ROOT_USERNAME=root", "MONGO_INITDB_ROOT_PASSWORD=x"], "mongodb"),
    (["MSSQL_SA_PASSWORD=x", "ACCEPT_EULA=Y"], "sqlserver"),
    (["DOCKER_INFLUXDB_INIT_MODE=setup"], "influxdb"),
    (["NEO4J_AUTH=neo4j/x"], "neo4j"),
])
def test_it_identifies_custom_images_by_server_env_names_and_port(env, engine):
    port = sorted(ENGINES[engine].ports)[0]
    result = identify(rec("acme/custom-store:1", env=env, ports=[port]))
    assert result.is_database and result.engine == engine, result.reasons


def test_it_identifies_by_process_name():
    result = identify(rec("acme/base:1", process="postgres"))
    assert result.is_database and result.engine == "postgresql"
    assert "+0.60 process 'postgres'" in result.reasons


@pytest.mark.parametrize("image,env,process", [
    ("acme/web:1", ["DATABASE_URL=postgres://u:p@db/app", "POSTGRES_PASSWORD=x"], ""),
    ("acme/api:2", ["PGHOST=db", "PGPASSWORD=x"], ""),
    ("acme/worker:2", ["POSTGRES_HOST=db", "POSTGRES_PASSWORD=x", "POSTGRES_USER=app"], ""),
    ("acme/cache-user:1", ["REDIS_URL=redis://cache:6379", "REDIS_PASSWORD=x"], ""),
    ("acme/app:3", ["MONGO_URI=mongodb://db", "MONGO_INITDB_DATABASE=x"], ""),
    ("postgres:16", [], "psql"),
    ("mongo:7", [], "mongosh"),
])
def test_it_rejects_client_containers(image, env, process):
    result = identify(rec(image, env=env, ports=[5432], process=process))
    assert not result.is_database, result.reasons


@pytest.mark.parametrize("image", [
    "dpage/pgadmin4:8", "adminer:4", "phpmyadmin/phpmyadmin", "mongo-express:1", "rediscommander/redis-commander",
    "redis/redisinsight", "docker.elastic.co/kibana/kibana:8.12.0", "opensearchproject/opensearch-dashboards:2",
    "prometheuscommunity/postgres-exporter:v0.15", "quay.io/prometheus/mysqld-exporter", "oliver006/redis_exporter",
    "percona/mongodb_exporter:0.40", "bitnami/postgresql-client", "flyway/flyway:10", "sosedoff/pgweb",
])
def test_it_rejects_admin_tools_exporters_and_client_images(image):
    result = identify(rec(image, ports=[5432, 9187, 8080], env=["POSTGRES_PASSWORD=x"]))
    assert not result.is_database, result.reasons


def test_labels_override_everything():
    off = identify(rec("postgres:16", ports=[5432], env=["POSTGRES_PASSWORD=x"], labels={"dbmon.enable": "false"}))
    assert not off.is_database and off.reasons == ["label dbmon.enable=false"]
    forced = identify(rec("acme/app:1", labels={"dbmon.engine": "Postgres"}))
    assert forced.is_database and forced.engine == "postgresql" and forced.confidence == 1.0
    enabled = identify(rec("acme/app:1", ports=[6379], labels={"dbmon.enable": "true"}))
    assert enabled.is_database and enabled.engine == "unknown"
    tool = identify(rec("adminer:4", ports=[8080], labels={"dbmon.engine": "mysql"}))
    assert tool.is_database and tool.engine == "mysql"


def test_it_prefers_the_image_over_shared_env_names():
    result = identify(rec("mariadb:11", env=["MYSQL_ROOT_PASSWORD=x"], ports=[3306]))
    assert result.engine == "mariadb"


def test_it_rejects_unrelated_containers():
    for image in ("nginx:1.25", "busybox", "acme/web:1"):
        assert not identify(rec(image, ports=[80, 443])).is_database


def test_env_values_never_reach_the_record():
    record = rec("postgres:16", env=["POSTGRES_PASSWORD=hunter2", "PATH=/usr/bin"])
    assert record.env_names == ["PATH", "POSTGRES_PASSWORD"]
    assert "hunter2" not in repr(record.to_dict())


def test_image_path_strips_registry_tag_digest_and_library():
    assert image_path("docker.io/library/postgres:16") == "postgres"
    assert image_path("localhost/pg") == "pg"
    assert image_path("mcr.microsoft.com/mssql/server:2022-latest") == "mssql/server"
    assert image_path("registry:5000/a/b/redis@sha256:00") == "a/b/redis"
