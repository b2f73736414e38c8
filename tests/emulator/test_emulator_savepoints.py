"""The emulator's savepoints, diagnosis, start log and events: the API's envelope, its states and its faults."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
import requests

from airflow_provider_flink_vvp.api import operations
from airflow_provider_flink_vvp.testing import EmulatorState, Fault, FaultKind, VVPEmulator
from airflow_provider_flink_vvp.testing.emulator import _parser

Send = Callable[..., requests.Response]


@pytest.fixture
def where(seed: dict[str, Any]) -> dict[str, str]:
    return {"namespace": seed["namespace"], "workspace": seed["workspace"]}


@pytest.fixture
def running(state: EmulatorState, seed: dict[str, Any]) -> str:
    """The seed deployment's RUNNING job."""
    state.add_job(
        {"jobId": "job-1", "deploymentId": seed["deploymentId"], "startTime": 1}, timeline=[["RUNNING", None]]
    )
    return str(seed["deploymentId"])


def test_a_savepoint_answers_in_the_api_s_envelope_and_completes_on_the_clock(
    send: Send, emulator: VVPEmulator, where: dict[str, str], running: str
) -> None:
    answer = send(operations.create_savepoint(**where, deployment_id=running, description="d"))
    document = answer.json()
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
    assert {key: document[key] for key in ("success", "httpCode", "errorCode", "errorMessage")} == {
        "success": True,
        "httpCode": 200,
        "errorCode": '""',
        "errorMessage": '""',
    }
    savepoint = document["data"]
    assert savepoint["status"] == {"state": "STARTED"} and savepoint["savepointOrigin"] == "USER_REQUEST"
    assert (savepoint["jobId"], savepoint["description"], savepoint["nativeFormat"]) == ("job-1", "d", False)
    emulator.advance(emulator.state.job_durations.savepoint)
    read = send(operations.get_savepoint(**where, savepoint_id=savepoint["savepointId"])).json()["data"]
    assert read["status"] == {"state": "COMPLETED"} and read["savepointLocation"].startswith("oss://")
    listed = send(operations.list_savepoints(**where, deployment_id=running, page_size=1)).json()
    assert (listed["pageIndex"], listed["pageSize"], listed["totalSize"]) == (1, 1, 1)
    deleted = send(operations.delete_savepoint(**where, savepoint_id=savepoint["savepointId"])).json()
    assert deleted["success"] is True and deleted["data"] is None


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{}", "InvalidParameter"),
        (b'{"deploymentId": 5}', "InvalidParameter"),
        (b'{"deploymentId": "d", "nativeFormat": "yes"}', "InvalidParameter"),
        (b'{"deploymentId": "no-such-deployment"}', "DeploymentNotFound"),
        (b"[]", "InvalidParameter"),
        (b"not json", "InvalidParameter"),
    ],
)
def test_a_bad_create_is_a_business_error(
    send: Send, sign: Callable[..., Any], where: dict[str, str], running: str, body: bytes, code: str
) -> None:
    built = operations.create_savepoint(**where, deployment_id=running)
    answer = send(sign(replace(built, body=body)))
    assert answer.json()["success"] is False and answer.json()["errorCode"] == code


def test_unknown_savepoints_and_jobs_are_404s_and_a_stopped_deployment_has_no_savepoint(
    send: Send, state: EmulatorState, where: dict[str, str], running: str
) -> None:
    assert send(operations.get_savepoint(**where, savepoint_id="nope")).status_code == 404
    assert send(operations.delete_savepoint(**where, savepoint_id="nope")).json()["errorCode"] == "SavepointNotFound"
    diagnosis = send(operations.get_job_diagnosis(**where, deployment_id=running, job_id="nope"))
    assert diagnosis.json()["errorCode"] == "JobNotFound"
    state.set_job_timeline("job-1", [["CANCELLED", None]])
    refused = send(operations.create_savepoint(**where, deployment_id=running))
    assert (refused.status_code, refused.json()["errorCode"]) == (409, "DeploymentNotRunning")


def test_faults_are_injected_per_operation(
    send: Send, emulator: VVPEmulator, where: dict[str, str], running: str
) -> None:
    emulator.inject(Fault(FaultKind.THROTTLE, action="GetEvents"), Fault(FaultKind.HTML, action="CreateSavepoint"))
    log = send(operations.get_latest_job_start_log(**where, deployment_id=running))
    assert log.json()["success"] is True and isinstance(log.json()["data"], str)
    assert send(operations.create_savepoint(**where, deployment_id=running)).status_code == 502
    assert send(operations.get_events(**where, deployment_id=running)).json()["Code"] == "Throttling.User"
    assert send(operations.get_events(**where, deployment_id=running)).json()["success"] is True
    assert emulator.faults.pending() == []


def test_events_list_jobs_and_savepoints_oldest_first_in_pages(
    send: Send, emulator: VVPEmulator, state: EmulatorState, where: dict[str, str], running: str
) -> None:
    send(operations.create_savepoint(**where, deployment_id=running))
    emulator.advance(1)
    state.set_job_timeline("job-1", [["FAILED", None]])
    page = send(operations.get_events(**where, deployment_id=running, page_size=2)).json()
    assert page["totalSize"] == 3
    names = [event["eventName"] for event in page["data"]]
    assert names == ["JOB_STARTED", "SAVEPOINT_TRIGGERED"]
    last = send(operations.get_events(**where, deployment_id=running, page_index=2, page_size=2)).json()["data"]
    assert [event["eventName"] for event in last] == ["JOB_FAILED"]


def test_the_cli_sets_how_long_a_savepoint_takes() -> None:
    assert _parser().parse_args(["--savepoint-seconds", "7"]).savepoint_seconds == 7.0


@pytest.mark.parametrize(
    ("every", "after", "restarts"), [(None, 100, 0), (10, 5, 0), (10, 10, 1), (10, 35, 3), (0.5, 2, 4)]
)
def test_an_injected_crash_loop_counts_restarts_while_the_job_runs(
    send: Send,
    emulator: VVPEmulator,
    state: EmulatorState,
    where: dict[str, str],
    running: str,
    every: float | None,
    after: float,
    restarts: int,
) -> None:
    state.set_job_restarts("job-1", every=every)
    emulator.advance(after)
    job = send(operations.get_job(**where, job_id="job-1")).json()["data"]
    assert job["status"]["running"] == {"observedFlinkJobStatus": "RUNNING", "observedFlinkJobRestarts": restarts}


@pytest.mark.parametrize("every", [0, -1, float("inf"), "10"])
def test_a_crash_loop_needs_a_positive_period(state: EmulatorState, running: str, every: Any) -> None:
    from airflow_provider_flink_vvp.testing.state import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="every must be a positive number of seconds"):
        state.set_job_restarts("job-1", every=every)
