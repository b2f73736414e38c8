"""OpenLineage of the job operators with dag.test() against the emulator: after a start or an upgrade, the
inputs and outputs OpenLineage's extractor gets are the deployment's tables, named by the spec, and a lineage
that cannot be read leaves them empty with one line in the log."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import pytest

from airflow_provider_flink_vvp import operator_lineage
from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook
from airflow_provider_flink_vvp.operator_lineage import (
    LINEAGE_CALL_TIMEOUT_SECONDS,
    RUN_FACET_NAME,
    producer,
    run_facet_schema_url,
)
from airflow_provider_flink_vvp.operators.vvp import FlinkVVPStartJobOperator
from airflow_provider_flink_vvp.testing import Fault, FaultKind, VVPEmulator
from tests.conftest import VVP_WORKSPACE, set_vvp_connection
from tests.dag_tests.conftest import DAGS_FOLDER, RunDag
from tests.dag_tests.test_upgrade_dags import add_running_job_of_its_spec

WAIT_MODES = ("poke", "deferrable")
DB_PASSWORD = "db-pa55word"
LINEAGE = {
    "sources": [
        {
            "table": "orders",
            "connector": "kafka",
            "catalog": "vvp",
            "database": "ods",
            "with": {"topic": "orders", "properties.bootstrap.servers": "Kafka-1:9092,kafka-2:9092"},
        },
        {
            "table": "customers",
            "connector": "jdbc",
            "with": {"url": f"jdbc:mysql://rds:3306/crm?password={DB_PASSWORD}", "table-name": "customers"},
        },
        {"table": "rates", "connector": "hologres", "catalog": "holo", "database": "fx"},
    ],
    "sinks": [{"table": "enriched", "connector": "paimon", "with": {"path": "oss://lake/dws.db/enriched"}}],
}
INPUTS = [
    ("flink-vvp://" + VVP_WORKSPACE, "{namespace}.holo.fx.rates"),
    ("kafka://kafka-1:9092", "orders"),
    ("mysql://rds:3306", "crm.customers"),
]
OUTPUTS = [("oss://lake", "dws.db/enriched")]


class RecordingLogger:
    """A task's logger that keeps each message, formatted, with its level: what was logged, however often
    Airflow's handlers of the version at hand print it."""

    def __init__(self, records: list[tuple[str, str]]) -> None:
        self.records = records

    def __get__(self, task: Any, owner: Any) -> RecordingLogger:
        return self

    def __getattr__(self, level: str) -> Any:
        def log(message: str, *args: Any, **kwargs: Any) -> None:
            self.records.append((level, message % args if args else message))

        return log


def add_enrich(emulator: VVPEmulator, namespace: str, *, running: bool, lineage: dict[str, Any] | None = None) -> str:
    """The SQL deployment ``enrich`` with ``lineage`` (:data:`LINEAGE` by default), and a RUNNING job when
    ``running``."""
    deployment_id = f"enrich-{uuid.uuid4().hex[:8]}"
    emulator.add_deployment(
        {
            "deploymentId": deployment_id,
            "name": "enrich",
            "namespace": namespace,
            "workspace": VVP_WORKSPACE,
            "executionMode": "STREAMING",
            "createdAt": "1700000000",
            "engineVersion": "vvr-8.0.8-flink-1.17",
            "artifact": {"kind": "SQLSCRIPT", "sqlArtifact": {"sqlScript": "INSERT INTO enriched SELECT 1"}},
            "streamingResourceSetting": {"resourceSettingMode": "BASIC", "basicResourceSetting": {"parallelism": 2}},
            "lineage": lineage or LINEAGE,
        }
    )
    if running:
        add_running_job_of_its_spec(emulator, namespace, deployment_id)
    return deployment_id


def extracted(dag_id: str, task_id: str) -> Any:
    """What OpenLineage's extractor gets from the task of the DAG's latest run, as its listener asks for it on
    the task's success: from a task object that did not run (as after a deferral), through the task instance."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.providers.openlineage.extractors.base import DefaultExtractor
    from airflow.utils.session import create_session
    from sqlalchemy import select

    try:  # Airflow 3.2+
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    dag = DagBag(dag_folder=DAGS_FOLDER / "flink_vvp_lineage_dags.py").get_dag(dag_id)
    assert dag is not None
    with create_session() as session:
        # The latest run's: runs are numbered as they are created.
        query = (
            select(TaskInstance)
            .join(DagRun, (DagRun.dag_id == TaskInstance.dag_id) & (DagRun.run_id == TaskInstance.run_id))
            .where(TaskInstance.dag_id == dag_id, TaskInstance.task_id == task_id)
            .order_by(DagRun.id.desc())
        )
        task_instance = session.scalars(query).first()
        assert task_instance is not None
        return DefaultExtractor(dag.get_task(task_id)).extract_on_complete(task_instance)


def names(datasets: list[Any], namespace: str) -> list[tuple[str, str]]:
    return [(dataset.namespace, dataset.name.format(namespace=namespace)) for dataset in datasets]


def expected(pairs: list[tuple[str, str]], namespace: str) -> list[tuple[str, str]]:
    return [(dataset_namespace, name.format(namespace=namespace)) for dataset_namespace, name in pairs]


@pytest.mark.parametrize("mode", WAIT_MODES)
def test_a_start_reports_the_deployment_s_tables_and_its_job_to_openlineage(
    mode: str, run_dag: RunDag, vvp_emulator: VVPEmulator, vvp_namespace: str
) -> None:
    deployment_id = add_enrich(vvp_emulator, vvp_namespace, running=False)

    result = run_dag(f"flink_vvp_lineage_start_{mode}")
    lineage = extracted(f"flink_vvp_lineage_start_{mode}", "start")

    assert result.state == "success", result.output
    assert names(lineage.inputs, vvp_namespace) == expected(INPUTS, vvp_namespace)
    assert names(lineage.outputs, vvp_namespace) == expected(OUTPUTS, vvp_namespace)
    facet = lineage.run_facets[RUN_FACET_NAME]
    assert (facet.deploymentId, facet.jobId, facet.namespace, facet.workspace) == (
        deployment_id,
        result.xcom("start"),
        vvp_namespace,
        VVP_WORKSPACE,
    )
    assert facet.deploymentUrl == FlinkVVPHook().config.deployment_url(deployment_id, None, None)
    assert (facet._producer, facet._schemaURL) == (producer(), run_facet_schema_url())
    assert DB_PASSWORD not in repr(lineage)


@pytest.mark.parametrize("mode", WAIT_MODES)
def test_an_upgrade_reports_the_deployment_s_tables_and_its_new_job_to_openlineage(
    mode: str, run_dag: RunDag, vvp_emulator: VVPEmulator, vvp_namespace: str
) -> None:
    deployment_id = add_enrich(vvp_emulator, vvp_namespace, running=True)

    result = run_dag(f"flink_vvp_lineage_upgrade_{mode}")
    lineage = extracted(f"flink_vvp_lineage_upgrade_{mode}", "upgrade")

    assert result.state == "success", result.output
    assert names(lineage.inputs, vvp_namespace) == expected(INPUTS, vvp_namespace)
    assert names(lineage.outputs, vvp_namespace) == expected(OUTPUTS, vvp_namespace)
    facet = lineage.run_facets[RUN_FACET_NAME]
    assert (facet.deploymentId, facet.deploymentName) == (deployment_id, "enrich")
    assert facet.jobId == result.xcom("upgrade", "job_id") != None  # noqa: E711  # the new job, not the old one


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        (FaultKind.UNAVAILABLE, "ServiceUnavailable"),
        (FaultKind.INTERNAL_ERROR, "InternalError"),
        (FaultKind.THROTTLE, "Throttling.User"),
        (FaultKind.HTML, "HTTP502"),
        (FaultKind.DROP, ""),
    ],
)
def test_a_lineage_that_cannot_be_read_is_logged_once_and_leaves_the_task_s_success_alone(
    fault: FaultKind,
    said: str,
    run_dag: RunDag,
    vvp_emulator: VVPEmulator,
    vvp_namespace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deployment_id = add_enrich(vvp_emulator, vvp_namespace, running=False)
    result = run_dag("flink_vvp_lineage_start_poke")
    vvp_emulator.faults.enqueue(Fault(fault, action="GetLineageInfo"))
    before = vvp_emulator.request_counts().get("GetLineageInfo", 0)

    logged: list[tuple[str, str]] = []
    monkeypatch.setattr(FlinkVVPStartJobOperator, "log", RecordingLogger(logged), raising=False)

    lineage = extracted("flink_vvp_lineage_start_poke", "start")

    assert result.state == "success"
    assert vvp_emulator.request_counts()["GetLineageInfo"] == before + 1  # the connection makes one attempt
    assert (lineage.inputs, lineage.outputs, lineage.run_facets) == ([], [], {})
    [(level, line)] = [(level, message) for level, message in logged if "OpenLineage" in message]
    assert level == "warning" and "\n" not in line
    assert re.search(
        rf"No OpenLineage inputs and outputs for deployment {deployment_id}: VVP\w+Error: GetLineageInfo", line
    )
    if said:
        assert said in line and "requestId" in line


def lineage_warnings(logged: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(level, message) for level, message in logged if "OpenLineage" in message]


def test_a_slow_lineage_answer_leaves_the_lineage_empty_well_within_openlineage_s_time(
    run_dag: RunDag, vvp_emulator: VVPEmulator, vvp_namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment_id = add_enrich(vvp_emulator, vvp_namespace, running=False)
    result = run_dag("flink_vvp_lineage_start_poke")
    # The task's connection waits long and retries, as by default: the lineage's call does neither.
    set_vvp_connection(monkeypatch, vvp_emulator.url, namespace=vvp_namespace, timeout=30, retry_limit=5)
    late_ms = int((LINEAGE_CALL_TIMEOUT_SECONDS + 2) * 1000)
    vvp_emulator.faults.enqueue(Fault(FaultKind.LATENCY, action="GetLineageInfo", latency_ms=late_ms))
    before = vvp_emulator.request_counts().get("GetLineageInfo", 0)
    logged: list[tuple[str, str]] = []
    monkeypatch.setattr(FlinkVVPStartJobOperator, "log", RecordingLogger(logged), raising=False)

    started = time.monotonic()
    lineage = extracted("flink_vvp_lineage_start_poke", "start")
    took = time.monotonic() - started

    assert result.state == "success"
    assert (lineage.inputs, lineage.outputs, lineage.run_facets) == ([], [], {})
    assert LINEAGE_CALL_TIMEOUT_SECONDS <= took < 9  # OpenLineage's execution_timeout is 10 s by default
    assert vvp_emulator.request_counts()["GetLineageInfo"] == before + 1
    [(level, line)] = lineage_warnings(logged)
    assert level == "warning" and "\n" not in line
    assert f"No OpenLineage inputs and outputs for deployment {deployment_id}: " in line


def test_a_missing_connection_leaves_the_lineage_empty_with_one_line(
    run_dag: RunDag, vvp_emulator: VVPEmulator, vvp_namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment_id = add_enrich(vvp_emulator, vvp_namespace, running=False)
    result = run_dag("flink_vvp_lineage_start_poke")
    monkeypatch.delenv("AIRFLOW_CONN_FLINK_VVP_DEFAULT")
    logged: list[tuple[str, str]] = []
    monkeypatch.setattr(FlinkVVPStartJobOperator, "log", RecordingLogger(logged), raising=False)

    lineage = extracted("flink_vvp_lineage_start_poke", "start")

    assert result.state == "success"
    assert (lineage.inputs, lineage.outputs, lineage.run_facets) == ([], [], {})
    [(level, line)] = lineage_warnings(logged)
    assert level == "warning" and "\n" not in line
    assert f"deployment {deployment_id}: AirflowNotFoundException: " in line and "flink_vvp_default" in line


def test_an_error_while_naming_leaves_the_lineage_empty_with_one_line(
    run_dag: RunDag, vvp_emulator: VVPEmulator, vvp_namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_enrich(vvp_emulator, vvp_namespace, running=False)
    result = run_dag("flink_vvp_lineage_start_poke")

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("no name\nfor this table")

    monkeypatch.setattr(operator_lineage, "deployment_datasets", failing)
    logged: list[tuple[str, str]] = []
    monkeypatch.setattr(FlinkVVPStartJobOperator, "log", RecordingLogger(logged), raising=False)

    lineage = extracted("flink_vvp_lineage_start_poke", "start")

    assert result.state == "success"
    assert (lineage.inputs, lineage.outputs, lineage.run_facets) == ([], [], {})
    [(level, line)] = lineage_warnings(logged)
    assert level == "warning" and line.endswith(": RuntimeError: no name for this table")


@pytest.mark.parametrize(
    "path",
    ["hdfs://[nn/x", "s3://[bucket", f"hdfs://(host=nn,password={DB_PASSWORD})/x", f"oss://ak:{DB_PASSWORD}@[lake/x"],
)
def test_a_table_whose_path_names_no_dataset_is_named_in_the_workspace(
    path: str, run_dag: RunDag, vvp_emulator: VVPEmulator, vvp_namespace: str
) -> None:
    sink = {"table": "enriched", "connector": "filesystem", "catalog": "vvp", "database": "dws", "with": {"path": path}}
    add_enrich(vvp_emulator, vvp_namespace, running=False, lineage={**LINEAGE, "sinks": [sink]})

    result = run_dag("flink_vvp_lineage_start_poke")
    lineage = extracted("flink_vvp_lineage_start_poke", "start")

    assert result.state == "success", result.output
    assert names(lineage.inputs, vvp_namespace) == expected(INPUTS, vvp_namespace)
    assert names(lineage.outputs, vvp_namespace) == [
        ("flink-vvp://" + VVP_WORKSPACE, f"{vvp_namespace}.vvp.dws.enriched")
    ]
    assert DB_PASSWORD not in repr(lineage)
