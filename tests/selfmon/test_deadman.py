"""The dead-man's switch against a real HTTP server on 127.0.0.1: one ping per interval while
healthy, none while not, no redirect followed, private targets refused unless allowed, a short
timeout, and the URL's token never in a log line, the snapshot or an error message."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from monitor_app.errors import ConfigError
from monitor_app.config.settings import load_settings
from monitor_app.selfmon.check import run_check
from monitor_app.selfmon.deadman import maybe_ping, ping
from monitor_app.selfmon.snapshot import take_snapshot
from tests.selfmon.conftest import healthy_deployment, make_runtime

TOKEN = "s3cr3t-token"


def deadman_runtime(store, tmp_path, receiver, **overrides):
    settings = {"deadman_url": receiver.url(), "deadman_interval": 60, "deadman_allow_private": True,
                "deadman_timeout": 1.0, **overrides}
    return make_runtime(store, tmp_path, **settings)


def test_a_healthy_check_pings_once_per_interval_and_an_unhealthy_one_holds_back(store, tmp_path, receiver, clock,
                                                                                caplog):
    caplog.set_level(logging.INFO, logger="dbmon")
    rt = deadman_runtime(store, tmp_path, receiver)
    healthy_deployment(store, clock())
    assert run_check(rt, clock())["deadman"] == {"configured": True, "sent": True, "ok": True, "result": "HTTP 200 OK"}
    assert run_check(rt, clock.advance(30))["deadman"]["reason"] == "pinged within the interval"
    healthy_deployment(store, clock.advance(30))
    assert run_check(rt, clock())["deadman"]["sent"]
    assert [(p.method, p.path) for p in receiver.pings] == [("GET", "/ping/abc123?token=s3cr3t-token")] * 2

    clock.advance(120)  # every component silent since: dbmon is not healthy
    assert run_check(rt, clock())["deadman"] == {"configured": True, "sent": False, "reason": "unhealthy"}
    assert len(receiver.pings) == 2
    view = take_snapshot(store, rt.settings, clock()).as_dict()["deadman"]
    assert view["target"] == f"127.0.0.1:{receiver.port}" and view["last_ok"] is True
    assert TOKEN not in repr(view) and TOKEN not in caplog.text and "abc123" not in caplog.text


def test_two_workers_checking_at_once_ping_once(store, tmp_path, receiver, clock):
    rt = deadman_runtime(store, tmp_path, receiver)
    results = []
    threads = [threading.Thread(target=lambda: results.append(maybe_ping(store, rt.settings, True, clock(), [])))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(1 for r in results if r["sent"]) == 1 and len(receiver.pings) == 1


def test_a_post_carries_a_small_json_body(store, tmp_path, receiver, clock):
    rt = deadman_runtime(store, tmp_path, receiver, deadman_method="POST")
    assert maybe_ping(store, rt.settings, True, clock(), [])["ok"]
    (sent,) = receiver.pings
    assert sent.method == "POST" and b'"status": "ok"' in sent.body and TOKEN.encode() not in sent.body


def test_a_redirect_is_not_followed_and_a_refusal_is_reported(receiver):
    receiver.mode = "redirect"
    assert ping(receiver.url(), allow_private=True) == (False, "HTTP 302 Found: redirect not followed")
    assert [p.path for p in receiver.pings] == ["/ping/abc123?token=s3cr3t-token"]
    receiver.mode = "fail"
    assert ping(receiver.url(), allow_private=True) == (False, "HTTP 503 Service Unavailable")


def test_a_private_target_is_refused_unless_allowed(receiver):
    ok, outcome = ping(receiver.url())
    assert not ok and outcome.startswith(f"refused: 127.0.0.1:{receiver.port} resolves to a private or local address")
    assert receiver.pings == []


def test_a_stalled_service_times_out_quickly_and_the_error_does_not_repeat_the_url(receiver):
    receiver.mode = "stall"
    started = time.monotonic()
    ok, outcome = ping(receiver.url(), timeout=0.3, allow_private=True)
    assert not ok and outcome == "timed out after 0.3s" and time.monotonic() - started < 2
    receiver.stop()
    ok, outcome = ping(receiver.url(), timeout=0.3, allow_private=True)
    assert not ok and outcome == "connection failed: ConnectionError" and TOKEN not in outcome


@pytest.mark.parametrize("url", ["ftp://example.org/x", "hc-ping.com/abc", "http://:80/x", "http://h:port/x"])
def test_a_bad_url_is_refused_without_echoing_it(url, tmp_path):
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None, data_dir=tmp_path, deadman_url=url)
    ((field, message),) = info.value.errors
    assert field == "DBMON_DEADMAN_URL" and url not in message


def test_the_url_is_not_in_the_settings_repr(tmp_path):
    settings = load_settings(_env_file=None, data_dir=tmp_path, deadman_url=f"https://hc-ping.com/{TOKEN}")
    assert TOKEN not in repr(settings) and load_settings(_env_file=None, data_dir=tmp_path, deadman_url=" ").deadman_url is None
