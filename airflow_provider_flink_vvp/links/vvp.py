"""The "Flink VVP deployment" link of a task: the console page of the deployment it found or watched."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperatorLink

from airflow_provider_flink_vvp.console import deployment_console_url

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

    from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook

#: The XCom in which the operator and the sensor leave the console URL of the deployment.
DEPLOYMENT_URL_XCOM_KEY = "deployment_url"


class FlinkVVPDeploymentLink(BaseOperatorLink):
    """Links a task to its deployment's page in the Realtime Compute console.

    Airflow 3 resolves a link on the worker when the task ends and stores it as XCom for the UI;
    the link is the ``deployment_url`` XCom the task pushed, or empty before it found a deployment.
    """

    name = "Flink VVP deployment"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        url = XCom.get_value(ti_key=ti_key, key=DEPLOYMENT_URL_XCOM_KEY)
        return url if isinstance(url, str) else ""


def deployment_url(hook: FlinkVVPHook, *, deployment_id: str, namespace: str | None, workspace: str | None) -> str:
    """The console URL of a deployment, from the connection's extras ``console_url`` (template) and ``region``.

    :param hook: the hook whose connection holds the template and the default namespace and workspace.
    :param deployment_id: the deployment's ID.
    :param namespace: the namespace asked for; the connection's when None.
    :param workspace: the workspace asked for; the connection's when None.
    """
    namespace, workspace = hook.config.target(namespace, workspace)
    extra = hook.get_connection(hook.flink_vvp_conn_id).extra_dejson
    return deployment_console_url(
        deployment_id=deployment_id,
        namespace=namespace,
        workspace=workspace,
        region=extra.get("region"),
        template=extra.get("console_url"),
    )
