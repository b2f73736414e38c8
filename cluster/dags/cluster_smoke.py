"""One task through Celery: proves the executor, the broker and the Execution API before the scenario."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task

with DAG(dag_id="cluster_smoke", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):

    @task
    def hello() -> str:
        return "hello from a Celery worker"

    hello()
