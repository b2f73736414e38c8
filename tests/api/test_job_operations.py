from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from airflow_provider_flink_vvp.api import Job, VVPConfigurationError
from airflow_provider_flink_vvp.api.models import MAX_FAILURE_MESSAGE_CHARS, Savepoint
from airflow_provider_flink_vvp.api.operations import get_job, list_jobs, start_job_with_params, stop_job
from airflow_provider_flink_vvp.api.responses import Envelope
from airflow_provider_flink_vvp.api.stack_traces import shorten_stack_trace

WHERE = {"namespace": "ns", "workspace": "ws"}


def test_start_job_body_and_encoded_colon_path() -> None:
    operation = start_job_with_params(
        **WHERE,
        deployment_id="dep-1",
        restore_strategy="FROM_SAVEPOINT",
        savepoint_id="sp-9",
        allow_non_restored_state=True,
        local_variables={"date": "2026-11-28", "n": "3"},
    )
    assert (operation.method, operation.path) == ("POST", "/api/v2/namespaces/ns/jobs%3Astart")
    assert operation.headers == {"workspace": "ws"}
    assert not operation.idempotent
    assert json.loads(operation.body) == {
        "deploymentId": "dep-1",
        "restoreStrategy": {"kind": "FROM_SAVEPOINT", "savepointId": "sp-9", "allowNonRestoredState": True},
        "localVariables": [{"name": "date", "value": "2026-11-28"}, {"name": "n", "value": "3"}],
    }


def test_start_job_defaults_to_latest_state_without_optional_fields() -> None:
    operation = start_job_with_params(**WHERE, deployment_id="dep-1")
    assert json.loads(operation.body) == {"deploymentId": "dep-1", "restoreStrategy": {"kind": "LATEST_STATE"}}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"restore_strategy": "LATEST"}, "restore_strategy must be one of NONE, LATEST_SAVEPOINT, FROM_SAVEPOINT"),
        ({"restore_strategy": "FROM_SAVEPOINT"}, "savepoint_id is required with restore_strategy FROM_SAVEPOINT"),
        ({"savepoint_id": "sp"}, "and only with it"),
        ({"deployment_id": ""}, "deployment_id must be a non-empty string"),
    ],
)
def test_start_job_rejects_bad_arguments(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(VVPConfigurationError, match=message):
        start_job_with_params(**{**WHERE, "deployment_id": "dep-1", **kwargs})


def test_stop_job_path_body_and_strategies() -> None:
    operation = stop_job(**WHERE, job_id="job/1", stop_strategy="STOP_WITH_SAVEPOINT")
    assert operation.path == "/api/v2/namespaces/ns/jobs/job%2F1%3Astop"
    assert json.loads(operation.body) == {"stopStrategy": "STOP_WITH_SAVEPOINT"}
    assert not operation.idempotent
    with pytest.raises(VVPConfigurationError, match="stop_strategy must be one of NONE, STOP_WITH_SAVEPOINT"):
        stop_job(**WHERE, job_id="j", stop_strategy="KILL")


def test_get_and_list_jobs_are_idempotent_reads() -> None:
    assert get_job(**WHERE, job_id="j1").path == "/api/v2/namespaces/ns/jobs/j1"
    listing = list_jobs(**WHERE, deployment_id="dep-1", page_index=2)
    assert listing.path == "/api/v2/namespaces/ns/jobs"
    assert listing.query == {"deploymentId": "dep-1", "pageIndex": "2", "pageSize": "100"}
    assert listing.idempotent and listing.method == "GET"


def test_job_parsing_with_failure_and_times() -> None:
    raw = {
        "jobId": "j1",
        "deploymentId": "dep-1",
        "startTime": 1714058507000,
        "endTime": 1714058600000,
        "status": {
            "currentJobStatus": "FAILED",
            "failure": {"reason": "RuntimeError", "message": "boom", "failedAt": 1714058600000},
        },
    }
    job = get_job(**WHERE, job_id="j1").parse(Envelope(request_id="R", data=raw), "GetJob")
    assert job == Job.from_api(raw)
    assert (job.status, job.is_terminal, job.is_active) == ("FAILED", True, False)
    assert job.failure is not None and (job.failure.reason, job.failure.message) == ("RuntimeError", "boom")
    assert job.start_time == datetime(2024, 4, 25, 15, 21, 47, tzinfo=UTC)
    page = list_jobs(**WHERE, deployment_id="dep-1").parse(
        Envelope(request_id="R", data=[raw], page_index=1, page_size=100, total_size=1), "ListJobs"
    )
    assert (page.total_size, [j.job_id for j in page.items]) == (1, ["j1"])


def test_running_job_has_no_failure() -> None:
    job = Job.from_api({"jobId": "j", "deploymentId": "d", "status": {"currentJobStatus": "RUNNING"}})
    assert job.failure is None and job.is_active and not job.is_terminal


STACK_TRACE_HEAD = "org.apache.flink.runtime.JobException: Recovery is suppressed\n"
STACK_TRACE_ROOT = "Caused by: java.lang.OutOfMemoryError: Java heap space"


def stack_trace(length: int) -> str:
    """A failure message of ``length`` characters: an exception, whole frames, and its root cause last."""
    frame = "\tat org.apache.flink.Frame.call(Frame.java:1)\n"
    frames = max(0, length - len(STACK_TRACE_HEAD) - len(STACK_TRACE_ROOT)) // len(frame)
    padding = length - len(STACK_TRACE_HEAD) - len(STACK_TRACE_ROOT) - frames * len(frame)
    if padding < 0:
        return "m" * length
    return "p" * padding + STACK_TRACE_HEAD + frame * frames + STACK_TRACE_ROOT


@pytest.mark.parametrize("kind", ["job", "savepoint"])
@pytest.mark.parametrize("length", [0, 1, MAX_FAILURE_MESSAGE_CHARS - 1, MAX_FAILURE_MESSAGE_CHARS, 2001, 10**6])
def test_a_job_or_savepoint_failure_message_is_kept_whole_up_to_the_limit_and_else_shortened(
    kind: str, length: int
) -> None:
    message = stack_trace(length)
    status = {"failure": {"reason": "JobException", "message": message}}
    if kind == "job":
        parsed: Job | Savepoint = Job.from_api(
            {"jobId": "j", "deploymentId": "d", "status": {"currentJobStatus": "FAILED", **status}}
        )
    else:
        parsed = Savepoint.from_api({"savepointId": "s", "deploymentId": "d", "status": {"state": "FAILED", **status}})

    assert parsed.failure is not None and parsed.failure.message is not None
    kept = parsed.failure.message
    if length <= MAX_FAILURE_MESSAGE_CHARS:
        assert kept == message
    else:  # shortened as tests/api/test_stack_traces.py tests
        assert (
            kept == shorten_stack_trace(message, MAX_FAILURE_MESSAGE_CHARS) and len(kept) <= MAX_FAILURE_MESSAGE_CHARS
        )
        assert STACK_TRACE_HEAD in kept and kept.endswith(STACK_TRACE_ROOT)
    assert parsed.failure.describe() == f"JobException: {kept or 'no message given'}"
