"""FlinkVVPHook: an Airflow connection turned into signed calls to the VVP OpenAPI."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_flink_vvp.api import operations
from airflow_provider_flink_vvp.api.errors import DeploymentNotFoundError, VVPApiError, VVPConfigurationError, VVPError
from airflow_provider_flink_vvp.api.models import Deployment, Job
from airflow_provider_flink_vvp.api.operations import Credentials, Operation
from airflow_provider_flink_vvp.client import (
    DEFAULT_RETRY_DELAY,
    DEFAULT_RETRY_LIMIT,
    DEFAULT_TIMEOUT,
    AsyncVVPClient,
    ClientSettings,
    VVPClient,
)
from airflow_provider_flink_vvp.console import deployment_console_url

T = TypeVar("T")

ENV_ACCESS_KEY_ID = "ALIBABA_CLOUD_ACCESS_KEY_ID"
ENV_ACCESS_KEY_SECRET = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"  # noqa: S105 - a variable's name, not a secret
ENV_SECURITY_TOKEN = "ALIBABA_CLOUD_SECURITY_TOKEN"  # noqa: S105
# The Airflow UI may save form fields under this prefix; a plain name wins over a prefixed one.
_FORM_FIELD_PREFIX = "extra__flink_vvp__"
_REGION_PATTERN = re.compile(r"^[a-z]{2}(-[a-z0-9]+)+$")


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
    """Build a :class:`HookConfig` from a connection's fields; every error names the connection and the field.

    :param overrides: ``timeout``, ``retry_limit``, ``retry_delay`` given to the hook, which win over the extras.
    """
    extra = {
        **{key.removeprefix(_FORM_FIELD_PREFIX): value for key, value in extra.items()},
        **{key: value for key, value in extra.items() if not key.startswith(_FORM_FIELD_PREFIX)},
    }

    def setting(name: str, kind: type[float] | type[int], default: float) -> Any:
        value: Any = overrides.get(name)
        if value is None:
            value = extra.get(name)
        if value is None or value == "":
            return default
        try:
            return kind(value)
        except (TypeError, ValueError):
            raise VVPConfigurationError(
                f"Connection {conn_id!r}: extra {name!r} must be a {kind.__name__}, got {value!r}"
            ) from None

    return HookConfig(
        conn_id=conn_id,
        client=ClientSettings(
            endpoint=_endpoint(conn_id, host, port, extra.get("region")),
            credentials=_credentials(conn_id, login, password, extra.get("security_token"), environ),
            timeout=setting("timeout", float, DEFAULT_TIMEOUT),
            retry_limit=setting("retry_limit", int, DEFAULT_RETRY_LIMIT),
            retry_delay=setting("retry_delay", float, DEFAULT_RETRY_DELAY),
        ),
        workspace=extra.get("workspace") or None,
        namespace=extra.get("namespace") or None,
        region=extra.get("region") or None,
        console_url=extra.get("console_url") or None,
    )


class FlinkVVPHook(BaseHook):
    """Calls the Realtime Compute for Apache Flink (VVP) OpenAPI with a connection's credentials.

    Sync methods use one ``requests.Session``; the ``a``-prefixed twins use one ``httpx.AsyncClient``
    (for triggers). Both sign, retry and parse the same way.

    :param flink_vvp_conn_id: the Airflow connection of type ``flink_vvp``.
    :param timeout: seconds to wait for each request; overrides the connection's extra ``timeout``.
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
            try:  # common-compat 1.21+: the async connection API of each Airflow version
                from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson
            except ImportError:  # older common-compat: the synchronous lookup, in a worker thread
                from asgiref.sync import sync_to_async

                conn, extra = await sync_to_async(self._connection_and_extra)()
            else:
                conn = await get_async_connection(self.flink_vvp_conn_id, hook=self)
                extra = await get_async_extra_dejson(conn)
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
        """The newest deployment with this name; :class:`DeploymentNotFoundError` when there is none.

        Takes the same parameters as :meth:`get_deployments_by_name`.
        """
        deployments = self.get_deployments_by_name(
            deployment_name,
            namespace=namespace,
            workspace=workspace,
            ignore_job_summary=ignore_job_summary,
            ignore_resource_setting=ignore_resource_setting,
        )
        return newest_deployment(deployments, deployment_name, self.config.target(namespace, workspace))

    async def aget_deployments_by_name(
        self,
        deployment_name: str,
        *,
        namespace: str | None = None,
        workspace: str | None = None,
        ignore_job_summary: bool = False,
        ignore_resource_setting: bool = False,
        max_age: float = 0.0,
    ) -> list[Deployment]:
        """Async :meth:`get_deployments_by_name`.

        :param max_age: accept an answer up to this many seconds old that another client of this event
            loop fetched with the same AccessKey ID (triggers watching one deployment share their polls).
        """
        operation = (await self.aget_config()).operation(
            operations.get_deployments_by_name,
            namespace,
            workspace,
            deployment_name=deployment_name,
            ignore_job_summary=ignore_job_summary,
            ignore_resource_setting=ignore_resource_setting,
        )
        return await (await self.aget_conn()).call(operation, max_age=max_age)

    async def aget_latest_deployment(
        self,
        deployment_name: str,
        *,
        namespace: str | None = None,
        workspace: str | None = None,
        ignore_job_summary: bool = False,
        ignore_resource_setting: bool = False,
        max_age: float = 0.0,
    ) -> Deployment:
        """Async :meth:`get_latest_deployment`; ``max_age`` as in :meth:`aget_deployments_by_name`."""
        deployments = await self.aget_deployments_by_name(
            deployment_name,
            namespace=namespace,
            workspace=workspace,
            ignore_job_summary=ignore_job_summary,
            ignore_resource_setting=ignore_resource_setting,
            max_age=max_age,
        )
        return newest_deployment(deployments, deployment_name, (await self.aget_config()).target(namespace, workspace))

    def get_job(self, job_id: str, *, namespace: str | None = None, workspace: str | None = None) -> Job:
        """A job by its ID (GetJob).

        :param job_id: the job's ID.
        :param namespace: the namespace; defaults to the connection's.
        :param workspace: the workspace ID; defaults to the connection's.
        """
        return self.get_conn().call(self.config.operation(operations.get_job, namespace, workspace, job_id=job_id))

    async def aget_job(
        self, job_id: str, *, namespace: str | None = None, workspace: str | None = None, max_age: float = 0.0
    ) -> Job:
        """Async :meth:`get_job`; ``max_age`` as in :meth:`aget_deployments_by_name` (triggers watching one job
        share their polls)."""
        operation = (await self.aget_config()).operation(operations.get_job, namespace, workspace, job_id=job_id)
        return await (await self.aget_conn()).call(operation, max_age=max_age)

    async def astop_job(
        self, job_id: str, *, stop_strategy: str = "NONE", namespace: str | None = None, workspace: str | None = None
    ) -> Job:
        """Async :meth:`stop_job` (for a trigger's ``on_kill``); it is repeated only when surely not sent."""
        operation = (await self.aget_config()).operation(
            operations.stop_job, namespace, workspace, job_id=job_id, stop_strategy=stop_strategy
        )
        return await (await self.aget_conn()).call(operation)

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
        """Every job of a deployment, all pages (ListJobs).

        :param deployment_id: the deployment's ID.
        :param namespace: the namespace; defaults to the connection's.
        :param workspace: the workspace ID; defaults to the connection's.
        """
        jobs: list[Job] = []
        page_index = 1
        while True:
            page = self.get_conn().call(
                self.config.operation(
                    operations.list_jobs, namespace, workspace, deployment_id=deployment_id, page_index=page_index
                )
            )
            jobs.extend(page.items)
            if not page.items or len(jobs) >= page.total_size:
                return jobs
            page_index += 1

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
    ) -> Job:
        """Start a job of the deployment (StartJobWithParams); one call never starts two jobs.

        When the answer to the start is lost, the deployment's jobs are read again: a job that was
        not there before is the one this call started, and the start is not sent again.

        :param deployment_id: the deployment's ID.
        :param namespace: the namespace; defaults to the connection's.
        :param workspace: the workspace ID; defaults to the connection's.
        :param restore_strategy: NONE, LATEST_SAVEPOINT, FROM_SAVEPOINT (with ``savepoint_id``) or LATEST_STATE.
        :param savepoint_id: the savepoint to restore with FROM_SAVEPOINT.
        :param allow_non_restored_state: skip state that cannot be mapped to the new job graph.
        :param local_variables: values for the deployment's ``${name}`` variables.
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
        known = {job.job_id for job in self.list_jobs(deployment_id, namespace=namespace, workspace=workspace)}

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
            job = self.get_job(job_id, namespace=namespace, workspace=workspace)
            return None if job.is_active else job

        return self.get_conn().call_or_confirm(operation, stopping_meanwhile)

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
        return True, (
            f"Connected to {config.client.endpoint} as {config.client.credentials.access_key_id}: "
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


def newest_deployment(deployments: list[Deployment], deployment_name: str, target: tuple[str, str]) -> Deployment:
    """The first of GetDeploymentsByName's answer (newest first); DeploymentNotFoundError naming the
    name and ``target`` (namespace, workspace) when it is empty."""
    if not deployments:
        namespace, workspace = target
        raise DeploymentNotFoundError(name=deployment_name, namespace=namespace, workspace=workspace)
    return deployments[0]


def _endpoint(conn_id: str, host: str | None, port: int | None, region: Any) -> str:
    host = (host or "").strip()
    if "://" in host:
        return host
    if host:
        return f"https://{host}:{port}" if port else f"https://{host}"
    if not region:
        raise VVPConfigurationError(
            f"Connection {conn_id!r} has no endpoint: set the extra 'region' (e.g. cn-hangzhou) "
            "or the host (e.g. ververica.cn-hangzhou.aliyuncs.com, or http://127.0.0.1:8765 for a local emulator)"
        )
    if not isinstance(region, str) or not _REGION_PATTERN.match(region):
        raise VVPConfigurationError(
            f"Connection {conn_id!r}: extra 'region' must be a region ID like cn-hangzhou, got {region!r}"
        )
    return f"https://ververica.{region}.aliyuncs.com"


def _credentials(
    conn_id: str, login: str | None, password: str | None, security_token: Any, environ: Mapping[str, str]
) -> Credentials:
    if login or password:
        if not login:
            raise VVPConfigurationError(f"Connection {conn_id!r} has a password but no login: set the AccessKey ID")
        if not password:
            raise VVPConfigurationError(f"Connection {conn_id!r} has no password: set the AccessKey Secret")
        return Credentials(login, password, security_token or None)
    access_key_id, secret = environ.get(ENV_ACCESS_KEY_ID), environ.get(ENV_ACCESS_KEY_SECRET)
    if not (access_key_id and secret):
        raise VVPConfigurationError(
            f"Connection {conn_id!r} has no AccessKey: set its login (AccessKey ID) and password (AccessKey Secret), "
            f"or the environment variables {ENV_ACCESS_KEY_ID} and {ENV_ACCESS_KEY_SECRET}"
        )
    return Credentials(access_key_id, secret, security_token or environ.get(ENV_SECURITY_TOKEN) or None)


def _mask_secrets(credentials: Credentials) -> None:
    # Airflow masks a connection's password itself; a secret from the environment or the
    # token from the extras must be registered too, so no log line can show them.
    try:  # Airflow 3.1+
        from airflow.sdk.log import mask_secret
    except ImportError:  # Airflow 3.0
        from airflow.sdk.execution_time.secrets_masker import mask_secret  # type: ignore[no-redef]

    for secret in _secrets_of(credentials):
        mask_secret(secret)


async def _amask_secrets(credentials: Credentials) -> None:
    """:func:`_mask_secrets` for the event loop: telling the supervisor is a blocking round trip.

    The worker thread is asgiref's, as Airflow's own: the triggerer of Airflow 3.0 and 3.1 sends to the
    supervisor with ``async_to_sync``, which gets back to the triggerer's event loop only from there.
    """
    try:  # Airflow 3.3+ tells it asynchronously
        from airflow.sdk.log import amask_secret
    except ImportError:
        from asgiref.sync import sync_to_async

        await sync_to_async(_mask_secrets)(credentials)
        return
    for secret in _secrets_of(credentials):
        await amask_secret(secret)


def _secrets_of(credentials: Credentials) -> list[str]:
    return [secret for secret in (credentials.access_key_secret, credentials.security_token) if secret]
