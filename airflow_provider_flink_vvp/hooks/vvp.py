"""FlinkVVPHook: an Airflow connection turned into signed calls to the VVP OpenAPI."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from http import HTTPStatus
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

from airflow.providers.common.compat.sdk import BaseHook, Connection

from airflow_provider_flink_vvp.api import operations
from airflow_provider_flink_vvp.api.errors import DeploymentNotFoundError, VVPApiError, VVPConfigurationError, VVPError
from airflow_provider_flink_vvp.api.models import Deployment, Event, Job, JobDiagnosis, LineageInfo, Savepoint
from airflow_provider_flink_vvp.api.operations import Credentials, Operation
from airflow_provider_flink_vvp.api.responses import Page
from airflow_provider_flink_vvp.client import (
    DEFAULT_RETRY_DELAY,
    DEFAULT_RETRY_LIMIT,
    DEFAULT_TIMEOUT,
    AsyncVVPClient,
    ClientSettings,
    VVPClient,
)
from airflow_provider_flink_vvp.console import deployment_console_url
from airflow_provider_flink_vvp.credentials import (
    PROVIDED_TYPES,
    CredentialsSource,
    RefreshingCredentials,
    credential_spec,
    secrets_of,
)

T = TypeVar("T")
_Item = TypeVar("_Item")

ENV_ACCESS_KEY_ID = "ALIBABA_CLOUD_ACCESS_KEY_ID"
ENV_ACCESS_KEY_SECRET = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"  # noqa: S105 - a variable's name, not a secret
ENV_SECURITY_TOKEN = "ALIBABA_CLOUD_SECURITY_TOKEN"  # noqa: S105
# The Airflow UI may save form fields under this prefix; a plain name wins over a prefixed one.
_FORM_FIELD_PREFIX = "extra__flink_vvp__"
_REGION_PATTERN = re.compile(r"[a-z]{2}(-[a-z0-9]+)+")
MAX_PORT = 65535
#: ListJobs pages read at most: 100,000 jobs at 100 a page, far more than a deployment keeps.
MAX_JOB_PAGES = 1000


@dataclass(frozen=True)
class HookConfig:
    """Everything a connection says: how to call the API, and the default workspace and namespace."""

    conn_id: str
    client: ClientSettings
    workspace: str | None
    namespace: str | None
    region: str | None = None
    console_url: str | None = None

    def target(self, namespace: str | None, workspace: str | None) -> tuple[str, str]:
        """The namespace and workspace of a call: the arguments, else the connection's defaults."""
        namespace = namespace or self.namespace
        workspace = workspace or self.workspace
        if not workspace:
            raise VVPConfigurationError(
                f"No workspace: pass workspace=... or set the extra 'workspace' (the workspace ID) "
                f"of connection {self.conn_id!r}"
            )
        if not namespace:
            raise VVPConfigurationError(
                f"No namespace: pass namespace=... or set the extra 'namespace' of connection {self.conn_id!r}"
            )
        return namespace, workspace

    def operation(
        self, build: Callable[..., Operation[T]], namespace: str | None, workspace: str | None, **arguments: Any
    ) -> Operation[T]:
        """``build`` (an :mod:`~.api.operations` builder) in the call's namespace and workspace (see :meth:`target`)."""
        namespace, workspace = self.target(namespace, workspace)
        return build(namespace=namespace, workspace=workspace, **arguments)

    def deployment_url(self, deployment_id: str, namespace: str | None, workspace: str | None) -> str:
        """The deployment's console page, from the extra ``console_url`` template (the public console's by default)."""
        namespace, workspace = self.target(namespace, workspace)
        return deployment_console_url(
            deployment_id=deployment_id,
            namespace=namespace,
            workspace=workspace,
            region=self.region,
            template=self.console_url,
        )


def config_from_connection(
    *,
    conn_id: str,
    host: str | None,
    port: int | None,
    login: str | None,
    password: str | None,
    extra: Mapping[str, Any],
    environ: Mapping[str, str],
    overrides: Mapping[str, float | int | None],
) -> HookConfig:
    """Build a :class:`HookConfig` from a connection's fields, checking each before any request is made.

    Every error names the connection and the field, never a secret's value. Whitespace around the
    AccessKey ID, secret, token, workspace and namespace (a paste's stray newline) is stripped.

    :param overrides: ``timeout``, ``retry_limit``, ``retry_delay`` given to the hook, which win over the extras.
    """
    extra = {
        **{key.removeprefix(_FORM_FIELD_PREFIX): value for key, value in extra.items()},
        **{key: value for key, value in extra.items() if not key.startswith(_FORM_FIELD_PREFIX)},
    }

    def setting(name: str, kind: type[float] | type[int], default: float) -> Any:
        from_hook = overrides.get(name) is not None
        value: Any = overrides[name] if from_hook else extra.get(name)
        source = f"the hook's {name} argument" if from_hook else f"extra {name!r}"
        if isinstance(value, str):
            value = value.strip()
        if value is None or value == "":
            return default
        wanted = "a whole number" if kind is int else "a number"
        # int(1.5) and float(True) would succeed, and say something the connection did not.
        if not isinstance(value, bool) and not (kind is int and isinstance(value, float)):
            with contextlib.suppress(TypeError, ValueError, OverflowError):
                return kind(value)
        raise VVPConfigurationError(f"Connection {conn_id!r}: {source} must be {wanted}, got {value!r}")

    region = _region(conn_id, extra.get("region"))
    timeout = setting("timeout", float, DEFAULT_TIMEOUT)
    spec = credential_spec(
        conn_id=conn_id,
        extra=extra,
        access_key=lambda: _credentials(conn_id, login, password, extra.get("security_token"), environ),
        has_access_key=bool(_stripped(login) or _stripped(password)),
        environ=environ,
        timeout=timeout,
    )
    credentials: Credentials | CredentialsSource
    if spec.credential_type in PROVIDED_TYPES:
        credentials = RefreshingCredentials(spec, mask=_mask_values, amask=_amask_values)
    else:
        assert spec.access_key is not None  # credential_spec reads it for these types
        credentials = spec.access_key
    settings = {
        "endpoint": _endpoint(conn_id, host, port, region),
        "credentials": credentials,
        "timeout": timeout,
        "retry_limit": setting("retry_limit", int, DEFAULT_RETRY_LIMIT),
        "retry_delay": setting("retry_delay", float, DEFAULT_RETRY_DELAY),
    }
    with _reading(conn_id):
        client = ClientSettings(**settings)
    return HookConfig(
        conn_id=conn_id,
        client=client,
        workspace=_text_extra(conn_id, extra, "workspace", operations.check_workspace),
        namespace=_text_extra(conn_id, extra, "namespace", operations.check_namespace),
        region=region,
        console_url=_text_extra(conn_id, extra, "console_url", _check_console_url, strip=False),
    )


@contextlib.contextmanager
def _reading(conn_id: str, field: str | None = None) -> Iterator[None]:
    """Name the connection (and the field) in a VVPConfigurationError raised by a check that knows neither."""
    try:
        yield
    except VVPConfigurationError as error:
        where = f"Connection {conn_id!r}" + (f", {field}" if field else "")
        raise VVPConfigurationError(f"{where}: {error}") from None


def _text_extra(
    conn_id: str, extra: Mapping[str, Any], name: str, check: Callable[[str], None], *, strip: bool = True
) -> str | None:
    """The extra ``name`` (None when unset or blank), stripped if asked, after ``check``."""
    value = extra.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise VVPConfigurationError(f"Connection {conn_id!r}: extra {name!r} must be a string, got {value!r}")
    value = value.strip() if strip else value
    with _reading(conn_id, f"extra {name!r}"):
        check(value)
    return value


def _check_console_url(template: str) -> None:
    deployment_console_url(deployment_id="d", namespace="n", workspace="w", template=template)


class _Pages(Generic[_Item]):
    """A list operation's pages as they come: each item once; over at the first page with nothing new or once
    ``totalSize`` items are in, and refused after :data:`MAX_JOB_PAGES`.

    :param action: the list operation, for the error.
    :param owner: what the list belongs to ("deployment d-1"), for the error.
    :param noun: what the items are ("jobs"), for the error.
    :param key: an item's ID.
    """

    def __init__(self, action: str, owner: str, noun: str, key: Callable[[_Item], str]) -> None:
        self.action = action
        self.owner = owner
        self.noun = noun
        self._key = key
        self._items: dict[str, _Item] = {}
        #: The page to read next; None once all are in.
        self.next_index: int | None = 1

    @property
    def items(self) -> list[_Item]:
        return list(self._items.values())

    def add(self, page: Page[_Item]) -> None:
        new = {self._key(item): item for item in page.items if self._key(item) not in self._items}
        self._items.update(new)
        if not new or len(self._items) >= page.total_size:
            self.next_index = None
            return
        if self.next_index == MAX_JOB_PAGES:
            raise VVPApiError(
                code="InvalidResponse",
                message=f"{self.action} of {self.owner} still brought new {self.noun} after {MAX_JOB_PAGES} "
                f"pages ({len(self._items)} {self.noun}): check that the endpoint is the VVP OpenAPI",
                request_id=None,
                http_status=200,
                action=self.action,
            )
        self.next_index = (self.next_index or 0) + 1


def _job_pages(deployment_id: str) -> _Pages[Job]:
    return _Pages("ListJobs", f"deployment {deployment_id!r}", "jobs", lambda job: job.job_id)


def _savepoint_pages(deployment_id: str) -> _Pages[Savepoint]:
    return _Pages("ListSavepoints", f"deployment {deployment_id!r}", "savepoints", lambda item: item.savepoint_id)


class FlinkVVPHook(BaseHook):
    """Calls the Realtime Compute for Apache Flink (VVP) OpenAPI with a connection's credentials.

    Sync methods use one ``requests.Session``; the ``a``-prefixed twins use one ``httpx.AsyncClient``
    (for triggers). Both sign, retry and parse the same way.

    :param flink_vvp_conn_id: the Airflow connection of type ``flink_vvp``.
    :param timeout: seconds one attempt may take (connecting, sending, the whole answer); overrides the
        connection's extra ``timeout``.
    :param retry_limit: attempts per call, the first included; overrides the extra ``retry_limit``.
    :param retry_delay: seconds before the first retry; overrides the extra ``retry_delay``.
    """

    conn_name_attr = "flink_vvp_conn_id"
    default_conn_name = "flink_vvp_default"
    conn_type = "flink_vvp"
    hook_name = "Flink VVP (Alibaba Cloud Realtime Compute)"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The provider info's ``ui-field-behaviour``, for Airflow before 3.2, which reads it from the hook."""
        from airflow_provider_flink_vvp.get_provider_info import get_provider_info

        (connection_type,) = get_provider_info()["connection-types"]
        return {key.replace("-", "_"): value for key, value in connection_type["ui-field-behaviour"].items()}

    def __init__(
        self,
        flink_vvp_conn_id: str = default_conn_name,
        *,
        timeout: float | None = None,
        retry_limit: int | None = None,
        retry_delay: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.flink_vvp_conn_id = flink_vvp_conn_id
        self._overrides = {"timeout": timeout, "retry_limit": retry_limit, "retry_delay": retry_delay}
        self._async_config: HookConfig | None = None
        self._async_client: AsyncVVPClient | None = None

    @cached_property
    def config(self) -> HookConfig:
        """The connection's settings, read once per hook."""
        conn = self.get_connection(self.flink_vvp_conn_id)
        config = self._config(conn, conn.extra_dejson)
        _mask_secrets(config.client.credentials)
        return config

    async def aget_config(self) -> HookConfig:
        """:attr:`config`, read without blocking the event loop, as the triggerer requires.

        Neither the connection lookup nor the masking of its secrets may make a synchronous call to
        the supervisor on the loop: that blocks every trigger, and raises ``DeadlockImminentError``
        while another call is in flight.
        """
        if self._async_config is None:
            if hasattr(Connection, "aextra_dejson"):  # Airflow 3.3.2+: the lookup and its masking are async
                conn = await self.aget_connection(self.flink_vvp_conn_id)
                extra = await conn.aextra_dejson()
            else:  # earlier, both would call the supervisor synchronously: they run in a worker thread
                from asgiref.sync import sync_to_async

                conn, extra = await sync_to_async(self._connection_and_extra)()
            config = self._config(conn, extra)
            await _amask_secrets(config.client.credentials)
            self._async_config = config
        return self._async_config

    def _connection_and_extra(self) -> tuple[Any, dict[str, Any]]:
        conn = self.get_connection(self.flink_vvp_conn_id)
        return conn, conn.extra_dejson

    def get_conn(self) -> VVPClient:
        """The hook's sync client; its session is reused across calls."""
        return self._client

    async def aget_conn(self) -> AsyncVVPClient:
        """The hook's async client; its connection pool is reused until :meth:`aclose`."""
        if self._async_client is None:
            self._async_client = AsyncVVPClient((await self.aget_config()).client)
        return self._async_client

    def close(self) -> None:
        if "_client" in self.__dict__:
            self._client.close()

    async def aclose(self) -> None:
        if self._async_client is not None:
            await self._async_client.aclose()
            self._async_client = None

    def get_deployments_by_name(
        self,
        deployment_name: str,
        *,
        namespace: str | None = None,
        workspace: str | None = None,
        ignore_job_summary: bool = False,
        ignore_resource_setting: bool = False,
    ) -> list[Deployment]:
        """Every deployment with this name, newest first (names are not unique).

        :param deployment_name: the deployment's name.
        :param namespace: the namespace (project); defaults to the connection's.
        :param workspace: the workspace ID; defaults to the connection's.
        :param ignore_job_summary: leave out the job summary, for a smaller, faster answer.
        :param ignore_resource_setting: leave out the resource settings, for a smaller answer.
        """
        operation = self.config.operation(
            operations.get_deployments_by_name,
            namespace,
            workspace,
            deployment_name=deployment_name,
            ignore_job_summary=ignore_job_summary,
            ignore_resource_setting=ignore_resource_setting,
        )
        return self.get_conn().call(operation)

    def get_latest_deployment(
        self,
        deployment_name: str,
        *,
        namespace: str | None = None,
        workspace: str | None = None,
        ignore_job_summary: bool = False,
        ignore_resource_setting: bool = False,
    ) -> Deployment:
        """The newest deployment with this name; :class:`~.api.errors.DeploymentNotFoundError` when there is none.

        Takes the same parameters as :meth:`get_deployments_by_name`.
        """
        deployments = self.get_deployments_by_name(
            deployment_name,
            namespace=namespace,
            workspace=workspace,
            ignore_job_summary=ignore_job_summary,
            ignore_resource_setting=ignore_resource_setting,
        )
        newest = newest_deployment(deployments, deployment_name, self.config.target(namespace, workspace))
        return newest if ignore_job_summary else _with_job_summary(newest)

    async def aget_deployments_by_name(
        self,
        deployment_name: str,
        *,
        namespace: str | None = None,
        workspace: str | None = None,
        ignore_job_summary: bool = False,
        ignore_resource_setting: bool = False,
        max_age: float = 0.0,
        not_before: float = 0.0,
    ) -> list[Deployment]:
        """Async :meth:`get_deployments_by_name`.

        :param max_age: accept an answer up to this many seconds old that another client of this event
            loop fetched with the same AccessKey ID (triggers watching one deployment share their polls).
        :param not_before: but not one whose request was sent before this time (epoch seconds).
        """
        operation = (await self.aget_config()).operation(
            operations.get_deployments_by_name,
            namespace,
            workspace,
            deployment_name=deployment_name,
            ignore_job_summary=ignore_job_summary,
            ignore_resource_setting=ignore_resource_setting,
        )
        return await (await self.aget_conn()).call(operation, max_age=max_age, not_before=not_before)

    async def aget_latest_deployment(
        self,
        deployment_name: str,
        *,
        namespace: str | None = None,
        workspace: str | None = None,
        ignore_job_summary: bool = False,
        ignore_resource_setting: bool = False,
        max_age: float = 0.0,
        not_before: float = 0.0,
    ) -> Deployment:
        """Async :meth:`get_latest_deployment`; ``max_age`` and ``not_before`` as in
        :meth:`aget_deployments_by_name`."""
        deployments = await self.aget_deployments_by_name(
            deployment_name,
            namespace=namespace,
            workspace=workspace,
            ignore_job_summary=ignore_job_summary,
            ignore_resource_setting=ignore_resource_setting,
            max_age=max_age,
            not_before=not_before,
        )
        target = (await self.aget_config()).target(namespace, workspace)
        newest = newest_deployment(deployments, deployment_name, target)
        return newest if ignore_job_summary else _with_job_summary(newest)

    def get_job(self, job_id: str, *, namespace: str | None = None, workspace: str | None = None) -> Job:
        """A job by its ID (GetJob).

        :param job_id: the job's ID.
        :param namespace: the namespace; defaults to the connection's.
        :param workspace: the workspace ID; defaults to the connection's.
        """
        return self.get_conn().call(self.config.operation(operations.get_job, namespace, workspace, job_id=job_id))

    async def aget_job(
        self,
        job_id: str,
        *,
        namespace: str | None = None,
        workspace: str | None = None,
        max_age: float = 0.0,
        not_before: float = 0.0,
    ) -> Job:
        """Async :meth:`get_job`; ``max_age`` and ``not_before`` as in :meth:`aget_deployments_by_name`
        (triggers watching one job share their polls)."""
        operation = (await self.aget_config()).operation(operations.get_job, namespace, workspace, job_id=job_id)
        return await (await self.aget_conn()).call(operation, max_age=max_age, not_before=not_before)

    async def astop_job(
        self, job_id: str, *, stop_strategy: str = "NONE", namespace: str | None = None, workspace: str | None = None
    ) -> Job:
        """Async :meth:`stop_job` (for a trigger's ``on_kill``), with the same check before a second stop."""
        operation = (await self.aget_config()).operation(
            operations.stop_job, namespace, workspace, job_id=job_id, stop_strategy=stop_strategy
        )

        async def stopping_meanwhile() -> Job | None:
            return _stopping(await self.aget_job(job_id, namespace=namespace, workspace=workspace))

        return await (await self.aget_conn()).call_or_confirm(operation, stopping_meanwhile)

    def get_deployment(
        self, deployment_id: str, *, namespace: str | None = None, workspace: str | None = None
    ) -> Deployment:
        """A deployment by its ID (GetDeployment).

        :param deployment_id: the deployment's ID.
        :param namespace: the namespace; defaults to the connection's.
        :param workspace: the workspace ID; defaults to the connection's.
        """
        operation = self.config.operation(operations.get_deployment, namespace, workspace, deployment_id=deployment_id)
        return self.get_conn().call(operation)

    def list_jobs(self, deployment_id: str, *, namespace: str | None = None, workspace: str | None = None) -> list[Job]:
        """Every job of a deployment, all pages (ListJobs), each job once.

        The pages end with the first that brings no job not seen before, whatever ``totalSize`` says,
        and after :data:`MAX_JOB_PAGES` at most.

        :param deployment_id: the deployment's ID.
        :param namespace: the namespace; defaults to the connection's.
        :param workspace: the workspace ID; defaults to the connection's.
        """
        pages = _job_pages(deployment_id)
        while (page_index := pages.next_index) is not None:
            pages.add(
                self.get_conn().call(
                    self.config.operation(
                        operations.list_jobs, namespace, workspace, deployment_id=deployment_id, page_index=page_index
                    )
                )
            )
        return pages.items

    async def alist_jobs(
        self,
        deployment_id: str,
        *,
        namespace: str | None = None,
        workspace: str | None = None,
        max_age: float = 0.0,
        not_before: float = 0.0,
    ) -> list[Job]:
        """Async :meth:`list_jobs`; ``max_age`` and ``not_before`` (per page) as in :meth:`aget_deployments_by_name`."""
        config, client = await self.aget_config(), await self.aget_conn()
        pages = _job_pages(deployment_id)
        while (page_index := pages.next_index) is not None:
            pages.add(
                await client.call(
                    config.operation(
                        operations.list_jobs, namespace, workspace, deployment_id=deployment_id, page_index=page_index
                    ),
                    max_age=max_age,
                    not_before=not_before,
                )
            )
        return pages.items

    def start_job(
        self,
        deployment_id: str,
        *,
        namespace: str | None = None,
        workspace: str | None = None,
        restore_strategy: str = "LATEST_STATE",
        savepoint_id: str | None = None,
        allow_non_restored_state: bool | None = None,
        local_variables: Mapping[str, str] | None = None,
        jobs_before: Collection[str] | None = None,
    ) -> Job:
        """Start a job of the deployment (StartJobWithParams); one call never starts two jobs.

        When the answer to the start is lost, the deployment's jobs are read again: a job that was
        not there before is the one this call started, and the start is not sent again. When that
        reading fails too, :class:`~.api.errors.VVPOutcomeUnknownError` (retryable) ends the call
        without a second start.

        :param deployment_id: the deployment's ID.
        :param namespace: the namespace; defaults to the connection's.
        :param workspace: the workspace ID; defaults to the connection's.
        :param restore_strategy: NONE, LATEST_SAVEPOINT, FROM_SAVEPOINT (with ``savepoint_id``) or LATEST_STATE.
        :param savepoint_id: the savepoint to restore with FROM_SAVEPOINT.
        :param allow_non_restored_state: skip state that cannot be mapped to the new job graph.
        :param local_variables: values for the deployment's ``${name}`` variables.
        :param jobs_before: the IDs of the deployment's jobs before this start, when the caller has read them
            (ListJobs); read here when None.
        """
        operation = self.config.operation(
            operations.start_job_with_params,
            namespace,
            workspace,
            deployment_id=deployment_id,
            restore_strategy=restore_strategy,
            savepoint_id=savepoint_id,
            allow_non_restored_state=allow_non_restored_state,
            local_variables=local_variables,
        )
        if jobs_before is None:
            jobs_before = [
                job.job_id for job in self.list_jobs(deployment_id, namespace=namespace, workspace=workspace)
            ]
        known = set(jobs_before)

        def started_meanwhile() -> Job | None:
            jobs = self.list_jobs(deployment_id, namespace=namespace, workspace=workspace)
            return next((job for job in jobs if job.job_id not in known), None)

        return self.get_conn().call_or_confirm(operation, started_meanwhile)

    def stop_job(
        self,
        job_id: str,
        *,
        stop_strategy: str = "NONE",
        namespace: str | None = None,
        workspace: str | None = None,
    ) -> Job:
        """Stop a job (StopJob); when the answer is lost, the job is read again before a second stop.

        :param job_id: the job's ID.
        :param stop_strategy: NONE, STOP_WITH_SAVEPOINT or STOP_WITH_DRAIN.
        :param namespace: the namespace; defaults to the connection's.
        :param workspace: the workspace ID; defaults to the connection's.
        """
        operation = self.config.operation(
            operations.stop_job, namespace, workspace, job_id=job_id, stop_strategy=stop_strategy
        )

        def stopping_meanwhile() -> Job | None:
            return _stopping(self.get_job(job_id, namespace=namespace, workspace=workspace))

        return self.get_conn().call_or_confirm(operation, stopping_meanwhile)

    def create_savepoint(
        self,
        deployment_id: str,
        *,
        native_format: bool | None = None,
        description: str | None = None,
        namespace: str | None = None,
        workspace: str | None = None,
        savepoints_before: Collection[str] | None = None,
    ) -> Savepoint:
        """Take a savepoint of the deployment's running job (CreateSavepoint); one call never takes two.

        When the answer is lost, the deployment's savepoints are read again: one that was not there before is
        the one this call created, and the request is not sent again. When that reading fails too,
        :class:`~.api.errors.VVPOutcomeUnknownError` (retryable) ends the call without a second request.

        :param deployment_id: the deployment's ID.
        :param native_format: write the savepoint in the state backend's native format (faster, less portable).
        :param description: a description kept with the savepoint.
        :param namespace: the namespace; defaults to the connection's.
        :param workspace: the workspace ID; defaults to the connection's.
        :param savepoints_before: the IDs of the deployment's savepoints before this call, when the caller has
            read them (ListSavepoints); read here when None.
        """
        operation = self.config.operation(
            operations.create_savepoint,
            namespace,
            workspace,
            deployment_id=deployment_id,
            native_format=native_format,
            description=description,
        )
        if savepoints_before is None:
            savepoints_before = [
                savepoint.savepoint_id
                for savepoint in self.list_savepoints(deployment_id, namespace=namespace, workspace=workspace)
            ]
        known = set(savepoints_before)

        def created_meanwhile() -> Savepoint | None:
            savepoints = self.list_savepoints(deployment_id, namespace=namespace, workspace=workspace)
            return next((savepoint for savepoint in savepoints if savepoint.savepoint_id not in known), None)

        return self.get_conn().call_or_confirm(operation, created_meanwhile)

    def get_savepoint(
        self, savepoint_id: str, *, namespace: str | None = None, workspace: str | None = None
    ) -> Savepoint:
        """A savepoint by its ID (GetSavepoint).

        :param savepoint_id: the savepoint's ID.
        :param namespace: the namespace; defaults to the connection's.
        :param workspace: the workspace ID; defaults to the connection's.
        """
        operation = self.config.operation(operations.get_savepoint, namespace, workspace, savepoint_id=savepoint_id)
        return self.get_conn().call(operation)

    async def aget_savepoint(
        self,
        savepoint_id: str,
        *,
        namespace: str | None = None,
        workspace: str | None = None,
        max_age: float = 0.0,
        not_before: float = 0.0,
    ) -> Savepoint:
        """Async :meth:`get_savepoint`; ``max_age`` and ``not_before`` as in :meth:`aget_deployments_by_name`."""
        operation = (await self.aget_config()).operation(
            operations.get_savepoint, namespace, workspace, savepoint_id=savepoint_id
        )
        return await (await self.aget_conn()).call(operation, max_age=max_age, not_before=not_before)

    def list_savepoints(
        self,
        deployment_id: str,
        *,
        job_id: str | None = None,
        namespace: str | None = None,
        workspace: str | None = None,
    ) -> list[Savepoint]:
        """Every savepoint of a deployment (of one of its jobs, with ``job_id``), all pages (ListSavepoints).

        The pages end as :meth:`list_jobs`' do.

        :param deployment_id: the deployment's ID.
        :param job_id: only the savepoints of this job.
        :param namespace: the namespace; defaults to the connection's.
        :param workspace: the workspace ID; defaults to the connection's.
        """
        pages = _savepoint_pages(deployment_id)
        while (page_index := pages.next_index) is not None:
            pages.add(
                self.get_conn().call(
                    self.config.operation(
                        operations.list_savepoints,
                        namespace,
                        workspace,
                        deployment_id=deployment_id,
                        job_id=job_id,
                        page_index=page_index,
                    )
                )
            )
        return pages.items

    def delete_savepoint(
        self, savepoint_id: str, *, namespace: str | None = None, workspace: str | None = None
    ) -> None:
        """Delete a savepoint (DeleteSavepoint); when the answer is lost, it is looked up before a second delete.

        :param savepoint_id: the savepoint's ID.
        :param namespace: the namespace; defaults to the connection's.
        :param workspace: the workspace ID; defaults to the connection's.
        """
        operation = self.config.operation(operations.delete_savepoint, namespace, workspace, savepoint_id=savepoint_id)

        def deleted_meanwhile() -> bool | None:
            try:
                self.get_savepoint(savepoint_id, namespace=namespace, workspace=workspace)
            except VVPApiError as error:
                if error.http_status == HTTPStatus.NOT_FOUND:
                    return True
                raise
            return None

        self.get_conn().call_or_confirm(operation, deleted_meanwhile)

    def get_job_diagnosis(
        self, deployment_id: str, job_id: str, *, namespace: str | None = None, workspace: str | None = None
    ) -> JobDiagnosis:
        """The service's diagnosis of a job (GetJobDiagnosis).

        :param deployment_id: the job's deployment.
        :param job_id: the job's ID.
        :param namespace: the namespace; defaults to the connection's.
        :param workspace: the workspace ID; defaults to the connection's.
        """
        operation = self.config.operation(
            operations.get_job_diagnosis, namespace, workspace, deployment_id=deployment_id, job_id=job_id
        )
        return self.get_conn().call(operation)

    def get_latest_job_start_log(
        self, deployment_id: str, *, namespace: str | None = None, workspace: str | None = None
    ) -> str:
        """The JobManager log of the deployment's latest job start (GetLatestJobStartLog), as one text.

        :param deployment_id: the deployment's ID.
        :param namespace: the namespace; defaults to the connection's.
        :param workspace: the workspace ID; defaults to the connection's.
        """
        operation = self.config.operation(
            operations.get_latest_job_start_log, namespace, workspace, deployment_id=deployment_id
        )
        return self.get_conn().call(operation)

    def get_lineage(
        self, deployment_id: str, *, namespace: str | None = None, workspace: str | None = None
    ) -> LineageInfo:
        """The tables the deployment reads and writes, as the service's lineage knows them (GetLineageInfo,
        one hop each way, table level).

        :param deployment_id: the deployment's ID.
        :param namespace: the namespace; defaults to the connection's.
        :param workspace: the workspace ID; defaults to the connection's.
        """
        operation = self.config.operation(
            operations.get_lineage_info, namespace, workspace, deployment_id=deployment_id
        )
        return self.get_conn().call(operation)

    def get_events(
        self,
        deployment_id: str,
        *,
        page_index: int = 1,
        page_size: int = operations.MAX_PAGE_SIZE,
        namespace: str | None = None,
        workspace: str | None = None,
    ) -> Page[Event]:
        """One page of a deployment's events (GetEvents).

        :param deployment_id: the deployment's ID.
        :param page_index: the page, from 1.
        :param page_size: events a page, 1 to 100.
        :param namespace: the namespace; defaults to the connection's.
        :param workspace: the workspace ID; defaults to the connection's.
        """
        operation = self.config.operation(
            operations.get_events,
            namespace,
            workspace,
            deployment_id=deployment_id,
            page_index=page_index,
            page_size=page_size,
        )
        return self.get_conn().call(operation)

    def update_deployment(
        self,
        deployment_id: str,
        spec: Mapping[str, Any],
        *,
        namespace: str | None = None,
        workspace: str | None = None,
    ) -> Deployment:
        """Set a deployment's spec (UpdateDeployment) and return the deployment as it is now.

        :param deployment_id: the deployment's ID.
        :param spec: the deployment's JSON as it should be (see :mod:`~.deployment_specs`).
        :param namespace: the namespace; defaults to the connection's.
        :param workspace: the workspace ID; defaults to the connection's.
        """
        operation = self.config.operation(
            operations.update_deployment, namespace, workspace, deployment_id=deployment_id, spec=spec
        )
        return self.get_conn().call(operation)

    def test_connection(self) -> tuple[bool, str]:
        """Make one authenticated call (ListDeployments, one item) so the UI's Test button tells the truth."""
        try:
            config = self.config
            namespace, workspace = config.target(None, None)
            self.get_conn().call(operations.list_deployments(namespace=namespace, workspace=workspace, page_size=1))
        except VVPApiError as error:
            return False, error.summary
        except VVPError as error:
            return False, str(error)
        credentials = config.client.credentials
        who = credentials.access_key_id if isinstance(credentials, Credentials) else repr(credentials)
        return True, (
            f"Connected to {config.client.endpoint} as {who}: "
            f"namespace {namespace!r} of workspace {workspace!r} is readable."
        )

    @cached_property
    def _client(self) -> VVPClient:
        return VVPClient(self.config.client)

    def _config(self, conn: Any, extra: Mapping[str, Any]) -> HookConfig:
        return config_from_connection(
            conn_id=self.flink_vvp_conn_id,
            host=conn.host,
            port=conn.port,
            login=conn.login,
            password=conn.password,
            extra=extra,
            environ=os.environ,
            overrides=self._overrides,
        )


def _stopping(job: Job) -> Job | None:
    """The job if a stop took effect (it is cancelling or has ended), else None: the stop is sent again."""
    return job if job.status == "CANCELLING" or job.is_terminal else None


def newest_deployment(deployments: list[Deployment], deployment_name: str, target: tuple[str, str]) -> Deployment:
    """The newest of ``deployments`` by ``createdAt``, then ``modifiedAt`` (the first of equally old ones);
    DeploymentNotFoundError naming the name and ``target`` (namespace, workspace) when there is none."""
    if not deployments:
        namespace, workspace = target
        raise DeploymentNotFoundError(name=deployment_name, namespace=namespace, workspace=workspace)
    return max(deployments, key=lambda deployment: deployment.recency)


def _with_job_summary(deployment: Deployment) -> Deployment:
    """``deployment``, read with its job summary: an answer without one is not the API's."""
    if deployment.job_summary is None:
        raise VVPApiError(
            code="InvalidResponse",
            message=f"deployment {deployment.deployment_id} came without the jobSummary object the call asked for",
            request_id=None,
            http_status=200,
            action="GetDeploymentsByName",
        )
    return deployment


def _region(conn_id: str, region: Any) -> str | None:
    if region is None or region == "":
        return None
    if not isinstance(region, str) or not _REGION_PATTERN.fullmatch(region):
        raise VVPConfigurationError(
            f"Connection {conn_id!r}: extra 'region' must be a region ID like cn-hangzhou, got {region!r}"
        )
    return region


def _endpoint(conn_id: str, host: str | None, port: int | None, region: str | None) -> str:
    host = (host or "").strip()
    if port is not None and (type(port) is not int or not 1 <= port <= MAX_PORT):
        raise VVPConfigurationError(f"Connection {conn_id!r}: port must be from 1 to {MAX_PORT}, got {port!r}")
    if "://" in host:
        if port is not None and not _has_port(host, port):
            raise VVPConfigurationError(
                # The host is not shown: a URL may hold a password before an '@', refused later.
                f"Connection {conn_id!r}: port {port} is not the port of the host's URL, which would be used "
                "instead: put the port in the URL (https://host:port) and leave the port field empty"
            )
        return host
    if host:
        return f"https://{host}:{port}" if port else f"https://{host}"
    if not region:
        raise VVPConfigurationError(
            f"Connection {conn_id!r} has no endpoint: set the extra 'region' (e.g. cn-hangzhou) "
            "or the host (e.g. ververica.cn-hangzhou.aliyuncs.com, or http://127.0.0.1:8765 for a local emulator)"
        )
    return f"https://ververica.{region}.aliyuncs.com"


def _has_port(url: str, port: int) -> bool:
    """Whether ``url`` names ``port`` itself (an unreadable URL is refused later, by the client's settings)."""
    try:
        return urlsplit(url).port == port
    except ValueError:
        return False


def _credentials(
    conn_id: str, login: str | None, password: str | None, security_token: Any, environ: Mapping[str, str]
) -> Credentials:
    """The connection's AccessKey (else the environment's), stripped of surrounding whitespace."""
    if security_token is not None and not isinstance(security_token, str):
        raise VVPConfigurationError(f"Connection {conn_id!r}: extra 'security_token' must be a string")
    login, password, security_token = (_stripped(value) for value in (login, password, security_token))
    if login or password:
        if not login:
            raise VVPConfigurationError(f"Connection {conn_id!r} has a password but no login: set the AccessKey ID")
        if not password:
            raise VVPConfigurationError(f"Connection {conn_id!r} has no password: set the AccessKey Secret")
        with _reading(conn_id):
            return Credentials(login, password, security_token)
    access_key_id, secret = _stripped(environ.get(ENV_ACCESS_KEY_ID)), _stripped(environ.get(ENV_ACCESS_KEY_SECRET))
    if not (access_key_id and secret):
        raise VVPConfigurationError(
            f"Connection {conn_id!r} has no AccessKey: set its login (AccessKey ID) and password (AccessKey Secret), "
            f"or the environment variables {ENV_ACCESS_KEY_ID} and {ENV_ACCESS_KEY_SECRET}"
        )
    with _reading(conn_id, f"environment variables {ENV_ACCESS_KEY_ID}, {ENV_ACCESS_KEY_SECRET}"):
        return Credentials(access_key_id, secret, security_token or _stripped(environ.get(ENV_SECURITY_TOKEN)))


def _stripped(value: str | None) -> str | None:
    return (value.strip() or None) if value else None


def _mask_secrets(credentials: Credentials | CredentialsSource) -> None:
    # Airflow masks a connection's password itself; a secret from the environment or the
    # token from the extras must be registered too, so no log line can show them.
    _mask_values(secrets_of(credentials))


async def _amask_secrets(credentials: Credentials | CredentialsSource) -> None:
    await _amask_values(secrets_of(credentials))


def _mask_values(secrets: Sequence[str]) -> None:
    """Register ``secrets`` with Airflow's log masker."""
    try:  # Airflow 3.1+
        from airflow.sdk.log import mask_secret
    except ImportError:  # Airflow 3.0
        from airflow.sdk.execution_time.secrets_masker import mask_secret  # type: ignore[no-redef]

    for secret in secrets:
        mask_secret(secret)


async def _amask_values(secrets: Sequence[str]) -> None:
    """:func:`_mask_values` for the event loop: telling the supervisor is a blocking round trip.

    The worker thread is asgiref's, as Airflow's own: the triggerer of Airflow 3.0 and 3.1 sends to the
    supervisor with ``async_to_sync``, which gets back to the triggerer's event loop only from there.
    """
    try:  # Airflow 3.3+ tells it asynchronously
        from airflow.sdk.log import amask_secret
    except ImportError:
        from asgiref.sync import sync_to_async

        await sync_to_async(_mask_values)(secrets)
        return
    for secret in secrets:
        await amask_secret(secret)
