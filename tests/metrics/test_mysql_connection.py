"""Connecting to MySQL and MariaDB without a server: TLS modes and failure reasons. The
connection kept between polls is tested with PostgreSQL's in test_kept_connections."""

from __future__ import annotations

import pytest

from monitor_app.errors import DbmonError
from monitor_app.metrics.mysql_connection import SessionLimits, connect, failure_reason, ssl_mode, transport_connection


def test_tls_modes_follow_the_transports_policy_and_ssl_stands_in_for_sslmode():
    assert ssl_mode({"host": "db"}) == "required"
    assert ssl_mode({"ssl": "disable"}) == "required"  # plaintext only when declared insecure
    assert ssl_mode({"ssl": "disable", "insecure": True}) == "disable"
    assert ssl_mode({"insecure": True}) == "preferred"
    assert ssl_mode({"ssl": "verify"}) == "verify_identity" and ssl_mode({"ssl": "verify-ca"}) == "verify_ca"
    assert ssl_mode({"ssl": "prefer", "ssl_ca": "/ca.pem"}) == "verify_identity"  # weak: raised, verified by the CA
    assert ssl_mode({"sslmode": "verify-full"}) == "verify_identity"  # PostgreSQL's names read as MySQL's
    assert ssl_mode({"ssl": "disable", "sslmode": "verify_ca"}) == "verify_ca"  # sslmode wins
    assert transport_connection({"ssl_ca": "/ca.pem", "ssl": "require"}) == {
        "ssl_ca": "/ca.pem", "ssl": "require", "sslmode": "required", "sslrootcert": "/ca.pem"}


def test_an_unreadable_ca_file_is_a_clear_error_before_any_connection():
    with pytest.raises(DbmonError, match="No such file"):
        connect({"host": "127.0.0.1", "port": 9, "user": "u", "ssl": "verify", "ssl_ca": "/nonexistent/ca.pem"},
                None, SessionLimits(1, 1, 1, 10))


def test_failure_reasons_name_their_kind_first():
    import pymysql

    assert failure_reason(pymysql.err.OperationalError(1045, "Access denied for user 'x'")).startswith(
        "missing privileges: Access denied")
    assert failure_reason(pymysql.err.OperationalError(2003, "Can't connect ([Errno 111] Connection refused)")
                          ).startswith("refused: ")
    assert failure_reason(pymysql.err.OperationalError(2013, "Lost connection to server during query (timed out)")
                          ).startswith("timeout: ")
    assert failure_reason(pymysql.err.OperationalError(1969, "Query execution was interrupted")).startswith("timeout")
    assert failure_reason(ValueError("bad\nsecond line")) == "error: bad"
