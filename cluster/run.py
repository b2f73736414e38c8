"""A production-shaped Airflow with faults: ``make cluster`` (or ``.venv/bin/python cluster/run.py``).

Starts PostgreSQL, Redis, the VVP emulator and Airflow with the CeleryExecutor (api-server,
scheduler, dag-processor, two Celery workers, two triggerers), runs one task through Celery, then
the scenario of :mod:`scenario` with its faults, and prints PASS/FAIL checks and figures. Exits
non-zero on any FAIL. Every process logs under ``build/cluster/logs/``, kept after the run.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))  # the shared process helpers

from infra import REPO_DIR, Cluster, ensure_installed, log
from processes import StepError, http_json, stop_on_sigterm, wait_for

LOGS_DIR = REPO_DIR / "build" / "cluster" / "logs"
SMOKE_DAG_ID = "cluster_smoke"
DAG_RUN_TIMEOUT = 180.0


def main() -> int:
    started = time.monotonic()
    stop_on_sigterm()
    try:
        ensure_installed()
        passed = run_cluster()
    except StepError as error:
        log(f"FAILED after {time.monotonic() - started:.0f} s: {error}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    log(f"{'passed' if passed else 'FAILED'} in {time.monotonic() - started:.0f} s; logs in {LOGS_DIR}")
    return 0 if passed else 1


def run_cluster() -> bool:
    shutil.rmtree(LOGS_DIR, ignore_errors=True)
    LOGS_DIR.mkdir(parents=True)
    run_dir = Path(tempfile.mkdtemp(prefix="flink-vvp-cluster-"))
    cluster = Cluster(run_dir=run_dir, logs_dir=LOGS_DIR)
    log(f"run folder {run_dir}")
    try:
        cluster.start_postgres()
        cluster.start_redis()
        cluster.migrate()
        cluster.start_airflow()
        cluster.wait_healthy()
        token = cluster.api_token()
        run_smoke(cluster, token)
        return True
    finally:
        cluster.processes.stop_all(log=log)
        shutil.rmtree(run_dir, ignore_errors=True)


def run_smoke(cluster: Cluster, token: str) -> None:
    """One task through the broker, a worker and the Execution API."""
    started = time.monotonic()
    run_id = trigger(cluster, token, SMOKE_DAG_ID)
    state = wait_dag_run(cluster, SMOKE_DAG_ID, run_id, timeout=DAG_RUN_TIMEOUT)
    if state != "success":
        raise StepError(f"{SMOKE_DAG_ID} ended {state}")
    log(f"{SMOKE_DAG_ID}: one task through Celery in {time.monotonic() - started:.0f} s")


def trigger(cluster: Cluster, token: str, dag_id: str) -> str:
    def parsed() -> bool:
        cluster.check_alive()
        return bool(cluster.query("SELECT 1 FROM dag WHERE dag_id = %s AND NOT is_paused", (dag_id,)))

    wait_for(parsed, timeout=DAG_RUN_TIMEOUT, what=f"the dag-processor to parse {dag_id}")
    body = b'{"logical_date": null}'
    answer = http_json(f"{cluster.api_url}/api/v2/dags/{dag_id}/dagRuns", token=token, data=body)
    return str(answer["dag_run_id"])


def wait_dag_run(cluster: Cluster, dag_id: str, run_id: str, *, timeout: float) -> str:
    states: list[str] = []

    def finished() -> bool:
        cluster.check_alive()
        rows = cluster.query("SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", (dag_id, run_id))
        states[:] = [row[0] for row in rows]
        return bool(states) and states[0] in ("success", "failed")

    wait_for(finished, timeout=timeout, what=f"{dag_id} run {run_id} to finish")
    return states[0]


if __name__ == "__main__":
    sys.exit(main())
