"""DAGs for the DAG-level tests: the sensor in each mode, with and without soft_fail, and mapped tasks.

Each sensor DAG waits for ``params.deployment_name`` to be running (failing on a new failed job)
and hands the sensor's XComs to a downstream task, which returns what it read.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, XComArg, task

from airflow_provider_flink_vvp.operators.vvp import FlinkVVPGetDeploymentsByNameOperator
from airflow_provider_flink_vvp.sensors.vvp import FlinkVVPJobStatusSensor, FlinkVVPJobSummarySensor

SENSOR_MODES = ("poke", "reschedule", "deferrable")
MAPPED_NAMES = ["mapped-a", "mapped-b"]


@task
def read(deployment_id: str, deployment_url: str) -> dict[str, str]:
    return {"deployment_id": deployment_id, "deployment_url": deployment_url}


@task
def collect(found: list[str], running: list[str], urls: list[str]) -> dict[str, Any]:
    return {"found": list(found), "running": list(running), "urls": list(urls)}


for mode in SENSOR_MODES:
    for soft_fail in (False, True):
        with DAG(
            dag_id=f"flink_vvp_sensor_{mode}{'_soft_fail' if soft_fail else ''}",
            schedule=None,
            start_date=datetime(2026, 1, 1),
            params={"deployment_name": "orders"},
        ):
            wait = FlinkVVPJobSummarySensor(
                task_id="wait",
                deployment_name="{{ params.deployment_name }}",
                mode="reschedule" if mode == "reschedule" else "poke",
                deferrable=mode == "deferrable",
                soft_fail=soft_fail,
                poke_interval=0.2,
                timeout=10,
            )
            read(wait.output, XComArg(wait, key="deployment_url"))

with DAG(dag_id="flink_vvp_mapped", schedule=None, start_date=datetime(2026, 1, 1)):
    found = FlinkVVPGetDeploymentsByNameOperator.partial(task_id="get").expand(deployment_name=MAPPED_NAMES)
    running = FlinkVVPJobSummarySensor.partial(task_id="wait", poke_interval=0.2, timeout=10).expand(
        deployment_name=MAPPED_NAMES
    )
    collect(found.output, running.output, XComArg(running, key="deployment_url"))

# Deferred, with a retry: the trigger's connection disappears once; the retry must run.
with DAG(
    dag_id="flink_vvp_sensor_deferrable_retry",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    params={"deployment_name": "orders"},
):
    FlinkVVPJobSummarySensor(
        task_id="wait",
        deployment_name="{{ params.deployment_name }}",
        deferrable=True,
        poll_interval=timedelta(seconds=0.2),
        timeout=10,
        retries=1,
        retry_delay=timedelta(0),
    )

# Deferred, never met: execution_timeout (2 s), not the sensors' timeout (60 s), ends the wait.
with DAG(
    dag_id="flink_vvp_sensors_deferred_execution_timeout",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    params={"deployment_name": "orders", "job_id": "j"},
):
    FlinkVVPJobSummarySensor(
        task_id="summary",
        deployment_name="{{ params.deployment_name }}",
        target_states="finished",
        deferrable=True,
        poll_interval=0.2,
        timeout=60,
        execution_timeout=timedelta(seconds=2),
    )
    FlinkVVPJobStatusSensor(
        task_id="status",
        job_id="{{ params.job_id }}",
        target_statuses="FINISHED",
        deferrable=True,
        poll_interval=0.2,
        timeout=60,
        execution_timeout=timedelta(seconds=2),
    )
