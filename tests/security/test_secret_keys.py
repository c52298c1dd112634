"""Secret key derivation per use, rotation, and `dbmon secrets reseal` against a real store."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select

from monitor_app.alerting import ack_links
from monitor_app.access.credential_box import CredentialBox
from monitor_app.errors import DbmonError
from monitor_app.config.settings import load_settings
from monitor_app.store.models import Asset

ROOT = Path(__file__).resolve().parents[2]


def sha256_box(key: str) -> Fernet:
    """What releases before per-use derivation sealed credentials with."""
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(("dbmon-credentials:" + key).encode()).digest()))


def test_it_never_uses_the_secret_key_or_a_plain_hash_of_it_as_a_key():
    token = CredentialBox("operator-chosen").seal({"password": "pw"})
    with pytest.raises(InvalidToken):
        sha256_box("operator-chosen").decrypt(token)
    link = ack_links.make_token("operator-chosen", 7)
    with pytest.raises(BadSignature):
        URLSafeTimedSerializer("operator-chosen", salt=ack_links.SALT).loads(link)


def test_it_still_opens_credentials_sealed_before_the_upgrade():
    old_token = sha256_box("kept-key").encrypt(b'{"password": "from-last-release"}')
    assert CredentialBox("kept-key").open(old_token) == {"password": "from-last-release"}


def test_a_rotated_key_opens_old_credentials_and_seals_new_ones_with_the_new_key():
    settings = load_settings(_env_file=None, secret_key="new-key", secret_key_previous="older, old-key")
    ring = settings.secret_keys()
    assert ring.current == "new-key" and ring.previous == ("older", "old-key")
    old_token = CredentialBox("old-key").seal({"password": "pw"})
    box = CredentialBox(ring)
    assert box.open(old_token) == {"password": "pw"}
    assert not box.is_current(old_token)
    new_token = box.seal({"password": "pw2"})
    assert CredentialBox("new-key").open(new_token) == {"password": "pw2"}
    with pytest.raises(DbmonError, match="DBMON_SECRET_KEY_PREVIOUS"):
        CredentialBox("old-key").open(new_token)


def test_ack_links_signed_with_the_previous_key_verify_during_rotation_only():
    old_link = ack_links.make_token("old-key", 42)
    ring = load_settings(_env_file=None, secret_key="new-key", secret_key_previous="old-key").secret_keys()
    assert ack_links.verify(ring, old_link, max_age=60) == 42
    with pytest.raises(DbmonError, match="not valid"):
        ack_links.verify("new-key", old_link, max_age=60)
    new_link = ack_links.make_token(ring, 43)
    assert ack_links.verify("new-key", new_link, max_age=60) == 43
    with pytest.raises(DbmonError, match="not valid"):
        ack_links.verify("old-key", new_link, max_age=60)


def test_ack_links_sent_before_the_upgrade_still_verify():
    legacy = URLSafeTimedSerializer("kept-key", salt=ack_links.SALT).dumps({"incident": 5})
    assert ack_links.verify("kept-key", legacy, max_age=60) == 5


def _reseal(env: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "monitor_app.cli.main", "secrets", "reseal"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.slow  # two CLI processes
def test_secrets_reseal_moves_every_stored_credential_to_the_current_key(store, tmp_path):
    legacy = sha256_box("old-key").encrypt(b'{"password": "legacy"}')
    with store.session() as s:
        s.add_all([
            Asset(kind="database", engine="postgresql", name="a", source="config", external_id="a", status="unknown",
                  connection={}, labels={}, details={}, secret=CredentialBox("old-key").seal({"password": "pa"})),
            Asset(kind="database", engine="postgresql", name="b", source="config", external_id="b", status="unknown",
                  connection={}, labels={}, details={}, secret=legacy),
            Asset(kind="database", engine="postgresql", name="c", source="config", external_id="c", status="unknown",
                  connection={}, labels={}, details={}, secret=CredentialBox("new-key").seal({"password": "pc"})),
        ])
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "DBMON_DATABASE_URL": store.url,
           "DBMON_DATA_DIR": str(tmp_path / "var"), "DBMON_SECRET_KEY": "new-key",
           "DBMON_SECRET_KEY_PREVIOUS": "old-key"}
    done = _reseal(env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "resealed 2 credential(s)" in done.stdout and "1 already current" in done.stdout
    only_new = CredentialBox("new-key")
    with store.session() as s:
        secrets = {a.name: only_new.open(a.secret) for a in s.scalars(select(Asset))}
    assert secrets == {"a": {"password": "pa"}, "b": {"password": "legacy"}, "c": {"password": "pc"}}

    env["DBMON_SECRET_KEY_PREVIOUS"] = ""
    env["DBMON_SECRET_KEY"] = "unrelated-key"
    failed = _reseal(env, tmp_path)
    assert failed.returncode == 1 and "a, b, c" in failed.stderr and "Traceback" not in failed.stderr


@pytest.mark.slow  # docker-compose processes
def test_compose_refuses_to_start_without_a_secret_key(tmp_path):
    import os
    import shutil

    from tests.services import missing

    if not shutil.which("docker-compose"):
        missing("docker-compose")
    shutil.copy(ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBMON_")}
    unset = subprocess.run(["docker-compose", "config", "-q"], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=60)
    assert unset.returncode != 0 and "set DBMON_SECRET_KEY in .env" in unset.stderr
    (tmp_path / ".env").write_text("DBMON_SECRET_KEY=a-long-random-key\n")
    ok = subprocess.run(["docker-compose", "config"], cwd=tmp_path, env=env, capture_output=True, text=True,
                        timeout=60)
    assert ok.returncode == 0 and "DBMON_SECRET_KEY: a-long-random-key" in ok.stdout
    # The TLS variables compose passes through empty mean "no TLS", not a certificate at ".".
    settings = load_settings(_env_file=None, api_tls_cert="", api_tls_key="")
    assert settings.api_tls is False and settings.api_base_url.startswith("http://")
