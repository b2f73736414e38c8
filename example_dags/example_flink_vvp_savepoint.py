"""A nightly savepoint of a streaming deployment: a known good state to restart from after an incident.

Uses the ``flink_vvp_default`` connection (AccessKey, workspace and namespace). The deployment name is a DAG
param. The savepoint's ID is the task's return value, and where it was written the ``savepoint_location``
XCom; a later task (or a restart with ``restore_strategy="FROM_SAVEPOINT"``) can use either.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param, XComArg, task

from airflow_provider_flink_vvp.operators.savepoint import FlinkVVPCreateSavepointOperator

with DAG(
    dag_id="example_flink_vvp_savepoint",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"deployment_name": Param("clickstream", type="string", description="The deployment to savepoint")},
    tags=["example", "flink"],
):
    # Waits in the triggerer until the savepoint is COMPLETED; a FAILED savepoint fails the try with its
    # reason, and the retry takes a new one. A retry never takes a second savepoint while the first is
    # still being taken: it waits on that one.
    # [START howto_operator_flink_vvp_create_savepoint]
    savepoint = FlinkVVPCreateSavepointOperator(
        task_id="nightly_savepoint",
        deployment_name="{{ params.deployment_name }}",
        description="nightly {{ ds }}",
        deferrable=True,
        poll_interval=timedelta(seconds=10),
        timeout=timedelta(minutes=30),
        retries=2,
        retry_delay=timedelta(minutes=5),
    )
    # [END howto_operator_flink_vvp_create_savepoint]

    @task
    def record(savepoint_id: str, location: str) -> str:
        # Your bookkeeping goes here: e.g. keep the last good savepoint per deployment.
        print(f"Savepoint {savepoint_id} is at {location}.")
        return location

    record(savepoint.output, XComArg(savepoint, key="savepoint_location"))
