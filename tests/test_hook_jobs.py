"""Job control through the hook: pagination, and starts and stops that never act twice."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import requests_mock

from airflow_provider_flink_vvp.api import JOB_STATUSES, TERMINAL_JOB_STATUSES, VVPApiError, VVPOutcomeUnknownError
from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook

BASE = "http://vvp.test/api/v2/namespaces/ns"
START = f"{BASE}/jobs%3Astart"
STOP = f"{BASE}/jobs/j-run%3Astop"
LIST = f"{BASE}/jobs?deploymentId=dep-1"


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> FlinkVVPHook:
    connection = {
        "conn_type": "flink_vvp",
        "host": "http://vvp.test",
        "login": "AKID",
        "password": "the-secret",
        "extra": {"workspace": "ws", "namespace": "ns", "retry_limit": 3, "retry_delay": 0},
    }
    monkeypatch.setenv("AIRFLOW_CONN_FLINK_VVP_DEFAULT", json.dumps(connection))
    return FlinkVVPHook()


def job(job_id: str, status: str) -> dict[str, Any]:
    return {"jobId": job_id, "deploymentId": "dep-1", "status": {"currentJobStatus": status}}


def envelope(data: Any, total: int | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {"requestId": "R", "success": True, "data": data}
    if total is not None:
        document.update(pageIndex=1, pageSize=100, totalSize=total)
    return document


def posts(mock: requests_mock.Mocker) -> list[Any]:
    return [request for request in mock.request_history if request.method == "POST"]


def test_list_jobs_reads_every_page(hook: FlinkVVPHook) -> None:
    first = [job(f"j{i}", "FINISHED") for i in range(100)]
    with requests_mock.Mocker() as mock:
        mock.get(f"{LIST}&pageIndex=1&pageSize=100", json=envelope(first, total=101))
        mock.get(f"{LIST}&pageIndex=2&pageSize=100", json=envelope([job("j100", "RUNNING")], total=101))
        jobs = hook.list_jobs("dep-1")
    assert len(jobs) == 101
    assert jobs[-1].job_id == "j100"
    assert mock.call_count == 2


def test_start_job_sends_one_start(hook: FlinkVVPHook) -> None:
    with requests_mock.Mocker() as mock:
        mock.get(requests_mock.ANY, json=envelope([], total=0))
        mock.post(START, json=envelope(job("j-new", "STARTING")))
        started = hook.start_job("dep-1", restore_strategy="NONE", local_variables={"day": "1"})
    assert started.job_id == "j-new"
    (post,) = posts(mock)
    assert json.loads(post.body)["restoreStrategy"] == {"kind": "NONE"}
    assert post.headers["content-type"] == "application/json; charset=utf-8"


def test_lost_answer_to_a_start_finds_the_started_job_instead_of_starting_another(hook: FlinkVVPHook) -> None:
    with requests_mock.Mocker() as mock:
        mock.get(
            requests_mock.ANY,
            [
                {"json": envelope([job("j-old", "FINISHED")], total=1)},
                {"json": envelope([job("j-new", "STARTING"), job("j-old", "FINISHED")], total=2)},
            ],
        )
        mock.post(START, exc=requests.exceptions.ReadTimeout("the answer was lost"))
        started = hook.start_job("dep-1")
    assert started.job_id == "j-new"
    assert len(posts(mock)) == 1


def test_lost_answer_without_a_new_job_starts_again(hook: FlinkVVPHook) -> None:
    with requests_mock.Mocker() as mock:
        mock.get(requests_mock.ANY, json=envelope([job("j-old", "FINISHED")], total=1))
        mock.post(
            START,
            [
                {"status_code": 500, "json": {"RequestId": "R", "Code": "InternalError", "Message": "oops"}},
                {"json": envelope(job("j-new", "STARTING"))},
            ],
        )
        started = hook.start_job("dep-1")
    assert started.job_id == "j-new"
    assert len(posts(mock)) == 2


def test_throttled_start_is_repeated_without_reading_jobs_again(hook: FlinkVVPHook) -> None:
    throttled = {"status_code": 400, "json": {"RequestId": "R", "Code": "Throttling.User", "Message": "slow"}}
    with requests_mock.Mocker() as mock:
        mock.get(requests_mock.ANY, json=envelope([], total=0))
        mock.post(START, [throttled, {"json": envelope(job("j-new", "STARTING"))}])
        assert hook.start_job("dep-1").job_id == "j-new"
    assert len(posts(mock)) == 2
    assert mock.call_count == 3  # one listing before the start, none after the throttled attempt


def test_a_refused_start_is_not_repeated(hook: FlinkVVPHook) -> None:
    refused = {"requestId": "R2", "success": False, "httpCode": 400, "errorCode": "990402", "errorMessage": "busy"}
    with requests_mock.Mocker() as mock:
        mock.get(requests_mock.ANY, json=envelope([], total=0))
        mock.post(START, json=refused)
        with pytest.raises(VVPApiError, match="StartJobWithParams failed: 990402: busy"):
            hook.start_job("dep-1")
    assert len(posts(mock)) == 1


def test_lost_answer_to_a_stop_reads_the_job_before_stopping_again(hook: FlinkVVPHook) -> None:
    with requests_mock.Mocker() as mock:
        mock.post(STOP, exc=requests.exceptions.ConnectionError("connection reset"))
        mock.get(f"{BASE}/jobs/j-run", json=envelope(job("j-run", "CANCELLING")))
        stopped = hook.stop_job("j-run", stop_strategy="STOP_WITH_SAVEPOINT")
    assert stopped.status == "CANCELLING"
    assert len(posts(mock)) == 1
    assert json.loads(posts(mock)[0].body) == {"stopStrategy": "STOP_WITH_SAVEPOINT"}


def test_lost_answer_to_a_stop_of_a_still_running_job_stops_again(hook: FlinkVVPHook) -> None:
    with requests_mock.Mocker() as mock:
        mock.post(
            STOP,
            [
                {"exc": requests.exceptions.ReadTimeout("lost")},
                {"json": envelope(job("j-run", "CANCELLING"))},
            ],
        )
        mock.get(f"{BASE}/jobs/j-run", json=envelope(job("j-run", "RUNNING")))
        assert hook.stop_job("j-run").status == "CANCELLING"
    assert len(posts(mock)) == 2


def test_get_job(hook: FlinkVVPHook) -> None:
    with requests_mock.Mocker() as mock:
        mock.get(f"{BASE}/jobs/j-1", json=envelope(job("j-1", "RUNNING")))
        assert hook.get_job("j-1").status == "RUNNING"


# Answers to a start that cannot be read: the start may well have run.
UNREADABLE_ANSWERS: list[dict[str, Any]] = [
    {"status_code": 200, "text": "<html><body>OK</body></html>"},
    {"status_code": 200, "json": {"unexpected": True}},
    {"status_code": 200, "json": envelope({"jobId": "j-new", "deploymentId": "dep-1"})},  # no status
    {"status_code": 200, "json": envelope({"jobId": "", "deploymentId": "dep-1", "status": {}})},
    {"status_code": 200, "json": {"requestId": "R", "success": False, "errorCode": {"x": 1}}},
]


@pytest.mark.parametrize("unreadable", UNREADABLE_ANSWERS)
def test_a_start_answered_unreadably_finds_the_started_job_instead_of_starting_another(
    hook: FlinkVVPHook, unreadable: dict[str, Any]
) -> None:
    with requests_mock.Mocker() as mock:
        mock.get(
            requests_mock.ANY,
            [
                {"json": envelope([job("j-old", "FINISHED")], total=1)},
                {"json": envelope([job("j-new", "STARTING"), job("j-old", "FINISHED")], total=2)},
            ],
        )
        mock.post(START, **unreadable)
        started = hook.start_job("dep-1")
    assert started.job_id == "j-new"
    assert len(posts(mock)) == 1


# What GetJob may say after a stop whose answer was lost, and whether that confirms the stop.
STATUS_AFTER_A_LOST_STOP = [
    *[(job("j-run", status), status == "CANCELLING" or status in TERMINAL_JOB_STATUSES) for status in JOB_STATUSES],
    (job("j-run", "cancelling"), True),  # the case is the service's, the state is the same
    (job("j-run", " Failed "), True),
]


@pytest.mark.parametrize(("read", "confirmed"), STATUS_AFTER_A_LOST_STOP)
def test_a_lost_stop_is_confirmed_only_by_a_cancelling_or_ended_job(
    hook: FlinkVVPHook, read: dict[str, Any], confirmed: bool
) -> None:
    with requests_mock.Mocker() as mock:
        mock.post(
            STOP, [{"exc": requests.exceptions.ReadTimeout("lost")}, {"json": envelope(job("j-run", "CANCELLING"))}]
        )
        mock.get(f"{BASE}/jobs/j-run", json=envelope(read))
        stopped = hook.stop_job("j-run")
    assert len(posts(mock)) == (1 if confirmed else 2)
    assert stopped.status in JOB_STATUSES


@pytest.mark.parametrize(
    "status",
    [None, {}, {"currentJobStatus": None}, {"currentJobStatus": ""}, {"currentJobStatus": "UNKNOWN"}, "CANCELLED"],
)
def test_a_job_read_without_a_usable_status_never_confirms_a_lost_stop(hook: FlinkVVPHook, status: Any) -> None:
    unusable = {"jobId": "j-run", "deploymentId": "dep-1", **({"status": status} if status is not None else {})}
    with requests_mock.Mocker() as mock:
        mock.post(STOP, exc=requests.exceptions.ReadTimeout("lost"))
        mock.get(f"{BASE}/jobs/j-run", json=envelope(unusable))
        with pytest.raises(VVPOutcomeUnknownError, match="StopJob may have run") as info:
            hook.stop_job("j-run")
    assert "InvalidResponse" in str(info.value)
    assert len(posts(mock)) == 1
