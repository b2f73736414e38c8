"""Operators of Realtime Compute for Apache Flink (VVP)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_flink_vvp.api.errors import DeploymentNotFoundError, VVPError
from airflow_provider_flink_vvp.links.vvp import DEPLOYMENT_URL_XCOM_KEY, FlinkVVPDeploymentLink

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook

#: The XCom holding the IDs of every deployment with the name, newest first.
DEPLOYMENT_IDS_XCOM_KEY = "deployment_ids"


class FlinkVVPGetDeploymentsByNameOperator(BaseOperator):
    """Find the deployments with a name (GetDeploymentsByName) and return the newest one's ID.

    Names are not unique, so every match is pushed too. XComs: ``return_value`` (the newest
    deploymentId), ``deployment_ids`` (all of them, newest first) and ``deployment_url`` (the
    newest one's console page). No deployment with the name fails the task without retries.

    :param deployment_name: the deployment's name. (templated)
    :param namespace: the namespace (project); defaults to the connection's. (templated)
    :param workspace: the workspace ID; defaults to the connection's. (templated)
    :param flink_vvp_conn_id: the Airflow connection of type ``flink_vvp``.
    :param ignore_job_summary: leave the job summaries out of the answer.
    :param ignore_resource_setting: leave the resource settings out of the answer.
    """

    template_fields: Sequence[str] = ("deployment_name", "namespace", "workspace")
    operator_extra_links = (FlinkVVPDeploymentLink(),)

    def __init__(
        self,
        *,
        deployment_name: str,
        namespace: str | None = None,
        workspace: str | None = None,
        flink_vvp_conn_id: str = "flink_vvp_default",
        ignore_job_summary: bool = False,
        ignore_resource_setting: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.deployment_name = deployment_name
        self.namespace = namespace
        self.workspace = workspace
        self.flink_vvp_conn_id = flink_vvp_conn_id
        self.ignore_job_summary = ignore_job_summary
        self.ignore_resource_setting = ignore_resource_setting

    @cached_property
    def hook(self) -> FlinkVVPHook:
        from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook

        return FlinkVVPHook(self.flink_vvp_conn_id)

    def execute(self, context: Context) -> str:
        from airflow.sdk.exceptions import AirflowFailException

        try:
            deployments = self.hook.get_deployments_by_name(
                self.deployment_name,
                namespace=self.namespace,
                workspace=self.workspace,
                ignore_job_summary=self.ignore_job_summary,
                ignore_resource_setting=self.ignore_resource_setting,
            )
            if not deployments:
                namespace, workspace = self.hook.config.target(self.namespace, self.workspace)
                raise DeploymentNotFoundError(name=self.deployment_name, namespace=namespace, workspace=workspace)
            url = self.hook.config.deployment_url(deployments[0].deployment_id, self.namespace, self.workspace)
        except VVPError as error:
            # Transient errors were retried by the client; what is left may heal with a task retry.
            # Anything else (no such deployment, credentials, permissions) will not.
            if error.retryable:
                raise
            raise AirflowFailException(str(error)) from error

        ids = [deployment.deployment_id for deployment in deployments]
        self.log.info("Deployments named %r, newest first: %s; console: %s", self.deployment_name, ids, url)
        ti = context["ti"]
        ti.xcom_push(key=DEPLOYMENT_IDS_XCOM_KEY, value=ids)
        ti.xcom_push(key=DEPLOYMENT_URL_XCOM_KEY, value=url)
        return ids[0]
