"""DAGs for the diagnostics DAG-level tests: a start whose job fails, with and without the diagnostics."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_flink_vvp.operators.vvp import FlinkVVPStartJobOperator

WAIT_MODES = ("poke", "deferrable")

for mode in WAIT_MODES:
    for fetch_diagnostics in (True, False):
        with DAG(
            dag_id=f"flink_vvp_diagnostics_{'shown' if fetch_diagnostics else 'off'}_{mode}",
            schedule=None,
            start_date=datetime(2026, 1, 1),
            params={"deployment_name": "orders"},
        ):
            FlinkVVPStartJobOperator(
                task_id="start",
                deployment_name="{{ params.deployment_name }}",
                deferrable=mode == "deferrable",
                fetch_diagnostics=fetch_diagnostics,
                poll_interval=0.2,
                timeout=20,
            )
