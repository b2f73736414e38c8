"""DAGs for the credential tests: a deferred sensor signing with a RAM role it assumes (connection
``flink_vvp_role``), whose tokens expire several times while it waits; the same with retries, for a role
STS refuses."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_flink_vvp.sensors.vvp import FlinkVVPJobSummarySensor

with DAG(
    dag_id="flink_vvp_credentials_deferred_role",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    params={"deployment_name": "orders"},
):
    FlinkVVPJobSummarySensor(
        task_id="wait",
        flink_vvp_conn_id="flink_vvp_role",
        deployment_name="{{ params.deployment_name }}",
        deferrable=True,
        poll_interval=0.3,
        timeout=60,
    )

with DAG(
    dag_id="flink_vvp_credentials_refused_role",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    params={"deployment_name": "orders"},
):
    FlinkVVPJobSummarySensor(
        task_id="wait",
        flink_vvp_conn_id="flink_vvp_role",
        deployment_name="{{ params.deployment_name }}",
        deferrable=True,
        poll_interval=0.3,
        timeout=60,
        retries=2,
        retry_delay=timedelta(0),
    )
