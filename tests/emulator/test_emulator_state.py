"""The emulator's state without HTTP: deployments, computed jobSummary, job timelines on a manual clock."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_flink_vvp.testing import EmulatorState, JobDurations, ManualClock
from airflow_provider_flink_vvp.testing.state import ConflictError, InvalidArgumentError, NotFoundError

# The seed deployment's place and history (tests/data/GetDeploymentsByName.response.json).
WORKSPACE = "edcef******b4f"
NAMESPACE = "default-namespace"
SEED_ID = "00000000-0000-0000-0000-0000012312****"
SEED_SUMMARY = {"starting": 1, "running": 2, "cancelling": 0, "cancelled": 5, "finished": 4, "failed": 6}
Factory = Callable[..., dict[str, Any]]


def _clock(state: EmulatorState) -> ManualClock:
    assert isinstance(state.clock, ManualClock)
    return state.clock


def _summary(state: EmulatorState, deployment_id: str = SEED_ID) -> dict[str, int]:
    summary: dict[str, int] = state.deployment(WORKSPACE, NAMESPACE, deployment_id)["jobSummary"]
    return summary


def _plus(**counts: int) -> dict[str, int]:
    return {state: SEED_SUMMARY[state] + counts.get(state, 0) for state in SEED_SUMMARY}


def test_the_seed_deployment_comes_back_verbatim(state: EmulatorState, seed: dict[str, Any]) -> None:
    assert (seed["workspace"], seed["namespace"], seed["deploymentId"]) == (WORKSPACE, NAMESPACE, SEED_ID)
    assert seed["jobSummary"] == SEED_SUMMARY
    assert state.deployment(WORKSPACE, NAMESPACE, SEED_ID) == seed
    assert state.deployments_by_name(WORKSPACE, NAMESPACE, "deploymentName") == [seed]


def test_a_returned_deployment_is_a_copy(state: EmulatorState) -> None:
    state.deployment(WORKSPACE, NAMESPACE, SEED_ID)["labels"]["test"] = "changed"
    assert state.deployment(WORKSPACE, NAMESPACE, SEED_ID)["labels"]["test"] == "test"


def test_deployments_by_name_come_newest_first(state: EmulatorState, make_deployment: Factory) -> None:
    for deployment_id, created_at in (("old", "1600000000"), ("new", "1800000000\n"), ("mid", 1_700_000_000)):
        state.add_deployment(make_deployment(deployment_id, createdAt=created_at))
    state.add_deployment(make_deployment("millis", createdAt="1750000000000"))  # createdAt in milliseconds
    found = state.deployments_by_name(WORKSPACE, NAMESPACE, "orders")
    assert [d["deploymentId"] for d in found] == ["new", "millis", "mid", "old"]


def test_ignore_flags_drop_job_summary_and_resource_settings(state: EmulatorState, seed: dict[str, Any]) -> None:
    [bare] = state.deployments_by_name(
        WORKSPACE, NAMESPACE, "deploymentName", job_summary=False, resource_settings=False
    )
    dropped = {"jobSummary", "streamingResourceSetting", "batchResourceSetting"}
    assert set(seed) - set(bare) == dropped
    assert bare == {key: value for key, value in seed.items() if key not in dropped}


def test_unknown_workspace_namespace_and_deployment_are_not_found(state: EmulatorState) -> None:
    with pytest.raises(NotFoundError) as workspace:
        state.deployments_by_name("nope", NAMESPACE, "deploymentName")
    with pytest.raises(NotFoundError) as namespace:
        state.deployments_by_name(WORKSPACE, "nope", "deploymentName")
    with pytest.raises(NotFoundError) as deployment_error:
        state.deployment(WORKSPACE, NAMESPACE, "nope")
    codes = [error.value.code for error in (workspace, namespace, deployment_error)]
    assert codes == ["WorkspaceNotFound", "NamespaceNotFound", "DeploymentNotFound"]


def test_a_deployment_of_another_namespace_is_not_found_by_id(state: EmulatorState, make_deployment: Factory) -> None:
    state.add_deployment(make_deployment("elsewhere", namespace="other"))
    with pytest.raises(NotFoundError):
        state.deployment(WORKSPACE, NAMESPACE, "elsewhere")
    assert state.deployment(WORKSPACE, "other", "elsewhere")["namespace"] == "other"


def test_an_added_namespace_is_known_and_empty(state: EmulatorState) -> None:
    state.add_namespace("ws-2", "empty")
    assert state.deployments_by_name("ws-2", "empty", "anything") == []


def test_a_deployment_without_required_fields_is_refused(state: EmulatorState, make_deployment: Factory) -> None:
    with pytest.raises(InvalidArgumentError, match="workspace"):
        state.add_deployment({"deploymentId": "x", "name": "x", "namespace": "n", "createdAt": "1"})
    with pytest.raises(InvalidArgumentError, match="createdAt"):
        state.add_deployment(make_deployment("x", createdAt="yesterday"))


def test_a_job_timeline_advances_on_the_manual_clock(state: EmulatorState) -> None:
    job = {"jobId": "j1", "deploymentId": SEED_ID, "status": {"currentJobStatus": "STARTING"}}
    state.add_job(job, timeline=[["STARTING", 2], ["RUNNING", 5], ["FAILED", None]])
    assert state.job(WORKSPACE, NAMESPACE, "j1")["status"]["currentJobStatus"] == "STARTING"
    assert _summary(state) == _plus(starting=1)
    _clock(state).advance(2)
    running = state.job(WORKSPACE, NAMESPACE, "j1")
    assert running["status"]["currentJobStatus"] == "RUNNING"
    assert running["status"]["running"]["observedFlinkJobStatus"] == "RUNNING"
    assert _summary(state) == _plus(running=1)
    _clock(state).advance(5)
    failed = state.job(WORKSPACE, NAMESPACE, "j1")
    assert failed["status"]["currentJobStatus"] == "FAILED"
    assert failed["status"]["failure"]["failedAt"] == failed["endTime"] == int(_clock(state).now() * 1000)
    assert "running" not in failed["status"]
    assert _summary(state) == _plus(failed=1)


def test_a_job_without_timeline_holds_its_status(state: EmulatorState) -> None:
    job = {"jobId": "j1", "deploymentId": SEED_ID, "status": {"currentJobStatus": "CANCELLED"}, "endTime": 5}
    assert state.add_job(job) == job
    _clock(state).advance(3600)
    assert state.job(WORKSPACE, NAMESPACE, "j1") == job
    assert _summary(state) == _plus(cancelled=1)


@pytest.mark.parametrize(
    ("job", "timeline", "message"),
    [
        ({"jobId": "j", "deploymentId": SEED_ID}, None, "status must be an object"),
        ({"jobId": "j", "deploymentId": SEED_ID, "status": {}}, None, "currentJobStatus must be one of"),
        ({"jobId": "j", "deploymentId": SEED_ID, "status": {"currentJobStatus": "PAUSED"}}, None, "currentJobStatus"),
        ({"jobId": "j", "deploymentId": SEED_ID}, [["RUNNING", None], ["FAILED", None]], "only the last"),
        ({"jobId": "j", "deploymentId": SEED_ID}, [["SLEEPING", None]], "known states"),
        ({"jobId": "j", "deploymentId": SEED_ID}, [], "at least one"),
        ({"deploymentId": SEED_ID}, None, "jobId"),
    ],
)
def test_a_malformed_job_is_refused(
    state: EmulatorState, job: dict[str, Any], timeline: list[list[Any]] | None, message: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        state.add_job(job, timeline=timeline)


def test_a_job_of_an_unknown_deployment_is_refused(state: EmulatorState) -> None:
    with pytest.raises(NotFoundError):
        state.add_job({"jobId": "j", "deploymentId": "nope", "status": {"currentJobStatus": "RUNNING"}})


def test_a_started_streaming_job_runs_until_stopped(state: EmulatorState) -> None:
    started = state.start_job(WORKSPACE, NAMESPACE, SEED_ID, local_variables=[{"name": "a", "value": "1"}])
    job_id = started["jobId"]
    assert started["status"]["currentJobStatus"] == "STARTING"
    assert started["deploymentName"] == "deploymentName"
    assert started["restoreStrategy"] == {"kind": "NONE"}
    assert started["localVariables"] == [{"name": "a", "value": "1"}]
    assert started["startTime"] == int(_clock(state).now() * 1000)
    _clock(state).advance(3600)
    assert state.job(WORKSPACE, NAMESPACE, job_id)["status"]["currentJobStatus"] == "RUNNING"
    stopping = state.stop_job(WORKSPACE, NAMESPACE, job_id, stop_strategy="STOP_WITH_SAVEPOINT")
    assert stopping["status"]["currentJobStatus"] == "CANCELLING"
    assert _summary(state) == _plus(cancelling=1)
    _clock(state).advance(3)
    cancelled = state.job(WORKSPACE, NAMESPACE, job_id)
    assert cancelled["status"]["currentJobStatus"] == "CANCELLED"
    assert cancelled["endTime"] == int(_clock(state).now() * 1000)
    assert _summary(state) == _plus(cancelled=1)
    with pytest.raises(ConflictError):
        state.stop_job(WORKSPACE, NAMESPACE, job_id, stop_strategy="NONE")


def test_a_started_batch_job_finishes(state: EmulatorState, make_deployment: Factory) -> None:
    state.add_deployment(make_deployment("batch", executionMode="BATCH"))
    job_id = state.start_job(WORKSPACE, NAMESPACE, "batch")["jobId"]
    _clock(state).advance(2)
    assert state.job(WORKSPACE, NAMESPACE, job_id)["status"]["currentJobStatus"] == "RUNNING"
    _clock(state).advance(10)
    assert state.job(WORKSPACE, NAMESPACE, job_id)["status"]["currentJobStatus"] == "FINISHED"
    assert _summary(state, "batch") == {
        "starting": 0,
        "running": 0,
        "cancelling": 0,
        "cancelled": 0,
        "finished": 1,
        "failed": 0,
    }


@pytest.mark.parametrize(
    "strategy",
    [{"kind": "SOMETIMES"}, {"kind": "FROM_SAVEPOINT"}],
)
def test_a_bad_restore_strategy_is_refused(state: EmulatorState, strategy: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError, match="restoreStrategy"):
        state.start_job(WORKSPACE, NAMESPACE, SEED_ID, restore_strategy=strategy)


def test_a_bad_stop_strategy_or_job_is_refused(state: EmulatorState) -> None:
    job_id = state.start_job(WORKSPACE, NAMESPACE, SEED_ID)["jobId"]
    with pytest.raises(InvalidArgumentError, match="stopStrategy"):
        state.stop_job(WORKSPACE, NAMESPACE, job_id, stop_strategy="PLEASE")
    with pytest.raises(NotFoundError) as unknown:
        state.job(WORKSPACE, NAMESPACE, "nope")
    assert unknown.value.code == "JobNotFound"
    with pytest.raises(NotFoundError):
        state.job(WORKSPACE, "other-namespace", job_id)


def test_list_deployments_pages_and_filters(state: EmulatorState, make_deployment: Factory) -> None:
    for index in range(5):
        state.add_deployment(make_deployment(f"d{index}", createdAt=str(1_800_000_000 + index), executionMode="BATCH"))
    page = state.list_deployments(WORKSPACE, NAMESPACE, page_index=2, page_size=2)
    assert (page.index, page.size, page.total) == (2, 2, 6)
    assert [d["deploymentId"] for d in page.items] == ["d2", "d1"]
    batch = state.list_deployments(WORKSPACE, NAMESPACE, page_index=1, page_size=100, execution_mode="BATCH")
    assert batch.total == 5
    named = state.list_deployments(WORKSPACE, NAMESPACE, page_index=1, page_size=100, name="deploymentName")
    assert [d["deploymentId"] for d in named.items] == [SEED_ID]
    state.start_job(WORKSPACE, NAMESPACE, "d3")
    starting = state.list_deployments(WORKSPACE, NAMESPACE, page_index=1, page_size=100, status="STARTING")
    assert [d["deploymentId"] for d in starting.items] == ["d3"]


def test_list_jobs_pages_by_start_time(state: EmulatorState) -> None:
    started = []
    for _ in range(3):
        started.append(state.start_job(WORKSPACE, NAMESPACE, SEED_ID)["jobId"])
        _clock(state).advance(1)
    newest = state.list_jobs(WORKSPACE, NAMESPACE, SEED_ID, page_index=1, page_size=2)
    assert [job["jobId"] for job in newest.items] == started[::-1][:2]
    assert newest.total == 3
    oldest = state.list_jobs(WORKSPACE, NAMESPACE, SEED_ID, page_index=1, page_size=10, newest_first=False)
    assert [job["jobId"] for job in oldest.items] == started


def test_a_state_file_loads_keys_deployments_and_jobs(tmp_path: Path, seed: dict[str, Any]) -> None:
    document = {
        "access_keys": {"ak": "sk"},
        "deployments": [seed],
        "jobs": [
            {
                "jobId": "j1",
                "deploymentId": SEED_ID,
                "status": {"currentJobStatus": "STARTING"},
                "timeline": [["STARTING", 2], ["RUNNING", None]],
            }
        ],
    }
    path = tmp_path / "state.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    clock = ManualClock(1_700_000_000)
    state = EmulatorState.from_file(path, clock=clock, job_durations=JobDurations(starting=9))
    assert state.secret_of("ak") == "sk"
    assert state.job_durations.starting == 9
    assert "timeline" not in state.job(WORKSPACE, NAMESPACE, "j1")
    clock.advance(2)
    assert state.job(WORKSPACE, NAMESPACE, "j1")["status"]["currentJobStatus"] == "RUNNING"
    assert _summary(state) == _plus(running=1)


@pytest.mark.parametrize(
    "document",
    [{"access_keys": ["ak"]}, {"deployments": {"a": 1}}, {"jobs": ["j"]}],
)
def test_a_malformed_state_file_is_refused(document: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError):
        EmulatorState.from_document(document)


def test_a_manual_clock_moves_only_forward() -> None:
    clock = ManualClock(100)
    assert clock.advance(5) == clock.now() == 105
    with pytest.raises(ValueError, match="back"):
        clock.advance(-1)
