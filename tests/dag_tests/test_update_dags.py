"""Updating a deployment with dag.test() against the emulator: the change, a dry run, no change, a roll back."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_flink_vvp.deployment_specs import spec_of
from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook
from airflow_provider_flink_vvp.testing import VVPEmulator
from tests.conftest import VVP_WORKSPACE
from tests.dag_tests.conftest import RunDag

OLD_SQL = "INSERT INTO sink SELECT * FROM old_source"


@pytest.fixture
def deployment(vvp_emulator: VVPEmulator, vvp_namespace: str) -> str:
    """A SQL deployment named orders, parallelism 2, checkpoints every 180 s."""
    vvp_emulator.add_deployment(
        {
            "deploymentId": f"orders-{vvp_namespace}",
            "name": "orders",
            "namespace": vvp_namespace,
            "workspace": VVP_WORKSPACE,
            "executionMode": "STREAMING",
            "createdAt": "1700000000",
            "engineVersion": "vvr-8.0.8-flink-1.17",
            "artifact": {"kind": "SQLSCRIPT", "sqlArtifact": {"sqlScript": OLD_SQL}},
            "streamingResourceSetting": {"resourceSettingMode": "BASIC", "basicResourceSetting": {"parallelism": 2}},
            "flinkConf": {"execution.checkpointing.interval": "180s"},
        }
    )
    return f"orders-{vvp_namespace}"


def spec(deployment_id: str) -> dict[str, Any]:
    return spec_of(FlinkVVPHook().get_deployment(deployment_id).raw)


EXPECTED_DIFF = [
    f'artifact.sqlArtifact.sqlScript: "{OLD_SQL}" -> "INSERT INTO sink SELECT * FROM source"',  # noqa: S608
    'flinkConf.execution.checkpointing.interval: "180s" -> "60s"',
    "streamingResourceSetting.basicResourceSetting.parallelism: 2 -> 4",
]


def test_an_update_logs_its_diff_changes_the_deployment_and_pushes_the_previous_spec(
    run_dag: RunDag, vvp_emulator: VVPEmulator, deployment: str
) -> None:
    before = spec(deployment)

    result = run_dag("flink_vvp_update")

    assert result.state == "success"
    after = spec(deployment)
    assert after["artifact"]["sqlArtifact"]["sqlScript"] == "INSERT INTO sink SELECT * FROM source"
    assert after["streamingResourceSetting"]["basicResourceSetting"]["parallelism"] == 4
    assert result.xcom("read") == {"previous_spec": before, "spec_diff": EXPECTED_DIFF}
    assert result.xcom("update") == result.xcom("update", "deployment_id") == deployment
    assert "Updating deployment" in result.output and all(line in result.output for line in EXPECTED_DIFF)
    # What the next job runs.
    job = FlinkVVPHook().start_job(deployment)
    assert job.raw["artifact"]["sqlArtifact"]["sqlScript"] == "INSERT INTO sink SELECT * FROM source"

    again = run_dag("flink_vvp_update")

    assert again.state == "success"
    assert f"Deployment {deployment} already has this spec: nothing to update" in again.output
    assert again.xcom("read") == {"previous_spec": after, "spec_diff": []}


def test_a_dry_run_logs_the_diff_and_changes_nothing(
    run_dag: RunDag, vvp_emulator: VVPEmulator, deployment: str
) -> None:
    before = spec(deployment)
    updates_before = vvp_emulator.request_counts().get("UpdateDeployment", 0)

    result = run_dag("flink_vvp_update_dry_run")

    assert result.state == "success"
    assert f"Dry run: deployment {deployment} would change:" in result.output
    assert result.xcom("read") == {"previous_spec": before, "spec_diff": EXPECTED_DIFF}
    assert spec(deployment) == before
    assert vvp_emulator.request_counts().get("UpdateDeployment", 0) == updates_before


def test_a_later_task_rolls_back_with_the_previous_spec(
    run_dag: RunDag, vvp_emulator: VVPEmulator, deployment: str
) -> None:
    before = spec(deployment)

    result = run_dag("flink_vvp_update_rollback")

    assert result.state == "success"
    after = spec(deployment)
    assert {key: value for key, value in after.items() if key != "modifiedAt"} == before
    assert 'artifact.sqlArtifact.sqlScript: "INSERT INTO sink SELECT * FROM source" -> ' in result.output


def test_a_jar_change_of_a_sql_deployment_fails_the_task_saying_why(
    run_dag: RunDag, vvp_emulator: VVPEmulator, deployment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow import settings

    from airflow_provider_flink_vvp.operators.deployment import FlinkVVPUpdateDeploymentOperator

    def task_policy(task: Any) -> None:  # the same DAG, asked for a JAR
        if isinstance(task, FlinkVVPUpdateDeploymentOperator):
            task.sql_script, task.jar_uri = None, "oss://bucket/job.jar"

    monkeypatch.setattr(settings, "task_policy", task_policy)
    before = spec(deployment)

    result = run_dag("flink_vvp_update")

    assert result.task_state("update") == "failed" and result.tries_of("update") == 1
    assert "its artifact is SQLSCRIPT, and an artifact's kind cannot change after creation" in result.output
    assert spec(deployment) == before


def test_the_scale_up_example_scales_up_then_puts_the_spec_back(
    run_dag: RunDag, vvp_emulator: VVPEmulator, deployment: str
) -> None:
    before = spec(deployment)

    result = run_dag("example_flink_vvp_scale_up", deployment_name="orders")

    assert result.state == "success"
    assert "streamingResourceSetting.basicResourceSetting.parallelism: 2 -> 8" in result.output
    assert "streamingResourceSetting.basicResourceSetting.parallelism: 8 -> 2" in result.output
    assert spec(deployment) == before
