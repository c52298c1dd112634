"""Hostile input to the API: every malformed value is a 400 naming its field, never a 500,
and nobody gets a body parsed or echoed back before their key is checked."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import select

from monitor_app.store.models import TaskRun
from monitor_app.store.models.alerting import Silence

HUGE = "9" * 25  # well over 64 bits

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def field_error(resp, field: str) -> str:
    assert resp.status_code == 400, (resp.status_code, resp.get_data(as_text=True)[:500])
    assert field in resp.json.get("errors", {}), resp.json
    return resp.json["errors"][field]


def post_json(api, path, text: str, role="operator", **headers):
    return api.post(path, data=text, headers={**api.keys[role], "Content-Type": "application/json", **headers})


@pytest.mark.parametrize("path, field", [
    (f"/api/v1/assets/{HUGE}", "asset_id"),
    (f"/api/v1/alerts/incidents/{HUGE}", "incident_id"),
    (f"/api/v1/alerts/silences/{HUGE}", "silence_id"),
    (f"/api/v1/containers/assets/{HUGE}/events", "asset_id"),
    (f"/api/v1/schema/assets/{HUGE}/history", "asset_id"),
    (f"/api/v1/files/watches/{HUGE}", "watch_id"),
])
def test_it_answers_path_integers_over_64_bits_with_the_field_named(api, path, field):
    field_error(api.get(path, headers=api.keys["viewer"]), field)


@pytest.mark.parametrize("query, field", [
    (f"/api/v1/events?asset_id={HUGE}", "asset_id"),
    (f"/api/v1/files/changes?watch_id={HUGE}", "watch_id"),
    (f"/api/v1/files/backups?watch_id={HUGE}", "watch_id"),
    ("/api/v1/files/changes?since=0001-01-01T00:00:00%2B01:00", "since"),
    (f"/api/v1/alerts/alerts?incident_id={HUGE}", "incident_id"),
    (f"/api/v1/metrics/samples?name=x&asset_id={HUGE}", "asset_id"),
    (f"/api/v1/schema/changes?change_set_id={HUGE}", "change_set_id"),
    ("/api/v1/events?since=0001-01-01T00:00:00%2B01:00", "since"),
    ("/api/v1/events?until=9999-12-31T23:59:59-14:00", "until"),
    ("/api/v1/assets?engine=pg%00", "engine"),
    ("/api/v1/audit?actor=" + "a" * 5000, "actor"),
])
def test_it_answers_query_values_out_of_range_with_the_field_named(api, query, field):
    role = "admin" if "audit" in query else "viewer"
    field_error(api.get(query, headers=api.keys[role]), field)


def test_it_answers_scan_ids_with_nul_bytes_with_the_field_named(api):
    field_error(api.get("/api/v1/scans/ab%00cd", headers=api.keys["viewer"]), "scan_id")


@pytest.mark.parametrize("body, field", [
    ({"matchers": ["a=b"], "starts_at": 12345, "ends_at": "2030-01-01T00:00:00Z"}, "starts_at"),
    ({"matchers": ["a=b"], "ends_at": {"year": 2030}}, "ends_at"),
    ({"matchers": ["a=b"], "ends_at": ["2030-01-01"]}, "ends_at"),
    ({"matchers": ["a=b"], "duration": "99999999999w"}, "duration"),
    ({"matchers": ["a=b"], "duration": "9" * 400 + "s"}, "duration"),
    ({"matchers": ["a=b"], "duration": 1e300}, "duration"),
    ({"matchers": ["a=b"], "ends_at": "9999-12-31T23:59:59-14:00"}, "ends_at"),
    ({"matchers": ["a=b"], "starts_at": "9999-12-31T23:00:00Z", "duration": "2h"}, "starts_at"),
    ({"matchers": "a=b", "duration": "1h"}, "matchers"),
    ({"matchers": [17], "duration": "1h"}, "matchers"),
    ({"matchers": ["a=b"], "duration": "1h", "comment": {"nested": True}}, "comment"),
])
def test_it_answers_bad_silence_fields_with_the_field_named(api, store, body, field):
    field_error(api.post("/api/v1/alerts/silences", json=body, headers=api.keys["operator"]), field)
    with store.session() as s:
        assert s.scalars(select(Silence)).all() == []


@pytest.mark.parametrize("body, field", [
    ({"kind": "reachability", "asset_id": int(HUGE)}, "asset_id"),
    ({"kind": "reachability", "asset_id": -1}, "asset_id"),
    ({"kind": 5}, "kind"),
])
def test_it_answers_bad_scan_bodies_with_the_field_named(api, store, body, field):
    field_error(api.post("/api/v1/scans", json=body, headers=api.keys["operator"]), field)
    with store.session() as s:
        assert s.scalars(select(TaskRun)).all() == []


@pytest.mark.parametrize("text, field", [
    ('{"matchers": ["a=b"], "duration": "1h", "comment": "\\ud800"}', "comment"),
    ('{"matchers": ["a=\\udfff"], "duration": "1h"}', "matchers[0]"),
    ('{"matchers": ["a=b"], "duration": "1h", "comment": "nul\\u0000byte"}', "comment"),
    ('{"matchers": ["a=b"], "duration": NaN}', "duration"),
])
def test_it_answers_unstorable_strings_and_numbers_with_the_field_named(api, store, text, field):
    field_error(post_json(api, "/api/v1/alerts/silences", text), field)
    with store.session() as s:
        assert s.scalars(select(Silence)).all() == []


def test_it_refuses_json_nested_100k_levels_deep_with_a_400(api):
    deep = "[" * 100_000 + "]" * 100_000
    resp = post_json(api, "/api/v1/scans", deep)
    assert resp.status_code == 400 and "nest" in resp.json["message"]
    resp = post_json(api, "/api/v1/alerts/rules", '{"name": ' + deep + "}", role="admin")
    assert resp.status_code == 400


def test_it_checks_the_key_before_reading_a_body(api, store):
    deep = "[" * 100_000 + "]" * 100_000
    for path in ("/api/v1/scans", "/api/v1/apikeys", "/api/v1/alerts/silences", "/api/v1/alerts/rules"):
        resp = post_json(api, path, deep, role=None)
        assert resp.status_code == 401, (path, resp.status_code)
    big = json.dumps({"kind": "x" * 500_000})
    resp = post_json(api, "/api/v1/scans", big, role=None)
    assert resp.status_code == 401 and len(resp.get_data()) < 1000
    resp = post_json(api, "/api/v1/apikeys", json.dumps({"name": "x", "role": "x" * 500_000}), role="viewer")
    assert resp.status_code == 403 and len(resp.get_data()) < 1000


def test_it_never_echoes_a_large_invalid_value_to_an_authenticated_caller(api):
    resp = post_json(api, "/api/v1/scans", json.dumps({"kind": "x" * 200_000}))
    field_error(resp, "kind")
    assert len(resp.get_data()) < 2000


def test_it_answers_an_oversized_body_with_413(store, tmp_path):
    from tests.api_input.conftest import build_api

    api = build_api(store, tmp_path, api_max_body_bytes=10_000)
    resp = post_json(api, "/api/v1/alerts/silences", json.dumps({"matchers": ["a=b"], "duration": "1h",
                                                                  "comment": "x" * 20_000}))
    assert resp.status_code == 413
    chunked = api.post("/api/v1/alerts/silences", input_stream=io.BytesIO(b'{"comment": "' + b"x" * 50_000 + b'"}'),
                       headers={**api.keys["operator"], "Content-Type": "application/json",
                                "Transfer-Encoding": "chunked"},
                       environ_overrides={"wsgi.input_terminated": True})  # as gunicorn marks a chunked body
    assert chunked.status_code == 413
    small = post_json(api, "/api/v1/alerts/silences", json.dumps({"matchers": ["a=b"], "duration": "1h",
                                                                    "comment": "x" * 1000}))
    assert small.status_code == 201
