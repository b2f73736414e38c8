"""Savepoints with dag.test() against the emulator, in the worker and deferred: every test counts the savepoints."""

from __future__ import annotations

from dataclasses import replace

import pytest

from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook
from airflow_provider_flink_vvp.testing import Fault, FaultKind, VVPEmulator
from tests.conftest import AddDeployment, fail_after
from tests.dag_tests.conftest import EXECUTION_TIMEOUT_SIGNAL_MAY_LAND_IN_A_CALLBACK, RunDag
from tests.dag_tests.test_dags import console_url

WAIT_MODES = ("poke", "deferrable")
RUNNING = [["RUNNING", None]]


def savepoint_seconds(monkeypatch: pytest.MonkeyPatch, emulator: VVPEmulator, seconds: float) -> None:
    """Make the emulator's savepoints take ``seconds`` to complete."""
    state = emulator.state
    monkeypatch.setattr(state, "job_durations", replace(state.job_durations, savepoint=seconds))


@pytest.mark.parametrize("mode", WAIT_MODES)
def test_a_savepoint_is_taken_waited_for_and_its_id_and_location_pushed(
    mode: str, run_dag: RunDag, add_deployment: AddDeployment, vvp_namespace: str
) -> None:
    deployment_id = add_deployment("stream", timeline=RUNNING)

    result = run_dag(f"flink_vvp_savepoint_{mode}")

    assert result.state == "success"
    [savepoint] = FlinkVVPHook().list_savepoints(deployment_id)
    assert savepoint.state == "COMPLETED" and savepoint.native_format is True
    assert savepoint.description and savepoint.description.startswith("nightly 20")  # templated
    assert result.xcom("read") == {
        "savepoint_id": savepoint.savepoint_id,
        "savepoint_location": savepoint.location,
        "deployment_id": deployment_id,
    }
    assert result.deployment_link("savepoint") == console_url(vvp_namespace, deployment_id)
    assert f"Savepoint {savepoint.savepoint_id} of deployment {deployment_id} is COMPLETED at" in result.output


@pytest.mark.parametrize("mode", WAIT_MODES)
def test_a_savepoint_that_fails_fails_the_task_with_its_reason(
    mode: str, run_dag: RunDag, vvp_emulator: VVPEmulator, add_deployment: AddDeployment, vvp_namespace: str
) -> None:
    deployment_id = add_deployment("stream", timeline=RUNNING)
    vvp_emulator.state.fail_savepoints(deployment_id, reason="CheckpointExpired", message="took longer than 10 min")

    result = run_dag(f"flink_vvp_savepoint_{mode}")

    assert (result.task_state("savepoint"), result.task_state("read")) == ("failed", "upstream_failed")
    [savepoint] = FlinkVVPHook().list_savepoints(deployment_id)
    assert (
        f"Savepoint {savepoint.savepoint_id} of deployment {deployment_id} FAILED: CheckpointExpired: "
        f"took longer than 10 min. Console: {console_url(vvp_namespace, deployment_id)}"
    ) in result.output
    assert result.xcom("savepoint") == savepoint.savepoint_id  # pushed when it was taken
    assert result.xcom("savepoint", "savepoint_location") is None


@pytest.mark.parametrize("mode", WAIT_MODES)
def test_a_lost_create_answer_is_confirmed_by_listing_and_one_savepoint_is_taken(
    mode: str, run_dag: RunDag, vvp_emulator: VVPEmulator, add_deployment: AddDeployment
) -> None:
    deployment_id = add_deployment("stream", timeline=RUNNING)
    vvp_emulator.inject(Fault(FaultKind.RESET, action="CreateSavepoint"))
    sent_before = vvp_emulator.request_counts().get("CreateSavepoint", 0)

    result = run_dag(f"flink_vvp_savepoint_{mode}")

    assert result.state == "success"
    [savepoint] = FlinkVVPHook().list_savepoints(deployment_id)
    assert result.xcom("savepoint") == savepoint.savepoint_id
    assert vvp_emulator.request_counts()["CreateSavepoint"] - sent_before == 1


@pytest.mark.parametrize("mode", WAIT_MODES)
def test_a_retry_after_an_unknown_outcome_takes_back_the_savepoint_the_first_try_took(
    mode: str,
    run_dag: RunDag,
    vvp_emulator: VVPEmulator,
    add_deployment: AddDeployment,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deployment_id = add_deployment("stream", timeline=RUNNING)
    # The create runs but its answer is lost, and so is the listing that would confirm it: the try fails.
    vvp_emulator.inject(Fault(FaultKind.RESET, action="CreateSavepoint"))
    fail_after(monkeypatch, vvp_emulator, "CreateSavepoint", "ListSavepoints", 1)
    sent_before = vvp_emulator.request_counts().get("CreateSavepoint", 0)

    result = run_dag(f"flink_vvp_savepoint_retry_{mode}")

    assert result.state == "success" and result.tries_of("savepoint") == 2
    assert "CreateSavepoint may have run" in result.output
    [savepoint] = FlinkVVPHook().list_savepoints(deployment_id)
    assert savepoint.state == "COMPLETED" and result.xcom("savepoint") == savepoint.savepoint_id
    assert vvp_emulator.request_counts()["CreateSavepoint"] - sent_before == 1


@pytest.mark.parametrize("mode", WAIT_MODES)
def test_a_retry_after_a_timeout_waits_on_the_same_savepoint(
    mode: str,
    run_dag: RunDag,
    vvp_emulator: VVPEmulator,
    add_deployment: AddDeployment,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deployment_id = add_deployment("stream", timeline=RUNNING)
    savepoint_seconds(monkeypatch, vvp_emulator, 2.0)
    sent_before = vvp_emulator.request_counts().get("CreateSavepoint", 0)

    result = run_dag(f"flink_vvp_savepoint_slow_retry_{mode}")

    assert result.state == "success" and result.tries_of("savepoint") == 2
    assert "Timed out waiting for savepoint" in result.output
    # STARTED, or COMPLETED already when the retry came late: either way that one, not a second.
    assert "taken by an earlier try of this task, is " in result.output
    assert vvp_emulator.request_counts()["CreateSavepoint"] - sent_before == 1
    [savepoint] = FlinkVVPHook().list_savepoints(deployment_id)
    assert result.xcom("savepoint") == savepoint.savepoint_id


@EXECUTION_TIMEOUT_SIGNAL_MAY_LAND_IN_A_CALLBACK
@pytest.mark.parametrize("mode", WAIT_MODES)
def test_execution_timeout_ends_the_wait_in_both_modes(
    mode: str,
    run_dag: RunDag,
    vvp_emulator: VVPEmulator,
    add_deployment: AddDeployment,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_deployment("stream", timeline=RUNNING)
    savepoint_seconds(monkeypatch, vvp_emulator, 30.0)

    result = run_dag(f"flink_vvp_savepoint_execution_timeout_{mode}")

    assert result.task_state("savepoint") == "failed"
    assert "AirflowTaskTimeout" in result.output


@pytest.mark.parametrize("mode", WAIT_MODES)
def test_a_deployment_without_a_running_job_fails_the_task_saying_so(
    mode: str, run_dag: RunDag, vvp_emulator: VVPEmulator, add_deployment: AddDeployment
) -> None:
    deployment_id = add_deployment("stream", timeline=[["CANCELLED", None]])

    result = run_dag(f"flink_vvp_savepoint_retry_{mode}")

    assert result.task_state("savepoint") == "failed" and result.tries_of("savepoint") == 1  # no retry heals it
    assert f"DeploymentNotRunning: deployment {deployment_id!r} has no RUNNING job" in result.output
    assert FlinkVVPHook().list_savepoints(deployment_id) == []


def test_the_nightly_savepoint_example_takes_one_savepoint_and_records_its_location(
    run_dag: RunDag, add_deployment: AddDeployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow import settings

    from airflow_provider_flink_vvp.operators.savepoint import FlinkVVPCreateSavepointOperator

    def task_policy(task: object) -> None:  # poll fast, as a cluster policy would
        if isinstance(task, FlinkVVPCreateSavepointOperator):
            task.poll_interval = 0.2

    monkeypatch.setattr(settings, "task_policy", task_policy)
    deployment_id = add_deployment("clickstream", timeline=RUNNING)

    result = run_dag("example_flink_vvp_savepoint", deployment_name="clickstream")

    assert result.state == "success"
    [savepoint] = FlinkVVPHook().list_savepoints(deployment_id)
    assert result.xcom("record") == savepoint.location and savepoint.location
