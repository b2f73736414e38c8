"""Remediation when a streaming job fails: an asset watcher starts a DAG on each FAILED job of a deployment.

The watcher's trigger (:class:`~airflow_provider_flink_vvp.triggers.events.FlinkVVPJobStatusEventTrigger`) runs in
the triggerer and lists the deployment's jobs every 30 seconds; each job that enters FAILED is one asset event,
whose ``extra["payload"]`` holds the job's ID, status, failure reason and message and when it failed. The DAG
scheduled on the asset logs the failure and starts the deployment again from its latest state. On Airflow 3.0.5+
the watcher keeps the jobs it has seen in an Airflow Variable, so a job that fails while no triggerer runs still
starts one run, once a triggerer runs the watcher again.

Uses the ``flink_vvp_default`` connection (AccessKey, workspace and namespace). Set the workspace, namespace,
deployment name and ID below to your deployment's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, AssetWatcher, task

from airflow_provider_flink_vvp.assets import flink_vvp_asset
from airflow_provider_flink_vvp.operators.vvp import FlinkVVPStartJobOperator
from airflow_provider_flink_vvp.triggers.events import FlinkVVPJobStatusEventTrigger

WORKSPACE = "a14bd5d90a7c41"
NAMESPACE = "default-namespace"
DEPLOYMENT_NAME = "clickstream"
DEPLOYMENT_ID = "00000000-0000-0000-0000-000000000000"

# [START howto_trigger_flink_vvp_job_status_event]
clickstream_failed = flink_vvp_asset(
    workspace=WORKSPACE,
    namespace=NAMESPACE,
    deployment_name=DEPLOYMENT_NAME,
    watchers=[
        AssetWatcher(
            name="clickstream_failed",
            trigger=FlinkVVPJobStatusEventTrigger(
                deployment_ids=[DEPLOYMENT_ID],
                statuses=["FAILED"],
                namespace=NAMESPACE,
                workspace=WORKSPACE,
                poll_interval=30,
            ),
        )
    ],
)
# [END howto_trigger_flink_vvp_job_status_event]

with DAG(
    dag_id="example_flink_vvp_on_failure",
    schedule=[clickstream_failed],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "flink"],
):

    @task
    def failed_job(*, triggering_asset_events: Any = None) -> dict[str, Any]:
        """The failure that started this run, from the watcher's event."""
        events = [event for asset_events in (triggering_asset_events or {}).values() for event in asset_events]
        payload: dict[str, Any] = events[-1].extra["payload"]
        print(
            f"Job {payload['job_id']} of deployment {payload['deployment_id']} FAILED at {payload['at']}: "
            f"{payload['failure_reason']}: {payload['failure_message']}"
        )
        return payload

    # Start the deployment again from its latest state and wait until it runs; a job someone else already
    # started is waited on, not replaced.
    restart = FlinkVVPStartJobOperator(
        task_id="restart",
        deployment_id="{{ ti.xcom_pull(task_ids='failed_job')['deployment_id'] }}",
        restore_strategy="LATEST_STATE",
        if_running="attach",
        deferrable=True,
    )

    failed_job() >> restart
