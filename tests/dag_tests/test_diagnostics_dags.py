"""A failed job's diagnostics in the task log, with dag.test() against the emulator, in every wait mode."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook
from airflow_provider_flink_vvp.testing import Fault, FaultKind, VVPEmulator
from airflow_provider_flink_vvp.testing.server import GatewayError
from tests.conftest import AddDeployment
from tests.dag_tests.conftest import RunDag

WAIT_MODES = ("poke", "deferrable")
DIAGNOSTIC_ACTIONS = ("GetJobDiagnosis", "GetLatestJobStartLog", "GetEvents")
AfterStart = Callable[[Callable[[str], Any]], None]


def fail_started_jobs(vvp_emulator: VVPEmulator, after_start: AfterStart) -> None:
    after_start(lambda job_id: vvp_emulator.state.set_job_timeline(job_id, [["STARTING", 0.3], ["FAILED", None]]))


def assert_the_job_s_own_failure_is_reported(result: Any, deployment_id: str) -> str:
    [job] = FlinkVVPHook().list_jobs(deployment_id)
    assert result.task_state("start") == "failed"
    assert (
        f"Job {job.job_id} of deployment {deployment_id} is FAILED: EmulatedFailure: "
        "the emulator's timeline failed this job. Console:"
    ) in result.output
    return job.job_id


@pytest.mark.parametrize("mode", WAIT_MODES)
def test_a_failed_job_s_diagnosis_start_log_and_events_are_in_the_task_log(
    mode: str, run_dag: RunDag, vvp_emulator: VVPEmulator, add_deployment: AddDeployment, after_start: AfterStart
) -> None:
    deployment_id = add_deployment("orders")
    fail_started_jobs(vvp_emulator, after_start)

    result = run_dag(f"flink_vvp_diagnostics_shown_{mode}")

    job_id = assert_the_job_s_own_failure_is_reported(result, deployment_id)
    output = result.output
    assert f"Diagnosis of job {job_id} of deployment {deployment_id}: risk HIGH, health score 20" in output
    assert "[runtime] JobFailover: The job failed: EmulatedFailure" in output
    assert f"JobManager start log of deployment {deployment_id}, last lines:" in output
    assert "    ERROR EmulatedFailure: the emulator's timeline failed this job" in output
    assert f"starting step {60 - 48}" in output and "starting step 11\n" not in output  # the last 50 lines
    assert f"Latest events of deployment {deployment_id}, newest first:" in output
    assert f"JOB_FAILED (job {job_id}): Job {job_id} is FAILED" in output
    # Read in the worker as the task resumed, never in the triggerer: once each.
    counts = vvp_emulator.request_counts()
    assert all(counts[action] >= 1 for action in DIAGNOSTIC_ACTIONS)


@pytest.mark.parametrize("mode", WAIT_MODES)
def test_diagnostics_that_are_forbidden_unreachable_or_unreadable_are_one_line_each_and_the_failure_stands(
    mode: str,
    run_dag: RunDag,
    vvp_emulator: VVPEmulator,
    add_deployment: AddDeployment,
    after_start: AfterStart,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deployment_id = add_deployment("orders")
    fail_started_jobs(vvp_emulator, after_start)

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise GatewayError(403, "Forbidden.RAM", "User not authorized to operate on the specified resource.")

    monkeypatch.setattr(vvp_emulator.state, "job_diagnosis", forbidden)
    vvp_emulator.inject(Fault(FaultKind.DROP, action="GetLatestJobStartLog"), Fault(FaultKind.HTML, action="GetEvents"))

    result = run_dag(f"flink_vvp_diagnostics_shown_{mode}")

    assert_the_job_s_own_failure_is_reported(result, deployment_id)
    # The task's log records, as many times as the Airflow installed prints them (one line each in the unit tests).
    lines = [line[line.index("Diagnostics: ") :] for line in result.output.splitlines() if "Diagnostics: " in line]
    skipped = {re.match(r"Diagnostics: (\w+) unavailable, skipped: ", line)[1] for line in lines}  # type: ignore[index]
    assert skipped == {"GetJobDiagnosis", "GetLatestJobStartLog", "GetEvents"}
    assert any("Forbidden.RAM" in line and "The RAM user lacks stream:GetJobDiagnosis" in line for line in lines)
    assert any("GetLatestJobStartLog unavailable" in line and "connection" in line for line in lines)
    assert any("GetEvents unavailable" in line and "HTTP 502" in line for line in lines)
    assert "Diagnosis of job" not in result.output and "last lines:" not in result.output


@pytest.mark.parametrize("mode", WAIT_MODES)
def test_fetch_diagnostics_false_reads_none_of_them(
    mode: str, run_dag: RunDag, vvp_emulator: VVPEmulator, add_deployment: AddDeployment, after_start: AfterStart
) -> None:
    deployment_id = add_deployment("orders")
    fail_started_jobs(vvp_emulator, after_start)
    before = vvp_emulator.request_counts()

    result = run_dag(f"flink_vvp_diagnostics_off_{mode}")

    assert_the_job_s_own_failure_is_reported(result, deployment_id)
    after = vvp_emulator.request_counts()
    assert all(after.get(action, 0) == before.get(action, 0) for action in DIAGNOSTIC_ACTIONS)


@pytest.mark.parametrize("mode", ("poke", "reschedule", "deferrable"))
def test_the_job_status_sensor_shows_the_diagnostics_of_the_job_that_failed(
    mode: str, run_dag: RunDag, vvp_emulator: VVPEmulator, add_deployment: AddDeployment
) -> None:
    deployment_id = add_deployment("orders")
    vvp_emulator.add_job(
        {"jobId": f"failing-{mode}-{deployment_id}", "deploymentId": deployment_id, "startTime": 1},
        timeline=[["STARTING", 0.5], ["FAILED", None]],
    )

    result = run_dag(f"flink_vvp_job_sensor_{mode}", job_id=f"failing-{mode}-{deployment_id}")

    assert result.task_state("wait") == "failed"
    assert f"Diagnosis of job failing-{mode}-{deployment_id} of deployment {deployment_id}: risk HIGH" in result.output


def test_the_job_summary_sensor_shows_the_diagnostics_of_the_deployment_s_newest_failed_job(
    run_dag: RunDag, vvp_emulator: VVPEmulator, add_deployment: AddDeployment, after_first_poke: Any
) -> None:
    deployment_id = add_deployment("orders", history={"failed": 6})
    after_first_poke(
        lambda: vvp_emulator.add_job(
            {"jobId": "newly-failed", "deploymentId": deployment_id, "startTime": 2}, timeline=[["FAILED", None]]
        )
    )

    result = run_dag("flink_vvp_sensor_poke", deployment_name="orders")

    assert result.task_state("wait") == "failed"
    assert "has failed jobs: failed 6 -> 7" in result.output
    assert f"Diagnosis of job newly-failed of deployment {deployment_id}: risk HIGH" in result.output
