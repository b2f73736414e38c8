"""What the emulator knows: access keys, deployments, jobs and a clock. Nothing here speaks HTTP.

Jobs move through a timeline of states on the state's clock, so a test that uses a
:class:`ManualClock` decides exactly when a job leaves STARTING. A deployment's
``jobSummary`` is computed on every read: the counts it was loaded with (its history)
plus its emulated jobs counted by their state now.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from airflow_provider_flink_vvp.api.errors import VVPConfigurationError
from airflow_provider_flink_vvp.api.models import (
    JOB_SUMMARY_STATES,
    RESTORE_STRATEGIES,
    STOP_STRATEGIES,
    Deployment,
    Job,
    describe_value,
    parse_epoch,
)
from airflow_provider_flink_vvp.api.operations import Credentials, check_namespace, check_workspace
from airflow_provider_flink_vvp.testing.lineage import LineageError, checked_lineage, lineage_view

RESOURCE_SETTING_FIELDS = ("streamingResourceSetting", "batchResourceSetting")
# How the emulator lists deployments: the service's order, or its reverse (to prove a client does not
# rely on the order it is given).
DEPLOYMENT_ORDERS = ("newest_first", "oldest_first")
_REQUIRED_DEPLOYMENT_FIELDS = ("deploymentId", "name", "namespace", "workspace", "createdAt")
STATE_FILE_KEYS = ("access_keys", "deployments", "jobs", "deployment_order")
# What a started job copies of its deployment's spec.
_JOB_SPEC_FIELDS = ("artifact", "flinkConf", "streamingResourceSetting", "batchResourceSetting")


class JobStatus(StrEnum):
    """``status.currentJobStatus`` of a job."""

    STARTING = "STARTING"
    RUNNING = "RUNNING"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.CANCELLED, JobStatus.FINISHED, JobStatus.FAILED)


class StateError(Exception):
    """A request the state refuses; ``code`` is the API's ``errorCode``."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class NotFoundError(StateError):
    """A workspace, namespace, deployment or job that does not exist."""


class InvalidArgumentError(StateError):
    """An input that is missing or malformed."""


class ConflictError(StateError):
    """An operation the object's current state does not allow (stopping a finished job)."""


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    """Real time."""

    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told; it starts at the real time, to the second."""

    def __init__(self, start: float | None = None) -> None:
        self._now = float(int(time.time()) if start is None else start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` and return the new time."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go back, got {seconds} seconds")
        with self._lock:
            self._now += seconds
            return self._now


@dataclass(frozen=True)
class Phase:
    """A state a job holds for ``seconds`` (None: for good)."""

    status: JobStatus
    seconds: float | None


@dataclass(frozen=True)
class JobDurations:
    """How long the emulator's own jobs stay in each passing state, in seconds of its clock."""

    starting: float = 1.0
    batch_running: float = 5.0
    cancelling: float = 1.0
    #: How long a savepoint is STARTED before it is COMPLETED (or FAILED).
    savepoint: float = 1.0

    def __post_init__(self) -> None:
        for name in ("starting", "batch_running", "cancelling", "savepoint"):
            if not _is_duration(getattr(self, name)):
                raise InvalidArgumentError(
                    "InvalidParameter",
                    f"{name} must be a finite number of seconds, 0 or more, got {getattr(self, name)!r}",
                )


@dataclass(frozen=True)
class Page:
    """One page of a list and the size of the whole list."""

    items: list[dict[str, Any]]
    index: int
    size: int
    total: int


@dataclass(frozen=True)
class TemporaryCredentials:
    """An STS-issued AccessKey: its secret, the security token that must come with it, and when both expire."""

    secret: str
    security_token: str
    expires_at: float


class _Job:
    """A job's stored JSON and the timeline its status follows from ``since`` on."""

    def __init__(self, raw: dict[str, Any], timeline: Sequence[Phase], since: float) -> None:
        self.raw = raw
        self.timeline = tuple(timeline)
        self.since = since
        #: Seconds between two restarts of the Flink job while it is RUNNING (a crash loop); None: it never restarts.
        self.restart_every: float | None = None

    def status_at(self, now: float) -> tuple[JobStatus, float]:
        """The status at ``now`` and the time that status began."""
        began = self.since
        for phase in self.timeline[:-1]:
            assert phase.seconds is not None  # only the last phase may last for good (checked on entry)
            if now < began + phase.seconds:
                return phase.status, began
            began += phase.seconds
        return self.timeline[-1].status, began

    def timeline_from(self, now: float) -> list[list[Any]]:
        """The phases left at ``now`` as a state file's timeline: the current one for the time it has left."""
        began = self.since
        for index, phase in enumerate(self.timeline[:-1]):
            assert phase.seconds is not None
            if now < began + phase.seconds:
                rest = [[later.status.value, later.seconds] for later in self.timeline[index + 1 :]]
                rest[-1][1] = None  # the last phase lasts for good, whatever it was given
                return [[phase.status.value, began + phase.seconds - now], *rest]
            began += phase.seconds
        return [[self.timeline[-1].status.value, None]]

    def view(self, now: float) -> dict[str, Any]:
        """The job as the API returns it at ``now``."""
        status, began = self.status_at(now)
        job = _copy_object(self.raw)
        details = job.setdefault("status", {})
        details["currentJobStatus"] = status.value
        if status is JobStatus.RUNNING:
            restarts = int((now - began) // self.restart_every) if self.restart_every else 0
            details.setdefault("running", {"observedFlinkJobStatus": "RUNNING", "observedFlinkJobRestarts": restarts})
        else:
            details.pop("running", None)
        if status is JobStatus.FAILED:
            details.setdefault(
                "failure",
                {
                    "reason": "EmulatedFailure",
                    "message": "the emulator's timeline failed this job",
                    "failedAt": _millis(began),
                },
            )
        if status.terminal and job.get("endTime") is None:
            job["endTime"] = _millis(began)
        return job


class _Savepoint:
    """A savepoint's stored JSON: STARTED until ``done_at``, then COMPLETED, or FAILED with ``failure``."""

    def __init__(self, raw: dict[str, Any], done_at: float, failure: Mapping[str, Any] | None) -> None:
        self.raw = raw
        self.done_at = done_at
        self.failure = dict(failure) if failure else None

    def view(self, now: float) -> dict[str, Any]:
        """The savepoint as the API returns it at ``now``."""
        savepoint = _copy_object(self.raw)
        status: dict[str, Any] = {"state": "STARTED"}
        if now >= self.done_at:
            savepoint["modifiedAt"] = _millis(self.done_at)
            if self.failure is None:
                status["state"] = "COMPLETED"
                savepoint["savepointLocation"] = (
                    f"oss://emulator-bucket/flink-savepoints/{self.raw['namespace']}/savepoint-{self.raw['savepointId']}"
                )
            else:
                status = {"state": "FAILED", "failure": {**self.failure, "failedAt": _millis(self.done_at)}}
        savepoint["status"] = status
        return savepoint


def _event(source: Mapping[str, Any], name: str, at: Any, message: str) -> dict[str, Any]:
    """An event of GetEvents about a job or a savepoint (``source``)."""
    return {
        "eventId": f"{name.lower()}-{source.get('jobId')}-{at}",
        "eventName": name,
        "deploymentId": source.get("deploymentId"),
        "jobId": source.get("jobId"),
        "namespace": source.get("namespace"),
        "workspace": source.get("workspace"),
        "message": message,
        "createdAt": str(at),
    }


class EmulatorState:
    """Access keys, deployments and jobs, safe to use from many threads.

    Namespaces and workspaces exist when a deployment lives in them or after
    :meth:`add_namespace`.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        job_durations: JobDurations | None = None,
        deployment_order: str = "newest_first",
    ) -> None:
        if deployment_order not in DEPLOYMENT_ORDERS:
            raise InvalidArgumentError(
                "InvalidStateFile",
                f"deployment_order must be one of {', '.join(DEPLOYMENT_ORDERS)}, got {deployment_order!r}",
            )
        self.clock: Clock = clock or SystemClock()
        self.job_durations = job_durations or JobDurations()
        #: ``newest_first`` (the service's order) or ``oldest_first``: the order deployments are listed in.
        self.deployment_order = deployment_order
        self.access_keys: dict[str, str] = {}
        self.temporary_credentials: dict[str, TemporaryCredentials] = {}
        #: Requests whose security token was accepted, by token.
        self.accepted_tokens: Counter[str] = Counter()
        self._deployments: dict[str, dict[str, Any]] = {}
        self._jobs: dict[str, _Job] = {}
        self._namespaces: set[tuple[str, str]] = set()
        self._savepoints: dict[str, _Savepoint] = {}
        # Per deployment: the failure its next savepoints end with, and the start log its jobs write.
        self._savepoint_failures: dict[str, dict[str, Any]] = {}
        self._start_logs: dict[str, str] = {}
        # Per deployment: the tables it reads and writes (a state file deployment's ``lineage``).
        self._lineages: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_document(
        cls,
        document: Mapping[str, Any],
        *,
        clock: Clock | None = None,
        job_durations: JobDurations | None = None,
        deployment_order: str | None = None,
    ) -> EmulatorState:
        """A state from the state file's JSON: ``access_keys``, ``deployments``, ``jobs`` and ``deployment_order``
        (which ``deployment_order`` overrides). Anything else, or any value the API could not send, is refused
        with an InvalidArgumentError naming where it is."""
        if not isinstance(document, Mapping):
            raise InvalidArgumentError(
                "InvalidStateFile",
                f"the top level must be an object with {', '.join(STATE_FILE_KEYS)}, got {type(document).__name__}",
            )
        if unknown := sorted(set(document) - set(STATE_FILE_KEYS)):
            raise InvalidArgumentError(
                "InvalidStateFile", f"unknown keys {unknown}; a state file holds {', '.join(STATE_FILE_KEYS)}"
            )
        order = deployment_order or document.get("deployment_order", "newest_first")
        if not isinstance(order, str):
            raise InvalidArgumentError("InvalidStateFile", f"deployment_order must be a string, got {order!r}")
        state = cls(clock=clock, job_durations=job_durations, deployment_order=order)
        keys = document.get("access_keys", {})
        if not isinstance(keys, Mapping) or not all(
            isinstance(value, str) and value for item in keys.items() for value in item
        ):
            raise InvalidArgumentError(
                "InvalidStateFile", "access_keys must be an object of non-empty id: secret strings"
            )
        for key_id, secret in keys.items():
            with _at(f"access_keys[{key_id!r}]"), _usable_by_a_client():
                Credentials(key_id, secret)
            state.add_access_key(key_id, secret)
        deployment_ids: set[str] = set()
        for index, deployment in enumerate(_list_of_objects(document, "deployments")):
            with _at(f"deployments[{index}]"):
                state.add_deployment(deployment)
                with _usable_by_a_client():
                    check_workspace(deployment["workspace"])
                    check_namespace(deployment["namespace"])
                _first(deployment_ids, "deploymentId", deployment["deploymentId"])
        job_ids: set[str] = set()
        for index, job in enumerate(_list_of_objects(document, "jobs")):
            with _at(f"jobs[{index}]"):
                timeline = job.get("timeline")
                state.add_job({k: v for k, v in job.items() if k != "timeline"}, timeline=timeline)
                _first(job_ids, "jobId", job["jobId"])
        return state

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        *,
        clock: Clock | None = None,
        job_durations: JobDurations | None = None,
        deployment_order: str | None = None,
    ) -> EmulatorState:
        return cls.from_document(
            json.loads(Path(path).read_text(encoding="utf-8")),
            clock=clock,
            job_durations=job_durations,
            deployment_order=deployment_order,
        )

    def to_document(self) -> dict[str, Any]:
        """The state as a state file's JSON (:meth:`from_document`), each job's timeline counted from now:
        loaded again, every job goes on from the state it is in, for the time that state had left."""
        with self._lock:
            now = self.clock.now()
            return {
                "access_keys": dict(self.access_keys),
                "deployment_order": self.deployment_order,
                "deployments": [
                    {**_copy_object(deployment), **self._lineage_entry(deployment_id)}
                    for deployment_id, deployment in self._deployments.items()
                ],
                "jobs": [{**_copy_object(job.raw), "timeline": job.timeline_from(now)} for job in self._jobs.values()],
            }

    def all_jobs(self) -> list[dict[str, Any]]:
        """Every job as the API returns it now, with ``statusSince``: when (epoch milliseconds) its status began."""
        with self._lock:
            now = self.clock.now()
            return [{**job.view(now), "statusSince": _millis(job.status_at(now)[1])} for job in self._jobs.values()]

    def add_access_key(self, access_key_id: str, secret: str) -> None:
        with self._lock:
            self.access_keys[access_key_id] = secret

    def add_temporary_credentials(
        self, access_key_id: str, secret: str, security_token: str, *, expires_at: float
    ) -> None:
        """Accept an STS-issued AccessKey with its token until ``expires_at`` (the state's clock)."""
        with self._lock:
            self.temporary_credentials[access_key_id] = TemporaryCredentials(secret, security_token, expires_at)

    def secret_of(self, access_key_id: str) -> str | None:
        with self._lock:
            temporary = self.temporary_credentials.get(access_key_id)
            return temporary.secret if temporary else self.access_keys.get(access_key_id)

    def security_token_problem(self, access_key_id: str, security_token: str | None) -> tuple[str, str] | None:
        """Why a request of this AccessKey with this token (None: none sent) is refused, as the API's error code
        and message; None when it is not. A temporary AccessKey needs its own token, unexpired."""
        with self._lock:
            temporary = self.temporary_credentials.get(access_key_id)
            if temporary is None:  # a permanent AccessKey: whatever token comes with it is not looked at
                return None
            if security_token is None:
                return "MissingSecurityToken", f"the STS AccessKey {access_key_id} needs its x-acs-security-token"
            if security_token != temporary.security_token:
                return "InvalidSecurityToken.MismatchWithAccessKey", "the security token is not this AccessKey's"
            if self.clock.now() >= temporary.expires_at:
                return "InvalidSecurityToken.Expired", "Specified SecurityToken is expired."
            self.accepted_tokens[security_token] += 1
            return None

    def add_namespace(self, workspace: str, namespace: str) -> None:
        with self._lock:
            self._namespaces.add((workspace, namespace))

    def add_deployment(self, deployment: Mapping[str, Any]) -> dict[str, Any]:
        """Store a deployment exactly as the API returns it, if a client can read it; returns the stored copy.
        Its ``lineage``, if any, is kept apart: GetLineageInfo answers it (see :mod:`.testing.lineage`)."""
        lineage = deployment.get("lineage")
        deployment = {key: value for key, value in deployment.items() if key != "lineage"}
        missing = [name for name in _REQUIRED_DEPLOYMENT_FIELDS if not deployment.get(name)]
        if missing:
            raise InvalidArgumentError("InvalidDeployment", f"a deployment needs {', '.join(missing)}")
        if wrong := [name for name in _REQUIRED_DEPLOYMENT_FIELDS[:-1] if not isinstance(deployment[name], str)]:
            raise InvalidArgumentError("InvalidDeployment", f"{', '.join(wrong)} must be strings")
        try:
            Deployment.from_api(deployment)
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError("InvalidDeployment", f"not a deployment the API could send: {exc}") from None
        try:
            checked = checked_lineage(lineage) if lineage is not None else None
        except LineageError as exc:
            raise InvalidArgumentError("InvalidDeployment", str(exc)) from None
        stored = _copy_object(deployment)
        with self._lock:
            self._deployments[str(stored["deploymentId"])] = stored
            if checked is None:
                self._lineages.pop(str(stored["deploymentId"]), None)
            else:
                self._lineages[str(stored["deploymentId"])] = checked
            self._namespaces.add((str(stored["workspace"]), str(stored["namespace"])))
        return _copy_object(stored)

    def add_job(self, job: Mapping[str, Any], *, timeline: Iterable[Sequence[Any]] | None = None) -> dict[str, Any]:
        """Store a job of a known deployment; it follows ``timeline`` ([state, seconds or None], ...)
        from now on, or holds its ``status.currentJobStatus`` for good. Returns its view now."""
        raw = _copy_object(job)
        if not raw.get("jobId"):
            raise InvalidArgumentError("InvalidJob", "a job needs a jobId")
        timed = _phases(timeline) if timeline is not None else None
        try:
            # With a timeline, as the API would send it: with the status the timeline gives it.
            Job.from_api(raw if timed is None else _Job(raw, timed, 0.0).view(0.0))
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError("InvalidJob", f"not a job the API could send: {exc}") from None
        phases = timed or [Phase(_job_status(raw), None)]
        with self._lock:
            if str(raw.get("deploymentId")) not in self._deployments:
                raise NotFoundError("DeploymentNotFound", f"job {raw['jobId']} names an unknown deployment")
            now = self.clock.now()
            stored = _Job(raw, phases, now)
            self._jobs[str(raw["jobId"])] = stored
            return stored.view(now)

    def deployments_by_name(
        self, workspace: str, namespace: str, name: str, *, job_summary: bool = True, resource_settings: bool = True
    ) -> list[dict[str, Any]]:
        """Every deployment with this name, by ``createdAt`` in the state's :attr:`deployment_order`."""
        with self._lock:
            self._check_namespace(workspace, namespace)
            found = [d for d in self._in_namespace(workspace, namespace) if d["name"] == name]
            return [self._view(d, job_summary, resource_settings) for d in self._ordered(found)]

    def deployment(self, workspace: str, namespace: str, deployment_id: str) -> dict[str, Any]:
        with self._lock:
            return self._view(self._deployment(workspace, namespace, deployment_id), True, True)

    def list_deployments(
        self,
        workspace: str,
        namespace: str,
        *,
        page_index: int,
        page_size: int,
        name: str | None = None,
        execution_mode: str | None = None,
        status: str | None = None,
    ) -> Page:
        """A page of the namespace's deployments in :attr:`deployment_order`; ``status`` is that of each one's
        newest job."""
        with self._lock:
            self._check_namespace(workspace, namespace)
            now = self.clock.now()
            found = [
                d
                for d in self._in_namespace(workspace, namespace)
                if (name is None or d["name"] == name)
                and (execution_mode is None or d.get("executionMode") == execution_mode)
                and (status is None or self._latest_job_status(d["deploymentId"], now) == status)
            ]
            return _page([self._view(d, True, True) for d in self._ordered(found)], page_index, page_size)

    def start_job(
        self,
        workspace: str,
        namespace: str,
        deployment_id: str,
        *,
        restore_strategy: Mapping[str, Any] | None = None,
        local_variables: Sequence[Mapping[str, Any]] = (),
    ) -> dict[str, Any]:
        """A new job of the deployment: STARTING, then RUNNING (then FINISHED for a BATCH deployment)."""
        strategy = dict(restore_strategy or {"kind": "NONE"})
        if strategy.get("kind") not in RESTORE_STRATEGIES:
            raise InvalidArgumentError("InvalidParameter", f"restoreStrategy.kind must be one of {RESTORE_STRATEGIES}")
        if strategy["kind"] == "FROM_SAVEPOINT" and not strategy.get("savepointId"):
            raise InvalidArgumentError("InvalidParameter", "restoreStrategy FROM_SAVEPOINT needs a savepointId")
        if not all(isinstance(v, Mapping) and isinstance(v.get("name"), str) for v in local_variables):
            raise InvalidArgumentError("InvalidParameter", "localVariables must be a list of {name, value}")
        durations = self.job_durations
        with self._lock:
            deployment = self._deployment(workspace, namespace, deployment_id)
            now = self.clock.now()
            batch = deployment.get("executionMode") == "BATCH"
            timeline = [
                Phase(JobStatus.STARTING, durations.starting),
                Phase(JobStatus.RUNNING, durations.batch_running if batch else None),
                *([Phase(JobStatus.FINISHED, None)] if batch else []),
            ]
            raw = {
                "jobId": str(uuid.uuid4()),
                "deploymentId": deployment_id,
                "deploymentName": deployment["name"],
                "namespace": namespace,
                "workspace": workspace,
                "engineVersion": deployment.get("engineVersion"),
                "executionMode": deployment.get("executionMode"),
                # What the job runs: the deployment's spec when it started.
                **{key: _copy_json(deployment[key]) for key in _JOB_SPEC_FIELDS if key in deployment},
                "startTime": _millis(now),
                "endTime": None,
                "restoreStrategy": strategy,
                "localVariables": [dict(v) for v in local_variables],
                "status": {},
            }
            job = _Job(raw, timeline, now)
            self._jobs[raw["jobId"]] = job
            return job.view(now)

    def stop_job(self, workspace: str, namespace: str, job_id: str, *, stop_strategy: str) -> dict[str, Any]:
        """Move an active job to CANCELLING, then CANCELLED."""
        if stop_strategy not in STOP_STRATEGIES:
            raise InvalidArgumentError("InvalidParameter", f"stopStrategy must be one of {STOP_STRATEGIES}")
        with self._lock:
            job = self._job(workspace, namespace, job_id)
            now = self.clock.now()
            status, _ = job.status_at(now)
            if status.terminal:
                raise ConflictError("JobNotActive", f"job {job_id} is already {status.value}")
            if status is not JobStatus.CANCELLING:
                if stop_strategy == "STOP_WITH_SAVEPOINT":
                    self._new_savepoint(job.raw, now, origin="STOP_WITH_SAVEPOINT")
                job.timeline = (
                    Phase(JobStatus.CANCELLING, self.job_durations.cancelling),
                    Phase(JobStatus.CANCELLED, None),
                )
                job.since = now
            return job.view(now)

    def set_job_timeline(self, job_id: str, timeline: Iterable[Sequence[Any]]) -> dict[str, Any]:
        """Make a job (any job, one a client started too) follow ``timeline`` from now on, e.g.
        ``[["RUNNING", 1], ["FAILED", None]]`` to fail it in a second. Returns its view now."""
        phases = _phases(timeline)
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise NotFoundError("JobNotFound", f"job {job_id!r} does not exist")
            job.timeline, job.since = tuple(phases), self.clock.now()
            return job.view(job.since)

    def set_job_restarts(self, job_id: str, *, every: float | None) -> dict[str, Any]:
        """Make a job's Flink job restart every ``every`` seconds while it is RUNNING: a crash loop, which
        ``running.observedFlinkJobRestarts`` counts from when it began running. None ends it. Returns its view now."""
        if every is not None and not (_is_duration(every) and every > 0):
            raise InvalidArgumentError("InvalidJob", f"every must be a positive number of seconds, got {every!r}")
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise NotFoundError("JobNotFound", f"job {job_id!r} does not exist")
            job.restart_every = every
            return job.view(self.clock.now())

    def job(self, workspace: str, namespace: str, job_id: str) -> dict[str, Any]:
        with self._lock:
            return self._job(workspace, namespace, job_id).view(self.clock.now())

    def list_jobs(
        self,
        workspace: str,
        namespace: str,
        deployment_id: str,
        *,
        page_index: int,
        page_size: int,
        newest_first: bool = True,
    ) -> Page:
        """A page of the deployment's jobs, by ``startTime``."""
        with self._lock:
            self._deployment(workspace, namespace, deployment_id)
            now = self.clock.now()
            jobs = sorted(
                (job.view(now) for job in self._jobs.values() if job.raw.get("deploymentId") == deployment_id),
                key=lambda job: job.get("startTime") or 0,
                reverse=newest_first,
            )
            return _page(jobs, page_index, page_size)

    def update_deployment(
        self, workspace: str, namespace: str, deployment_id: str, spec: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Set the deployment's spec; what the service keeps for itself (its ID, name, place, creation, history)
        stays. The next job a start makes runs the new spec."""
        with self._lock:
            stored = self._deployment(workspace, namespace, deployment_id)
            kept = ("deploymentId", "name", "namespace", "workspace", "createdAt", "jobSummary", "executionMode")
            updated = {
                **_copy_object(spec),
                **{key: stored[key] for key in kept if key in stored},
                "modifiedAt": str(int(self.clock.now())),
            }
            try:
                Deployment.from_api(updated)
            except (TypeError, ValueError) as exc:
                raise InvalidArgumentError("InvalidParameter", f"not a deployment: {exc}") from None
            self._deployments[deployment_id] = updated
            return self._view(updated, True, True)

    def create_savepoint(
        self,
        workspace: str,
        namespace: str,
        deployment_id: str,
        *,
        native_format: bool = False,
        description: str | None = None,
    ) -> dict[str, Any]:
        """A savepoint of the deployment's RUNNING job: STARTED, then COMPLETED (or FAILED, see
        :meth:`fail_savepoints`) after ``job_durations.savepoint`` seconds."""
        with self._lock:
            self._deployment(workspace, namespace, deployment_id)
            now = self.clock.now()
            running = [
                job
                for job in self._jobs.values()
                if job.raw.get("deploymentId") == deployment_id and job.status_at(now)[0] is JobStatus.RUNNING
            ]
            if not running:
                raise ConflictError(
                    "DeploymentNotRunning", f"deployment {deployment_id!r} has no RUNNING job to take a savepoint of"
                )
            savepoint = self._new_savepoint(
                running[0].raw, now, origin="USER_REQUEST", native_format=native_format, description=description
            )
            return savepoint.view(now)

    def fail_savepoints(self, deployment_id: str, *, reason: str, message: str) -> None:
        """Make the deployment's next savepoints end FAILED with this reason and message."""
        with self._lock:
            self._savepoint_failures[deployment_id] = {"reason": reason, "message": message}

    def savepoint(self, workspace: str, namespace: str, savepoint_id: str) -> dict[str, Any]:
        with self._lock:
            return self._savepoint(workspace, namespace, savepoint_id).view(self.clock.now())

    def list_savepoints(
        self,
        workspace: str,
        namespace: str,
        deployment_id: str,
        *,
        job_id: str | None = None,
        page_index: int,
        page_size: int,
    ) -> Page:
        """A page of the deployment's savepoints (of one job, with ``job_id``), newest first."""
        with self._lock:
            self._deployment(workspace, namespace, deployment_id)
            now = self.clock.now()
            found = [
                savepoint.view(now)
                for savepoint in self._savepoints.values()
                if savepoint.raw["deploymentId"] == deployment_id and job_id in (None, savepoint.raw["jobId"])
            ]
            found.sort(key=lambda savepoint: savepoint["createdAt"], reverse=True)
            return _page(found, page_index, page_size)

    def delete_savepoint(self, workspace: str, namespace: str, savepoint_id: str) -> None:
        with self._lock:
            self._savepoint(workspace, namespace, savepoint_id)
            del self._savepoints[savepoint_id]

    def lineage_info(self, workspace: str, namespace: str, deployment_id: str) -> dict[str, Any]:
        """GetLineageInfo's graph of the deployment: its sources and sinks (none when it has no ``lineage``)."""
        with self._lock:
            deployment = self._deployment(workspace, namespace, deployment_id)
            return lineage_view(
                self._lineages.get(deployment_id, {}), deployment_id=deployment_id, deployment_name=deployment["name"]
            )

    def set_start_log(self, deployment_id: str, text: str) -> None:
        """What GetLatestJobStartLog answers for the deployment, instead of the emulator's own lines."""
        with self._lock:
            self._start_logs[deployment_id] = text

    def job_diagnosis(self, workspace: str, namespace: str, deployment_id: str, job_id: str) -> dict[str, Any]:
        """A diagnosis of the job: a FAILED job's symptoms name its failure; any other job is healthy."""
        with self._lock:
            job = self._job(workspace, namespace, job_id)
            if job.raw.get("deploymentId") != deployment_id:
                raise NotFoundError("JobNotFound", f"job {job_id!r} is not a job of deployment {deployment_id!r}")
            now = self.clock.now()
            view = job.view(now)
            failure = view["status"].get("failure") if view["status"]["currentJobStatus"] == "FAILED" else None
            symptoms: dict[str, Any] = {"startup": [], "runtime": [], "state": [], "troubleshooting": [], "others": []}
            if failure:
                symptoms["runtime"].append(
                    {
                        "name": "JobFailover",
                        "description": f"The job failed: {failure.get('reason')}: {failure.get('message')}",
                        "recommendation": "Read the JobManager log for the first exception and fix its cause.",
                    }
                )
            return {
                "diagnoseId": f"diag-{job_id}",
                "diagnoseTime": _millis(now),
                "healthScore": 20 if failure else 100,
                "riskLevel": "HIGH" if failure else "LOW",
                "namespace": namespace,
                "workspace": workspace,
                "symptoms": symptoms,
            }

    def latest_job_start_log(self, workspace: str, namespace: str, deployment_id: str) -> str:
        """The JobManager log of the deployment's latest job: what :meth:`set_start_log` gave, else the emulator's
        lines, which end with the failure of a FAILED job; empty for a deployment that never ran a job."""
        with self._lock:
            self._deployment(workspace, namespace, deployment_id)
            if deployment_id in self._start_logs:
                return self._start_logs[deployment_id]
            jobs = [job for job in self._jobs.values() if job.raw.get("deploymentId") == deployment_id]
            if not jobs:
                return ""
            now = self.clock.now()
            latest = max(jobs, key=lambda job: job.raw.get("startTime") or job.since * 1000).view(now)
            lines = [f"INFO  JobManager of job {latest['jobId']}: starting step {step}" for step in range(1, 61)]
            failure = latest["status"].get("failure")
            if latest["status"]["currentJobStatus"] == "FAILED" and failure:
                lines.append(f"ERROR {failure.get('reason')}: {failure.get('message')}")
            return "\n".join(lines)

    def events(self, workspace: str, namespace: str, deployment_id: str, *, page_index: int, page_size: int) -> Page:
        """A page of the deployment's events, oldest first: each job's start and end, each savepoint's taking."""
        with self._lock:
            self._deployment(workspace, namespace, deployment_id)
            now = self.clock.now()
            events: list[dict[str, Any]] = []
            for job in self._jobs.values():
                if job.raw.get("deploymentId") != deployment_id:
                    continue
                view = job.view(now)
                job_id, status = view["jobId"], view["status"]["currentJobStatus"]
                events.append(_event(view, "JOB_STARTED", view.get("startTime"), f"Job {job_id} was started"))
                if view.get("endTime") is not None:
                    failure = view["status"].get("failure") or {}
                    why = f": {failure.get('reason')}: {failure.get('message')}" if status == "FAILED" else ""
                    events.append(_event(view, f"JOB_{status}", view["endTime"], f"Job {job_id} is {status}{why}"))
            for savepoint in self._savepoints.values():
                if savepoint.raw["deploymentId"] == deployment_id:
                    raw = savepoint.raw
                    events.append(
                        _event(raw, "SAVEPOINT_TRIGGERED", raw["createdAt"], f"Savepoint {raw['savepointId']} taken")
                    )
            events.sort(key=lambda event: int(event["createdAt"]))
            return _page(events, page_index, page_size)

    # Helpers below expect the lock to be held.

    def _lineage_entry(self, deployment_id: str) -> dict[str, Any]:
        lineage = self._lineages.get(deployment_id)
        return {"lineage": _copy_object(lineage)} if lineage is not None else {}

    def _ordered(self, deployments: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # sorted() is stable: deployments created in the same second keep the order they were added in.
        return sorted(deployments, key=_created_seconds, reverse=self.deployment_order == "newest_first")

    def _check_namespace(self, workspace: str, namespace: str) -> None:
        if not any(known == workspace for known, _ in self._namespaces):
            raise NotFoundError("WorkspaceNotFound", f"workspace {workspace!r} does not exist")
        if (workspace, namespace) not in self._namespaces:
            raise NotFoundError("NamespaceNotFound", f"namespace {namespace!r} does not exist in {workspace!r}")

    def _in_namespace(self, workspace: str, namespace: str) -> list[dict[str, Any]]:
        return [d for d in self._deployments.values() if (d["workspace"], d["namespace"]) == (workspace, namespace)]

    def _deployment(self, workspace: str, namespace: str, deployment_id: str) -> dict[str, Any]:
        self._check_namespace(workspace, namespace)
        deployment = self._deployments.get(deployment_id)
        if deployment is None or (deployment["workspace"], deployment["namespace"]) != (workspace, namespace):
            raise NotFoundError("DeploymentNotFound", f"deployment {deployment_id!r} does not exist")
        return deployment

    def _job(self, workspace: str, namespace: str, job_id: str) -> _Job:
        self._check_namespace(workspace, namespace)
        job = self._jobs.get(job_id)
        deployment = self._deployments.get(str(job.raw.get("deploymentId"))) if job else None
        if (
            job is None
            or deployment is None
            or (deployment["workspace"], deployment["namespace"])
            != (
                workspace,
                namespace,
            )
        ):
            raise NotFoundError("JobNotFound", f"job {job_id!r} does not exist")
        return job

    def _savepoint(self, workspace: str, namespace: str, savepoint_id: str) -> _Savepoint:
        self._check_namespace(workspace, namespace)
        savepoint = self._savepoints.get(savepoint_id)
        if savepoint is None or (savepoint.raw["workspace"], savepoint.raw["namespace"]) != (workspace, namespace):
            raise NotFoundError("SavepointNotFound", f"savepoint {savepoint_id!r} does not exist")
        return savepoint

    def _new_savepoint(
        self,
        job: Mapping[str, Any],
        now: float,
        *,
        origin: str,
        native_format: bool = False,
        description: str | None = None,
    ) -> _Savepoint:
        deployment = self._deployments[str(job["deploymentId"])]
        raw = {
            "savepointId": str(uuid.uuid4()),
            "deploymentId": deployment["deploymentId"],
            "jobId": job["jobId"],
            "namespace": deployment["namespace"],
            "workspace": deployment["workspace"],
            "createdAt": _millis(now),
            "modifiedAt": _millis(now),
            "description": description,
            "nativeFormat": native_format,
            "savepointOrigin": origin,
            "stopWithDrainEnabled": False,
        }
        failure = self._savepoint_failures.get(deployment["deploymentId"])
        savepoint = _Savepoint(raw, now + self.job_durations.savepoint, failure)
        self._savepoints[raw["savepointId"]] = savepoint
        return savepoint

    def _latest_job_status(self, deployment_id: str, now: float) -> str | None:
        jobs = [job for job in self._jobs.values() if job.raw.get("deploymentId") == deployment_id]
        if not jobs:
            return None
        latest = max(jobs, key=lambda job: job.raw.get("startTime") or job.since * 1000)
        return latest.status_at(now)[0].value

    def _view(self, deployment: Mapping[str, Any], job_summary: bool, resource_settings: bool) -> dict[str, Any]:
        view = _copy_object(deployment)
        if job_summary:
            view["jobSummary"] = self._job_summary(deployment)
        else:
            view.pop("jobSummary", None)
        if not resource_settings:
            for name in RESOURCE_SETTING_FIELDS:
                view.pop(name, None)
        return view

    def _job_summary(self, deployment: Mapping[str, Any]) -> dict[str, int]:
        history = deployment.get("jobSummary") or {}
        summary = {state: int(history.get(state) or 0) for state in JOB_SUMMARY_STATES}
        now = self.clock.now()
        for job in self._jobs.values():
            if job.raw.get("deploymentId") == deployment["deploymentId"]:
                summary[job.status_at(now)[0].value.lower()] += 1
        return summary


def _phases(timeline: Iterable[Sequence[Any]]) -> list[Phase]:
    """``[["STARTING", 2], ["RUNNING", None]]`` as phases; only the last may last for good."""
    shape = "a timeline is a list of [state, seconds or null] with known states and finite seconds, 0 or more"
    if isinstance(timeline, str | bytes | Mapping):
        raise InvalidArgumentError("InvalidJob", f"{shape}, got {timeline!r}")
    try:
        phases = [Phase(JobStatus(status), seconds) for status, seconds in timeline]
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError("InvalidJob", f"{shape} ({exc})") from None
    if not phases:
        raise InvalidArgumentError("InvalidJob", "a timeline needs at least one state")
    if not all(phase.seconds is None or _is_duration(phase.seconds) for phase in phases):
        raise InvalidArgumentError("InvalidJob", f"{shape}, got {timeline!r}")
    if any(phase.seconds is None for phase in phases[:-1]):
        raise InvalidArgumentError("InvalidJob", "only the last state of a timeline may last forever (null)")
    return phases


def _is_duration(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < math.inf


@contextlib.contextmanager
def _at(where: str) -> Iterator[None]:
    """Say where in the state file a refused value is."""
    try:
        yield
    except StateError as exc:
        raise type(exc)(exc.code, f"{where}: {exc.message}") from None


@contextlib.contextmanager
def _usable_by_a_client() -> Iterator[None]:
    """The client's own check of a value, refusing what no client could send as an InvalidArgumentError."""
    try:
        yield
    except VVPConfigurationError as exc:
        raise InvalidArgumentError("InvalidStateFile", f"no client could use it: {exc}") from None


def _first(seen: set[str], key: str, identifier: str) -> None:
    """Refuse a state file's second object with an ID already seen, which would silently replace the first."""
    if identifier in seen:
        raise InvalidArgumentError("InvalidStateFile", f"{key} {identifier!r} appears more than once")
    seen.add(identifier)


def _job_status(job: Mapping[str, Any]) -> JobStatus:
    try:
        return JobStatus(job["status"]["currentJobStatus"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidArgumentError("InvalidJob", f"job {job['jobId']} needs a known status.currentJobStatus") from exc


def _created_seconds(deployment: Mapping[str, Any]) -> float:
    created = parse_epoch(deployment["createdAt"])  # checked on entry, so never raises
    return created.timestamp() if created else 0.0


def _page(items: list[dict[str, Any]], index: int, size: int) -> Page:
    start = (index - 1) * size
    return Page(items=items[start : start + size], index=index, size=size, total=len(items))


def _list_of_objects(document: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    items = document.get(key, [])
    if not isinstance(items, list) or not all(isinstance(item, Mapping) for item in items):
        raise InvalidArgumentError("InvalidStateFile", f"{key} must be a list of objects, got {describe_value(items)}")
    return items


def _copy_object(value: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of a JSON object, a few times faster than copy.deepcopy."""
    return {key: _copy_json(item) for key, item in value.items()}


def _copy_json(value: Any) -> Any:
    # Exact types, not Mapping: stored values come from JSON, and an ABC check per value costs a third
    # of the copy, which every read of a deployment pays.
    if type(value) is dict:
        return _copy_object(value)
    if type(value) is list:
        return [_copy_json(item) for item in value]
    return value


def _millis(epoch_seconds: float) -> int:
    return int(epoch_seconds * 1000)
