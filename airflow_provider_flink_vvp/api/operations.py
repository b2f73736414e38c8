"""One builder per API operation, and the signing of a built request.

A builder validates its inputs and returns an :class:`Operation`: method, encoded path,
query, headers and body, plus how to parse its answer. :func:`prepare` turns an operation
into the exact URL and headers to send, signed with a given date and nonce.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

from airflow_provider_flink_vvp.api.errors import VVPConfigurationError
from airflow_provider_flink_vvp.api.models import (
    LINEAGE_DIRECTIONS,
    RESTORE_STRATEGIES,
    STOP_STRATEGIES,
    Deployment,
    Event,
    Job,
    JobDiagnosis,
    LineageInfo,
    Savepoint,
    describe_type,
    newest_first,
)
from airflow_provider_flink_vvp.api.responses import Envelope, Page, item_of, items_of, no_data, page_of, text_data
from airflow_provider_flink_vvp.api.signing import canonical_query_string, hex_sha256, percent_encode, sign

T = TypeVar("T")

API_VERSION = "2022-07-18"
NAMESPACES_PATH = "/api/v2/namespaces"
LINEAGE_PATH = "/meta/v2/lineage"
#: The most hops GetLineageInfo is asked to follow from a deployment.
MAX_LINEAGE_DEPTH = 10
MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class Credentials:
    """An AccessKey pair, with an STS token for temporary credentials. Secrets stay out of the repr.

    Each value travels in a header or keys the signature, so it must be printable ASCII without
    surrounding whitespace; an error names the ID but never shows the secret or the token.
    """

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if problem := _header_value_problem(self.access_key_id):
            raise VVPConfigurationError(f"the AccessKey ID {problem}, got {self.access_key_id!r}")
        secrets = {"the AccessKey Secret": self.access_key_secret, "the STS security token": self.security_token}
        for what, value in secrets.items():
            if (value is not None or what == "the AccessKey Secret") and (problem := _header_value_problem(value)):
                raise VVPConfigurationError(f"{what} {problem}; paste it again (its value is not shown)")


@dataclass(frozen=True)
class Operation(Generic[T]):
    """A request to the API, built but not yet signed, and the parser of its answer."""

    action: str
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    parse: Callable[[Envelope, str], T] = field(repr=False)
    body: bytes = b""
    # False for calls that change state (start, stop): repeating one after an answer was lost
    # could act twice, so the caller re-reads the state instead of blindly retrying.
    idempotent: bool = True


@dataclass(frozen=True)
class PreparedRequest:
    """What goes on the wire: the headers hold the signature, so a retry needs a new one."""

    method: str
    url: str
    headers: dict[str, str] = field(repr=False)
    body: bytes


def get_deployments_by_name(
    *,
    namespace: str,
    workspace: str,
    deployment_name: str,
    ignore_job_summary: bool = False,
    ignore_resource_setting: bool = False,
) -> Operation[list[Deployment]]:
    """GetDeploymentsByName: every deployment with this name, newest first by ``createdAt`` (then ``modifiedAt``).

    The answer's own order counts only among equally old deployments.
    """
    _require(deployment_name=deployment_name)
    parse = items_of(Deployment.from_api)
    return _in_namespace(
        "GetDeploymentsByName",
        "GET",
        namespace,
        workspace,
        ("deployments", "name", deployment_name),
        lambda envelope, action: newest_first(parse(envelope, action)),
        query={
            "ignoreJobSummary": _boolean(ignore_job_summary),
            "ignoreResourceSetting": _boolean(ignore_resource_setting),
        },
    )


def list_deployments(
    *, namespace: str, workspace: str, page_index: int = 1, page_size: int = MAX_PAGE_SIZE
) -> Operation[Page[Deployment]]:
    """ListDeployments: one page of the namespace's deployments."""
    return _in_namespace(
        "ListDeployments",
        "GET",
        namespace,
        workspace,
        ("deployments",),
        page_of(Deployment.from_api),
        query=_page_query(page_index, page_size),
    )


def get_deployment(*, namespace: str, workspace: str, deployment_id: str) -> Operation[Deployment]:
    """GetDeployment: one deployment by its ID."""
    _require(deployment_id=deployment_id)
    return _in_namespace(
        "GetDeployment", "GET", namespace, workspace, ("deployments", deployment_id), item_of(Deployment.from_api)
    )


def start_job_with_params(
    *,
    namespace: str,
    workspace: str,
    deployment_id: str,
    restore_strategy: str = "LATEST_STATE",
    savepoint_id: str | None = None,
    allow_non_restored_state: bool | None = None,
    job_start_time_in_ms: int | None = None,
    local_variables: Mapping[str, str] | None = None,
) -> Operation[Job]:
    """StartJobWithParams: start a job of the deployment, restored as ``restore_strategy`` says."""
    _require(deployment_id=deployment_id)
    if restore_strategy not in RESTORE_STRATEGIES:
        raise VVPConfigurationError(
            f"restore_strategy must be one of {', '.join(RESTORE_STRATEGIES)}, got {restore_strategy!r}"
        )
    if (restore_strategy == "FROM_SAVEPOINT") != bool(savepoint_id):
        raise VVPConfigurationError(
            "savepoint_id is required with restore_strategy FROM_SAVEPOINT and only with it, "
            f"got restore_strategy {restore_strategy!r} and savepoint_id {savepoint_id!r}"
        )
    strategy: dict[str, Any] = {"kind": restore_strategy}
    optional = {
        "savepointId": savepoint_id,
        "allowNonRestoredState": allow_non_restored_state,
        "jobStartTimeInMs": job_start_time_in_ms,
    }
    strategy.update({key: value for key, value in optional.items() if value is not None})
    body: dict[str, Any] = {"deploymentId": deployment_id, "restoreStrategy": strategy}
    if local_variables:
        body["localVariables"] = [{"name": str(k), "value": str(v)} for k, v in local_variables.items()]
    return _in_namespace(
        "StartJobWithParams", "POST", namespace, workspace, ("jobs:start",), item_of(Job.from_api), body=body
    )


def stop_job(*, namespace: str, workspace: str, job_id: str, stop_strategy: str = "NONE") -> Operation[Job]:
    """StopJob: stop a job, with a savepoint or a drain if asked."""
    _require(job_id=job_id)
    if stop_strategy not in STOP_STRATEGIES:
        raise VVPConfigurationError(f"stop_strategy must be one of {', '.join(STOP_STRATEGIES)}, got {stop_strategy!r}")
    return _in_namespace(
        "StopJob",
        "POST",
        namespace,
        workspace,
        ("jobs", f"{job_id}:stop"),
        item_of(Job.from_api),
        body={"stopStrategy": stop_strategy},
    )


def get_job(*, namespace: str, workspace: str, job_id: str) -> Operation[Job]:
    """GetJob: one job by its ID."""
    _require(job_id=job_id)
    return _in_namespace("GetJob", "GET", namespace, workspace, ("jobs", job_id), item_of(Job.from_api))


def list_jobs(
    *, namespace: str, workspace: str, deployment_id: str, page_index: int = 1, page_size: int = MAX_PAGE_SIZE
) -> Operation[Page[Job]]:
    """ListJobs: one page of a deployment's jobs."""
    _require(deployment_id=deployment_id)
    return _in_namespace(
        "ListJobs",
        "GET",
        namespace,
        workspace,
        ("jobs",),
        page_of(Job.from_api),
        query={"deploymentId": deployment_id, **_page_query(page_index, page_size)},
    )


def create_savepoint(
    *,
    namespace: str,
    workspace: str,
    deployment_id: str,
    native_format: bool | None = None,
    description: str | None = None,
) -> Operation[Savepoint]:
    """CreateSavepoint: take a savepoint of the deployment's running job; the answer is the savepoint, STARTED."""
    _require(deployment_id=deployment_id)
    if native_format is not None and not isinstance(native_format, bool):
        raise VVPConfigurationError(f"native_format must be True, False or None, got {native_format!r}")
    if description is not None and not isinstance(description, str):
        raise VVPConfigurationError(f"description must be a string, got {description!r}")
    body: dict[str, Any] = {"deploymentId": deployment_id}
    optional = {"nativeFormat": native_format, "description": description}
    body.update({key: value for key, value in optional.items() if value is not None})
    return _in_namespace(
        "CreateSavepoint", "POST", namespace, workspace, ("savepoints",), item_of(Savepoint.from_api), body=body
    )


def get_savepoint(*, namespace: str, workspace: str, savepoint_id: str) -> Operation[Savepoint]:
    """GetSavepoint: one savepoint by its ID."""
    _require(savepoint_id=savepoint_id)
    return _in_namespace(
        "GetSavepoint", "GET", namespace, workspace, ("savepoints", savepoint_id), item_of(Savepoint.from_api)
    )


def list_savepoints(
    *,
    namespace: str,
    workspace: str,
    deployment_id: str,
    job_id: str | None = None,
    page_index: int = 1,
    page_size: int = MAX_PAGE_SIZE,
) -> Operation[Page[Savepoint]]:
    """ListSavepoints: one page of a deployment's savepoints (of one of its jobs, with ``job_id``)."""
    _require(deployment_id=deployment_id)
    query = {"deploymentId": deployment_id, **_page_query(page_index, page_size)}
    if job_id is not None:
        _require(job_id=job_id)
        query["jobId"] = job_id
    return _in_namespace(
        "ListSavepoints", "GET", namespace, workspace, ("savepoints",), page_of(Savepoint.from_api), query=query
    )


def delete_savepoint(*, namespace: str, workspace: str, savepoint_id: str) -> Operation[bool]:
    """DeleteSavepoint: remove a savepoint (its record, and its files in the service's storage)."""
    _require(savepoint_id=savepoint_id)
    return _in_namespace("DeleteSavepoint", "DELETE", namespace, workspace, ("savepoints", savepoint_id), no_data)


def get_job_diagnosis(*, namespace: str, workspace: str, deployment_id: str, job_id: str) -> Operation[JobDiagnosis]:
    """GetJobDiagnosis: what the service's diagnosis found about a job."""
    _require(deployment_id=deployment_id, job_id=job_id)
    return _in_namespace(
        "GetJobDiagnosis",
        "GET",
        namespace,
        workspace,
        ("deployments", deployment_id, "jobs", job_id, "job-diagnoses", "lite"),
        item_of(JobDiagnosis.from_api),
    )


def get_latest_job_start_log(*, namespace: str, workspace: str, deployment_id: str) -> Operation[str]:
    """GetLatestJobStartLog: the JobManager's log of the deployment's latest job start, as one text."""
    _require(deployment_id=deployment_id)
    return _in_namespace(
        "GetLatestJobStartLog",
        "GET",
        namespace,
        workspace,
        ("deployments", deployment_id, "latest_jobmanager_start_log"),
        text_data,
    )


def get_events(
    *, namespace: str, workspace: str, deployment_id: str, page_index: int = 1, page_size: int = MAX_PAGE_SIZE
) -> Operation[Page[Event]]:
    """GetEvents: one page of a deployment's events."""
    _require(deployment_id=deployment_id)
    return _in_namespace(
        "GetEvents",
        "GET",
        namespace,
        workspace,
        ("events",),
        page_of(Event.from_api),
        query={"deploymentId": deployment_id, **_page_query(page_index, page_size)},
    )


def update_deployment(
    *, namespace: str, workspace: str, deployment_id: str, spec: Mapping[str, Any]
) -> Operation[Deployment]:
    """UpdateDeployment: set the deployment's spec (its artifact, resources, Flink configuration...).

    A repeat sends the same whole spec and leaves the deployment as one send would: it may be retried.
    """
    _require(deployment_id=deployment_id)
    if not isinstance(spec, Mapping):
        raise VVPConfigurationError(f"spec must be a mapping (the deployment's JSON), got {type(spec).__name__}")
    if spec.get("deploymentId", deployment_id) != deployment_id:
        raise VVPConfigurationError(
            f"spec is the spec of deployment {spec.get('deploymentId')!r}, not of {deployment_id!r}: "
            "an update never moves one deployment's spec to another"
        )
    operation = _in_namespace(
        "UpdateDeployment",
        "PUT",
        namespace,
        workspace,
        ("deployments", deployment_id),
        item_of(Deployment.from_api),
        body={**spec, "deploymentId": deployment_id},
    )
    return replace(operation, idempotent=True)


def get_lineage_info(
    *, namespace: str, workspace: str, deployment_id: str, direction: str = "BOTH", depth: int = 1
) -> Operation[LineageInfo]:
    """GetLineageInfo: the table-level lineage around a deployment (``idType`` JOB), ``depth`` hops each way
    ``direction`` says. A POST that only reads: it may be retried."""
    _require(deployment_id=deployment_id)
    check_namespace(namespace)
    if direction not in LINEAGE_DIRECTIONS:
        raise VVPConfigurationError(f"direction must be one of {', '.join(LINEAGE_DIRECTIONS)}, got {direction!r}")
    if type(depth) is not int or not 1 <= depth <= MAX_LINEAGE_DEPTH:
        raise VVPConfigurationError(f"depth must be a whole number from 1 to {MAX_LINEAGE_DEPTH}, got {depth!r}")
    body = {
        "id": deployment_id,
        "idType": "JOB",
        "direction": direction,
        "depth": depth,
        "isColumnLevel": False,
        "namespace": namespace,
        "workspace": workspace,
    }
    return Operation(
        action="GetLineageInfo",
        method="POST",
        path=LINEAGE_PATH,
        query={},
        headers=workspace_header(workspace),
        parse=item_of(LineageInfo.from_api, describe=describe_type),
        body=_json(body),
        idempotent=True,
    )


def check_namespace(namespace: str) -> None:
    """A namespace travels as a URL path segment: non-empty, no control characters, no '/' (which proxies
    may decode into a path separator), not '.' or '..', no surrounding whitespace. Non-ASCII is percent-encoded."""
    _require(namespace=namespace)
    if not namespace.isprintable() or "/" in namespace or namespace != namespace.strip() or namespace in (".", ".."):
        raise VVPConfigurationError(
            "namespace must be a project name without control characters, '/' or surrounding whitespace, "
            "and not '.' or '..', "
            f"got {namespace!r}"
        )


def check_workspace(workspace: str) -> None:
    """A workspace ID travels in the ``workspace`` header: printable ASCII, no '/', no surrounding whitespace."""
    if problem := _header_value_problem(workspace):
        raise VVPConfigurationError(f"workspace {problem}, got {workspace!r}")
    if "/" in workspace:
        raise VVPConfigurationError(
            f"workspace must be a workspace ID (like a14bd5d90a****), without '/', got {workspace!r}"
        )


def namespace_path(namespace: str, *segments: str) -> str:
    """``/api/v2/namespaces/{namespace}/...`` with every segment encoded whole (``a/b`` -> ``a%2Fb``)."""
    check_namespace(namespace)
    for segment in segments:
        # HTTP clients and proxies resolve dot segments, which would send the request to another route.
        if segment in (".", ".."):
            raise VVPConfigurationError(f"{segment!r} cannot be sent as a path segment: use a real name")
    return "/".join([NAMESPACES_PATH, *(percent_encode(part) for part in (namespace, *segments))])


def workspace_header(workspace: str) -> dict[str, str]:
    check_workspace(workspace)
    return {"workspace": workspace}


def acs_date(epoch_seconds: float) -> str:
    """The ``x-acs-date`` form of a time: UTC, ``YYYY-MM-DDTHH:MM:SSZ``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_seconds))


def prepare(
    operation: Operation[Any],
    *,
    base_url: str,
    host: str,
    credentials: Credentials,
    date: str,
    nonce: str,
    user_agent: str,
) -> PreparedRequest:
    """Sign ``operation`` for ``host`` at ``date`` with ``nonce``; the URL carries the signed query as is."""
    headers = {
        "host": host,
        "accept": "application/json",
        "user-agent": user_agent,
        "x-acs-action": operation.action,
        "x-acs-version": API_VERSION,
        "x-acs-date": date,
        "x-acs-signature-nonce": nonce,
        "x-acs-content-sha256": hex_sha256(operation.body),
        **operation.headers,
    }
    if operation.body:
        headers["content-type"] = "application/json; charset=utf-8"
    if credentials.security_token:
        headers["x-acs-security-token"] = credentials.security_token
    headers["authorization"] = sign(
        method=operation.method,
        canonical_uri=operation.path,
        query=operation.query,
        headers=headers.items(),
        payload_hash=headers["x-acs-content-sha256"],
        access_key_id=credentials.access_key_id,
        access_key_secret=credentials.access_key_secret,
    )
    query = canonical_query_string(operation.query)
    url = f"{base_url}{operation.path}" + (f"?{query}" if query else "")
    return PreparedRequest(method=operation.method, url=url, headers=headers, body=operation.body)


def _in_namespace(
    action: str,
    method: str,
    namespace: str,
    workspace: str,
    segments: tuple[str, ...],
    parse: Callable[[Envelope, str], T],
    *,
    query: Mapping[str, str] | None = None,
    body: Mapping[str, Any] | None = None,
) -> Operation[T]:
    """An operation under ``/api/v2/namespaces/{namespace}`` of a workspace; a POST changes state."""
    return Operation(
        action=action,
        method=method,
        path=namespace_path(namespace, *segments),
        query=query or {},
        headers=workspace_header(workspace),
        parse=parse,
        body=_json(body) if body is not None else b"",
        idempotent=method == "GET",
    )


def _page_query(page_index: int, page_size: int) -> dict[str, str]:
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise VVPConfigurationError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
    if page_index < 1:
        raise VVPConfigurationError(f"page_index must be 1 or more, got {page_index}")
    return {"pageIndex": str(page_index), "pageSize": str(page_size)}


def _json(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _boolean(value: bool) -> str:
    return "true" if value else "false"


def _header_value_problem(value: Any) -> str | None:
    """What keeps ``value`` from travelling in an HTTP header as is, or None."""
    if not isinstance(value, str) or not value.strip():
        return "must be a non-empty string"
    if not (value.isascii() and value.isprintable()):
        return "must be printable ASCII: it holds control characters (a newline, a tab...) or non-ASCII ones"
    if value != value.strip():
        return "must not start or end with whitespace"
    return None


def _require(**values: str) -> None:
    for name, value in values.items():
        if not isinstance(value, str) or not value.strip():
            raise VVPConfigurationError(f"{name} must be a non-empty string, got {value!r}")
