"""Job control with dag.test() against the emulator: every test counts the jobs left behind."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook
from airflow_provider_flink_vvp.testing import Fault, FaultKind, VVPEmulator
from tests.conftest import (
    AddDeployment,
    add_job,
    fail_after,
)
from tests.dag_tests.conftest import EXECUTION_TIMEOUT_SIGNAL_MAY_LAND_IN_A_CALLBACK, RunDag
from tests.dag_tests.test_dags import console_url

WAIT_MODES = ("poke", "deferrable")
SENSOR_MODES = ("poke", "reschedule", "deferrable")
AfterStart = Callable[[Callable[[str], Any]], None]


@pytest.fixture
def fast_examples(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parse the example DAGs with the job tasks polling every 0.2 s, as a cluster policy would."""
    from airflow import settings

    from airflow_provider_flink_vvp.operators.vvp import FlinkVVPStartJobOperator, FlinkVVPStopJobOperator
    from airflow_provider_flink_vvp.sensors.vvp import FlinkVVPJobStatusSensor

    def task_policy(task: Any) -> None:
        if isinstance(task, FlinkVVPStartJobOperator | FlinkVVPStopJobOperator | FlinkVVPJobStatusSensor):
            task.poll_interval = 0.2

    monkeypatch.setattr(settings, "task_policy", task_policy)


def statuses(deployment_id: str) -> list[str]:
    """The status of every job of the deployment, oldest first."""
    return [job.status for job in reversed(FlinkVVPHook().list_jobs(deployment_id))]


def test_the_nightly_batch_example_starts_one_job_waits_until_it_finished_and_runs_downstream(
    fast_examples: None, run_dag: RunDag, add_deployment: AddDeployment, vvp_namespace: str
) -> None:
    deployment_id = add_deployment("nightly-aggregation", execution_mode="BATCH")

    result = run_dag("example_flink_vvp_batch", deployment_name="nightly-aggregation")

    assert result.state == "success"
    [job] = FlinkVVPHook().list_jobs(deployment_id)
    assert job.status == "FINISHED"
    assert result.xcom("run_batch") == result.xcom("publish") == job.job_id
    assert job.raw["restoreStrategy"] == {"kind": "NONE"}
    assert [variable["name"] for variable in job.raw["localVariables"]] == ["day"]
    assert result.deployment_link("run_batch") == console_url(vvp_namespace, deployment_id)


def test_the_streaming_example_stops_the_running_job_with_a_savepoint_and_starts_from_it(
    fast_examples: None, run_dag: RunDag, vvp_emulator: VVPEmulator, add_deployment: AddDeployment
) -> None:
    deployment_id = add_deployment("clickstream", timeline=[["RUNNING", None]])

    result = run_dag("example_flink_vvp_streaming_restart", deployment_name="clickstream")

    assert result.state == "success"
    assert statuses(deployment_id) == ["CANCELLED", "RUNNING"]
    assert FlinkVVPHook().list_jobs(deployment_id)[0].raw["restoreStrategy"] == {"kind": "LATEST_SAVEPOINT"}


def test_the_job_control_example_starts_waits_until_running_and_stops_with_a_savepoint(
    fast_examples: None, run_dag: RunDag, add_deployment: AddDeployment
) -> None:
    deployment_id = add_deployment("clickstream")

    result = run_dag("example_flink_vvp_job_control", deployment_name="clickstream")

    assert result.state == "success"
    [job] = FlinkVVPHook().list_jobs(deployment_id)
    assert job.status == "CANCELLED"
    assert result.xcom("start") == result.xcom("wait_until_running") == result.xcom("stop") == job.job_id


@pytest.mark.parametrize("mode", WAIT_MODES)
@pytest.mark.parametrize(("execution_mode", "final"), [("BATCH", "FINISHED"), ("STREAMING", "RUNNING")])
def test_start_waits_for_finished_batch_jobs_and_running_streaming_jobs(
    mode: str, execution_mode: str, final: str, run_dag: RunDag, add_deployment: AddDeployment, vvp_namespace: str
) -> None:
    deployment_id = add_deployment("nightly", execution_mode=execution_mode)

    result = run_dag(f"flink_vvp_job_start_{mode}", deployment_name="nightly")

    assert result.state == "success"
    [job] = FlinkVVPHook().list_jobs(deployment_id)
    assert job.status == final
    assert result.xcom("read") == {
        "job_id": job.job_id,
        "deployment_id": deployment_id,
        "deployment_url": console_url(vvp_namespace, deployment_id),
    }


@pytest.mark.parametrize("mode", WAIT_MODES)
def test_a_job_that_fails_fails_the_task_with_its_reason_and_the_console_link(
    mode: str,
    run_dag: RunDag,
    vvp_emulator: VVPEmulator,
    add_deployment: AddDeployment,
    after_start: AfterStart,
    vvp_namespace: str,
) -> None:
    deployment_id = add_deployment("nightly", execution_mode="BATCH")
    after_start(lambda job_id: vvp_emulator.state.set_job_timeline(job_id, [["STARTING", 0.3], ["FAILED", None]]))

    result = run_dag(f"flink_vvp_job_start_{mode}", deployment_name="nightly")

    assert (result.task_state("start"), result.task_state("read")) == ("failed", "upstream_failed")
    [job] = FlinkVVPHook().list_jobs(deployment_id)
    assert job.status == "FAILED"
    assert (
        f"AirflowException: Job {job.job_id} of deployment {deployment_id} is FAILED: EmulatedFailure: "
        f"the emulator's timeline failed this job. Console: {console_url(vvp_namespace, deployment_id)}"
    ) in result.output
    # Pushed when the job started, so they are there although the task failed.
    assert result.xcom("start") == job.job_id
    assert result.xcom("start", "deployment_id") == deployment_id


@pytest.mark.parametrize("mode", WAIT_MODES)
def test_a_retry_waits_on_the_job_the_first_try_started(
    mode: str,
    run_dag: RunDag,
    vvp_emulator: VVPEmulator,
    add_deployment: AddDeployment,
    after_start: AfterStart,
    after_first_poke: Any,
) -> None:
    deployment_id = add_deployment("slow", execution_mode="BATCH")

    # The job stays STARTING past the first try's 2 s wait; it finishes a second after the retry's first
    # look at the deployment, which comes after the first start: long before the retry's wait runs out.
    def starting_until_the_retry(job_id: str) -> None:
        vvp_emulator.state.set_job_timeline(job_id, [["STARTING", None]])
        after_first_poke(lambda: vvp_emulator.state.set_job_timeline(job_id, [["STARTING", 1], ["FINISHED", None]]))

    after_start(starting_until_the_retry)

    result = run_dag(f"flink_vvp_job_retry_{mode}", deployment_name="slow")

    assert "Timed out waiting for job" in result.output
    assert (result.state, result.tries_of("start")) == ("success", 2)
    assert "started by an earlier try of this task, is " in result.output
    assert statuses(deployment_id) == ["FINISHED"], "exactly one job started"


def test_attach_waits_on_a_job_someone_else_started(
    run_dag: RunDag, vvp_emulator: VVPEmulator, add_deployment: AddDeployment
) -> None:
    deployment_id = add_deployment("nightly", timeline=[["STARTING", 0.5], ["RUNNING", None]])

    result = run_dag("flink_vvp_job_start_deferrable", deployment_name="nightly")

    assert result.state == "success"
    assert statuses(deployment_id) == ["RUNNING"], "no second job"
    assert f"Deployment {deployment_id} already has job" in result.output


@pytest.mark.parametrize("mode", WAIT_MODES)
def test_restart_stops_the_running_job_waits_until_it_ended_then_starts_one(
    mode: str, run_dag: RunDag, add_deployment: AddDeployment
) -> None:
    deployment_id = add_deployment("stream", timeline=[["RUNNING", None]])

    result = run_dag(f"flink_vvp_job_restart_{mode}", deployment_name="stream")

    assert result.state == "success"
    assert statuses(deployment_id) == ["CANCELLED", "RUNNING"]
    assert result.xcom("read")["job_id"] == FlinkVVPHook().list_jobs(deployment_id)[0].job_id


@pytest.mark.parametrize("mode", WAIT_MODES)
def test_stop_with_savepoint_stops_the_deployments_job_and_waits_until_cancelled(
    mode: str, run_dag: RunDag, vvp_emulator: VVPEmulator, add_deployment: AddDeployment
) -> None:
    deployment_id = add_deployment("stream", timeline=[["RUNNING", None]])
    stops = vvp_emulator.request_counts().get("StopJob", 0)

    result = run_dag(f"flink_vvp_job_stop_{mode}", deployment_name="stream")

    assert result.state == "success"
    assert statuses(deployment_id) == ["CANCELLED"]
    assert vvp_emulator.request_counts()["StopJob"] == stops + 1
    assert result.xcom("read")["deployment_id"] == deployment_id


def test_stop_without_an_active_job_is_a_no_op_that_says_so(run_dag: RunDag, add_deployment: AddDeployment) -> None:
    deployment_id = add_deployment("stream", timeline=[["FINISHED", None]])

    result = run_dag("flink_vvp_job_stop_poke", deployment_name="stream")

    assert result.task_state("stop") == "success"
    assert f"Deployment {deployment_id} has no STARTING or RUNNING job: nothing to stop" in result.output
    assert statuses(deployment_id) == ["FINISHED"]


@pytest.mark.parametrize("mode", SENSOR_MODES)
def test_the_job_sensor_waits_until_running(
    mode: str, run_dag: RunDag, vvp_emulator: VVPEmulator, add_deployment: AddDeployment, after_first_poke: Any
) -> None:
    deployment_id = add_deployment("stream")
    job = vvp_emulator.add_job({"jobId": f"j-{mode}", "deploymentId": deployment_id}, timeline=[["STARTING", None]])
    after_first_poke(
        lambda: vvp_emulator.state.set_job_timeline(job["jobId"], [["STARTING", 0.3], ["RUNNING", None]]), read="job"
    )

    result = run_dag(f"flink_vvp_job_sensor_{mode}", job_id=job["jobId"])

    assert result.state == "success"
    assert result.xcom("wait") == job["jobId"]
    assert (result.reschedules > 0) is (mode == "reschedule")
    assert statuses(deployment_id) == ["RUNNING"]


@pytest.mark.parametrize("mode", SENSOR_MODES)
def test_the_job_sensor_fails_on_a_job_that_ends_without_running(
    mode: str, run_dag: RunDag, vvp_emulator: VVPEmulator, add_deployment: AddDeployment
) -> None:
    deployment_id = add_deployment("stream")
    add_job(vvp_emulator, deployment_id, [["STARTING", 0.3], ["CANCELLED", None]])
    [job] = FlinkVVPHook().list_jobs(deployment_id)

    result = run_dag(f"flink_vvp_job_sensor_{mode}", job_id=job.job_id)

    assert result.task_state("wait") == "failed"
    assert (
        f"Job {job.job_id} of deployment {deployment_id} ended CANCELLED, so it will never be RUNNING" in result.output
    )


@pytest.mark.parametrize("mode", WAIT_MODES)
def test_a_job_that_fails_fails_the_try_and_the_retry_starts_a_new_job(
    mode: str, run_dag: RunDag, vvp_emulator: VVPEmulator, add_deployment: AddDeployment, after_start: AfterStart
) -> None:
    deployment_id = add_deployment("nightly")
    failing = [[["STARTING", 0.3], ["FAILED", None]]]
    after_start(lambda job_id: failing and vvp_emulator.state.set_job_timeline(job_id, failing.pop()))

    result = run_dag(f"flink_vvp_job_retry_failed_{mode}", deployment_name="nightly")

    assert "EmulatedFailure" in result.output
    assert (result.state, result.tries_of("start")) == ("success", 2)
    assert statuses(deployment_id) == ["FAILED", "RUNNING"], "exactly two jobs"
    assert result.xcom("start") == FlinkVVPHook().list_jobs(deployment_id)[0].job_id


@EXECUTION_TIMEOUT_SIGNAL_MAY_LAND_IN_A_CALLBACK
@pytest.mark.parametrize("mode", WAIT_MODES)
def test_execution_timeout_ends_the_wait_and_stops_the_job_the_task_started(
    mode: str, run_dag: RunDag, vvp_emulator: VVPEmulator, add_deployment: AddDeployment, after_start: AfterStart
) -> None:
    deployment_id = add_deployment("nightly")
    after_start(lambda job_id: vvp_emulator.state.set_job_timeline(job_id, [["STARTING", None]]))
    started = time.monotonic()

    result = run_dag(f"flink_vvp_job_execution_timeout_{mode}", deployment_name="nightly")

    assert result.task_state("start") == "failed"
    assert time.monotonic() - started < 15, "execution_timeout (2 s), not the task's timeout (20 s), ended the wait"
    assert statuses(deployment_id)[0] in ("CANCELLING", "CANCELLED")
    assert "AirflowTaskTimeout" in result.output


@pytest.mark.parametrize("mode", WAIT_MODES)
def test_a_start_whose_outcome_was_lost_is_sent_once_and_the_retry_takes_its_job_back(
    mode: str,
    run_dag: RunDag,
    vvp_emulator: VVPEmulator,
    add_deployment: AddDeployment,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deployment_id = add_deployment("nightly")
    starts_before = vvp_emulator.request_counts().get("StartJobWithParams", 0)
    # The start runs but its answer breaks off; the ListJobs that would confirm it gets a 503.
    vvp_emulator.inject(Fault(FaultKind.RESET, action="StartJobWithParams"))
    fail_after(monkeypatch, vvp_emulator, "StartJobWithParams", "ListJobs", 1)

    result = run_dag(f"flink_vvp_job_start_outcome_unknown_{mode}", deployment_name="nightly")

    assert vvp_emulator.request_counts()["StartJobWithParams"] == starts_before + 1
    [job] = FlinkVVPHook().list_jobs(deployment_id)
    assert "VVPOutcomeUnknownError" in result.output
    assert (result.state, result.tries_of("start"), job.status) == ("success", 2, "RUNNING")
    assert result.xcom("start") == job.job_id
