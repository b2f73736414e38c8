"""Typed views of the API's objects; each keeps the untouched JSON in ``raw``.

Every ``from_api`` checks the types and ranges of what it reads and raises TypeError or
ValueError, naming the field, for anything that is not the API's shape: a model is either
well-typed or not built at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from airflow_provider_flink_vvp.api.stack_traces import shorten_stack_trace

_Model = TypeVar("_Model")

JOB_SUMMARY_STATES = ("starting", "running", "cancelling", "cancelled", "finished", "failed")

# Epoch values above this are milliseconds: as seconds they would lie after the year 5000.
_MILLISECONDS_THRESHOLD = 100_000_000_000
# 9999-12-31T23:59:59.999Z, the last millisecond a datetime holds.
_MAX_EPOCH_MILLISECONDS = 253_402_300_799_999
# The service's counts are Java longs.
MAX_LONG = 2**63 - 1
_DESCRIBED_CHARS = 60
_NO_TIME = datetime.min.replace(tzinfo=UTC)


def describe_value(value: Any) -> str:
    """A short repr of a value read from a response, for an error message (a body may hold megabytes)."""
    text = repr(value)
    return text if len(text) <= _DESCRIBED_CHARS else f"{text[:_DESCRIBED_CHARS]}... ({type(value).__name__})"


def describe_type(value: Any) -> str:
    """A value's type alone, for an error about a value that may hold a secret (a lineage's connector options)."""
    if value is None:
        return "null"
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def parse_epoch(value: Any) -> datetime | None:
    """An epoch timestamp (seconds or milliseconds, number or string, stray whitespace allowed) as UTC.

    Raises ValueError for a value that is neither empty nor a time from 1970 to 9999.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"an epoch time must be a number, got {describe_value(value)}")
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise ValueError(f"an epoch time must be a number, got {describe_value(value)}") from None
    if not (math.isfinite(number) and 0 <= number <= _MAX_EPOCH_MILLISECONDS):
        raise ValueError(f"an epoch time must lie between 1970 and 9999, got {describe_value(value)}")
    if number >= _MILLISECONDS_THRESHOLD:
        number /= 1000
    return datetime.fromtimestamp(number, tz=UTC)


#: How a wrong value is shown in an error: ``describe_value``, or ``describe_type`` where it may hold a secret.
_Describe = Callable[[Any], str]


def _object(value: Any, what: str, *, describe: _Describe = describe_value) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be an object, got {describe(value)}")
    return value


def _optional_object(
    raw: Mapping[str, Any], key: str, *, describe: _Describe = describe_value
) -> Mapping[str, Any] | None:
    value = raw.get(key)
    return None if value is None else _object(value, key, describe=describe)


def _optional_text(raw: Mapping[str, Any], key: str, *, describe: _Describe = describe_value) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{key} must be a string, got {describe(value)}")
    return value


def _identifier(raw: Mapping[str, Any], key: str, *, describe: _Describe = describe_value) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key} must be a non-empty string, got {describe(value)}")
    return value


def _epoch(raw: Mapping[str, Any], key: str) -> datetime | None:
    try:
        return parse_epoch(raw.get(key))
    except ValueError as error:
        raise ValueError(f"{key}: {error}") from None


def _count(raw: Mapping[str, Any], key: str) -> int:
    value = raw.get(key)
    if value is None:
        return 0
    # type() rather than isinstance: JSON's true is an int to isinstance.
    if type(value) is not int or not 0 <= value <= MAX_LONG:
        raise ValueError(f"jobSummary.{key} must be a whole number from 0 to 2^63-1, got {describe_value(value)}")
    return value


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
        """The counts of a ``jobSummary`` object; a missing or null count is 0."""
        summary = _object(raw, "jobSummary")
        return cls(**{state: _count(summary, state) for state in JOB_SUMMARY_STATES})

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

    @property
    def recency(self) -> tuple[datetime, datetime]:
        """What orders deployments by age: ``createdAt``, then ``modifiedAt`` (a missing one counts as oldest)."""
        return self.created_at or _NO_TIME, self.modified_at or _NO_TIME

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> Deployment:
        raw = _object(raw, "a deployment")
        summary = _optional_object(raw, "jobSummary")
        return cls(
            deployment_id=_identifier(raw, "deploymentId"),
            name=_optional_text(raw, "name") or "",
            namespace=_optional_text(raw, "namespace") or "",
            workspace=_optional_text(raw, "workspace"),
            execution_mode=_optional_text(raw, "executionMode"),
            created_at=_epoch(raw, "createdAt"),
            modified_at=_epoch(raw, "modifiedAt"),
            job_summary=JobSummary.from_api(summary) if summary is not None else None,
            raw=raw,
        )


def newest_first(deployments: Iterable[Deployment]) -> list[Deployment]:
    """Deployments newest first by :attr:`Deployment.recency`; equally old ones keep their order."""
    return sorted(deployments, key=lambda deployment: deployment.recency, reverse=True)


RESTORE_STRATEGIES = ("NONE", "LATEST_SAVEPOINT", "FROM_SAVEPOINT", "LATEST_STATE")
STOP_STRATEGIES = ("NONE", "STOP_WITH_SAVEPOINT", "STOP_WITH_DRAIN")
JOB_STATUSES = ("STARTING", "RUNNING", "CANCELLING", "FAILED", "CANCELLED", "FINISHED")
TERMINAL_JOB_STATUSES = frozenset({"FAILED", "CANCELLED", "FINISHED"})
ACTIVE_JOB_STATUSES = frozenset({"STARTING", "RUNNING"})


def _job_status(status: Mapping[str, Any]) -> str:
    """``status.currentJobStatus``, one of :data:`JOB_STATUSES` (in any case): a job whose state is unknown
    would be taken for stopped or running by whoever reads it."""
    value = status.get("currentJobStatus")
    if not isinstance(value, str) or value.strip().upper() not in JOB_STATUSES:
        raise ValueError(
            f"status.currentJobStatus must be one of {', '.join(JOB_STATUSES)}, got {describe_value(value)}"
        )
    return value.strip().upper()


#: The most of a failure's message a model keeps: Flink's are whole Java stack traces, and the message travels into
#: errors, trigger events and asset events.
MAX_FAILURE_MESSAGE_CHARS = 2000


@dataclass(frozen=True)
class JobFailure:
    """Why a job or a savepoint failed, as ``status.failure`` says.

    ``message`` is shortened past :data:`MAX_FAILURE_MESSAGE_CHARS`: a stack trace keeps its exceptions, the top
    frames of each and its root cause (:func:`~.stack_traces.shorten_stack_trace`).
    """

    reason: str | None
    message: str | None
    failed_at: datetime | None

    def describe(self) -> str:
        """``reason: message``, in words where the service gave none."""
        return f"{self.reason or 'no reason given'}: {self.message or 'no message given'}"


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
        raw = _object(raw, "a job")
        status = _object(raw.get("status"), "status")
        failure = _optional_object(status, "failure")
        return cls(
            job_id=_identifier(raw, "jobId"),
            deployment_id=_identifier(raw, "deploymentId"),
            status=_job_status(status),
            failure=_failure(failure) if failure is not None else None,
            start_time=_epoch(raw, "startTime"),
            end_time=_epoch(raw, "endTime"),
            raw=raw,
        )


#: ``status.state`` of a savepoint that is over; any other state (STARTED, or another the service adds) is in progress.
SAVEPOINT_TERMINAL_STATES = frozenset({"COMPLETED", "FAILED"})


def _state(raw: Mapping[str, Any], key: str, what: str) -> str:
    """A non-empty state string, uppercased: a state nobody can read would pass for one still in progress."""
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string, got {describe_value(value)}")
    return value.strip().upper()


@dataclass(frozen=True)
class Savepoint:
    """A savepoint of a deployment (CreateSavepoint, GetSavepoint, ListSavepoints).

    ``state`` is ``status.state``: STARTED while it is taken, then COMPLETED or FAILED (with ``failure``).
    ``location`` is where it was written (``savepointLocation``), known once it is COMPLETED.
    """

    savepoint_id: str
    deployment_id: str
    job_id: str | None
    state: str
    failure: JobFailure | None
    location: str | None
    origin: str | None
    description: str | None
    native_format: bool | None
    created_at: datetime | None
    modified_at: datetime | None
    raw: Mapping[str, Any] = field(repr=False, compare=False, hash=False)

    @property
    def is_terminal(self) -> bool:
        return self.state in SAVEPOINT_TERMINAL_STATES

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> Savepoint:
        raw = _object(raw, "a savepoint")
        status = _object(raw.get("status"), "status")
        failure = _optional_object(status, "failure")
        native_format = raw.get("nativeFormat")
        if native_format is not None and not isinstance(native_format, bool):
            raise TypeError(f"nativeFormat must be true or false, got {describe_value(native_format)}")
        return cls(
            savepoint_id=_identifier(raw, "savepointId"),
            deployment_id=_identifier(raw, "deploymentId"),
            job_id=_optional_text(raw, "jobId") or None,
            state=_state(status, "state", "status.state"),
            failure=_failure(failure) if failure is not None else None,
            location=_optional_text(raw, "savepointLocation") or None,
            origin=_optional_text(raw, "savepointOrigin"),
            description=_optional_text(raw, "description"),
            native_format=native_format,
            created_at=_epoch(raw, "createdAt"),
            modified_at=_epoch(raw, "modifiedAt"),
            raw=raw,
        )


def _failure(failure: Mapping[str, Any]) -> JobFailure:
    message = _optional_text(failure, "message")
    return JobFailure(
        reason=_optional_text(failure, "reason"),
        message=None if message is None else shorten_stack_trace(message, MAX_FAILURE_MESSAGE_CHARS),
        failed_at=_epoch(failure, "failedAt"),
    )


@dataclass(frozen=True)
class DiagnosisSymptom:
    """One finding of a job diagnosis: what was checked, what was found, what to do."""

    group: str
    name: str | None
    description: str | None
    recommendation: str | None


#: The groups of a diagnosis' ``symptoms``, in the order a reader wants them.
DIAGNOSIS_GROUPS = ("startup", "runtime", "state", "troubleshooting", "autopilot", "others")


@dataclass(frozen=True)
class JobDiagnosis:
    """GetJobDiagnosis' answer: a risk level, a health score and the symptoms found, by group."""

    risk_level: str | None
    health_score: int | None
    diagnosed_at: datetime | None
    symptoms: tuple[DiagnosisSymptom, ...]
    raw: Mapping[str, Any] = field(repr=False, compare=False, hash=False)

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> JobDiagnosis:
        raw = _object(raw, "a job diagnosis")
        score = raw.get("healthScore")
        if score is not None and (type(score) is not int or not 0 <= score <= MAX_LONG):
            raise ValueError(f"healthScore must be a whole number from 0 to 2^63-1, got {describe_value(score)}")
        groups = _optional_object(raw, "symptoms") or {}
        symptoms = []
        for group in DIAGNOSIS_GROUPS:
            value = groups.get(group)
            # autopilot is one symptom, the other groups lists of them.
            listed = [value] if isinstance(value, Mapping) else value or []
            if not isinstance(listed, list):
                raise TypeError(f"symptoms.{group} must be a list, got {describe_value(value)}")
            for index, item in enumerate(listed):
                symptom = _object(item, f"symptoms.{group}[{index}]")
                symptoms.append(
                    DiagnosisSymptom(
                        group=group,
                        name=_optional_text(symptom, "name"),
                        description=_optional_text(symptom, "description"),
                        recommendation=_optional_text(symptom, "recommendation"),
                    )
                )
        return cls(
            risk_level=_optional_text(raw, "riskLevel"),
            health_score=score,
            diagnosed_at=_epoch(raw, "diagnoseTime"),
            symptoms=tuple(symptoms),
            raw=raw,
        )


@dataclass(frozen=True)
class Event:
    """A deployment's event (GetEvents): what happened, to which job, when."""

    event_id: str | None
    name: str | None
    message: str | None
    job_id: str | None
    created_at: datetime | None
    raw: Mapping[str, Any] = field(repr=False, compare=False, hash=False)

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> Event:
        raw = _object(raw, "an event")
        return cls(
            event_id=_optional_text(raw, "eventId"),
            name=_optional_text(raw, "eventName"),
            message=_optional_text(raw, "message"),
            job_id=_optional_text(raw, "jobId"),
            created_at=_epoch(raw, "createdAt"),
            raw=raw,
        )


#: GetLineageInfo's ``direction``: what the lineage is read towards.
LINEAGE_DIRECTIONS = ("UPSTREAM", "DOWNSTREAM", "BOTH")


def _options(raw: Mapping[str, Any], key: str) -> dict[str, str]:
    """A table's connector options (``with``) as text. A value is named by its key alone in an error:
    options hold passwords and keys."""
    options = _optional_object(raw, key, describe=describe_type) or {}
    texts: dict[str, str] = {}
    for name, value in options.items():
        if value is None:
            continue
        if isinstance(value, dict | list):
            raise TypeError(f"{key}[{name!r}] must be a string, number or boolean, got a {type(value).__name__}")
        texts[str(name)] = str(value).lower() if isinstance(value, bool) else str(value)
    return texts


def _objects(raw: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    """A lineage's list of objects; a wrong value is named by its type alone, as any in a lineage: wherever
    the answer is not the API's shape, an option's value (a password) may stand in a field's place."""
    value = raw.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise TypeError(f"{key} must be a list, got {describe_type(value)}")
    return [_object(item, f"{key}[{index}]", describe=describe_type) for index, item in enumerate(value)]


def _flag(raw: Mapping[str, Any], key: str) -> bool | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, bool):
        raise TypeError(f"{key} must be true or false, got {describe_type(value)}")
    return value


@dataclass(frozen=True)
class LineageTable:
    """A table of a lineage node: its ID, its name, and its connector options (``with``, kept out of the repr:
    they may hold credentials)."""

    table_id: str | None
    name: str
    options: Mapping[str, str] = field(repr=False)

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> LineageTable:
        raw = _object(raw, "a lineage table", describe=describe_type)
        return cls(
            table_id=_optional_text(raw, "id", describe=describe_type) or None,
            name=_identifier(raw, "tableName", describe=describe_type),
            options=_options(raw, "with"),
        )


@dataclass(frozen=True)
class LineageNode:
    """A node of the lineage graph: a database of a catalog, read or written through one connector."""

    node_id: str | None
    catalog: str | None
    database: str | None
    connector: str | None
    is_temporary: bool | None
    tables: tuple[LineageTable, ...]

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> LineageNode:
        raw = _object(raw, "a lineage node", describe=describe_type)
        return cls(
            node_id=_optional_text(raw, "id", describe=describe_type) or None,
            catalog=_optional_text(raw, "catalogName", describe=describe_type) or None,
            database=_optional_text(raw, "databaseName", describe=describe_type) or None,
            connector=_optional_text(raw, "connector", describe=describe_type) or None,
            is_temporary=_flag(raw, "isTemporary"),
            tables=_each(LineageTable.from_api, _objects(raw, "tables"), "tables"),
        )


@dataclass(frozen=True)
class LineageRelation:
    """An edge of the lineage graph: data flows from ``source`` to ``destination`` (table or job IDs)."""

    source: str
    destination: str
    job_id: str | None

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> LineageRelation:
        raw = _object(raw, "a relation", describe=describe_type)
        return cls(
            source=_identifier(raw, "source", describe=describe_type),
            destination=_identifier(raw, "destination", describe=describe_type),
            job_id=_optional_text(raw, "jobId", describe=describe_type) or None,
        )


@dataclass(frozen=True)
class LineageInfo:
    """GetLineageInfo's answer: the graph's nodes (with their tables), its table-level edges, and the IDs of
    the jobs it holds (``jobInfos``)."""

    nodes: tuple[LineageNode, ...]
    relations: tuple[LineageRelation, ...]
    job_ids: tuple[str, ...]
    raw: Mapping[str, Any] = field(repr=False, compare=False, hash=False)

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> LineageInfo:
        raw = _object(raw, "the lineage", describe=describe_type)
        edges = _optional_object(raw, "edges", describe=describe_type) or {}
        return cls(
            nodes=_each(LineageNode.from_api, _objects(raw, "nodes"), "nodes"),
            relations=_each(LineageRelation.from_api, _objects(edges, "tableLineage"), "edges.tableLineage"),
            job_ids=tuple(
                job_id
                for info in _objects(raw, "jobInfos")
                if (job_id := _optional_text(info, "id", describe=describe_type))
            ),
            raw=raw,
        )

    def tables(self) -> dict[str, tuple[LineageNode, LineageTable]]:
        """Each table with an ID, and its node."""
        return {table.table_id: (node, table) for node in self.nodes for table in node.tables if table.table_id}


def _each(
    model: Callable[[Mapping[str, Any]], _Model], items: list[Mapping[str, Any]], where: str
) -> tuple[_Model, ...]:
    """Each item as ``model``; an error names the item's place (``nodes[2]: ...``)."""
    built = []
    for index, item in enumerate(items):
        try:
            built.append(model(item))
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{where}[{index}]: {exc}") from None
    return tuple(built)
