"""Find a Flink deployment by name, wait until its job runs, then use its deploymentId downstream.

Uses the ``flink_vvp_default`` connection (AccessKey, workspace and namespace). The deployment
name is a DAG param: trigger with ``{"deployment_name": "..."}`` to watch another one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param, task

from airflow_provider_flink_vvp.operators.vvp import FlinkVVPGetDeploymentsByNameOperator
from airflow_provider_flink_vvp.sensors.vvp import FlinkVVPJobSummarySensor

with DAG(
    dag_id="example_flink_vvp",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"deployment_name": Param("deploymentName", type="string", description="The deployment to watch")},
    tags=["example", "flink"],
):
    # [START howto_operator_flink_vvp_get_deployments_by_name]
    # Names are not unique: this returns the newest deployment's ID (and pushes all of them
    # as the "deployment_ids" XCom).
    get_deployment = FlinkVVPGetDeploymentsByNameOperator(
        task_id="get_deployment",
        deployment_name="{{ params.deployment_name }}",
    )
    # [END howto_operator_flink_vvp_get_deployments_by_name]

    # [START howto_sensor_flink_vvp_job_summary]
    # Waits in the triggerer, not in a worker slot. Past failures of the deployment do not
    # count: only a job that fails while the sensor waits fails the task. A misspelled name fails
    # at once (missing_deployment="wait" would wait for the deployment to be created).
    wait_until_running = FlinkVVPJobSummarySensor(
        task_id="wait_until_running",
        deployment_name="{{ params.deployment_name }}",
        target_states=["running"],
        failure_states=["failed"],
        deferrable=True,
        poll_interval=timedelta(seconds=2),
        timeout=timedelta(minutes=10),
    )
    # [END howto_sensor_flink_vvp_job_summary]

    @task
    def use_deployment(deployment_id: str) -> str:
        # Your work goes here: the deployment's job is running.
        print(f"Deployment {deployment_id} is running.")
        return deployment_id

    get_deployment >> wait_until_running >> use_deployment(get_deployment.output)
