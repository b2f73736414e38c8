"""The start and stop operators and the job trigger, called directly against the emulator."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, TaskDeferred

from airflow_provider_flink_vvp import tasks
from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook
from airflow_provider_flink_vvp.operators.vvp import (
    STARTED_JOB_STATE_KEY,
    FlinkVVPStartJobOperator,
    FlinkVVPStopJobOperator,
)
from airflow_provider_flink_vvp.tasks import KILL_SECONDS
from airflow_provider_flink_vvp.testing import Fault, FaultKind, VVPEmulator
from airflow_provider_flink_vvp.triggers.vvp import FlinkVVPJobTrigger
from tests.client_harness import Loopback
from tests.conftest import VVP_ACCESS_KEY_SECRET, AddDeployment, MakeContext, set_vvp_connection

FOREVER_STARTING = [["STARTING", None]]


def start(**kwargs: Any) -> FlinkVVPStartJobOperator:
    return FlinkVVPStartJobOperator(
        **{"task_id": "start", "deployment_name": "stream", "poll_interval": 0.1, "timeout": 10, **kwargs}
    )


def job_trigger(job_id: str, **kwargs: Any) -> FlinkVVPJobTrigger:
    arguments: dict[str, Any] = {
        "job_id": job_id,
        "namespace": None,
        "workspace": None,
        "flink_vvp_conn_id": "flink_vvp_default",
        "target_statuses": ["RUNNING"],
        "failure_statuses": ["FAILED"],
        "poll_interval": 0.1,
        "end_time": time.time() + 10,
        **kwargs,
    }
    return FlinkVVPJobTrigger(**arguments)


def statuses(deployment_id: str) -> list[str]:
    return [job.status for job in reversed(FlinkVVPHook().list_jobs(deployment_id))]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"deployment_id": "d-1"}, "Pass exactly one of deployment_name"),
        ({"deployment_name": None}, "Pass exactly one of deployment_name"),
        ({"if_running": "ignore"}, "if_running must be one of 'attach', 'fail', 'restart', got 'ignore'"),
        ({"wait_for": "STARTED"}, "wait_for must be one of 'auto', 'RUNNING', 'FINISHED', None, got 'STARTED'"),
        ({"stop_strategy_on_kill": "KILL"}, "stop_strategy_on_kill must be one of 'NONE'"),
    ],
)
def test_arguments_are_checked_when_the_dag_is_parsed(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        start(**kwargs)


def test_the_stop_operator_takes_exactly_one_target() -> None:
    with pytest.raises(ValueError, match="Pass exactly one of job_id, deployment_name and deployment_id"):
        FlinkVVPStopJobOperator(task_id="stop", job_id="j", deployment_id="d")


def test_wait_for_running_is_case_insensitive_and_targets_are_templated() -> None:
    assert start(wait_for="running").wait_for == "RUNNING"
    assert {"deployment_name", "deployment_id", "restore_strategy", "savepoint_id", "local_variables"} <= set(
        FlinkVVPStartJobOperator.template_fields
    )


def test_on_kill_stops_the_job_the_task_started_while_it_waits(
    add_deployment: AddDeployment, vvp_emulator: VVPEmulator, make_context: MakeContext, after_start: Any
) -> None:
    deployment_id = add_deployment("stream")
    after_start(lambda job_id: vvp_emulator.state.set_job_timeline(job_id, FOREVER_STARTING))
    operator = start(stop_strategy_on_kill="STOP_WITH_DRAIN")
    context = make_context()
    raised: list[BaseException] = []

    def run() -> None:
        try:
            operator.execute(context)  # type: ignore[arg-type]
        except BaseException as error:
            raised.append(error)

    waiting = threading.Thread(target=run)
    waiting.start()
    deadline = time.monotonic() + 10
    while operator._owned_job_id is None and time.monotonic() < deadline:
        time.sleep(0.02)
    operator.on_kill()
    waiting.join(10)

    [job] = FlinkVVPHook().list_jobs(deployment_id)
    assert job.status in ("CANCELLING", "CANCELLED")
    assert context["ti"].xcoms["return_value"] == job.job_id
    assert type(raised[0]) is AirflowException, "a job that ended badly leaves the task to its retries"
    assert f"Job {job.job_id} of deployment {deployment_id} is CANCELLED. Console: " in str(raised[0])


def test_on_kill_leaves_a_job_it_only_attached_to_alone(
    add_deployment: AddDeployment, make_context: MakeContext
) -> None:
    deployment_id = add_deployment("stream", timeline=[["RUNNING", None]])
    operator = start()

    operator.execute(make_context())  # type: ignore[arg-type]
    operator.on_kill()

    assert statuses(deployment_id) == ["RUNNING"]


def test_if_running_fail_fails_and_says_how_to_fix_it(add_deployment: AddDeployment, make_context: MakeContext) -> None:
    deployment_id = add_deployment("stream", timeline=[["RUNNING", None]])

    with pytest.raises(AirflowFailException, match="stop it first, or set if_running='attach'"):
        start(if_running="fail").execute(make_context())  # type: ignore[arg-type]
    assert statuses(deployment_id) == ["RUNNING"]


def test_a_retry_takes_back_its_job_even_with_if_running_fail_and_a_cleared_task_does_not(
    add_deployment: AddDeployment, vvp_emulator: VVPEmulator, make_context: MakeContext, after_start: Any
) -> None:
    deployment_id = add_deployment("stream")
    after_start(lambda job_id: vvp_emulator.state.set_job_timeline(job_id, FOREVER_STARTING))
    first = make_context(try_number=1, max_tries=1)

    with pytest.raises(AirflowException, match="Timed out waiting for job"):
        start(if_running="fail", timeout=0.3, retries=1).execute(first)  # type: ignore[arg-type]
    [job] = FlinkVVPHook().list_jobs(deployment_id)
    retry = make_context(try_number=2, max_tries=1, task_state_store=first["task_state_store"])
    retried = start(if_running="fail", wait_for=None, retries=1)

    assert retried.execute(retry) == job.job_id  # type: ignore[arg-type]
    assert retried._owned_job_id == job.job_id, "on_kill of the retry stops the job"
    cleared = make_context(try_number=3, max_tries=3, task_state_store=first["task_state_store"])
    with pytest.raises(AirflowFailException, match="already has job"):
        start(if_running="fail", wait_for=None, retries=1).execute(cleared)  # type: ignore[arg-type]
    assert statuses(deployment_id) == ["STARTING"]


@pytest.mark.parametrize("ending", ["FAILED", "CANCELLED"])
def test_a_retry_after_a_job_ended_badly_starts_a_new_job_and_success_forgets_it(
    ending: str, add_deployment: AddDeployment, vvp_emulator: VVPEmulator, make_context: MakeContext, after_start: Any
) -> None:
    from datetime import timedelta

    deployment_id = add_deployment("stream")
    endings = iter([[["STARTING", 0.1], [ending, None]], [["STARTING", 0.1], ["RUNNING", None]]])
    after_start(lambda job_id: vvp_emulator.state.set_job_timeline(job_id, next(endings)))
    first = make_context(try_number=1, max_tries=1)
    store = first["task_state_store"]

    with pytest.raises(AirflowException, match=f"is {ending}") as raised:
        start(retries=1).execute(first)  # type: ignore[arg-type]
    assert type(raised.value) is AirflowException
    assert store.retentions[STARTED_JOB_STATE_KEY] == timedelta.max  # Airflow's NEVER_EXPIRE
    retry = make_context(try_number=2, max_tries=1, task_state_store=store)
    second = start(retries=1).execute(retry)  # type: ignore[arg-type]

    assert statuses(deployment_id) == [ending, "RUNNING"]
    assert second == FlinkVVPHook().list_jobs(deployment_id)[0].job_id
    assert STARTED_JOB_STATE_KEY not in store, "deleted when the task succeeded"


@pytest.mark.parametrize("do_xcom_push", [True, False])
@pytest.mark.parametrize("wait_for", [None, "RUNNING"])
def test_do_xcom_push_decides_whether_the_job_id_is_pushed(
    do_xcom_push: bool, wait_for: str | None, add_deployment: AddDeployment, make_context: MakeContext
) -> None:
    add_deployment("stream")
    context = make_context()

    job_id = start(do_xcom_push=do_xcom_push, wait_for=wait_for).execute(context)  # type: ignore[arg-type]

    assert context["ti"].xcoms.get("return_value") == (job_id if do_xcom_push else None)
    assert "deployment_id" in context["ti"].xcoms


@pytest.mark.parametrize(("running", "stop_on_kill"), [(False, "NONE"), (True, None)])
def test_deferring_hands_the_trigger_a_stop_only_for_a_job_the_task_started(
    running: bool, stop_on_kill: str | None, add_deployment: AddDeployment, make_context: MakeContext
) -> None:
    deployment_id = add_deployment("stream", timeline=FOREVER_STARTING if running else None)
    context = make_context()

    with pytest.raises(TaskDeferred) as deferred:
        start(deferrable=True).execute(context)  # type: ignore[arg-type]

    trigger = deferred.value.trigger
    assert isinstance(trigger, FlinkVVPJobTrigger)
    assert trigger.stop_strategy_on_kill == stop_on_kill
    assert (trigger.target_statuses, trigger.failure_statuses) == (("RUNNING", "FINISHED"), ("FAILED", "CANCELLED"))
    [job] = FlinkVVPHook().list_jobs(deployment_id)
    assert context["ti"].xcoms["return_value"] == trigger.job_id == job.job_id
    assert context["ti"].xcoms["deployment_id"] == deployment_id


@pytest.mark.parametrize("started_ago", [None, 0.0, 20.0])
def test_a_deferred_wait_ends_with_what_is_left_of_execution_timeout(
    started_ago: float | None, add_deployment: AddDeployment, make_context: MakeContext
) -> None:
    add_deployment("stream")
    context = make_context()
    # A task instance without a start date (Airflow 3.0.0's dag.test()) counts from now.
    context["ti"].start_date = None if started_ago is None else datetime.now(UTC) - timedelta(seconds=started_ago)

    with pytest.raises(TaskDeferred) as deferred:
        start(deferrable=True, timeout=60, execution_timeout=timedelta(seconds=30)).execute(context)  # type: ignore[arg-type]

    left = deferred.value.trigger.end_time - time.time()
    assert 30 - (started_ago or 0) - 5 < left <= 30 - (started_ago or 0)


def test_the_job_trigger_serializes_without_secrets() -> None:
    trigger = FlinkVVPJobTrigger(
        job_id="j-1",
        namespace="ns",
        workspace="ws",
        flink_vvp_conn_id="flink_vvp_default",
        target_statuses=["RUNNING"],
        failure_statuses=["FAILED"],
        poll_interval=0.1,
        end_time=1.0,
        stop_strategy_on_kill="NONE",
    )

    classpath, kwargs = trigger.serialize()

    assert classpath == "airflow_provider_flink_vvp.triggers.vvp.FlinkVVPJobTrigger"
    assert FlinkVVPJobTrigger(**kwargs).serialize() == (classpath, kwargs)
    assert VVP_ACCESS_KEY_SECRET not in json.dumps(kwargs)


@pytest.mark.parametrize(("stop_on_kill", "after"), [("NONE", "CANCELLING"), (None, "STARTING")])
def test_the_triggers_on_kill_stops_the_job_only_when_told_to(
    stop_on_kill: str | None, after: str, add_deployment: AddDeployment, vvp_emulator: VVPEmulator
) -> None:
    deployment_id = add_deployment("stream", timeline=FOREVER_STARTING)
    [job] = FlinkVVPHook().list_jobs(deployment_id)
    trigger = FlinkVVPJobTrigger(
        job_id=job.job_id,
        namespace=None,
        workspace=None,
        flink_vvp_conn_id="flink_vvp_default",
        target_statuses=["RUNNING"],
        failure_statuses=["FAILED"],
        poll_interval=0.1,
        end_time=time.time() + 10,
        stop_strategy_on_kill=stop_on_kill,
    )

    asyncio.run(trigger.on_kill())

    assert statuses(deployment_id) == [after]


def test_the_stop_operator_stops_a_job_by_id_and_waits_until_it_ended(
    add_deployment: AddDeployment, make_context: MakeContext
) -> None:
    deployment_id = add_deployment("stream", timeline=[["RUNNING", None]])
    [job] = FlinkVVPHook().list_jobs(deployment_id)
    stop = FlinkVVPStopJobOperator(task_id="stop", job_id=job.job_id, poll_interval=0.1, timeout=10)

    assert stop.execute(make_context()) == job.job_id  # type: ignore[arg-type]
    assert statuses(deployment_id) == ["CANCELLED"]


def kill(where: str, job_id: str) -> None:
    """Kill a start task waiting on ``job_id`` it started: its ``on_kill`` in the worker, or its trigger's."""
    if where == "worker":
        operator = start(stop_strategy_on_kill="NONE")
        operator._owned_job_id = job_id
        operator.on_kill()
    else:
        asyncio.run(job_trigger(job_id, stop_strategy_on_kill="NONE").on_kill())


@pytest.mark.parametrize("where", ["worker", "triggerer"])
@pytest.mark.parametrize(
    ("timeline", "throttled", "after", "logged"),
    [
        (FOREVER_STARTING, 0, "CANCELLING", "stopped job"),
        ([["FINISHED", None]], 0, "FINISHED", "is FINISHED already: nothing to stop"),
        # The stop throttled (surely not run), then the job read: it is not sent again.
        ([["FINISHED", None]], 1, "FINISHED", "is FINISHED already: nothing to stop"),
        (FOREVER_STARTING, 1, "STARTING", "could not be confirmed"),
        # The stop and the one read throttled.
        (FOREVER_STARTING, 2, "STARTING", "could not be confirmed"),
    ],
)
def test_a_kill_sends_one_stop_and_at_most_one_read_and_says_what_became_of_the_job(
    where: str,
    timeline: list[list[Any]],
    throttled: int,
    after: str,
    logged: str,
    add_deployment: AddDeployment,
    vvp_emulator: VVPEmulator,
    capfd: pytest.CaptureFixture[str],
) -> None:
    deployment_id = add_deployment("stream", timeline=timeline)
    [job] = FlinkVVPHook().list_jobs(deployment_id)
    for _ in range(throttled):
        vvp_emulator.inject(Fault(FaultKind.THROTTLE))
    before = vvp_emulator.request_counts()
    capfd.readouterr()

    kill(where, job.job_id)

    counts = vvp_emulator.request_counts()
    assert statuses(deployment_id) == [after]
    assert counts["StopJob"] - before.get("StopJob", 0) == 1, "one StopJob, never repeated"
    assert counts.get("GetJob", 0) - before.get("GetJob", 0) == (logged != "stopped job"), "a read after a refused stop"
    assert logged in capfd.readouterr().out


@pytest.fixture
def black_hole(monkeypatch: pytest.MonkeyPatch) -> Iterator[Loopback]:
    """The connection points at a server that accepts and reads every request and never answers; its own
    settings (30 s, 5 attempts) would take minutes."""
    released = threading.Event()
    server = Loopback([lambda connection: released.wait(30) and None])
    set_vvp_connection(monkeypatch, server.url, namespace="ns", timeout=30, retry_limit=5)
    yield server
    released.set()
    server.close()


@pytest.mark.parametrize("where", ["worker", "triggerer"])
def test_a_kill_against_a_service_that_never_answers_ends_within_its_bound_and_says_so(
    where: str, black_hole: Loopback, capfd: pytest.CaptureFixture[str]
) -> None:
    capfd.readouterr()
    started = time.monotonic()

    kill(where, "job-1")

    elapsed = time.monotonic() - started
    assert elapsed < KILL_SECONDS + 0.3, f"the kill took {elapsed:.1f} s"
    assert KILL_SECONDS < 5, "the worker's supervisor kills 5 s after asking to stop"
    assert "the stop of job job-1 could not be confirmed" in capfd.readouterr().out
    sent = [request.split(b" ")[:2] for request in black_hole.requests]
    assert sent[0] == [b"POST", b"/api/v2/namespaces/ns/jobs/job-1%3Astop"], "one StopJob"
    assert sent[1:] in ([], [[b"GET", b"/api/v2/namespaces/ns/jobs/job-1"]]), "then at most one read of the job"


@pytest.mark.parametrize(("kill_seconds", "reads"), [(6.0, 1), (3.5, 0)], ids=["read fits", "read does not fit"])
def test_a_worker_kill_reads_the_job_after_a_lost_stop_only_when_the_read_fits_the_kill_s_time(
    kill_seconds: float, reads: int, black_hole: Loopback, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tasks, "KILL_SECONDS", kill_seconds)  # the stop's attempt takes 2 s, so does a read's

    kill("worker", "job-1")

    assert sum(request.startswith(b"GET ") for request in black_hole.requests) == reads


@pytest.mark.parametrize(
    ("timeline", "if_running", "expected"),
    [
        # Still starting, or finished (a batch job): the retry waits on it, whatever if_running says.
        ([["STARTING", 1.0], ["RUNNING", None]], "fail", ["RUNNING"]),
        ([["STARTING", 1.0], ["RUNNING", None]], "restart", ["RUNNING"]),
        ([["STARTING", 0.5], ["FINISHED", None]], "fail", ["FINISHED"]),
        # Failed: the retry is for that, it starts a new job.
        ([["STARTING", 0.5], ["FAILED", None]], "fail", ["FAILED", "RUNNING"]),
    ],
)
def test_before_airflow_3_3_a_retry_takes_back_the_job_an_earlier_try_started(
    add_deployment: AddDeployment,
    vvp_emulator: VVPEmulator,
    make_context: MakeContext,
    after_start: Any,
    timeline: list[list[Any]],
    if_running: str,
    expected: list[str],
) -> None:
    deployment_id = add_deployment("stream")
    timelines = [timeline]
    after_start(lambda job_id: timelines and vvp_emulator.state.set_job_timeline(job_id, timelines.pop()))
    first = make_context(try_number=1, max_tries=1)
    del first["task_state_store"]

    with pytest.raises(AirflowException, match="Timed out waiting for job"):
        start(timeout=0.2, retries=1, if_running=if_running).execute(first)  # type: ignore[arg-type]
    time.sleep(0.6)
    retry = make_context(try_number=2, max_tries=1)  # begins now, after the first try
    del retry["task_state_store"]
    job_id = start(retries=1, if_running=if_running).execute(retry)  # type: ignore[arg-type]

    assert statuses(deployment_id) == expected, "one job, or a new one after a failure"
    assert (job_id == first["ti"].xcoms["return_value"]) is (len(expected) == 1)


def test_before_airflow_3_3_a_first_try_meets_a_job_of_the_same_run_as_the_deployments_active_job(
    add_deployment: AddDeployment, vvp_emulator: VVPEmulator, make_context: MakeContext
) -> None:
    # A job started since the DAG run began is not this task's when no earlier try of its series ran.
    deployment_id = add_deployment("stream", timeline=[["RUNNING", None]])
    first = make_context(try_number=1, max_tries=1)
    del first["task_state_store"]

    with pytest.raises(AirflowFailException, match=f"Deployment {deployment_id} already has job .* RUNNING"):
        start(retries=1, if_running="fail").execute(first)  # type: ignore[arg-type]


def test_the_triggers_kill_ends_at_its_deadline_whatever_hangs_and_says_so(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    async def hangs(self: FlinkVVPHook) -> Any:
        await asyncio.sleep(60)  # a secrets backend that does not answer, say

    monkeypatch.setattr(FlinkVVPHook, "aget_config", hangs)
    capfd.readouterr()
    started = time.monotonic()

    kill("triggerer", "job-1")

    assert time.monotonic() - started < KILL_SECONDS + 0.3
    assert "the stop of job job-1 could not be confirmed (TimeoutError: the kill's 4.5 s ran out)" in (
        capfd.readouterr().out
    )
