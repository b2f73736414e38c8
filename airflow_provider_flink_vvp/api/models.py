"""Typed views of the API's objects; each keeps the untouched JSON in ``raw``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

JOB_SUMMARY_STATES = ("starting", "running", "cancelling", "cancelled", "finished", "failed")

# Epoch values above this are milliseconds: as seconds they would lie after the year 5000.
_MILLISECONDS_THRESHOLD = 100_000_000_000


def parse_epoch(value: Any) -> datetime | None:
    """An epoch timestamp (seconds or milliseconds, number or string, stray whitespace allowed) as UTC.

    Raises ValueError for a value that is neither empty nor a number.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    number = float(value.strip() if isinstance(value, str) else value)
    if number >= _MILLISECONDS_THRESHOLD:
        number /= 1000
    return datetime.fromtimestamp(number, tz=UTC)


@dataclass(frozen=True)
class JobSummary:
    """How many of a deployment's jobs are in each state.

    ``starting``, ``running`` and ``cancelling`` count jobs in that state now; ``cancelled``,
    ``finished`` and ``failed`` accumulate over the deployment's history.
    """

    starting: int = 0
    running: int = 0
    cancelling: int = 0
    cancelled: int = 0
    finished: int = 0
    failed: int = 0

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> JobSummary:
        return cls(**{state: int(raw.get(state) or 0) for state in JOB_SUMMARY_STATES})

    def as_dict(self) -> dict[str, int]:
        return {state: getattr(self, state) for state in JOB_SUMMARY_STATES}


@dataclass(frozen=True)
class Deployment:
    """A deployment as GetDeploymentsByName returns it.

    ``job_summary`` is None when the call asked for ``ignoreJobSummary``.
    """

    deployment_id: str
    name: str
    namespace: str
    workspace: str | None
    execution_mode: str | None
    created_at: datetime | None
    modified_at: datetime | None
    job_summary: JobSummary | None
    raw: Mapping[str, Any] = field(repr=False, compare=False, hash=False)

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> Deployment:
        summary = raw.get("jobSummary")
        return cls(
            deployment_id=str(raw["deploymentId"]),
            name=str(raw.get("name", "")),
            namespace=str(raw.get("namespace", "")),
            workspace=raw.get("workspace"),
            execution_mode=raw.get("executionMode"),
            created_at=parse_epoch(raw.get("createdAt")),
            modified_at=parse_epoch(raw.get("modifiedAt")),
            job_summary=JobSummary.from_api(summary) if isinstance(summary, Mapping) else None,
            raw=raw,
        )


RESTORE_STRATEGIES = ("NONE", "LATEST_SAVEPOINT", "FROM_SAVEPOINT", "LATEST_STATE")
STOP_STRATEGIES = ("NONE", "STOP_WITH_SAVEPOINT", "STOP_WITH_DRAIN")
JOB_STATUSES = ("STARTING", "RUNNING", "CANCELLING", "FAILED", "CANCELLED", "FINISHED")
TERMINAL_JOB_STATUSES = frozenset({"FAILED", "CANCELLED", "FINISHED"})
ACTIVE_JOB_STATUSES = frozenset({"STARTING", "RUNNING"})


@dataclass(frozen=True)
class JobFailure:
    """Why a job failed, as ``status.failure`` says."""

    reason: str | None
    message: str | None
    failed_at: datetime | None


@dataclass(frozen=True)
class Job:
    """A run of a deployment.

    ``status`` is ``status.currentJobStatus``: STARTING, RUNNING, CANCELLING, or the terminal
    FAILED, CANCELLED, FINISHED.
    """

    job_id: str
    deployment_id: str
    status: str
    failure: JobFailure | None
    start_time: datetime | None
    end_time: datetime | None
    raw: Mapping[str, Any] = field(repr=False, compare=False, hash=False)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_JOB_STATUSES

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_JOB_STATUSES

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> Job:
        status = raw.get("status") or {}
        failure = status.get("failure")
        return cls(
            job_id=str(raw["jobId"]),
            deployment_id=str(raw.get("deploymentId", "")),
            status=str(status.get("currentJobStatus") or "UNKNOWN"),
            failure=JobFailure(
                reason=failure.get("reason"),
                message=failure.get("message"),
                failed_at=parse_epoch(failure.get("failedAt")),
            )
            if isinstance(failure, Mapping)
            else None,
            start_time=parse_epoch(raw.get("startTime")),
            end_time=parse_epoch(raw.get("endTime")),
            raw=raw,
        )
