"""The demo behind ``make demo``: the example DAG, end to end, against a local VVP emulator.

1. A throwaway AIRFLOW_HOME with a migrated metadata DB.
2. The emulator (its command line, on a free port) serving ``example_dags/demo_state.json``: the
   seed page's example deployment, whose history holds six failed jobs, and one job that is
   STARTING and becomes RUNNING 20 seconds after the emulator starts.
3. ``airflow dags test example_flink_vvp`` with the ``flink_vvp_default`` connection pointing at it.
4. What each task did and the deploymentId it pushed; the exit status is 0 only if the run succeeded.

The emulator is stopped however the demo ends, Ctrl-C included.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parents[1]
DAGS_FOLDER = REPOSITORY / "example_dags"
STATE_FILE = DAGS_FOLDER / "demo_state.json"
DAG_ID = "example_flink_vvp"
AIRFLOW = Path(sys.executable).with_name("airflow")


def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="flink-vvp-demo-"))
    # Set before anything imports Airflow, and inherited by every command below.
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
    )
    state = json.loads(STATE_FILE.read_text(encoding="utf-8"))

    _step(f"Migrating the metadata DB in {home}")
    _run_logged([str(AIRFLOW), "db", "migrate"], home / "db-migrate.log")

    _step(f"Starting the VVP emulator with {STATE_FILE.relative_to(REPOSITORY)}")
    emulator_log = (home / "emulator.log").open("w")
    emulator = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            *("-m", "airflow_provider_flink_vvp.testing.emulator"),
            *("--host", "127.0.0.1", "--port", "0", "--state", str(STATE_FILE)),
        ],
        stdout=subprocess.PIPE,
        stderr=emulator_log,
        text=True,
        start_new_session=True,  # its own process group: stopped by us, not by the terminal's Ctrl-C
    )
    try:
        url = emulator.stdout.readline().strip() if emulator.stdout else ""
        if not url:
            print(f"The emulator did not start; see {home / 'emulator.log'}", file=sys.stderr)
            return 1
        print(f"   listening on {url}")
        os.environ["AIRFLOW_CONN_FLINK_VVP_DEFAULT"] = json.dumps(_connection(url, state))

        _step(f"Running the DAG {DAG_ID} (airflow dags test; log in {home / 'dags-test.log'})")
        _run_logged([str(AIRFLOW), "dags", "test", DAG_ID], home / "dags-test.log", check=False)
        return _report(home)
    finally:
        _stop(emulator)
        emulator_log.close()


def _connection(url: str, state: dict[str, Any]) -> dict[str, Any]:
    """The flink_vvp_default connection: the emulator's endpoint and access key, the demo deployment's target."""
    [(access_key_id, secret)] = state["access_keys"].items()
    [deployment] = state["deployments"]
    return {
        "conn_type": "flink_vvp",
        "host": url,
        "login": access_key_id,
        "password": secret,
        "extra": {"workspace": deployment["workspace"], "namespace": deployment["namespace"]},
    }


def _report(home: Path) -> int:
    """Print each task's state and XComs of the DAG's latest run; 0 if that run succeeded."""
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        run = session.scalars(
            select(DagRun).where(DagRun.dag_id == DAG_ID).order_by(DagRun.id.desc()).limit(1)
        ).one_or_none()
        if run is None:
            print(f"The DAG did not run; see {home / 'dags-test.log'}", file=sys.stderr)
            return 1
        _step(f"Run {run.run_id}: {run.state}")
        # Tasks that never started (upstream_failed) come last.
        for ti in sorted(
            run.get_task_instances(session=session), key=lambda ti: (ti.start_date is None, ti.start_date)
        ):
            print(f"   {ti.task_id:<20} {ti.state}")
            xcoms = session.scalars(XComModel.get_many(run_id=run.run_id, dag_ids=DAG_ID, task_ids=ti.task_id))
            for xcom in xcoms:
                if not xcom.key.startswith("_link_"):
                    print(f"   {'':<20} {xcom.key}: {XComModel.deserialize_value(xcom)}")
        succeeded = run.state == "success"
    _step("What the sensor saw")
    for line in (home / "dags-test.log").read_text(encoding="utf-8", errors="replace").splitlines():
        if "FlinkVVPJobSummarySensor" in line and "Deployment '" in line:
            print("   " + line[line.index("Deployment '") :].split(". Console:")[0])
    if not succeeded:
        print(f"The run failed; the task logs are in {home / 'dags-test.log'}", file=sys.stderr)
    return 0 if succeeded else 1


def _run_logged(command: list[str], log: Path, *, check: bool = True) -> None:
    with log.open("w") as output:
        completed = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, check=False)  # noqa: S603
    if check and completed.returncode:
        raise SystemExit(f"{' '.join(command)} failed ({completed.returncode}); see {log}")


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    if process.stdout:
        process.stdout.close()


def _step(text: str) -> None:
    print(f"== {text}", flush=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("Interrupted; the emulator was stopped.", file=sys.stderr)
        sys.exit(130)
