"""DAGs for the job-control DAG-level tests: start, restart, retry, stop, and the job status sensor.

Every DAG takes its deployment name (or job ID) from its params; each start or stop task hands its
XComs to a downstream task, which returns what it read.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, XComArg, task

from airflow_provider_flink_vvp.operators.vvp import FlinkVVPStartJobOperator, FlinkVVPStopJobOperator
from airflow_provider_flink_vvp.sensors.vvp import FlinkVVPJobStatusSensor

WAIT_MODES = ("poke", "deferrable")
SENSOR_MODES = ("poke", "reschedule", "deferrable")
FAST = {"poll_interval": 0.2, "timeout": 20}


@task
def read(job_id: str, deployment_id: str, deployment_url: str) -> dict[str, str]:
    return {"job_id": job_id, "deployment_id": deployment_id, "deployment_url": deployment_url}


def dag(dag_id: str, **params: str) -> DAG:
    return DAG(dag_id=dag_id, schedule=None, start_date=datetime(2026, 1, 1), params=params)


def read_after(started: FlinkVVPStartJobOperator | FlinkVVPStopJobOperator) -> None:
    read(started.output, XComArg(started, key="deployment_id"), XComArg(started, key="deployment_url"))


for mode in WAIT_MODES:
    with dag(f"flink_vvp_job_start_{mode}", deployment_name="nightly"):
        read_after(
            FlinkVVPStartJobOperator(
                task_id="start", deployment_name="{{ params.deployment_name }}", deferrable=mode == "deferrable", **FAST
            )
        )

    with dag(f"flink_vvp_job_restart_{mode}", deployment_name="stream"):
        read_after(
            FlinkVVPStartJobOperator(
                task_id="start",
                deployment_name="{{ params.deployment_name }}",
                if_running="restart",
                stop_strategy_on_restart="STOP_WITH_SAVEPOINT",
                restore_strategy="LATEST_SAVEPOINT",
                deferrable=mode == "deferrable",
                **FAST,
            )
        )

    # The first try times out while the job is still STARTING; the retry must wait on that job.
    with dag(f"flink_vvp_job_retry_{mode}", deployment_name="slow"):
        read_after(
            FlinkVVPStartJobOperator(
                task_id="start",
                deployment_name="{{ params.deployment_name }}",
                deferrable=mode == "deferrable",
                poll_interval=0.2,
                timeout=2,
                retries=1,
                retry_delay=timedelta(0),
            )
        )

    with dag(f"flink_vvp_job_stop_{mode}", deployment_name="stream"):
        read_after(
            FlinkVVPStopJobOperator(
                task_id="stop",
                deployment_name="{{ params.deployment_name }}",
                stop_strategy="STOP_WITH_SAVEPOINT",
                deferrable=mode == "deferrable",
                **FAST,
            )
        )

for mode in SENSOR_MODES:
    with dag(f"flink_vvp_job_sensor_{mode}", job_id="job"):
        FlinkVVPJobStatusSensor(
            task_id="wait",
            job_id="{{ params.job_id }}",
            mode="reschedule" if mode == "reschedule" else "poke",
            deferrable=mode == "deferrable",
            poke_interval=0.2,
            timeout=10,
        )

for mode in WAIT_MODES:
    # The first job fails; the retry starts a second one.
    with dag(f"flink_vvp_job_retry_failed_{mode}", deployment_name="nightly"):
        FlinkVVPStartJobOperator(
            task_id="start",
            deployment_name="{{ params.deployment_name }}",
            deferrable=mode == "deferrable",
            retries=1,
            retry_delay=timedelta(0),
            **FAST,
        )

    # The job never runs; execution_timeout, not the task's timeout, ends the wait and stops the job.
    with dag(f"flink_vvp_job_execution_timeout_{mode}", deployment_name="nightly"):
        FlinkVVPStartJobOperator(
            task_id="start",
            deployment_name="{{ params.deployment_name }}",
            deferrable=mode == "deferrable",
            execution_timeout=timedelta(seconds=2),
            stop_strategy_on_kill="NONE",
            poll_interval=timedelta(seconds=0.2),
            timeout=timedelta(seconds=20),
        )

    # The first try's start may have run but nothing says so (its answer and the check of it are lost);
    # the retry must take that job back, though if_running="fail" would refuse any other active job.
    with dag(f"flink_vvp_job_start_outcome_unknown_{mode}", deployment_name="nightly"):
        FlinkVVPStartJobOperator(
            task_id="start",
            deployment_name="{{ params.deployment_name }}",
            if_running="fail",
            deferrable=mode == "deferrable",
            retries=1,
            retry_delay=timedelta(0),
            **FAST,
        )
