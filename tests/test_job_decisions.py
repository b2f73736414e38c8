"""decide_job and validate_job_watch: the one job-status decision of the job sensor, trigger and operators."""

from __future__ import annotations

import pytest

from airflow_provider_flink_vvp.api.models import JOB_STATUSES, Job
from airflow_provider_flink_vvp.decisions import Outcome, decide_job, validate_job_watch


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
