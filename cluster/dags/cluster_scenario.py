"""The cluster scenario's DAG: its tasks come from ``scenario.json`` beside this file (made by cluster/scenario.py).

Every task retries: a task whose worker is killed under it fails by missing heartbeats and runs again
on the other worker.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG

from airflow_provider_flink_vvp.operators.vvp import FlinkVVPGetDeploymentsByNameOperator, FlinkVVPStartJobOperator
from airflow_provider_flink_vvp.sensors.vvp import FlinkVVPJobSummarySensor

SCENARIO = json.loads(Path(__file__).with_name("scenario.json").read_text(encoding="utf-8"))
POLL_INTERVAL = timedelta(seconds=SCENARIO["poll_interval"])
POKE_INTERVAL = timedelta(seconds=SCENARIO["poke_interval"])
TIMEOUT = timedelta(minutes=20)

with DAG(
    dag_id=SCENARIO["dag_id"],
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_tasks=len(SCENARIO["tasks"]),
    default_args={"retries": 3, "retry_delay": timedelta(seconds=3)},
):
    for task in SCENARIO["tasks"]:
        if task["kind"] in ("deferrable", "reschedule"):
            deferrable = task["kind"] == "deferrable"
            FlinkVVPJobSummarySensor(
                task_id=task["task_id"],
                deployment_name=task["deployment_name"],
                target_states=["running"],
                failure_states=["failed"],
                deferrable=deferrable,
                mode="poke" if deferrable else "reschedule",
                poll_interval=POLL_INTERVAL if deferrable else POKE_INTERVAL,
                timeout=TIMEOUT,
            )
        elif task["kind"] == "start":
            FlinkVVPStartJobOperator(
                task_id=task["task_id"],
                deployment_name=task["deployment_name"],
                restore_strategy="NONE",
                if_running=task["if_running"],
                deferrable=True,
                poll_interval=POLL_INTERVAL,
                timeout=TIMEOUT,
                priority_weight=100,  # queued first, so the run's early worker kill can find one mid-start
            )
        else:
            FlinkVVPGetDeploymentsByNameOperator(task_id=task["task_id"], deployment_name=task["deployment_name"])
