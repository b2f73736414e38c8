"""The "is the wait over?" logic shared by the sensor and the trigger."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_flink_vvp.api.errors import (
    DeploymentNotFoundError,
    VVPApiError,
    VVPConfigurationError,
    VVPConnectionError,
    VVPError,
)
from airflow_provider_flink_vvp.api.models import JOB_SUMMARY_STATES, Deployment, Job, JobSummary
from airflow_provider_flink_vvp.decisions import Baseline, Outcome, decide, keeps_waiting, validate_watch


def deployment(deployment_id: str = "d-1", **counts: int) -> Deployment:
    return Deployment.from_api(
        {"deploymentId": deployment_id, "name": "orders", "namespace": "ns", "jobSummary": counts}
    )


def baseline(deployment_id: str = "d-1", **counts: int) -> Baseline:
    return Baseline(deployment_id, JobSummary(**counts))


def watch(
    now: Deployment,
    before: Baseline | None,
    targets: tuple[str, ...] = ("running",),
    failures: tuple[str, ...] = ("failed",),
) -> Any:
    return decide(now, before, target_states=targets, failure_states=failures)


@pytest.mark.parametrize("state", ["starting", "running", "cancelling"])
def test_a_current_state_is_met_when_a_job_is_in_it_now_even_at_the_first_poke(state: str) -> None:
    decision = watch(deployment(**{state: 1}), None, targets=(state,))

    assert decision.outcome is Outcome.SUCCESS
    assert decision.baseline == baseline(**{state: 1})


@pytest.mark.parametrize("state", ["starting", "running", "cancelling"])
def test_a_current_state_is_not_met_with_no_job_in_it(state: str) -> None:
    decision = watch(deployment(**{state: 0}), baseline(**{state: 3}), targets=(state,))

    assert decision.outcome is Outcome.WAITING


@pytest.mark.parametrize("state", ["cancelled", "finished", "failed"])
def test_an_accumulated_state_is_not_met_by_history_at_the_first_poke(state: str) -> None:
    decision = watch(deployment(**{state: 4}), None, targets=(state,), failures=())

    assert decision.outcome is Outcome.WAITING
    assert decision.baseline == baseline(**{state: 4})


@pytest.mark.parametrize("state", ["cancelled", "finished", "failed"])
def test_an_accumulated_state_is_met_once_its_count_grows_past_the_baseline(state: str) -> None:
    unchanged = watch(deployment(**{state: 4}), baseline(**{state: 4}), targets=(state,), failures=())
    grown = watch(deployment(**{state: 5}), baseline(**{state: 4}), targets=(state,), failures=())

    assert unchanged.outcome is Outcome.WAITING
    assert grown.outcome is Outcome.SUCCESS
    assert grown.baseline == baseline(**{state: 4}), "the baseline of the first poke is kept"
    assert (grown.before, grown.now) == (JobSummary(**{state: 4}), JobSummary(**{state: 5}))


def test_six_historical_failures_and_a_running_job_satisfy_running_without_tripping_failed() -> None:
    decision = watch(deployment(failed=6, running=1), None)

    assert decision.outcome is Outcome.SUCCESS
    assert decision.message == "Deployment 'orders' (d-1) is running: running 1 -> 1"


def test_a_batch_deployment_that_finished_four_times_satisfies_finished_only_when_it_finishes_again() -> None:
    first = watch(deployment(finished=4), None, targets=("finished",))
    while_running = watch(deployment(finished=4, running=1), first.baseline, targets=("finished",))
    finished_again = watch(deployment(finished=5), while_running.baseline, targets=("finished",))

    assert [first.outcome, while_running.outcome, finished_again.outcome] == [
        Outcome.WAITING,
        Outcome.WAITING,
        Outcome.SUCCESS,
    ]
    assert finished_again.message == "Deployment 'orders' (d-1) is finished: finished 4 -> 5"


def test_a_new_failure_fails_the_wait_and_names_the_counts() -> None:
    decision = watch(deployment(failed=7), baseline(failed=6))

    assert decision.outcome is Outcome.FAILURE
    assert decision.message == "Deployment 'orders' (d-1) has failed jobs: failed 6 -> 7"


def test_a_failure_state_met_wins_over_a_target_state_met_in_the_same_poke() -> None:
    decision = watch(deployment(failed=1, running=1), baseline())

    assert decision.outcome is Outcome.FAILURE


def test_a_current_failure_state_fails_at_the_first_poke() -> None:
    decision = watch(deployment(cancelling=1), None, failures=("cancelling",))

    assert decision.outcome is Outcome.FAILURE


def test_a_newer_deployment_with_the_same_name_is_watched_from_zero() -> None:
    decision = watch(deployment("d-2", finished=1), baseline("d-1", finished=9), targets=("finished",))

    assert decision.outcome is Outcome.SUCCESS
    assert decision.baseline == baseline("d-1", finished=9), "the first look's baseline is kept"
    assert decision.before == JobSummary()


@pytest.mark.parametrize(
    ("now", "targets", "failures", "outcome"),
    [
        (deployment("d-1", failed=1), ("running",), ("failed",), Outcome.FAILURE),
        (deployment("d-1", finished=1), ("finished",), ("failed",), Outcome.SUCCESS),
        (deployment("d-1", running=1, failed=4), ("running",), ("failed",), Outcome.FAILURE),
        (deployment("d-1", cancelled=2), ("running",), ("cancelled",), Outcome.FAILURE),
        (deployment("d-1", starting=1), ("running",), ("failed",), Outcome.WAITING),
        (None, ("running",), ("failed",), Outcome.WAITING),
    ],
)
def test_a_deployment_the_first_look_did_not_see_is_watched_from_zero(
    now: Deployment | None, targets: tuple[str, ...], failures: tuple[str, ...], outcome: Outcome
) -> None:
    nothing_seen = Baseline.first_look(None)

    decision = decide(now, nothing_seen, target_states=targets, failure_states=failures)

    assert nothing_seen == Baseline(None, JobSummary())
    assert (decision.outcome, decision.before, decision.baseline) == (outcome, JobSummary(), nothing_seen)


def test_a_baseline_decides_the_same_whatever_looks_came_before() -> None:
    first = baseline("d-1", failed=6)
    looks = [deployment("d-1", failed=6), deployment("d-2", running=0), deployment("d-1", failed=6), None]

    for look in looks:
        decision = decide(look, first, target_states=("running",), failure_states=("failed",))
        assert (decision.outcome, decision.baseline) == (Outcome.WAITING, first)


def test_the_nothing_seen_baseline_travels_as_json() -> None:
    assert Baseline.from_json(Baseline.first_look(None).to_json()) == Baseline(None, JobSummary())


def test_a_newer_deployment_with_a_failed_job_fails_the_wait() -> None:
    decision = watch(deployment("d-2", failed=1), baseline("d-1", failed=9))

    assert decision.outcome is Outcome.FAILURE
    assert "(d-2)" in decision.message


def test_waiting_names_the_deployment_and_every_watched_count() -> None:
    decision = watch(deployment(starting=1, failed=2), None, targets=("running", "finished"))

    assert decision.outcome is Outcome.WAITING
    assert decision.message == (
        "Deployment 'orders' (d-1) is not yet running or finished: running 0 -> 0, finished 0 -> 0, failed 2 -> 2"
    )


def test_a_deployment_read_without_its_job_summary_is_refused() -> None:
    no_summary = Deployment.from_api({"deploymentId": "d-1", "name": "orders"})

    with pytest.raises(ValueError, match="without its job summary"):
        watch(no_summary, None)


def test_a_baseline_survives_a_round_trip_through_json() -> None:
    original = baseline("d-9", failed=6, running=1)

    assert Baseline.from_json(original.to_json()) == original


def test_state_names_are_case_insensitive_and_a_single_string_is_one_state() -> None:
    assert validate_watch("RUNNING", [" Failed", "failed"]) == (("running",), ("failed",))


@pytest.mark.parametrize(
    ("targets", "failures", "argument", "bad"),
    [
        (("runing",), ("failed",), "target_states", "runing"),
        (("running",), ("FAILED", "error"), "failure_states", "error"),
    ],
)
def test_unknown_state_names_are_rejected_with_the_valid_ones(
    targets: tuple[str, ...], failures: tuple[str, ...], argument: str, bad: str
) -> None:
    with pytest.raises(ValueError) as raised:
        validate_watch(targets, failures)

    message = str(raised.value)
    assert argument in message
    assert repr(bad) in message
    assert all(state in message for state in JOB_SUMMARY_STATES)


def test_no_target_state_is_rejected() -> None:
    with pytest.raises(ValueError, match="target_states needs at least one state"):
        validate_watch((), ("failed",))


def test_a_state_that_is_both_target_and_failure_is_rejected() -> None:
    with pytest.raises(ValueError, match="both target and failure"):
        validate_watch(("failed",), ("failed",))


@pytest.mark.parametrize(
    ("error", "waits"),
    [
        (DeploymentNotFoundError(name="orders", namespace="ns", workspace="ws"), True),
        (VVPConnectionError("refused", sent=False), True),
        (VVPApiError(code="Throttling.User", message="slow down", request_id=None, http_status=429), True),
        (VVPApiError(code="InternalError", message="oops", request_id=None, http_status=500), True),
        (VVPApiError(code="SignatureDoesNotMatch", message="bad", request_id=None, http_status=400), False),
        (VVPApiError(code="Forbidden.RAM", message="no", request_id=None, http_status=403), False),
        (VVPConfigurationError("no workspace"), False),
    ],
)
def test_only_a_missing_deployment_or_a_transient_error_keeps_the_wait_going(error: VVPError, waits: bool) -> None:
    assert keeps_waiting(error) is waits


SINCE = 1_800_000_000.0  # the first attempted look, epoch seconds


def ended(status: str, at: float | None, job_id: str = "") -> Job:
    """A job of d-1 in ``status`` that ended at ``at`` (epoch seconds; None: no endTime)."""
    return Job.from_api(
        {
            "jobId": job_id or f"{status}-{at}",
            "deploymentId": "d-1",
            "status": {"currentJobStatus": status},
            "endTime": None if at is None else int(at * 1000),
        }
    )


def created(at: float | None, **counts: int) -> Deployment:
    raw: dict[str, Any] = {"deploymentId": "d-1", "name": "orders", "namespace": "ns", "jobSummary": counts}
    if at is not None:
        raw["createdAt"] = str(int(at))
    return Deployment.from_api(raw)


@pytest.mark.parametrize(
    ("now", "jobs", "needs_jobs", "expected"),
    [
        # No deployment: nothing seen, every later one watched from zero.
        (None, [], False, Baseline(None, JobSummary())),
        # Created after the first attempt: from zero, whatever its counts (its jobs are not read).
        (created(SINCE + 5, failed=1, running=1), [], False, baseline()),
        # Older: the jobs that ended after the first attempt are taken off, per state.
        (
            created(SINCE - 3600, failed=3, finished=5, cancelled=2, running=1),
            [ended("FAILED", SINCE + 1), ended("FINISHED", SINCE + 2), ended("FINISHED", SINCE + 3)],
            True,
            baseline(failed=2, finished=3, cancelled=2, running=1),
        ),
        # Jobs that ended before it, without an endTime, or that have not ended stay in the baseline.
        (
            created(SINCE - 3600, failed=3, cancelled=1, running=1),
            [ended("FAILED", SINCE - 1), ended("CANCELLED", None), ended("RUNNING", None)],
            True,
            baseline(failed=3, cancelled=1, running=1),
        ),
        # No createdAt: counted as older. A count never goes below zero.
        (created(None, cancelled=0), [ended("CANCELLED", SINCE + 1)], True, baseline()),
    ],
)
def test_a_late_baseline_is_the_counts_as_they_stood_at_the_first_attempt(
    now: Deployment | None, jobs: list[Job], needs_jobs: bool, expected: Baseline
) -> None:
    assert Baseline.needs_jobs(SINCE, now) is needs_jobs
    assert Baseline.as_of(SINCE, now, jobs) == expected


@pytest.mark.parametrize(
    ("ended_at", "in_baseline"),
    [
        (SINCE - 1, True),  # before the wait began: history
        (SINCE + 1, False),  # after it began and before the deployment was asked for: counted, so taken off
        (SINCE + 10, False),  # as it was asked for
        (SINCE + 11, True),  # after: maybe not in its counts, so not taken off (a later look's counts have it)
    ],
)
def test_a_late_baseline_takes_off_only_what_ended_before_the_deployment_was_asked_for(
    ended_at: float, in_baseline: bool
) -> None:
    now = created(SINCE - 3600, failed=3)
    late = Baseline.as_of(SINCE, now, [ended("FAILED", ended_at)], asked_at=SINCE + 10)
    assert late.summary.failed == (3 if in_baseline else 2)
