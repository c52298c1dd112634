"""Property-based fuzz of every API operation from the OpenAPI document, as each role and
with no key, against a seeded real store. Any 5xx fails the run.

The suite runs a bounded pass that is the same every time: schemathesis's deterministic
coverage cases plus a few derandomized hypothesis examples per role. For a long local
hunt: `pytest tests/api_input/test_fuzz.py -m fuzz_long` (examples per operation and role
from DBMON_FUZZ_EXAMPLES, default 300).
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from datetime import timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from monitor_app.access.api_keys import create_key
from monitor_app.store.base import utcnow
from tests.api_input.conftest import build_api

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ROLES = (None, "viewer", "operator", "admin")
BOUNDED_EXAMPLES = int(os.environ.get("DBMON_FUZZ_BOUNDED_EXAMPLES", "4"))


def test_the_openapi_document_is_valid_swagger(api):
    from openapi_spec_validator import validate

    doc = api.get("/api/v1/swagger.json").json
    validate(doc)
    assert {"DbmonError", "NotFound", "ConfigError"} <= set(doc["responses"])


def seed(store) -> None:
    """Rows behind every kind of id the paths take, so generated ids hit real objects too."""
    from monitor_app.platform.event_log import record_event
    from monitor_app.store.models import Asset, MetricSample
    from monitor_app.store.models.alerting import Silence
    from monitor_app.store.models.containers import ContainerState
    from monitor_app.store.models.schema import SchemaChange, SchemaChangeSet, SchemaSnapshot

    now = utcnow()
    with store.session() as s:
        for i in range(1, 4):
            asset = Asset(kind="database", engine="postgresql", name=f"db{i}", source="config", external_id=f"db{i}",
                          labels={"env": "prod"}, connection={"host": "127.0.0.1"}, details={}, status="up")
            s.add(asset)
            s.flush()
            for version in (1, 2):
                s.add(SchemaSnapshot(asset_id=asset.id, version=version, engine="postgresql", content_hash=f"h{version}",
                                     object_count=1, document={"objects": {}}, taken_at=now))
            cs = SchemaChangeSet(asset_id=asset.id, from_version=1, to_version=2, max_risk="low", change_count=1)
            s.add(cs)
            s.flush()
            s.add(SchemaChange(change_set_id=cs.id, asset_id=asset.id, action="added", object_type="table",
                               object="public.t", risk="low"))
            s.add(ContainerState(container_id=f"{i:0>12}" + "a" * 52, name=f"c{i}", image="postgres:16",
                                 engine="postgresql", is_database=True, asset_id=asset.id, status="running"))
            s.add(MetricSample(name="host.cpu_percent", asset_id=asset.id, value=1.0, labels={}, at=now))
            record_event(s, type="asset.down", severity="critical", asset_id=asset.id, summary="down")
            s.add(Silence(matchers=['env="prod"'], starts_at=now, ends_at=now + timedelta(hours=1), created_by="seed",
                          comment="", created_at=now))


@pytest.fixture()
def fuzz_api(store, tmp_path):
    api = build_api(store, tmp_path)
    seed(store)
    return api


class Recorder:
    """Collects every 5xx with the request that caused it and the server's traceback."""

    def __init__(self, api):
        self.api, self.failures, self.requests = api, [], 0
        self._traces: list[str] = []
        handler = logging.Handler()
        handler.emit = lambda record: self._traces.append(logging.Formatter().format(record))
        self.handler = handler

    def headers(self, role) -> dict:
        return dict(self.api.keys[role])

    def renew_key(self, role) -> None:
        """A fuzzed DELETE /apikeys/{id} may revoke the key in use; a new one keeps the role covered."""
        with self.api.rt.store.session() as s:
            self.api.keys[role] = {"X-API-Key": create_key(s, name=f"fuzz-{role}", role=role)[1]}

    def call(self, case, role) -> None:
        self._traces.clear()
        self.requests += 1
        try:
            status = case.call(headers=self.headers(role)).status_code
        except Exception:  # noqa: BLE001 - the WSGI transport re-raises what the app raised: a 500
            status, self._traces[:] = 500, [traceback.format_exc()]
        if status == 401 and role is not None:
            self.renew_key(role)
        if status >= 500:
            self.failures.append(f"{role or 'no key'}: {case.method} {case.formatted_path} query={case.query!r} "
                                 f"body={str(case.body)[:300]!r} -> {status}\n" + "\n".join(self._traces)[-3000:])


def run_fuzz(api, examples: int, roles=ROLES, coverage: bool = True) -> Recorder:
    """Per operation: schemathesis's deterministic coverage cases (boundaries, wrong types,
    missing fields) as admin, who gets past every role check, then `examples` random valid
    and invalid cases per role."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/swagger.json", api.application)
    recorder = Recorder(api)
    logger = logging.getLogger("dbmon.api")
    logger.addHandler(recorder.handler)
    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            if coverage:
                for case in schema.iter_coverage_cases(
                        operation, generation_modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                        generation_config=schema.config.generation_for(operation=operation)):
                    recorder.call(case, "admin")
            strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                                 operation.as_strategy(GenerationMode.NEGATIVE))

            # One run per operation, the role drawn with the case: cheaper than a run per role.
            @settings(max_examples=examples * len(roles), derandomize=True, database=None, deadline=None,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=strategy, role=st.sampled_from(roles))
            def exercise(case, role):
                recorder.call(case, role)

            exercise()
    finally:
        logger.removeHandler(recorder.handler)
    return recorder


@pytest.mark.slow
def test_no_operation_answers_any_role_with_a_server_error(fuzz_api, store):
    started = time.monotonic()
    # The coverage cases run once, on PostgreSQL, the stricter store (NUL bytes, types); the
    # random examples on both stores (SQLite cannot bind integers over 64 bits). That keeps
    # the whole bounded fuzz near a minute on a 2-core machine.
    recorder = run_fuzz(fuzz_api, BOUNDED_EXAMPLES, coverage=store.dialect == "postgresql")
    elapsed = time.monotonic() - started
    print(f"fuzz: {recorder.requests} requests in {elapsed:.1f}s")
    assert not recorder.failures, f"{len(recorder.failures)} server errors:\n\n" + "\n\n".join(recorder.failures[:20])
    assert recorder.requests > 500


@pytest.mark.fuzz_long
def test_a_long_fuzz_finds_no_server_error(fuzz_api):
    examples = int(os.environ.get("DBMON_FUZZ_EXAMPLES", "300"))
    started = time.monotonic()
    recorder = run_fuzz(fuzz_api, examples)
    print(f"fuzz: {recorder.requests} requests in {time.monotonic() - started:.1f}s")
    assert not recorder.failures, f"{len(recorder.failures)} server errors:\n\n" + "\n\n".join(recorder.failures[:50])
