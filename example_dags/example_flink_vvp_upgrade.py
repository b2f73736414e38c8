"""A weekly upgrade of a streaming job: new SQL and more parallelism, started from a savepoint, rolled back if it
does not run.

Uses the ``flink_vvp_default`` connection (AccessKey, workspace and namespace). The deployment name and the new SQL
are DAG params. The task stops the running job with a savepoint, updates the deployment,
starts it from that savepoint and watches it for ten minutes; when the new version fails or keeps restarting, it
puts the previous spec back, starts that from the same savepoint and fails, saying what happened. A retry after
a crash resumes where the crashed try stopped: never a second savepoint, never a second job.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param, XComArg, task

from airflow_provider_flink_vvp.operators.upgrade import FlinkVVPUpgradeJobOperator

with DAG(
    dag_id="example_flink_vvp_upgrade",
    schedule="@weekly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "deployment_name": Param("clickstream", type="string", description="The deployment to upgrade"),
        "sql": Param(
            "INSERT INTO sessions SELECT user_id, COUNT(*) FROM clicks GROUP BY user_id",
            type="string",
            description="The new SQL of the job",
        ),
    },
    tags=["example", "flink"],
):
    # [START howto_operator_flink_vvp_upgrade_job]
    upgrade = FlinkVVPUpgradeJobOperator(
        task_id="weekly_upgrade",
        deployment_name="{{ params.deployment_name }}",
        sql_script="{{ params.sql }}",
        parallelism=4,
        flink_conf={"execution.checkpointing.interval": "60s"},
        savepoint_strategy="stop_with_savepoint",
        allow_non_restored_state=False,
        stable_for=timedelta(minutes=10),
        rollback=True,
        deferrable=True,
        poll_interval=timedelta(seconds=10),
        timeout=timedelta(hours=1),
        retries=2,
        retry_delay=timedelta(minutes=2),
    )
    # [END howto_operator_flink_vvp_upgrade_job]

    @task
    def record(job_id: str, savepoint_id: str) -> str:
        # Your bookkeeping goes here: e.g. note which savepoint the running version started from.
        print(f"Job {job_id} runs the new version, started from savepoint {savepoint_id}.")
        return job_id

    record(upgrade.output, XComArg(upgrade, key="savepoint_id"))
