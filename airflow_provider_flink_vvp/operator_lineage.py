"""OpenLineage of a job operator's run: the tables its deployment reads and writes, and a facet naming it.

Only ``get_openlineage_facets_on_complete`` imports this module, and only OpenLineage's listener calls that
(with the ``openlineage`` extra, apache-airflow-providers-openlineage, installed): without it, nothing of
OpenLineage is imported.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

import attr
from airflow.providers.common.compat.openlineage.facet import InputDataset, OutputDataset, RunFacet
from airflow.providers.openlineage.extractors import OperatorLineage

from airflow_provider_flink_vvp import __version__
from airflow_provider_flink_vvp.api.errors import VVPError
from airflow_provider_flink_vvp.lineage import deployment_datasets
from airflow_provider_flink_vvp.operators.vvp import DEPLOYMENT_ID_XCOM_KEY
from airflow_provider_flink_vvp.tasks import FlinkVVPBaseOperator


def _source_repository() -> str:
    """The project's repository, as the package's metadata states it (``Project-URL: Source, ...``)."""
    urls: list[str] = importlib.metadata.metadata("airflow-provider-flink-vvp").get_all("Project-URL") or []
    return next(url for label, _, url in (entry.partition(", ") for entry in urls) if label == "Source")


#: The project's home: where the facet below and its schema are defined.
REPOSITORY = _source_repository()
PRODUCER = f"{REPOSITORY}/tree/{__version__}"
RUN_FACET_SCHEMA_URL = f"{REPOSITORY}/blob/main/docs/openlineage/FlinkVVPJobRunFacet.json#/$defs/FlinkVVPJobRunFacet"
#: The run facet's key in an OpenLineage event.
RUN_FACET_NAME = "flinkVvpJob"


@attr.define
class FlinkVVPJobRunFacet(RunFacet):
    """The Flink job a task run started: its deployment (ID, and name when the task named it), its namespace and
    workspace, the job's ID and the deployment's console page."""

    deploymentId: str  # noqa: N815  # OpenLineage facets' fields are camelCase
    namespace: str
    workspace: str
    deploymentName: str | None = None  # noqa: N815
    jobId: str | None = None  # noqa: N815
    deploymentUrl: str | None = None  # noqa: N815

    @staticmethod
    def _get_schema() -> str:
        return RUN_FACET_SCHEMA_URL


def job_lineage(task: FlinkVVPBaseOperator, task_instance: Any, *, job_id_key: str) -> OperatorLineage[Any, Any]:
    """The inputs and outputs of the job ``task`` ran, from GetLineageInfo of its deployment, and a
    :class:`FlinkVVPJobRunFacet`. A task that started no job has none; a lineage that cannot be read is logged
    (one line, with the API's error code and requestId) and leaves the inputs and outputs empty: the task's
    outcome never depends on it.

    :param task: the operator that ran.
    :param task_instance: its task instance, whose XComs name the deployment and the job.
    :param job_id_key: the XCom holding the job's ID.
    """
    deployment_id = _pulled(task_instance, DEPLOYMENT_ID_XCOM_KEY)
    if not deployment_id:
        return OperatorLineage()
    try:
        namespace, workspace = task.hook.config.target(task.namespace, task.workspace)
        facet = FlinkVVPJobRunFacet(
            deploymentId=deployment_id,
            namespace=namespace,
            workspace=workspace,
            deploymentName=getattr(task, "deployment_name", None),
            jobId=_pulled(task_instance, job_id_key),
            deploymentUrl=task.hook.config.deployment_url(deployment_id, namespace, workspace),
            producer=PRODUCER,
        )
        info = task.hook.get_lineage(deployment_id, namespace=namespace, workspace=workspace)
    except VVPError as exc:
        # One line, whatever the server's message holds.
        task.log.warning(
            "No OpenLineage inputs and outputs for deployment %s: %s", deployment_id, " ".join(str(exc).split())
        )
        return OperatorLineage()
    inputs, outputs = deployment_datasets(info, workspace=workspace, namespace=namespace)
    return OperatorLineage(
        inputs=[InputDataset(namespace=dataset.namespace, name=dataset.name) for dataset in inputs],
        outputs=[OutputDataset(namespace=dataset.namespace, name=dataset.name) for dataset in outputs],
        run_facets={RUN_FACET_NAME: facet},
    )


def _pulled(task_instance: Any, key: str) -> str | None:
    value = task_instance.xcom_pull(task_ids=task_instance.task_id, key=key, map_indexes=task_instance.map_index)
    return str(value) if value else None
