"""The "Flink VVP deployment" link of a task: the console page of the deployment it found or watched."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.providers.common.compat.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import BaseOperator, TaskInstanceKey

#: The XCom in which the operator and the sensor leave the console URL of the deployment.
DEPLOYMENT_URL_XCOM_KEY = "deployment_url"


class FlinkVVPDeploymentLink(BaseOperatorLink):
    """Links a task to its deployment's page in the Realtime Compute console.

    Airflow 3 resolves a link on the worker when the task ends and stores it as XCom for the UI;
    the link is the ``deployment_url`` XCom the task pushed, or empty before it found a deployment.
    """

    name = "Flink VVP deployment"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.providers.common.compat.sdk import XCom

        url = XCom.get_value(ti_key=ti_key, key=DEPLOYMENT_URL_XCOM_KEY)
        return url if isinstance(url, str) else ""
