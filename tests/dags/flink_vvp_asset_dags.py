"""DAGs for the asset DAG-level tests: a start and a savepoint task with their deployment's asset in ``outlets``.

Outlets are fixed when the DAG is parsed, so these DAGs name their namespace (:data:`NAMESPACE`) rather than
take the connection's; each DAG has its own deployment name.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_flink_vvp.assets import flink_vvp_asset
from airflow_provider_flink_vvp.operators.savepoint import FlinkVVPCreateSavepointOperator
from airflow_provider_flink_vvp.operators.vvp import FlinkVVPStartJobOperator

WAIT_MODES = ("poke", "deferrable")
WORKSPACE = "ws-tests"
NAMESPACE = "assets"
#: A deployment asset none of these tasks runs: its event gets no extra.
OTHER = flink_vvp_asset(workspace=WORKSPACE, namespace=NAMESPACE, deployment_name="another")


def deployment_name(dag_id: str) -> str:
    return dag_id.removeprefix("flink_vvp_asset_").replace("_", "-")


def dag(dag_id: str) -> DAG:
    return DAG(dag_id=dag_id, schedule=None, start_date=datetime(2026, 1, 1))


for mode in WAIT_MODES:
    with dag(f"flink_vvp_asset_start_{mode}") as started:
        name = deployment_name(started.dag_id)
        FlinkVVPStartJobOperator(
            task_id="start",
            deployment_name=name,
            namespace=NAMESPACE,
            deferrable=mode == "deferrable",
            poll_interval=0.2,
            timeout=20,
            outlets=[flink_vvp_asset(workspace=WORKSPACE, namespace=NAMESPACE, deployment_name=name), OTHER],
        )

    with dag(f"flink_vvp_asset_savepoint_{mode}") as saved:
        name = deployment_name(saved.dag_id)
        FlinkVVPCreateSavepointOperator(
            task_id="savepoint",
            deployment_name=name,
            namespace=NAMESPACE,
            deferrable=mode == "deferrable",
            poll_interval=0.2,
            timeout=20,
            outlets=[flink_vvp_asset(workspace=WORKSPACE, namespace=NAMESPACE, deployment_name=name)],
        )
