"""decide_job and validate_job_watch: the one job-status decision of the job sensor, trigger and operators."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_flink_vvp.api.models import JOB_STATUSES, Job
from airflow_provider_flink_vvp.decisions import Outcome, decide_job, started_by_earlier_tries, validate_job_watch


def job(status: str, failure: dict[str, str] | None = None) -> Job:
    details: dict[str, object] = {"currentJobStatus": status}
    if failure:
        details["failure"] = failure
    return Job.from_api({"jobId": "j-1", "deploymentId": "d-1", "status": details})


# Waiting for RUNNING, failing on FAILED (the sensor's defaults): the outcome of every status.
EXPECTED = {
    "STARTING": (Outcome.WAITING, "Job j-1 of deployment d-1 is STARTING, not yet RUNNING"),
    "RUNNING": (Outcome.SUCCESS, "Job j-1 of deployment d-1 is RUNNING"),
    "CANCELLING": (Outcome.WAITING, "Job j-1 of deployment d-1 is CANCELLING, not yet RUNNING"),
    "FAILED": (Outcome.FAILURE, "Job j-1 of deployment d-1 is FAILED"),
    "CANCELLED": (Outcome.FAILURE, "Job j-1 of deployment d-1 ended CANCELLED, so it will never be RUNNING"),
    "FINISHED": (Outcome.FAILURE, "Job j-1 of deployment d-1 ended FINISHED, so it will never be RUNNING"),
}


def test_every_status_is_covered() -> None:
    assert set(EXPECTED) == set(JOB_STATUSES)


@pytest.mark.parametrize("status", sorted(EXPECTED))
def test_each_status_waiting_for_running(status: str) -> None:
    decision = decide_job(job(status), target_statuses=("RUNNING",), failure_statuses=("FAILED",))

    assert (decision.outcome, decision.message) == EXPECTED[status]
    assert (decision.job_id, decision.deployment_id, decision.status) == ("j-1", "d-1", status)


@pytest.mark.parametrize("status", JOB_STATUSES)
def test_each_status_is_met_when_it_is_the_target(status: str) -> None:
    assert decide_job(job(status), target_statuses=(status,), failure_statuses=()).outcome is Outcome.SUCCESS


@pytest.mark.parametrize("status", JOB_STATUSES)
def test_each_status_fails_when_it_is_a_failure(status: str) -> None:
    others = tuple(s for s in JOB_STATUSES if s != status)
    assert decide_job(job(status), target_statuses=others, failure_statuses=(status,)).outcome is Outcome.FAILURE


def test_failure_wins_over_target() -> None:
    decision = decide_job(job("FAILED"), target_statuses=("FAILED",), failure_statuses=("FAILED",))

    assert decision.outcome is Outcome.FAILURE


def test_the_failure_reason_and_message_are_told() -> None:
    failed = job("FAILED", {"reason": "OutOfMemory", "message": "TaskManager lost"})
    cancelled = job("CANCELLED", {"reason": "Stopped"})

    assert decide_job(failed, target_statuses=("FINISHED",), failure_statuses=("FAILED",)).message == (
        "Job j-1 of deployment d-1 is FAILED: OutOfMemory: TaskManager lost"
    )
    assert decide_job(cancelled, target_statuses=("FINISHED",), failure_statuses=()).message == (
        "Job j-1 of deployment d-1 ended CANCELLED: Stopped: no message given, so it will never be FINISHED"
    )


def test_statuses_are_validated_case_insensitively() -> None:
    assert validate_job_watch("running", [" Failed ", "CANCELLED", "failed"]) == (
        ("RUNNING",),
        ("FAILED", "CANCELLED"),
    )


@pytest.mark.parametrize(
    ("targets", "failures", "message"),
    [
        (
            ["DONE"],
            [],
            r"target_statuses has unknown job statuses \['DONE'\]; valid statuses are: STARTING, RUNNING, "
            "CANCELLING, FAILED, CANCELLED, FINISHED",
        ),
        (["RUNNING"], ["oops"], r"failure_statuses has unknown job statuses \['oops'\]"),
        ([], ["FAILED"], "target_statuses needs at least one status; valid statuses are: STARTING"),
        (
            ["FAILED"],
            ["failed"],
            r"\['FAILED'\] are both target and failure statuses; remove them from failure_statuses",
        ),
    ],
)
def test_invalid_watches_say_what_is_wrong_and_what_is_valid(
    targets: list[str], failures: list[str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        validate_job_watch(targets, failures)


RUN_BEGAN = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
RETRY_BEGAN = RUN_BEGAN + timedelta(minutes=10)


def started(job_id: str, minutes: float | None) -> Job:
    raw: dict[str, Any] = {"jobId": job_id, "deploymentId": "d-1", "status": {"currentJobStatus": "RUNNING"}}
    if minutes is not None:
        raw["startTime"] = int((RUN_BEGAN + timedelta(minutes=minutes)).timestamp() * 1000)
    return Job.from_api(raw)


@pytest.mark.parametrize(
    ("jobs", "since", "before", "expected"),
    [
        ([started("mine", 1)], RUN_BEGAN, RETRY_BEGAN, "mine"),
        # The newest of several started in the window (a try that saw its job fail started another).
        ([started("first", 1), started("second", 5), started("old", -60)], RUN_BEGAN, RETRY_BEGAN, "second"),
        # At the window's start it counts; at its end (the retry's own start) it does not.
        ([started("edge", 0)], RUN_BEGAN, RETRY_BEGAN, "edge"),
        ([started("retry's", 10)], RUN_BEGAN, RETRY_BEGAN, None),
        # Before the run began, without a startTime, or no jobs: none.
        ([started("yesterday", -24 * 60), started("unknown", None)], RUN_BEGAN, RETRY_BEGAN, None),
        ([], RUN_BEGAN, RETRY_BEGAN, None),
        # No start of the retry known: up to now.
        ([started("late", 30)], RUN_BEGAN, None, "late"),
        # No start of the run known: nothing can be told.
        ([started("mine", 1)], None, RETRY_BEGAN, None),
    ],
)
def test_the_job_of_earlier_tries_is_the_newest_started_between_the_runs_start_and_the_retrys(
    jobs: list[Job], since: datetime | None, before: datetime | None, expected: str | None
) -> None:
    found = started_by_earlier_tries(jobs, since, before)
    assert (found and found.job_id) == expected
