"""The task wrapper's contract, run in-process on a real store: claim, retry, fail, finish."""

from __future__ import annotations

import pytest

import workers.task_base as task_base
from monitor_app.errors import DbmonError, ProbeError
from monitor_app.platform.runtime import Runtime
from monitor_app.config.settings import load_settings
from workers.task_base import backoff, dbmon_task

calls: list[str] = []


@dbmon_task("maintenance.test_flaky", max_retries=3)
def flaky(rt, fail_times: int, error: str = "transient") -> dict:
    calls.append("x")
    if len(calls) <= fail_times:
        if error == "permanent":
            raise DbmonError("malformed target", permanent=True)
        if error == "bug":
            raise ValueError("unexpected")
        raise ProbeError("target refused the connection")
    return {"calls": len(calls)}


@pytest.fixture()
def rt(store, tmp_path, monkeypatch):
    settings = load_settings(_env_file=None, data_dir=tmp_path, database_url=store.url, secret_key="k")
    runtime = Runtime(settings, sender=lambda *a: None)
    runtime.__dict__["store"] = store
    monkeypatch.setattr(task_base, "_runtime", runtime)
    calls.clear()
    return runtime


def run(rt, run_id, **kwargs):
    flaky.apply(kwargs=kwargs, task_id=run_id)
    return rt.ledger.get(run_id)


def test_a_transient_failure_is_retried_until_it_succeeds(rt):
    run_id = rt.ledger.record("maintenance.test_flaky", {"fail_times": 2}, queue="maintenance")
    result = run(rt, run_id, fail_times=2)
    assert (result.status, result.result, result.attempts) == ("done", {"calls": 3}, 3)


def test_retries_stop_at_the_limit_with_the_reason_stored(rt):
    run_id = rt.ledger.record("maintenance.test_flaky", {}, queue="maintenance")
    result = run(rt, run_id, fail_times=10)
    assert result.status == "failed" and "ProbeError: target refused" in result.error
    assert len(calls) == 4  # the first try and three retries


@pytest.mark.parametrize("error, text", [("permanent", "malformed target"), ("bug", "ValueError: unexpected")])
def test_permanent_errors_and_bugs_fail_at_once(rt, error, text):
    run_id = rt.ledger.record("maintenance.test_flaky", {}, queue="maintenance")
    result = run(rt, run_id, fail_times=1, error=error)
    assert result.status == "failed" and text in result.error and len(calls) == 1


def test_a_second_delivery_of_a_finished_run_does_nothing(rt):
    run_id = rt.ledger.record("maintenance.test_flaky", {}, queue="maintenance")
    assert run(rt, run_id, fail_times=0).status == "done"
    assert run(rt, run_id, fail_times=0).result == {"calls": 1}
    assert len(calls) == 1


def test_backoff_grows_exponentially_up_to_its_cap():
    assert [backoff(n, 2, 30) for n in range(6)] == [2, 4, 8, 16, 30, 30]


def test_a_task_whose_name_maps_to_no_queue_is_refused_at_definition():
    with pytest.raises(ValueError, match="no queue for task 'nowhere.y'"):
        dbmon_task("nowhere.y")


def test_every_registered_task_runs_on_the_queue_its_name_declares():
    from monitor_app.platform.task_queues import QUEUES, queue_for
    from workers.celery_app import TASK_MODULES, app

    app.loader.import_default_modules()
    for module in TASK_MODULES:
        __import__(module)
    ours = {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}
    assert len(ours) >= 15
    for name in ours:
        assert queue_for(name) in QUEUES
        assert app.amqp.router.route({}, name)["queue"].name == queue_for(name)
