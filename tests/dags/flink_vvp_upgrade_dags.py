"""DAGs for the upgrade DAG-level tests: a clean upgrade, a rollback, a retry, no change; each strategy and mode.

Every DAG takes its deployment name and new SQL from its params.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_flink_vvp.operators.upgrade import SAVEPOINT_STRATEGIES, FlinkVVPUpgradeJobOperator

WAIT_MODES = ("poke", "deferrable")

for mode in WAIT_MODES:
    for strategy in SAVEPOINT_STRATEGIES:
        for retries in (0, 1):
            with DAG(
                dag_id=f"flink_vvp_upgrade_{strategy}_{mode}" + ("_retry" if retries else ""),
                schedule=None,
                start_date=datetime(2026, 1, 1),
                params={"deployment_name": "orders", "sql": "INSERT INTO sink SELECT * FROM source"},
            ):
                FlinkVVPUpgradeJobOperator(
                    task_id="upgrade",
                    deployment_name="{{ params.deployment_name }}",
                    sql_script="{{ params.sql }}",
                    parallelism=4,
                    savepoint_strategy=strategy,
                    allow_non_restored_state=True,
                    stable_for=1.5,
                    deferrable=mode == "deferrable",
                    poll_interval=0.2,
                    timeout=20,
                    retries=retries,
                    retry_delay=timedelta(0),
                )

    # Watching the new job: killed by execution_timeout, or timed out by timeout (a job that leaves RUNNING and
    # does not come back).
    for name, limits in (
        ("killed", {"timeout": 60, "stable_for": 30, "execution_timeout": timedelta(seconds=6)}),
        ("unstable_in_time", {"timeout": 8, "stable_for": 6}),
    ):
        with DAG(
            dag_id=f"flink_vvp_upgrade_{name}_{mode}",
            schedule=None,
            start_date=datetime(2026, 1, 1),
            params={"deployment_name": "orders", "sql": "INSERT INTO sink SELECT * FROM source"},
        ):
            FlinkVVPUpgradeJobOperator(
                task_id="upgrade",
                deployment_name="{{ params.deployment_name }}",
                sql_script="{{ params.sql }}",
                deferrable=mode == "deferrable",
                poll_interval=0.2,
                **limits,
            )
