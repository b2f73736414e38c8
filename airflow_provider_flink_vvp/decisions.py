"""Is the wait for a deployment's jobs over? One answer for the sensor and the trigger alike.

Pure logic over :class:`~.api.models.JobSummary` counts: no Airflow imports, no I/O.

``starting``, ``running`` and ``cancelling`` count jobs in that state now, so such a state is
met while its count is above zero. ``cancelled``, ``finished`` and ``failed`` accumulate over
the deployment's whole history, so such a state is met only once its count has grown past the
baseline taken at the first poke: six failures last month must not fail today's wait.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from airflow_provider_flink_vvp.api.errors import DeploymentNotFoundError, VVPError
from airflow_provider_flink_vvp.api.models import JOB_SUMMARY_STATES, Deployment, JobSummary

CURRENT_STATES = frozenset({"starting", "running", "cancelling"})
ACCUMULATED_STATES = frozenset({"cancelled", "finished", "failed"})


class Outcome(StrEnum):
    WAITING = "waiting"
    SUCCESS = "success"
    FAILURE = "failure"


@dataclass(frozen=True)
class Baseline:
    """The job summary of the watched deployment when the wait began; it travels as JSON."""

    deployment_id: str
    summary: JobSummary

    def to_json(self) -> dict[str, Any]:
        return {"deployment_id": self.deployment_id, "summary": self.summary.as_dict()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Baseline:
        return cls(deployment_id=str(data["deployment_id"]), summary=JobSummary.from_api(data["summary"]))


@dataclass(frozen=True)
class Decision:
    """What one look at the deployment says.

    :param outcome: keep waiting, or the wait is over with success or failure.
    :param baseline: the baseline to carry to the next look.
    :param message: a sentence naming the deployment and the counts that decided.
    :param before: the baseline's counts (all zero for a deployment first seen after the wait began).
    :param now: the counts now.
    """

    outcome: Outcome
    baseline: Baseline
    message: str
    before: JobSummary
    now: JobSummary


def validate_watch(
    target_states: str | Iterable[str], failure_states: str | Iterable[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Validated ``(target_states, failure_states)``: at least one target, and no state in both."""
    targets = _validate_states(target_states, argument="target_states")
    failures = _validate_states(failure_states, argument="failure_states")
    if not targets:
        raise ValueError(f"target_states needs at least one state; valid states are: {', '.join(JOB_SUMMARY_STATES)}")
    if overlap := sorted(set(targets) & set(failures)):
        raise ValueError(
            f"{overlap!r} are both target and failure states; remove them from failure_states to wait for them"
        )
    return targets, failures


def decide(
    deployment: Deployment,
    baseline: Baseline | None,
    *,
    target_states: Sequence[str],
    failure_states: Sequence[str],
) -> Decision:
    """Decide on the latest deployment with the watched name, given the baseline of the first poke.

    ``baseline`` None (the first poke) takes the counts now as the baseline. A deployment other than
    the baseline's (a newer one with the same name) is watched from zero. A failure state met wins
    over a target state met in the same look. States must come from :func:`validate_watch`.
    """
    if deployment.job_summary is None:
        raise ValueError(f"deployment {deployment.deployment_id} was read without its job summary")
    now = deployment.job_summary
    if baseline is None:
        baseline = Baseline(deployment.deployment_id, now)
    elif baseline.deployment_id != deployment.deployment_id:
        baseline = Baseline(deployment.deployment_id, JobSummary())
    before = baseline.summary

    failed = [state for state in failure_states if _is_met(state, before, now)]
    reached = [state for state in target_states if _is_met(state, before, now)]
    name = f"Deployment {deployment.name!r} ({deployment.deployment_id})"
    if failed:
        outcome, message = Outcome.FAILURE, f"{name} has {_or(failed)} jobs: {_counts(failed, before, now)}"
    elif reached:
        outcome, message = Outcome.SUCCESS, f"{name} is {_or(reached)}: {_counts(reached, before, now)}"
    else:
        watched = [*target_states, *failure_states]
        outcome, message = Outcome.WAITING, f"{name} is not yet {_or(target_states)}: {_counts(watched, before, now)}"
    return Decision(outcome=outcome, baseline=baseline, message=message, before=before, now=now)


def keeps_waiting(error: VVPError) -> bool:
    """Whether an error reading the deployment means "not yet": no such deployment yet, or a transient error.

    Anything else (credentials, permissions, configuration) will not heal by waiting.
    """
    return isinstance(error, DeploymentNotFoundError) or error.retryable


def _is_met(state: str, before: JobSummary, now: JobSummary) -> bool:
    count = getattr(now, state)
    return bool(count > 0 if state in CURRENT_STATES else count > getattr(before, state))


def _or(states: Sequence[str]) -> str:
    return " or ".join(states)


def _counts(states: Iterable[str], before: JobSummary, now: JobSummary) -> str:
    return ", ".join(f"{state} {getattr(before, state)} -> {getattr(now, state)}" for state in dict.fromkeys(states))


def _validate_states(states: str | Iterable[str], *, argument: str) -> tuple[str, ...]:
    """The job-summary state names in ``states``, lowercased; raise ValueError naming the valid ones.

    A single string is one state, not a sequence of letters.
    """
    names = [states] if isinstance(states, str) else list(states)
    invalid = [name for name in names if not isinstance(name, str) or name.strip().lower() not in JOB_SUMMARY_STATES]
    if invalid:
        raise ValueError(
            f"{argument} has unknown job summary states {invalid!r}; valid states are: {', '.join(JOB_SUMMARY_STATES)}"
        )
    return tuple(dict.fromkeys(name.strip().lower() for name in names))
