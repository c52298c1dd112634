"""Backup judgement: settling, shrinkage, sidecar checksums (written by the real sha256sum),
overdue backups and the names that never count as backups."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from monitor_app.files.backup_check import (BackupPolicy, BackupRecord, assess, is_backup_name, judge_completed,
                                            missing, parse_sidecar)
from monitor_app.files.backup_format import FormatCheck, check_format
from monitor_app.files.file_state import read_state, sha256_of
from tests.services import missing as service_missing

NOW = datetime(2024, 5, 1, 3, 0, tzinfo=timezone.utc)


def _state(tmp_path, name: str = "nightly.sql.gz", data: bytes = b"x" * 1000):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path), read_state(str(path))


def _record(path: str = "/backups/previous.sql.gz", size: int = 1000, mtime_ns: int = 1, state: str = "completed"):
    return BackupRecord(path=path, size=size, mtime_ns=mtime_ns, completed_at=NOW - timedelta(days=1), sha256=None,
                        state=state, format="sql.gz", detail="")


def _sha256sum(*args: str) -> str:
    tool = shutil.which("sha256sum")
    if tool is None:
        service_missing("the sha256sum command")
    return subprocess.run([tool, *args], capture_output=True, text=True, check=True).stdout


def _types(events: list[dict]) -> dict[str, str]:
    return {e["type"]: e["severity"] for e in events}


def test_policy_reads_durations_and_bounds_the_ratio():
    policy = BackupPolicy.model_validate({"max_age": "26h", "settle": "1d"})
    assert (policy.max_age, policy.settle) == (26 * 3600, 86400)
    for bad in ({"shrink_ratio": 0}, {"shrink_ratio": 1.5}, {"max_age": "0s"}, {"checksum": "md5"}, {"nope": 1}):
        with pytest.raises(ValidationError):
            BackupPolicy.model_validate(bad)


@pytest.mark.parametrize("name", ["db.dump.tmp", "db.dump.partial", "db.dump.part", "DB.DUMP.TMP", ".~lock.db.dump#",
                                  ".db.dump.Xa81bQ", "db.dump.sha256", ""])
def test_temporary_and_sidecar_names_are_never_backups(name):
    assert not is_backup_name(name, BackupPolicy())


def test_any_other_name_is_a_backup_unless_the_pattern_says_otherwise():
    assert is_backup_name("db-2024-05-01.dump", BackupPolicy())
    policy = BackupPolicy(pattern="db-*.dump")
    assert is_backup_name("db-2024-05-01.dump", policy)
    assert not is_backup_name("other-2024-05-01.dump", policy)
    assert not is_backup_name("db-2024-05-01.dump.tmp", BackupPolicy(pattern="db-*"))


def test_a_file_is_in_progress_until_unchanged_for_settle(tmp_path):
    _, state = _state(tmp_path)
    policy = BackupPolicy(settle=60)
    assert assess(state, NOW - timedelta(seconds=59), None, policy, NOW) == "in_progress"
    assert assess(state, NOW - timedelta(seconds=60), None, policy, NOW) == "ready"
    # A clock that stepped back never makes a file look settled early.
    assert assess(state, NOW + timedelta(hours=1), None, policy, NOW) == "in_progress"
    # A store's naive UTC timestamp compares with an aware now.
    assert assess(state, (NOW - timedelta(minutes=5)).replace(tzinfo=None), None, policy, NOW) == "ready"


def test_a_file_matching_the_completed_record_is_ready_at_once(tmp_path):
    _, state = _state(tmp_path)
    same = _record(size=state.size, mtime_ns=state.mtime_ns)
    assert assess(state, NOW, same, BackupPolicy(settle=60), NOW) == "ready"
    moved = _record(size=state.size, mtime_ns=state.mtime_ns + 1)
    assert assess(state, NOW, moved, BackupPolicy(settle=60), NOW) == "in_progress"


def test_a_good_backup_is_one_info_event_and_a_completed_record(tmp_path):
    path, state = _state(tmp_path, data=gzip.compress(b"--\n-- PostgreSQL database dump\n--\n"
                                                      b"-- PostgreSQL database dump complete\n"))
    check = check_format(path)
    record, events = judge_completed(path, state, BackupPolicy(), _record(size=state.size), sidecar_text=None,
                                     format_check=check, sha256=None)
    assert [(e["type"], e["severity"]) for e in events] == [("backup.completed", "info")]
    assert (record.state, record.format, record.size, record.path) == ("completed", "sql.gz", state.size, path)
    assert record.completed_at == datetime.fromtimestamp(state.mtime_ns / 1e9, tz=timezone.utc)
    assert events[0]["payload"]["format_ok"] is True


def test_shrunk_below_the_ratio_of_the_previous_backup(tmp_path):
    path, state = _state(tmp_path, data=b"x" * 400)
    policy = BackupPolicy(shrink_ratio=0.5)
    record, events = judge_completed(path, state, policy, _record(size=1000), sidecar_text=None, format_check=None,
                                     sha256=None)
    assert _types(events) == {"backup.completed": "info", "backup.shrunk": "warning"}
    shrunk = next(e for e in events if e["type"] == "backup.shrunk")
    assert shrunk["payload"]["size"] == 400 and shrunk["payload"]["previous_size"] == 1000
    assert shrunk["payload"]["ratio"] == 0.4 and shrunk["payload"]["shrink_ratio"] == 0.5
    assert record.state == "completed"  # smaller is suspicious, not damaged
    _, at_ratio = judge_completed(path, state, policy, _record(size=800), sidecar_text=None, format_check=None,
                                  sha256=None)
    assert "backup.shrunk" not in _types(at_ratio)
    _, first = judge_completed(path, state, policy, None, sidecar_text=None, format_check=None, sha256=None)
    assert _types(first) == {"backup.completed": "info"}


def test_a_failed_format_check_is_corrupt_and_still_completed(tmp_path):
    packed = gzip.compress(b"-- MySQL dump 10.13\n" + b"INSERT INTO t VALUES (1);\n" * 2000)
    path, state = _state(tmp_path, data=packed[:len(packed) // 2])
    check = check_format(path)
    record, events = judge_completed(path, state, BackupPolicy(), None, sidecar_text=None, format_check=check,
                                     sha256=None)
    assert _types(events) == {"backup.completed": "info", "backup.corrupt": "critical"}
    assert record.state == "corrupt" and "truncated" in record.detail
    assert events[0]["payload"]["state"] == "corrupt"


def test_an_empty_file_is_corrupt(tmp_path):
    path, state = _state(tmp_path, data=b"")
    record, events = judge_completed(path, state, BackupPolicy(), None, sidecar_text=None, format_check=None,
                                     sha256=None)
    assert record.state == "corrupt" and "backup.corrupt" in _types(events)


def test_a_sidecar_written_by_sha256sum_matches(tmp_path):
    path, state = _state(tmp_path)
    policy = BackupPolicy(checksum="sidecar")
    digest = sha256_of(path, state)
    record, events = judge_completed(path, state, policy, None, sidecar_text=_sha256sum(path), format_check=None,
                                     sha256=digest)
    assert _types(events) == {"backup.completed": "info"}
    assert events[0]["payload"]["checksum"] == "match" and record.sha256 == digest


def test_a_sidecar_that_differs_is_corrupt(tmp_path):
    path, state = _state(tmp_path)
    sidecar = _sha256sum(path)
    (tmp_path / "nightly.sql.gz").write_bytes(b"y" * 1000)  # the same size, other bytes
    state = read_state(path)
    digest = sha256_of(path, state)
    record, events = judge_completed(path, state, BackupPolicy(checksum="sidecar"), None, sidecar_text=sidecar,
                                     format_check=None, sha256=digest)
    assert _types(events) == {"backup.completed": "info", "backup.corrupt": "critical"}
    corrupt = next(e for e in events if e["type"] == "backup.corrupt")
    assert corrupt["payload"]["sidecar_sha256"] == hashlib.sha256(b"x" * 1000).hexdigest()
    assert record.state == "corrupt" and digest in record.detail


def test_a_checksum_that_cannot_be_compared_is_a_warning(tmp_path):
    path, state = _state(tmp_path)
    policy = BackupPolicy(checksum="sidecar")
    for sidecar, sha256, verdict in ((None, "a" * 64, "sidecar_missing"), ("garbage\n", "a" * 64, "sidecar_unreadable"),
                                     (_sha256sum(path), None, "not_hashed")):
        record, events = judge_completed(path, state, policy, None, sidecar_text=sidecar, format_check=None,
                                         sha256=sha256)
        assert _types(events) == {"backup.completed": "warning"}, verdict
        assert events[0]["payload"]["checksum"] == verdict and record.state == "completed"
    _, unasked = judge_completed(path, state, BackupPolicy(), None, sidecar_text=None, format_check=None,
                                 sha256=None)
    assert _types(unasked) == {"backup.completed": "info"}


def test_a_format_without_a_check_is_neither_good_nor_bad(tmp_path):
    path, state = _state(tmp_path, data=b"plain bytes")
    record, events = judge_completed(path, state, BackupPolicy(), None, sidecar_text=None,
                                     format_check=FormatCheck(None, "unknown", "no check for this format"), sha256=None)
    assert record.state == "completed" and events[0]["payload"]["format_ok"] is None


def test_missing_counts_from_the_latest_backup():
    policy = BackupPolicy(max_age="26h")
    watching = NOW - timedelta(days=30)
    assert missing(NOW - timedelta(hours=25), watching, policy, NOW) is None
    event = missing(NOW - timedelta(hours=27), watching, policy, NOW)
    assert event is not None
    assert (event["type"], event["severity"]) == ("backup.missing", "critical")
    assert event["payload"]["age"] == 27 * 3600 and event["payload"]["max_age"] == 26 * 3600
    assert event["payload"]["latest_completed_at"] == (NOW - timedelta(hours=27)).isoformat()
    assert missing(NOW - timedelta(days=9), watching, BackupPolicy(), NOW) is None  # no max_age, no check


def test_missing_counts_from_watching_since_when_there_never_was_a_backup():
    policy = BackupPolicy(max_age="1d")
    assert missing(None, NOW - timedelta(hours=23), policy, NOW) is None
    event = missing(None, (NOW - timedelta(hours=25)).replace(tzinfo=None), policy, NOW)
    assert event is not None and event["payload"]["latest_completed_at"] is None
    assert event["payload"]["age"] == 25 * 3600 and "since watching began" in event["summary"]


def test_parse_sidecar_reads_the_sha256sum_forms():
    digest = "ab" * 32
    assert parse_sidecar(f"{digest}  db.dump\n", "db.dump") == digest
    assert parse_sidecar(f"{digest.upper()} *./backups/db.dump\r\n", "db.dump") == digest
    assert parse_sidecar(f"{digest}\n", "db.dump") == digest  # `sha256sum < file`
    assert parse_sidecar(f"SHA256 (db.dump) = {digest}\n", "db.dump") == digest
    other = "cd" * 32
    both = f"{other}  a.dump\n{digest}  db.dump\n"
    assert parse_sidecar(both, "db.dump") == digest and parse_sidecar(both, "c.dump") is None
    assert parse_sidecar("not a checksum\n", "db.dump") is None
    assert parse_sidecar(f"{digest[:-1]}  db.dump\n", "db.dump") is None


def test_parse_sidecar_reads_what_sha256sum_writes_for_several_files(tmp_path):
    contents = {"db\nnight.dump": b"first", "two  spaces.dump": b"second"}  # escaped by sha256sum, and not
    for name, data in contents.items():
        (tmp_path / name).write_bytes(data)
    for tag in ([], ["--tag"]):
        listing = _sha256sum(*tag, *(str(tmp_path / name) for name in contents))
        for name, data in contents.items():
            assert parse_sidecar(listing, name) == hashlib.sha256(data).hexdigest(), (tag, name)
        assert parse_sidecar(listing, "other.dump") is None


def test_parse_sidecar_reads_only_the_head_of_a_huge_sidecar():
    digest = "ab" * 32
    huge = "junk line\n" * 500_000 + f"{digest}  db.dump\n"
    assert parse_sidecar(huge, "db.dump") is None
