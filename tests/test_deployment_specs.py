"""A deployment's spec, the changes asked of it and the readable diff; the update over the emulator."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from airflow_provider_flink_vvp.api import VVPConfigurationError
from airflow_provider_flink_vvp.api.operations import update_deployment
from airflow_provider_flink_vvp.deployment_specs import HIDDEN, SpecChanges, spec_diff, spec_of
from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook
from airflow_provider_flink_vvp.testing import Fault, FaultKind, VVPEmulator
from tests.conftest import AddDeployment

SQL_SPEC: dict[str, Any] = {
    "deploymentId": "d-1",
    "name": "orders",
    "namespace": "ns",
    "workspace": "ws",
    "executionMode": "STREAMING",
    "engineVersion": "vvr-8.0.8-flink-1.17",
    "artifact": {"kind": "SQLSCRIPT", "sqlArtifact": {"sqlScript": "INSERT INTO a SELECT * FROM b"}},
    "streamingResourceSetting": {"resourceSettingMode": "BASIC", "basicResourceSetting": {"parallelism": 2}},
    "flinkConf": {"execution.checkpointing.interval": "180s", "fs.oss.accessKeySecret": "hunter2"},
    "labels": {"team": "growth"},
    "localVariables": [{"name": "date", "value": "2026-11-27"}],
}

# changes, the diff lines they give
DIFFS: list[tuple[dict[str, Any], list[str]]] = [
    ({}, []),
    ({"sql_script": "INSERT INTO a SELECT * FROM b"}, []),  # the same value: nothing changes
    ({"parallelism": 2}, []),
    ({"parallelism": 8}, ["streamingResourceSetting.basicResourceSetting.parallelism: 2 -> 8"]),
    (
        {"sql_script": "INSERT INTO c"},
        ['artifact.sqlArtifact.sqlScript: "INSERT INTO a SELECT * FROM b" -> "INSERT INTO c"'],
    ),
    ({"engine_version": "vvr-8.0.9-flink-1.17"}, ['engineVersion: "vvr-8.0.8-flink-1.17" -> "vvr-8.0.9-flink-1.17"']),
    (
        {"flink_conf": {"execution.checkpointing.interval": "60s", "state.ttl": "1d"}},
        ['flinkConf.execution.checkpointing.interval: "180s" -> "60s"', 'flinkConf.state.ttl: (none) -> "1d"'],
    ),
    (
        {"flink_conf": {"execution.checkpointing.interval": None}},
        ['flinkConf.execution.checkpointing.interval: "180s" -> (none)'],
    ),
    (
        {"flink_conf": {"fs.oss.accessKeySecret": "hunter3"}},
        [f"flinkConf.fs.oss.accessKeySecret: {HIDDEN} -> {HIDDEN}"],
    ),
    ({"labels": {"team": None, "tier": 1}}, ['labels.team: "growth" -> (none)', "labels.tier: (none) -> 1"]),
    (
        {"local_variables": {"date": "2026-11-28", "region": "eu"}},
        ['localVariables.date: "2026-11-27" -> "2026-11-28"', 'localVariables.region: (none) -> "eu"'],
    ),
    (
        {"resource_setting": {"basicResourceSetting": {"taskmanagerResourceSettingSpec": {"cpu": 2, "memory": "4Gi"}}}},
        [
            "streamingResourceSetting.basicResourceSetting.taskmanagerResourceSettingSpec.cpu: (none) -> 2",
            'streamingResourceSetting.basicResourceSetting.taskmanagerResourceSettingSpec.memory: (none) -> "4Gi"',
        ],
    ),
    (
        {"sql_script": "SELECT " + "x" * 200},
        [
            'artifact.sqlArtifact.sqlScript: "INSERT INTO a SELECT * FROM b" -> "SELECT '
            + "x" * 72
            + "... (209 characters)"
        ],
    ),
    # A spec to roll back to: the other changes apply on top, and it cannot move the update to another deployment.
    (
        {"spec": {**SQL_SPEC, "deploymentId": "other", "engineVersion": "old"}},
        ['engineVersion: "vvr-8.0.8-flink-1.17" -> "old"'],
    ),
]


@pytest.mark.parametrize(("changes", "lines"), DIFFS, ids=range(len(DIFFS)))
def test_changes_give_a_readable_diff_by_dotted_path(changes: dict[str, Any], lines: list[str]) -> None:
    before = copy.deepcopy(SQL_SPEC)
    after = SpecChanges(**changes).apply(before)
    assert before == SQL_SPEC  # left as it was
    assert [change.describe() for change in spec_diff(before, after)] == lines
    assert after["deploymentId"] == "d-1"


def test_a_batch_deployment_s_parallelism_is_in_its_batch_resource_setting() -> None:
    after = SpecChanges(parallelism=4).apply({**SQL_SPEC, "executionMode": "BATCH"})
    assert after["batchResourceSetting"] == {"basicResourceSetting": {"parallelism": 4}}


def test_a_jar_deployment_takes_jar_changes_and_the_spec_drops_what_the_service_keeps() -> None:
    jar = {**spec_of({**SQL_SPEC, "jobSummary": {"running": 1}, "createdAt": "1", "modifiedAt": "2", "creator": "u"})}
    assert set(jar) == set(SQL_SPEC)
    jar["artifact"] = {"kind": "JAR", "jarArtifact": {"jarUri": "oss://b/v1.jar", "entryClass": "a.Main"}}
    after = SpecChanges(jar_uri="oss://b/v2.jar", main_args="--date 2026-11-28").apply(jar)
    assert after["artifact"]["jarArtifact"] == {
        "jarUri": "oss://b/v2.jar",
        "entryClass": "a.Main",
        "mainArgs": "--date 2026-11-28",
    }


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"jar_uri": "oss://b/x.jar"},
            "jar_uri, entry_class or main_args cannot change deployment 'd-1': its artifact is SQLSCRIPT",
        ),
        ({"sql_script": "SELECT 1", "jar_uri": "x"}, "pass one kind"),
        ({"sql_script": ""}, "sql_script must be a non-empty string"),
        ({"engine_version": 17}, "engine_version must be a non-empty string .* got 17"),
        ({"parallelism": 0}, "parallelism must be a whole number of 1 or more, got 0"),
        ({"parallelism": 2.5}, "parallelism must be a whole number of 1 or more, got 2.5"),
        ({"flink_conf": ["a=b"]}, r"flink_conf must be a mapping \(a dict\), got list"),
        ({"spec": "{}"}, "spec must be a mapping"),
    ],
)
def test_changes_a_deployment_cannot_take_are_refused_naming_the_parameter(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        SpecChanges(**changes).apply(SQL_SPEC)


def test_update_deployment_sends_the_whole_spec_with_put_and_may_be_repeated() -> None:
    operation = update_deployment(namespace="ns", workspace="ws", deployment_id="d/1", spec={"name": "orders"})
    assert (operation.method, operation.path, operation.idempotent) == (
        "PUT",
        "/api/v2/namespaces/ns/deployments/d%2F1",
        True,
    )
    assert json.loads(operation.body) == {"name": "orders", "deploymentId": "d/1"}
    with pytest.raises(VVPConfigurationError, match="spec is the spec of deployment 'd-2', not of 'd-1'"):
        update_deployment(namespace="ns", workspace="ws", deployment_id="d-1", spec={"deploymentId": "d-2"})
    with pytest.raises(VVPConfigurationError, match="spec must be a mapping"):
        update_deployment(namespace="ns", workspace="ws", deployment_id="d-1", spec=[])  # type: ignore[arg-type]


def test_an_update_changes_what_get_deployment_returns_and_what_the_next_job_runs(
    vvp_emulator: VVPEmulator, add_deployment: AddDeployment
) -> None:
    deployment_id = add_deployment("orders")
    hook = FlinkVVPHook()
    current = spec_of(hook.get_deployment(deployment_id).raw)
    wanted = SpecChanges(sql_script="INSERT INTO c", parallelism=3, flink_conf={"k": "v"}).apply(current)
    vvp_emulator.inject(Fault(FaultKind.RESET, action="UpdateDeployment"))  # a repeat is safe: retried

    updated = FlinkVVPHook(retry_limit=2, retry_delay=0).update_deployment(deployment_id, wanted)

    assert spec_diff(spec_of(updated.raw), wanted) == []  # the whole spec as sent, by a retried request
    assert spec_of(hook.get_deployment(deployment_id).raw)["artifact"]["sqlArtifact"]["sqlScript"] == "INSERT INTO c"
    job = hook.start_job(deployment_id)
    assert job.raw["artifact"]["sqlArtifact"]["sqlScript"] == "INSERT INTO c"
    assert job.raw["streamingResourceSetting"]["basicResourceSetting"]["parallelism"] == 3
    assert job.raw["flinkConf"] == {"k": "v"}


def test_a_retry_pushes_the_spec_its_first_try_read_not_the_one_it_left(
    vvp_emulator: VVPEmulator, add_deployment: AddDeployment, make_context: Any
) -> None:
    from airflow_provider_flink_vvp.operators.deployment import FlinkVVPUpdateDeploymentOperator

    deployment_id = add_deployment("orders")
    operator = FlinkVVPUpdateDeploymentOperator(
        task_id="update", deployment_id=deployment_id, engine_version="vvr-9", retries=1
    )
    original = spec_of(FlinkVVPHook().get_deployment(deployment_id).raw)
    first = make_context(try_number=1, max_tries=1)
    # The first try's update went through, then the try failed (say its worker died) before it succeeded.
    first["task_state_store"].set("flink_vvp_previous_spec", {"spec": original, "series": 1})
    FlinkVVPHook().update_deployment(deployment_id, {**original, "engineVersion": "vvr-9"})

    retry = make_context(try_number=2, max_tries=1, task_state_store=first["task_state_store"])
    assert operator.execute(retry) == deployment_id

    assert retry["ti"].xcoms["previous_spec"] == original
    assert retry["ti"].xcoms["spec_diff"] == []
    assert "flink_vvp_previous_spec" not in first["task_state_store"]  # deleted on success


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "Pass exactly one of deployment_name"),
        ({"deployment_id": "d", "parallelism": -1}, "parallelism must be a whole number of 1 or more, got -1"),
        ({"deployment_id": "d", "labels": "team=a"}, "labels must be a mapping"),
    ],
)
def test_the_update_operator_refuses_bad_arguments_when_the_dag_is_parsed(
    arguments: dict[str, Any], message: str
) -> None:
    from airflow_provider_flink_vvp.operators.deployment import FlinkVVPUpdateDeploymentOperator

    with pytest.raises(ValueError, match=message):
        FlinkVVPUpdateDeploymentOperator(task_id="update", **arguments)
