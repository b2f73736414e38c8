"""The example DAG and the sensor in every mode, run with dag.test() against the emulator."""

from __future__ import annotations

import time
from typing import Any

import pytest

from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook
from airflow_provider_flink_vvp.testing import VVPEmulator
from tests.conftest import (
    VVP_WORKSPACE,
    AddDeployment,
    add_job,
    set_vvp_connection,
)
from tests.dag_tests.conftest import (
    DAG_TEST_RUNS_TASK_SDK,
    EXECUTION_TIMEOUT_SIGNAL_MAY_LAND_IN_A_CALLBACK,
    RunDag,
)

SENSOR_MODES = ("poke", "reschedule", "deferrable")


def console_url(namespace: str, deployment_id: str) -> str:
    return (
        f"https://vvp.console.aliyun.com/web/{VVP_WORKSPACE}/zh/#/workspaces/{VVP_WORKSPACE}"
        f"/namespaces/{namespace}/operations/stream/{deployment_id}"
    )


def test_the_example_dag_finds_waits_and_hands_the_deployment_id_downstream(
    run_dag: RunDag, add_deployment: AddDeployment, vvp_namespace: str
) -> None:
    older = add_deployment("checkout")
    deployment_id = add_deployment("checkout", history={"failed": 6}, timeline=[["STARTING", 0.5], ["RUNNING", None]])

    result = run_dag("example_flink_vvp", deployment_name="checkout")

    assert result.state == "success"
    assert result.task_states == {
        ("get_deployment", -1): "success",
        ("wait_until_running", -1): "success",
        ("use_deployment", -1): "success",
    }
    url = console_url(vvp_namespace, deployment_id)
    assert result.xcom("get_deployment") == deployment_id
    assert result.xcom("get_deployment", "deployment_ids") == [deployment_id, older]
    assert result.xcom("get_deployment", "deployment_url") == url
    assert result.xcom("wait_until_running") == deployment_id
    assert result.xcom("use_deployment") == deployment_id
    assert result.deployment_link("get_deployment") == url
    assert result.deployment_link("wait_until_running") == url
    assert result.links[("use_deployment", -1)] == {}


def test_the_example_dag_fails_when_no_deployment_has_the_name(run_dag: RunDag, vvp_emulator: VVPEmulator) -> None:
    result = run_dag("example_flink_vvp", deployment_name="nowhere")

    assert result.state == "failed"
    assert result.task_state("get_deployment") == "failed"
    assert "No deployment named 'nowhere' in namespace" in result.output
    assert result.links[("get_deployment", -1)] == {"Flink VVP deployment": ""}


@pytest.mark.parametrize("mode", SENSOR_MODES)
def test_the_sensor_succeeds_once_a_job_runs_despite_historical_failures(
    mode: str,
    run_dag: RunDag,
    vvp_emulator: VVPEmulator,
    vvp_namespace: str,
    add_deployment: AddDeployment,
    after_first_poke: Any,
) -> None:
    deployment_id = add_deployment("orders", history={"failed": 6})
    after_first_poke(lambda: add_job(vvp_emulator, deployment_id, [["STARTING", 0.3], ["RUNNING", None]]))

    result = run_dag(f"flink_vvp_sensor_{mode}", deployment_name="orders")
    assert result.state == "success"
    assert (result.reschedules > 0) is (mode == "reschedule")
    url = console_url(vvp_namespace, deployment_id)
    assert result.xcom("read") == {"deployment_id": deployment_id, "deployment_url": url}
    assert result.deployment_link("wait") == url


@pytest.mark.parametrize("mode", SENSOR_MODES)
def test_the_sensor_fails_on_a_job_that_fails_while_it_waits(
    mode: str,
    run_dag: RunDag,
    vvp_emulator: VVPEmulator,
    add_deployment: AddDeployment,
    after_first_poke: Any,
) -> None:
    # In reschedule mode the failure is seen by a later run of the task, which must find the
    # first run's baseline (failed: 6) to tell the new failure from the history.
    deployment_id = add_deployment("orders", history={"failed": 6})
    after_first_poke(lambda: add_job(vvp_emulator, deployment_id, [["FAILED", None]]))

    result = run_dag(f"flink_vvp_sensor_{mode}", deployment_name="orders")
    assert result.state == "failed"
    assert (result.task_state("wait"), result.task_state("read")) == ("failed", "upstream_failed")
    assert (result.reschedules > 0) is (mode == "reschedule")
    assert (
        f"AirflowFailException: Deployment 'orders' ({deployment_id}) has failed jobs: failed 6 -> 7" in result.output
    )


@pytest.mark.parametrize("mode", SENSOR_MODES)
def test_soft_fail_skips_the_sensor_on_a_failed_job(
    mode: str,
    run_dag: RunDag,
    vvp_emulator: VVPEmulator,
    add_deployment: AddDeployment,
    after_first_poke: Any,
) -> None:
    deployment_id = add_deployment("orders")
    after_first_poke(lambda: add_job(vvp_emulator, deployment_id, [["FAILED", None]]))

    result = run_dag(f"flink_vvp_sensor_{mode}_soft_fail", deployment_name="orders")
    assert result.state == "success"
    assert (result.task_state("wait"), result.task_state("read")) == ("skipped", "skipped")
    assert (
        f"Skipping (soft_fail): Deployment 'orders' ({deployment_id}) has failed jobs: failed 0 -> 1" in result.output
    )


def test_operator_and_sensor_map_over_names_with_one_xcom_per_mapped_task(
    run_dag: RunDag, vvp_namespace: str, add_deployment: AddDeployment
) -> None:
    first = add_deployment("mapped-a", timeline=[["RUNNING", None]])
    second = add_deployment("mapped-b", timeline=[["RUNNING", None]])

    result = run_dag("flink_vvp_mapped")

    assert [result.task_state(task, i) for task in ("get", "wait") for i in (0, 1)] == ["success"] * 4
    assert [result.xcom("get", map_index=i) for i in (0, 1)] == [first, second]
    assert [result.xcom("wait", map_index=i) for i in (0, 1)] == [first, second]
    assert result.deployment_link("get", map_index=1) == console_url(vvp_namespace, second)
    if not DAG_TEST_RUNS_TASK_SDK:
        # The older runner cannot hand a downstream task the mapped XComs (Airflow's lazy sequence needs the
        # task SDK's supervisor): the provider's part ends with the XComs above.
        assert result.task_state("collect") == "failed"
        assert "cannot import name 'SUPERVISOR_COMMS'" in result.output
        return
    assert result.state == "success"
    assert result.xcom("collect") == {
        "found": [first, second],
        "running": [first, second],
        "urls": [console_url(vvp_namespace, first), console_url(vvp_namespace, second)],
    }


@pytest.mark.parametrize("mode", SENSOR_MODES)
def test_the_sensor_fails_at_once_on_a_misspelled_deployment_name(
    mode: str, run_dag: RunDag, vvp_emulator: VVPEmulator, vvp_namespace: str, add_deployment: AddDeployment
) -> None:
    add_deployment("orders", timeline=[["RUNNING", None]])

    result = run_dag(f"flink_vvp_sensor_{mode}", deployment_name="ordres")
    assert (result.task_state("wait"), result.tries_of("wait")) == ("failed", 1)
    assert (
        f"No deployment named 'ordres' in namespace '{vvp_namespace}' of workspace '{VVP_WORKSPACE}': check the "
        "name, namespace and workspace. To wait for it to be created, set missing_deployment='wait'."
    ) in result.output


def test_a_trigger_that_cannot_read_its_connection_leaves_the_sensor_to_its_retries(
    run_dag: RunDag,
    vvp_emulator: VVPEmulator,
    vvp_namespace: str,
    add_deployment: AddDeployment,
    after_first_poke: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deployment_id = add_deployment("orders")
    # The connection disappears after the worker's look, before the trigger reads it, and comes back after.
    after_first_poke(lambda: monkeypatch.delenv("AIRFLOW_CONN_FLINK_VVP_DEFAULT"))
    read_config = FlinkVVPHook.aget_config

    async def once_missing(self: FlinkVVPHook) -> Any:
        try:
            return await read_config(self)
        except Exception:
            set_vvp_connection(monkeypatch, vvp_emulator.url, namespace=vvp_namespace)
            add_job(vvp_emulator, deployment_id, [["RUNNING", None]])
            raise

    monkeypatch.setattr(FlinkVVPHook, "aget_config", once_missing)

    result = run_dag("flink_vvp_sensor_deferrable_retry", deployment_name="orders")

    assert "The trigger failed: AirflowNotFoundException" in result.output
    assert (result.task_state("wait"), result.tries_of("wait")) == ("success", 2)


@EXECUTION_TIMEOUT_SIGNAL_MAY_LAND_IN_A_CALLBACK
def test_execution_timeout_ends_deferred_sensors_that_would_wait_longer(
    run_dag: RunDag, vvp_emulator: VVPEmulator, add_deployment: AddDeployment
) -> None:
    deployment_id = add_deployment("orders", timeline=[["RUNNING", None]])
    [job] = FlinkVVPHook().list_jobs(deployment_id)
    started = time.monotonic()

    result = run_dag("flink_vvp_sensors_deferred_execution_timeout", deployment_name="orders", job_id=job.job_id)

    assert time.monotonic() - started < 30, "execution_timeout (2 s), not the sensors' timeout (60 s), ended them"
    assert (result.task_state("summary"), result.task_state("status")) == ("failed", "failed")
    assert "AirflowTaskTimeout: execution_timeout (0:00:02) reached" in result.output
