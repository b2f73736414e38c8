"""Asset events of deployment assets, with dag.test() against the emulator: what the metadata DB holds."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook
from airflow_provider_flink_vvp.testing import VVPEmulator
from tests.conftest import DAGS_FOLDER, VVP_WORKSPACE
from tests.dag_tests.conftest import RunDag
from tests.dags.flink_vvp_asset_dags import NAMESPACE, OTHER, WAIT_MODES, deployment_name


def asset_events(dag_id: str) -> dict[str, list[dict[str, Any]]]:
    """The extra of each asset event the DAG's runs recorded, by asset URI."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetModel.uri, AssetEvent.extra)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetEvent.source_dag_id == dag_id)
            .order_by(AssetEvent.id)
        ).all()
    events: dict[str, list[dict[str, Any]]] = {}
    for uri, extra in rows:
        events.setdefault(uri, []).append(dict(extra or {}))
    return events


def add_deployment(emulator: VVPEmulator, dag_id: str, *, running_job: bool) -> str:
    """The DAG's deployment in :data:`NAMESPACE`, with a RUNNING job when asked; returns its ID."""
    emulator.add_namespace(VVP_WORKSPACE, NAMESPACE)
    deployment_id = f"asset-{uuid.uuid4().hex[:12]}"
    emulator.add_deployment(
        {
            "deploymentId": deployment_id,
            "name": deployment_name(dag_id),
            "namespace": NAMESPACE,
            "workspace": VVP_WORKSPACE,
            "executionMode": "STREAMING",
            "createdAt": "1700000000",
            "jobSummary": {},
        }
    )
    if running_job:
        emulator.add_job({"jobId": uuid.uuid4().hex, "deploymentId": deployment_id}, timeline=[["RUNNING", None]])
    return deployment_id


def own_uri(dag_id: str) -> str:
    return f"flink-vvp://{VVP_WORKSPACE}/{NAMESPACE}/{deployment_name(dag_id)}"


@pytest.mark.parametrize("mode", WAIT_MODES)
def test_a_started_job_records_an_asset_event_of_its_deployment_with_the_job_in_extra(
    mode: str, run_dag: RunDag, vvp_emulator: VVPEmulator
) -> None:
    dag_id = f"flink_vvp_asset_start_{mode}"
    deployment_id = add_deployment(vvp_emulator, dag_id, running_job=False)

    result = run_dag(dag_id)

    assert result.state == "success"
    job_id = result.xcom("start")
    assert FlinkVVPHook().get_job(job_id, namespace=NAMESPACE).deployment_id == deployment_id
    assert asset_events(dag_id) == {
        own_uri(dag_id): [{"deploymentId": deployment_id, "jobId": job_id, "jobStatus": "RUNNING"}],
        OTHER.uri: [{}],  # an event, as for any outlet, without the job: it is not this task's deployment
    }
    assert f"Outlet {OTHER.uri} is not the deployment this task ran ({own_uri(dag_id)})" in result.output


@pytest.mark.parametrize("mode", WAIT_MODES)
def test_a_savepoint_records_an_asset_event_with_the_savepoint_and_the_job(
    mode: str, run_dag: RunDag, vvp_emulator: VVPEmulator
) -> None:
    dag_id = f"flink_vvp_asset_savepoint_{mode}"
    deployment_id = add_deployment(vvp_emulator, dag_id, running_job=True)

    result = run_dag(dag_id)

    assert result.state == "success"
    [savepoint] = FlinkVVPHook().list_savepoints(deployment_id, namespace=NAMESPACE)
    assert asset_events(dag_id) == {
        own_uri(dag_id): [
            {
                "deploymentId": deployment_id,
                "jobId": savepoint.job_id,
                "jobStatus": "RUNNING",
                "savepointId": savepoint.savepoint_id,
            }
        ]
    }


def test_the_remediation_example_is_scheduled_on_the_deployment_asset_its_watcher_feeds(airflow_db: None) -> None:
    try:  # Airflow 3.3+
        from airflow.serialization.serialized_objects import DagSerialization
    except ImportError:
        from airflow.serialization.serialized_objects import SerializedDAG as DagSerialization  # type: ignore[no-redef]
    try:  # Airflow 3.2+
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    bag = DagBag(dag_folder=DAGS_FOLDER / "example_flink_vvp_on_failure.py")
    assert bag.import_errors == {}
    dag = bag.get_dag("example_flink_vvp_on_failure")
    assert dag is not None
    serialized = DagSerialization.to_dict(dag)["dag"]
    [asset] = serialized["timetable"]["__var"]["asset_condition"]["objects"]
    assert asset["uri"] == "flink-vvp://a14bd5d90a7c41/default-namespace/clickstream"
    [watcher] = asset["watchers"]
    assert watcher["trigger"]["classpath"] == "airflow_provider_flink_vvp.triggers.events.FlinkVVPJobStatusEventTrigger"
    kwargs = json.dumps(watcher["trigger"]["kwargs"])
    assert "00000000-0000-0000-0000-000000000000" in kwargs and "FAILED" in kwargs
