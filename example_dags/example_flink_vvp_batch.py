"""Start Flink jobs from Airflow: a nightly batch job, and a streaming job restarted from its savepoint.

Both use the ``flink_vvp_default`` connection (AccessKey, workspace and namespace); the deployment
names are DAG params. Every start is safe to retry: a retry finds the job its task started and
waits on it again instead of starting a second one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param, task

from airflow_provider_flink_vvp.operators.vvp import FlinkVVPStartJobOperator

with DAG(
    dag_id="example_flink_vvp_batch",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"deployment_name": Param("nightly-aggregation", type="string", description="The BATCH deployment")},
    tags=["example", "flink"],
):
    # [START howto_operator_flink_vvp_start_job]
    # Starts a job of the newest deployment with this name and waits, in the triggerer, until it
    # FINISHED (wait_for="auto" does that for a BATCH deployment). A FAILED job fails the try with
    # its reason and a console link, and a retry starts a new job. When the task is killed meanwhile,
    # or its execution_timeout runs out, the job is stopped.
    run_batch = FlinkVVPStartJobOperator(
        task_id="run_batch",
        deployment_name="{{ params.deployment_name }}",
        local_variables={"day": "{{ ds }}"},
        restore_strategy="NONE",
        deferrable=True,
        poll_interval=timedelta(seconds=30),
        timeout=timedelta(hours=4),
        execution_timeout=timedelta(hours=5),
        retries=2,
    )
    # [END howto_operator_flink_vvp_start_job]

    @task
    def publish(job_id: str) -> str:
        # Your work goes here: the job's output for the day is complete.
        print(f"Flink job {job_id} finished.")
        return job_id

    publish(run_batch.output)

with DAG(
    dag_id="example_flink_vvp_streaming_restart",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"deployment_name": Param("clickstream", type="string", description="The STREAMING deployment")},
    tags=["example", "flink"],
):
    # [START howto_operator_flink_vvp_start_job_restart]
    # Redeploys a streaming job: its running job is stopped with a savepoint, and once it has ended a
    # new job starts from that savepoint. The task succeeds when the new job is RUNNING.
    FlinkVVPStartJobOperator(
        task_id="restart_from_savepoint",
        deployment_name="{{ params.deployment_name }}",
        if_running="restart",
        stop_strategy_on_restart="STOP_WITH_SAVEPOINT",
        restore_strategy="LATEST_SAVEPOINT",
        deferrable=True,
        poll_interval=timedelta(seconds=10),
        timeout=timedelta(minutes=30),
    )
    # [END howto_operator_flink_vvp_start_job_restart]
