"""DAGs for the savepoint DAG-level tests: take a savepoint, retries, timeouts.

Every DAG takes its deployment name from its params; the savepoint task hands its XComs to a downstream task,
which returns what it read.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, XComArg, task

from airflow_provider_flink_vvp.operators.savepoint import FlinkVVPCreateSavepointOperator

WAIT_MODES = ("poke", "deferrable")


@task
def read(savepoint_id: str, savepoint_location: str, deployment_id: str) -> dict[str, str]:
    return {"savepoint_id": savepoint_id, "savepoint_location": savepoint_location, "deployment_id": deployment_id}


def dag(dag_id: str) -> DAG:
    return DAG(dag_id=dag_id, schedule=None, start_date=datetime(2026, 1, 1), params={"deployment_name": "stream"})


def savepoint(mode: str, *, timeout: float = 20, **kwargs: Any) -> FlinkVVPCreateSavepointOperator:
    return FlinkVVPCreateSavepointOperator(
        task_id="savepoint",
        deployment_name="{{ params.deployment_name }}",
        deferrable=mode == "deferrable",
        poll_interval=0.2,
        timeout=timeout,
        **kwargs,
    )


for mode in WAIT_MODES:
    with dag(f"flink_vvp_savepoint_{mode}"):
        taken = savepoint(mode, description="nightly {{ ds }}", native_format=True)
        read(taken.output, XComArg(taken, key="savepoint_location"), XComArg(taken, key="deployment_id"))

    # A try that fails (its create's outcome unknown, or its wait timed out) is retried: the retry waits on the
    # savepoint the first try took.
    with dag(f"flink_vvp_savepoint_retry_{mode}"):
        savepoint(mode, retries=1, retry_delay=timedelta(0))

    with dag(f"flink_vvp_savepoint_slow_retry_{mode}"):
        savepoint(mode, timeout=1.2, retries=1, retry_delay=timedelta(0))

    with dag(f"flink_vvp_savepoint_execution_timeout_{mode}"):
        savepoint(mode, execution_timeout=timedelta(seconds=1.5))
