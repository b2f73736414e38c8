"""OpenLineage of a job operator's run: the tables its deployment reads and writes, and a facet naming it.

Only ``get_openlineage_facets_on_complete`` imports this module, and only OpenLineage's listener calls that
(with the ``openlineage`` extra, apache-airflow-providers-openlineage, installed): without it, nothing of
OpenLineage is imported.
"""

from __future__ import annotations

import functools
import importlib.metadata
from typing import Any

import attr
from airflow.providers.common.compat.openlineage.facet import InputDataset, OutputDataset, RunFacet
from airflow.providers.openlineage.extractors import OperatorLineage

from airflow_provider_flink_vvp import __version__
from airflow_provider_flink_vvp.diagnostics import CALL_TIMEOUT_SECONDS
from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook
from airflow_provider_flink_vvp.lineage import deployment_datasets
from airflow_provider_flink_vvp.operators.vvp import DEPLOYMENT_ID_XCOM_KEY
from airflow_provider_flink_vvp.tasks import FlinkVVPBaseOperator

DISTRIBUTION = "airflow-provider-flink-vvp"
#: The project's page when the installed package's metadata names no URL: a producer must be a URI.
FALLBACK_REPOSITORY = f"https://pypi.org/project/{DISTRIBUTION}"
#: The run facet's key in an OpenLineage event.
RUN_FACET_NAME = "flinkVvpJob"
#: GetLineageInfo makes one attempt of at most this long: OpenLineage gives the whole extraction
#: ``[openlineage] execution_timeout`` (10 s by default) and drops the event when it runs over.
LINEAGE_CALL_TIMEOUT_SECONDS = CALL_TIMEOUT_SECONDS


@functools.cache
def source_repository() -> str:
    """The project's home, where the facet below and its schema are defined: the package metadata's
    ``Project-URL: Source, ...``, else its home page or first Project-URL, else :data:`FALLBACK_REPOSITORY`."""
    try:
        metadata = importlib.metadata.metadata(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return FALLBACK_REPOSITORY
    labelled = [entry.partition(", ")[::2] for entry in metadata.get_all("Project-URL") or []]
    urls = [url for label, url in labelled if label == "Source"]
    urls += [*(metadata.get_all("Home-page") or []), *(url for _, url in labelled)]
    return next((url.strip().rstrip("/") for url in urls if url.strip()), FALLBACK_REPOSITORY)


def producer() -> str:
    """The facet's producer: the project's source at the installed version."""
    return f"{source_repository()}/tree/{__version__}"


def run_facet_schema_url() -> str:
    """Where the facet's JSON schema is."""
    return f"{source_repository()}/blob/main/docs/openlineage/FlinkVVPJobRunFacet.json#/$defs/FlinkVVPJobRunFacet"


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
        return run_facet_schema_url()


def job_lineage(task: FlinkVVPBaseOperator, task_instance: Any, *, job_id_key: str) -> OperatorLineage[Any, Any]:
    """The inputs and outputs of the job ``task`` ran, from GetLineageInfo of its deployment, and a
    :class:`FlinkVVPJobRunFacet`. A task that started no job has none. The call makes one attempt of at most
    :data:`LINEAGE_CALL_TIMEOUT_SECONDS`, well within OpenLineage's time for the extraction; a lineage that
    cannot be read or named, for whatever reason, is logged (one line: the error's type and message, with the
    API's error code and requestId) and leaves the inputs and outputs empty: the task's outcome never depends
    on it.

    :param task: the operator that ran.
    :param task_instance: its task instance, whose XComs name the deployment and the job.
    :param job_id_key: the XCom holding the job's ID.
    """
    deployment_id = _pulled(task_instance, DEPLOYMENT_ID_XCOM_KEY)
    if not deployment_id:
        return OperatorLineage()
    hook = FlinkVVPHook(task.flink_vvp_conn_id, timeout=LINEAGE_CALL_TIMEOUT_SECONDS, retry_limit=1)
    try:
        namespace, workspace = hook.config.target(task.namespace, task.workspace)
        job_id = _pulled(task_instance, job_id_key)
        facet = FlinkVVPJobRunFacet(
            deploymentId=deployment_id,
            namespace=namespace,
            workspace=workspace,
            deploymentName=getattr(task, "deployment_name", None),
            jobId=job_id,
            deploymentUrl=hook.config.deployment_url(deployment_id, namespace, workspace),
            producer=producer(),
        )
        info = hook.get_lineage(deployment_id, namespace=namespace, workspace=workspace)
        inputs, outputs = deployment_datasets(
            info, workspace=workspace, namespace=namespace, deployment_id=deployment_id, job_id=job_id
        )
    except Exception as exc:  # lineage is an aside: nothing of it may fail the task or its report
        # One line, whatever the message holds; the client's errors come with their secrets cut out.
        task.log.warning(
            "No OpenLineage inputs and outputs for deployment %s: %s: %s",
            deployment_id,
            type(exc).__name__,
            " ".join(str(exc).split()),
        )
        return OperatorLineage()
    finally:
        hook.close()
    return OperatorLineage(
        inputs=[InputDataset(namespace=dataset.namespace, name=dataset.name) for dataset in inputs],
        outputs=[OutputDataset(namespace=dataset.namespace, name=dataset.name) for dataset in outputs],
        run_facets={RUN_FACET_NAME: facet},
    )


def _pulled(task_instance: Any, key: str) -> str | None:
    value = task_instance.xcom_pull(task_ids=task_instance.task_id, key=key, map_indexes=task_instance.map_index)
    return str(value) if value else None
