"""DAGs for the OpenLineage DAG-level tests: a start (in the worker and deferred) and an upgrade of a deployment
whose lineage the emulator knows."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_flink_vvp.operators.upgrade import FlinkVVPUpgradeJobOperator
from airflow_provider_flink_vvp.operators.vvp import FlinkVVPStartJobOperator

for mode in ("poke", "deferrable"):
    with DAG(dag_id=f"flink_vvp_lineage_start_{mode}", schedule=None, start_date=datetime(2026, 1, 1)):
        FlinkVVPStartJobOperator(
            task_id="start", deployment_name="enrich", deferrable=mode == "deferrable", poll_interval=0.2, timeout=20
        )

    with DAG(dag_id=f"flink_vvp_lineage_upgrade_{mode}", schedule=None, start_date=datetime(2026, 1, 1)):
        FlinkVVPUpgradeJobOperator(
            task_id="upgrade",
            deployment_name="enrich",
            sql_script="INSERT INTO enriched SELECT * FROM orders JOIN customers USING (id)",
            allow_non_restored_state=True,
            stable_for=0.5,
            deferrable=mode == "deferrable",
            poll_interval=0.2,
            timeout=20,
        )
