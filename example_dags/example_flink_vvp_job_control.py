"""Run a streaming job for a while: start it, wait until it runs, then stop it with a savepoint.

Uses the ``flink_vvp_default`` connection (AccessKey, workspace and namespace); the deployment name
is a DAG param. Each step is its own task, so each can be retried, timed and watched on its own.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param

from airflow_provider_flink_vvp.operators.vvp import FlinkVVPStartJobOperator, FlinkVVPStopJobOperator
from airflow_provider_flink_vvp.sensors.vvp import FlinkVVPJobStatusSensor

with DAG(
    dag_id="example_flink_vvp_job_control",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"deployment_name": Param("clickstream", type="string", description="The STREAMING deployment")},
    tags=["example", "flink"],
):
    # Returns the new job's ID as soon as the job exists (wait_for=None): the sensor below waits on it.
    start = FlinkVVPStartJobOperator(
        task_id="start",
        deployment_name="{{ params.deployment_name }}",
        wait_for=None,
    )

    # [START howto_sensor_flink_vvp_job_status]
    # Waits in the triggerer until the job is RUNNING; a job that FAILED (or ended otherwise) fails the task.
    wait_until_running = FlinkVVPJobStatusSensor(
        task_id="wait_until_running",
        job_id=start.output,
        target_statuses=["RUNNING"],
        failure_statuses=["FAILED"],
        deferrable=True,
        poll_interval=timedelta(seconds=10),
        timeout=timedelta(minutes=30),
    )
    # [END howto_sensor_flink_vvp_job_status]

    # [START howto_operator_flink_vvp_stop_job]
    # Stops the job with a savepoint, so a later start can restore from it, and waits (in the triggerer)
    # until the job has ended.
    stop = FlinkVVPStopJobOperator(
        task_id="stop",
        job_id=start.output,
        stop_strategy="STOP_WITH_SAVEPOINT",
        deferrable=True,
        poll_interval=timedelta(seconds=10),
        timeout=timedelta(minutes=30),
    )
    # [END howto_operator_flink_vvp_stop_job]

    start >> wait_until_running >> stop
