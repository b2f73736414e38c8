"""DAGs for the deployment update DAG-level tests: update, dry run, roll back.

Every DAG takes its deployment name and new SQL from its params.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, XComArg, task

from airflow_provider_flink_vvp.operators.deployment import FlinkVVPUpdateDeploymentOperator


@task
def read(previous_spec: dict[str, Any], spec_diff: list[str]) -> dict[str, Any]:
    return {"previous_spec": previous_spec, "spec_diff": spec_diff}


def dag(dag_id: str) -> DAG:
    return DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime(2026, 1, 1),
        params={"deployment_name": "orders", "sql": "INSERT INTO sink SELECT * FROM source", "interval": "60s"},
    )


def update(task_id: str = "update", **kwargs: Any) -> FlinkVVPUpdateDeploymentOperator:
    return FlinkVVPUpdateDeploymentOperator(
        task_id=task_id,
        deployment_name="{{ params.deployment_name }}",
        sql_script="{{ params.sql }}",
        parallelism=4,
        flink_conf={"execution.checkpointing.interval": "{{ params.interval }}"},
        **kwargs,
    )


for dry_run in (False, True):
    with dag("flink_vvp_update_dry_run" if dry_run else "flink_vvp_update"):
        updated = update(dry_run=dry_run)
        read(XComArg(updated, key="previous_spec"), XComArg(updated, key="spec_diff"))

# An update, then a second task that puts the first one's previous spec back.
with dag("flink_vvp_update_rollback"):
    changed = update()
    changed >> FlinkVVPUpdateDeploymentOperator(
        task_id="roll_back",
        deployment_name="{{ params.deployment_name }}",
        spec=XComArg(changed, key="previous_spec"),
    )
