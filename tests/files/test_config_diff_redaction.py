"""No secret value leaves the config diff engine: not in parsed forms, diffs or error messages."""

from __future__ import annotations

import hashlib
import hmac
import json
import re

import pytest

from monitor_app.files.config_diff import diff_config_files, diff_parsed, parse_config_file, parse_config_text
from monitor_app.files.config_diff.redaction import redact_conninfo, scrub_embedded

KEY = b"test-key"
TOKEN = re.compile(r"<redacted:[0-9a-f]{8}>")

# Each file holds secrets in every place its kind keeps them, valid and malformed lines alike.
SECRET_FILES = {
    "postgresql.conf": ("""\
primary_conninfo = 'host=db1 port=5432 user=rep password=PgConninfoSecret1 sslmode=require'
ssl_passphrase_command = 'echo PgPassphraseSecret2'
my_ext.api_secret = 'PgExtSecret3'
archive_command = 'PGPASSWORD=PgEmbeddedSecret4 pg_receivewal -D /a'
restore_command = 'curl https://u:PgUrlSecret5@backup.example/%f -o %p'
ldap_password 'PgMalformedSecret6
PgBareSecret7
password = PgBadToken\\Secret8
""", ["PgConninfoSecret1", "PgPassphraseSecret2", "PgExtSecret3", "PgEmbeddedSecret4", "PgUrlSecret5",
      "PgMalformedSecret6", "PgBareSecret7", "Secret8"]),
    "pg_hba.conf": ("""\
host all all 10.0.0.0/8 ldap ldapserver=l ldapbindpasswd=HbaSecret1
host all all 10.1.0.0/16 radius radiusservers=r radiussecrets="HbaSecret2"
host all all ldap ldapbindpasswd=HbaSecret3
host all all 10.2.0.0/16 ldap "ldapbindpasswd=HbaSecret4
""", ["HbaSecret1", "HbaSecret2", "HbaSecret3", "HbaSecret4"]),
    "my.cnf": ("""\
[client]
password = "MyQuotedSecret1"
[mysqld]
loose-group-replication-recovery-password=MySecret2
init_connect = 'SET @x = 1; password=MyEmbeddedSecret3'
password "MyMalformedSecret4
""", ["MyQuotedSecret1", "MySecret2", "MyEmbeddedSecret3", "MyMalformedSecret4"]),
    "redis.conf": ("""\
requirepass "Redis Secret1"
masterauth RedisSecret2
user alice on >RedisSecret3 #5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8 ~* +@all
rename-command CONFIG RedisRenamedSecret4
sentinel auth-pass mymaster RedisSecret5
tls-key-file-pass RedisSecret6
requirepass "RedisUnbalancedSecret7
RedisBareSecret8
""", ["Redis Secret1", "RedisSecret2", "RedisSecret3", "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8",
      "RedisRenamedSecret4", "RedisSecret5", "RedisSecret6", "RedisUnbalancedSecret7", "RedisBareSecret8"]),
    ".pgpass": ("""\
db1:5432:app:alice:PgpassSecret1
db2:5432:app:bob:Pgpass\\:Secret2
db3:5432:PgpassMalformedSecret3
""", ["PgpassSecret1", "Pgpass:Secret2", "Pgpass\\:Secret2", "PgpassMalformedSecret3"]),
}


@pytest.mark.parametrize("name", sorted(SECRET_FILES))
def test_no_secret_in_parse_or_diff_output(tmp_path, name):
    text, secrets = SECRET_FILES[name]
    old = tmp_path / "old" / name
    new = tmp_path / "new" / name
    old.parent.mkdir()
    new.parent.mkdir()
    old.write_text(text)
    # The new version changes every secret, so each redacted value shows up in the diff.
    new.write_text(text.replace("Secret", "Changed").replace("5e88", "6e88"))
    parsed_old = parse_config_file(str(old), key=KEY)
    emptied = parse_config_text("", parsed_old["kind"], key=KEY)
    outputs = [parsed_old, parse_config_file(str(new), key=KEY), diff_config_files(str(old), str(new)),
               diff_parsed(parsed_old, emptied), diff_parsed(emptied, parsed_old)]
    dumped = json.dumps(outputs)
    for secret in secrets:
        assert secret not in dumped
        assert secret.replace("Secret", "Changed") not in dumped
    assert TOKEN.search(dumped)
    assert outputs[0]["errors"], "the malformed lines must be reported"


def test_same_secret_stays_equal_changed_secret_differs(tmp_path):
    for side, value in (("a", "same"), ("b", "same"), ("c", "other")):
        (tmp_path / side).mkdir()
        (tmp_path / side / "redis.conf").write_text(f"requirepass {value}\nport 6379\n")
    assert diff_config_files(str(tmp_path / "a" / "redis.conf"), str(tmp_path / "b" / "redis.conf")) == []
    [change] = diff_config_files(str(tmp_path / "a" / "redis.conf"), str(tmp_path / "c" / "redis.conf"))
    assert TOKEN.fullmatch(change["old"]) and TOKEN.fullmatch(change["new"]) and change["old"] != change["new"]


def test_token_is_a_keyed_hmac_of_the_raw_bytes():
    parsed = parse_config_text("requirepass caf\udce9\n", "redis", key=KEY)
    expected = hmac.new(KEY, b"caf\xe9", hashlib.sha256).hexdigest()[:8]
    assert parsed["entries"][0]["value"] == f"<redacted:{expected}>"
    other_key = parse_config_text("requirepass caf\udce9\n", "redis", key=b"another key")
    assert other_key["entries"][0]["value"] != parsed["entries"][0]["value"]


def test_conninfo_keeps_visible_parts_and_canonical_spelling():
    a = redact_conninfo("host=db1  port = 5432 user='rep' password='p w'", KEY)
    b = redact_conninfo("host=db1 port=5432 user=rep password='p w'", KEY)
    assert a == b and a.startswith("host=db1 port=5432 user=rep password=<redacted:")
    uri = redact_conninfo("postgresql://rep:UriSecret@db1:5432/app?sslmode=require&password=QuerySecret", KEY)
    assert "UriSecret" not in uri and "QuerySecret" not in uri and "db1:5432/app" in uri
    assert TOKEN.fullmatch(redact_conninfo("host=db1 password='unterminated", KEY))


def test_scrub_embedded_leaves_ordinary_text_alone():
    assert scrub_embedded("cp %p /archive/%f", KEY) == "cp %p /archive/%f"
    scrubbed = scrub_embedded("env DB_PASSWORD='a b' cmd --passphrase=xyz https://u:pw@h/", KEY)
    assert "a b" not in scrubbed and "xyz" not in scrubbed and ":pw@" not in scrubbed
    assert scrubbed.startswith("env DB_PASSWORD=<redacted:") and "https://u:<redacted:" in scrubbed


def test_policy_parameters_named_like_secrets_stay_visible():
    parsed = parse_config_text("password_encryption = md5\n", "postgresql", key=KEY)
    assert parsed["entries"][0]["value"] == "md5"


def test_key_must_be_non_empty_bytes():
    with pytest.raises(ValueError):
        parse_config_text("port 1\n", "redis", key=b"")
    with pytest.raises(ValueError):
        parse_config_text("port 1\n", "redis", key="text")  # type: ignore[arg-type]
