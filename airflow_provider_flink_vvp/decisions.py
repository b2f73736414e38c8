"""Is a wait over? One answer for the sensors, the operators and the triggers alike.

Pure logic, no Airflow imports, no I/O: :func:`decide` over a deployment's
:class:`~.api.models.JobSummary` counts, :func:`decide_job` over one :class:`~.api.models.Job`.

``starting``, ``running`` and ``cancelling`` count jobs in that state now, so such a state is
met while its count is above zero. ``cancelled``, ``finished`` and ``failed`` accumulate over
the deployment's whole history, so such a state is met only once its count has grown past the
baseline, the counts as they stood at the wait's first look (:class:`Baseline`): six failures last
month must not fail today's wait.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from airflow_provider_flink_vvp.api.errors import DeploymentNotFoundError, VVPError
from airflow_provider_flink_vvp.api.models import (
    JOB_STATUSES,
    JOB_SUMMARY_STATES,
    TERMINAL_JOB_STATUSES,
    Deployment,
    Job,
    JobSummary,
)

T = TypeVar("T")

CURRENT_STATES = frozenset({"starting", "running", "cancelling"})
ACCUMULATED_STATES = frozenset({"cancelled", "finished", "failed"})


class Outcome(StrEnum):
    WAITING = "waiting"
    SUCCESS = "success"
    FAILURE = "failure"


@dataclass(frozen=True)
class Baseline:
    """What the wait's first look saw: the watched deployment's job summary, or no deployment at all
    (``deployment_id`` None); it travels as JSON.

    Every deployment the first look did not see is watched from zero. When the first look got no answer,
    the first answered look forms it as it stood at the first attempt: :meth:`as_of`.
    """

    deployment_id: str | None
    summary: JobSummary

    @classmethod
    def first_look(cls, deployment: Deployment | None) -> Baseline:
        """The baseline of a first look that found ``deployment`` (None: found none)."""
        if deployment is None:
            return cls(None, JobSummary())
        return cls(deployment.deployment_id, _summary(deployment))

    @classmethod
    def as_of(
        cls, since: float, deployment: Deployment | None, jobs: Iterable[Job] = (), *, asked_at: float | None = None
    ) -> Baseline:
        """The baseline as it stood at ``since``, the wait's first attempted look (epoch seconds), taken by a
        later look because no look before it got an answer.

        No deployment: none, and every deployment seen later is watched from zero. A deployment created after
        ``since`` is watched from zero. For an older one, the ``jobs`` of its ListJobs that ended FAILED,
        FINISHED or CANCELLED after ``since`` are taken off the counts now: what ended after the wait began
        counts, whenever the first answer came. :meth:`needs_jobs` says when ``jobs`` are needed. ``asked_at``:
        when the deployment was asked for; a job that ended later may be missing from its counts, so it is not
        taken off (a later look, asked for after it ended, counts it).
        """
        if deployment is None:
            return cls(None, JobSummary())
        if not cls.needs_jobs(since, deployment):
            return cls(deployment.deployment_id, JobSummary())
        now = _summary(deployment)
        ended = Counter(
            job.status.lower()
            for job in jobs
            if job.is_terminal
            and job.end_time is not None
            and since < job.end_time.timestamp() <= (math.inf if asked_at is None else asked_at)
        )
        earlier = {state: max(0, getattr(now, state) - ended[state]) for state in ACCUMULATED_STATES}
        return cls(deployment.deployment_id, replace(now, **earlier))

    @staticmethod
    def needs_jobs(since: float, deployment: Deployment | None) -> bool:
        """Whether :meth:`as_of` needs the deployment's jobs: it exists, and was not created after ``since``."""
        if deployment is None:
            return False
        return deployment.created_at is None or deployment.created_at.timestamp() <= since

    def before(self, deployment: Deployment) -> JobSummary:
        """The counts ``deployment`` is compared with: the first look's, or zeros for one it did not see."""
        return self.summary if deployment.deployment_id == self.deployment_id else JobSummary()

    def to_json(self) -> dict[str, Any]:
        return {"deployment_id": self.deployment_id, "summary": self.summary.as_dict()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Baseline:
        deployment_id = data["deployment_id"]
        return cls(
            deployment_id=None if deployment_id is None else str(deployment_id),
            summary=JobSummary.from_api(data["summary"]),
        )


@dataclass(frozen=True)
class Decision:
    """What one look at the deployment says.

    :param outcome: keep waiting, or the wait is over with success or failure.
    :param baseline: the baseline to carry to the next look (the one given, or the first look's).
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
    """Validated job summary ``(target_states, failure_states)``, lowercased: at least one target, none in both."""
    return _SUMMARY_STATES.validate(target_states, failure_states)


def validate_job_watch(
    target_statuses: str | Iterable[str], failure_statuses: str | Iterable[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Validated job ``(target_statuses, failure_statuses)``, uppercased: at least one target, none in both."""
    return _JOB_STATUSES.validate(target_statuses, failure_statuses)


def decide(
    deployment: Deployment | None,
    baseline: Baseline | None,
    *,
    target_states: Sequence[str],
    failure_states: Sequence[str],
) -> Decision:
    """Decide on the latest deployment with the watched name (None: there is none), given the baseline.

    ``baseline`` None (the first look) takes it from this look: :meth:`Baseline.first_look`. The baseline
    is never moved after that, so a look decides the same whatever looks came before it. A deployment
    the first look did not see is watched from zero. No deployment keeps the wait going. A failure state
    met wins over a target state met in the same look. States must come from :func:`validate_watch`.
    """
    if baseline is None:
        baseline = Baseline.first_look(deployment)
    if deployment is None:
        none = JobSummary()
        return Decision(Outcome.WAITING, baseline, "No deployment with the name yet", none, none)
    now = _summary(deployment)
    before = baseline.before(deployment)

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


@dataclass(frozen=True)
class JobDecision:
    """What one look at a job says.

    :param outcome: keep waiting, or the wait is over with success or failure.
    :param message: a sentence naming the job, its status and, for a failed job, the reason.
    :param job_id: the job's ID.
    :param deployment_id: its deployment's ID.
    :param status: its ``currentJobStatus``.
    """

    outcome: Outcome
    message: str
    job_id: str
    deployment_id: str
    status: str


def decide_job(job: Job, *, target_statuses: Sequence[str], failure_statuses: Sequence[str]) -> JobDecision:
    """Decide on a job's status; statuses must come from :func:`validate_job_watch`.

    A failure status wins over a target status. A terminal status (FAILED, CANCELLED, FINISHED) that is
    neither a target nor a failure ends the wait as a failure too: that job will never reach a target.
    Any other status (STARTING, RUNNING, CANCELLING, or one this provider does not know) keeps waiting.
    """
    name = f"Job {job.job_id} of deployment {job.deployment_id}"
    failure = ""
    if job.failure is not None and (job.failure.reason or job.failure.message):
        failure = f": {job.failure.describe()}"
    if job.status in failure_statuses:
        outcome, message = Outcome.FAILURE, f"{name} is {job.status}{failure}"
    elif job.status in target_statuses:
        outcome, message = Outcome.SUCCESS, f"{name} is {job.status}"
    elif job.status in TERMINAL_JOB_STATUSES:
        outcome = Outcome.FAILURE
        message = f"{name} ended {job.status}{failure}, so it will never be {_or(target_statuses)}"
    else:
        outcome, message = Outcome.WAITING, f"{name} is {job.status}, not yet {_or(target_statuses)}"
    return JobDecision(
        outcome=outcome, message=message, job_id=job.job_id, deployment_id=job.deployment_id, status=job.status
    )


def started_by_earlier_tries(jobs: Iterable[Job], since: datetime | None, before: datetime | None) -> Job | None:
    """The job an earlier try of a task started, told by time where nothing recorded it: the newest of ``jobs``
    started at ``since`` (when the tries began) or later and before ``before`` (this try's start; None: now).

    None without ``since``, or when no job started in that window. A job started meanwhile by someone else is
    taken for the task's too: the window is all that tells them apart.
    """
    if since is None:
        return None
    return newest_within(jobs, lambda job: job.start_time, since=since, before=before)


def newest_within(
    items: Iterable[T], time_of: Callable[[T], datetime | None], *, since: datetime, before: datetime | None
) -> T | None:
    """The newest of ``items`` whose time is at ``since`` or later and before ``before`` (None: no end); an item
    without a time cannot be placed and is left out. Of equal times the first wins: the API lists newest first."""
    placed = [
        (time, item)
        for item in items
        if (time := time_of(item)) is not None and since <= time and (before is None or time < before)
    ]
    return max(placed, key=lambda timed: timed[0], default=(None, None))[1]


def job_timeout_message(job_id: str, target_statuses: Sequence[str], last_status: str | None) -> str:
    """What a wait for a job that timed out says, in the worker and in the triggerer alike."""
    return (
        f"Timed out waiting for job {job_id} to be {_or(target_statuses)}; "
        f"it was last seen {last_status or 'never (no answer)'}"
    )


def missing_deployment_message(error: DeploymentNotFoundError, *, missing_deployment: str, first_look: bool) -> str:
    """What a look that found no deployment says; only a first look with ``missing_deployment="fail"`` fails
    (the caller fails with this message), any other waits for the deployment."""
    if first_look and missing_deployment == "fail":
        return f"{error} To wait for it to be created, set missing_deployment='wait'."
    if missing_deployment == "wait":
        return f"{error} Waiting for it (missing_deployment='wait')."
    return f"{error} An earlier look found it; waiting for it."


def keeps_waiting(error: VVPError) -> bool:
    """Whether an error reading the deployment means "not yet": no such deployment yet, or a transient error.

    Anything else (credentials, permissions, configuration) will not heal by waiting.
    """
    return isinstance(error, DeploymentNotFoundError) or error.retryable


def _summary(deployment: Deployment) -> JobSummary:
    if deployment.job_summary is None:
        raise ValueError(f"deployment {deployment.deployment_id} was read without its job summary")
    return deployment.job_summary


def _is_met(state: str, before: JobSummary, now: JobSummary) -> bool:
    count = getattr(now, state)
    return bool(count > 0 if state in CURRENT_STATES else count > getattr(before, state))


def _or(states: Sequence[str]) -> str:
    return " or ".join(states)


def _counts(states: Iterable[str], before: JobSummary, now: JobSummary) -> str:
    return ", ".join(f"{state} {getattr(before, state)} -> {getattr(now, state)}" for state in dict.fromkeys(states))


@dataclass(frozen=True)
class _Vocabulary:
    """The names a watch may use (job summary states, or job statuses) and how its errors speak of them."""

    names: tuple[str, ...]
    kind: str
    singular: str
    plural: str
    normalize: Callable[[str], str]

    def validate(
        self, targets: str | Iterable[str], failures: str | Iterable[str]
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        valid = f"valid {self.plural} are: {', '.join(self.names)}"
        target_names = self._names(targets, f"target_{self.plural}", valid)
        failure_names = self._names(failures, f"failure_{self.plural}", valid)
        if not target_names:
            raise ValueError(f"target_{self.plural} needs at least one {self.singular}; {valid}")
        if overlap := sorted(set(target_names) & set(failure_names)):
            raise ValueError(
                f"{overlap!r} are both target and failure {self.plural}; "
                f"remove them from failure_{self.plural} to wait for them"
            )
        return target_names, failure_names

    def _names(self, names: str | Iterable[str], argument: str, valid: str) -> tuple[str, ...]:
        """The names, normalized; a single string is one name, not a sequence of letters."""
        listed = [names] if isinstance(names, str) else list(names)
        invalid = [n for n in listed if not isinstance(n, str) or self.normalize(n.strip()) not in self.names]
        if invalid:
            raise ValueError(f"{argument} has unknown {self.kind} {self.plural} {invalid!r}; {valid}")
        return tuple(dict.fromkeys(self.normalize(name.strip()) for name in listed))


_SUMMARY_STATES = _Vocabulary(JOB_SUMMARY_STATES, "job summary", "state", "states", str.lower)
_JOB_STATUSES = _Vocabulary(JOB_STATUSES, "job", "status", "statuses", str.upper)
