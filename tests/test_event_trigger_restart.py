"""The AssetWatcher event trigger in a real ``airflow triggerer``, killed and started again: no failure twice.

A metadata DB of its own (sqlite, in a temporary AIRFLOW_HOME), a DAG with an asset watcher on one deployment of
the emulator, serialized by ``airflow dags reserialize``; then a triggerer, SIGKILLed as when its machine dies,
and a second one that takes the watcher over. The asset events are counted in the metadata DB.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from airflow.providers.common.compat.version_compat import get_base_airflow_version_tuple
from cryptography.fernet import Fernet

from airflow_provider_flink_vvp.testing import VVPEmulator
from airflow_provider_flink_vvp.triggers.events import DURABLE_WATERMARK_SINCE, WATERMARK_VARIABLE_PREFIX
from tests.conftest import VVP_ACCESS_KEY_ID, VVP_ACCESS_KEY_SECRET, VVP_WORKSPACE, AddDeployment

AIRFLOW = str(Path(sys.executable).parent / "airflow")
# A killed triggerer's trigger goes to the next one after this many seconds without a heartbeat.
HEALTH_CHECK_THRESHOLD = 4
COMMAND_TIMEOUT = 120.0
WAIT_TIMEOUT = 60.0

WATCHER_DAG = """
from datetime import datetime

from airflow.sdk import DAG, Asset, AssetWatcher

from airflow_provider_flink_vvp.triggers.events import FlinkVVPJobStatusEventTrigger

failed = Asset(
    "flink_failed",
    watchers=[
        AssetWatcher(
            name="flink_failed",
            trigger=FlinkVVPJobStatusEventTrigger(deployment_ids=[{deployment_id!r}], poll_interval=0.5),
        )
    ],
)

with DAG(dag_id="on_flink_failure", schedule=[failed], start_date=datetime(2026, 1, 1)):
    pass
"""


class Airflow:
    """Airflow's processes on a metadata DB of their own."""

    def __init__(self, home: Path, connection: dict[str, object]) -> None:
        self.home = home
        self.dags = home / "dags"
        self.dags.mkdir()
        fernet_key = Fernet.generate_key()
        self.fernet = Fernet(fernet_key)
        self.env = {
            **{name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW")},
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            # Known here, so the test reads the Variables Airflow encrypts with it.
            "AIRFLOW__CORE__FERNET_KEY": fernet_key.decode(),
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(HEALTH_CHECK_THRESHOLD),
            "AIRFLOW_CONN_FLINK_VVP_DEFAULT": json.dumps(connection),
        }
        self.triggerers: list[subprocess.Popen[bytes]] = []

    def run(self, *arguments: str) -> None:
        completed = subprocess.run(  # noqa: S603 - the venv's airflow
            [AIRFLOW, *arguments], env=self.env, capture_output=True, timeout=COMMAND_TIMEOUT, check=False
        )
        assert completed.returncode == 0, f"airflow {' '.join(arguments)}: {completed.stderr.decode()[-3000:]}"

    def start_triggerer(self) -> None:
        log = (self.home / f"triggerer-{len(self.triggerers)}.log").open("wb")
        self.triggerers.append(
            subprocess.Popen(  # noqa: S603 - the venv's airflow
                # No log server: its fixed port may be held by another Airflow on this machine.
                [AIRFLOW, "triggerer", "--skip-serve-logs"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: its trigger runner child goes with it
            )
        )
        log.close()

    def kill_triggerer(self) -> None:
        """SIGKILL the running triggerer and its children, as when its machine dies."""
        triggerer = self.triggerers[-1]
        os.killpg(triggerer.pid, signal.SIGKILL)
        triggerer.wait(timeout=COMMAND_TIMEOUT)

    def stop(self) -> None:
        for triggerer in self.triggerers:
            if triggerer.poll() is None:
                os.killpg(triggerer.pid, signal.SIGKILL)
                triggerer.wait(timeout=COMMAND_TIMEOUT)

    def query(self, sql: str) -> list[tuple[object, ...]]:
        with sqlite3.connect(self.home / "airflow.db", timeout=30) as db:
            return db.execute(sql).fetchall()

    def watermark(self) -> dict[str, dict[str, list[str]]]:
        """The trigger's watermark Variable; empty while there is none."""
        rows = self.query(f"SELECT val FROM variable WHERE key LIKE '{WATERMARK_VARIABLE_PREFIX}%'")  # noqa: S608
        assert len(rows) <= 1, rows
        return json.loads(self.fernet.decrypt(str(rows[0][0]).encode())) if rows else {}

    def failed_jobs_of_asset_events(self) -> list[str]:
        rows = self.query("SELECT extra FROM asset_event ORDER BY id")
        return [json.loads(str(extra))["payload"]["job_id"] for (extra,) in rows]

    def tail(self) -> str:
        logs = sorted(self.home.glob("triggerer-*.log"))
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}" for path in logs)

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT_TIMEOUT
        while not condition():
            assert self.triggerers[-1].poll() is None, f"the triggerer exited while waiting for {what}\n{self.tail()}"
            assert time.monotonic() < deadline, f"no {what} within {WAIT_TIMEOUT:.0f} s\n{self.tail()}"
            time.sleep(0.2)


@pytest.fixture
def airflow(
    tmp_path: Path, vvp_emulator: VVPEmulator, vvp_namespace: str, add_deployment: AddDeployment
) -> Iterator[Airflow]:
    connection = {
        "conn_type": "flink_vvp",
        "host": vvp_emulator.url,
        "login": VVP_ACCESS_KEY_ID,
        "password": VVP_ACCESS_KEY_SECRET,
        "extra": {"workspace": VVP_WORKSPACE, "namespace": vvp_namespace, "retry_limit": 1, "timeout": 5},
    }
    processes = Airflow(tmp_path, connection)
    try:
        yield processes
    finally:
        processes.stop()


def test_a_failure_while_no_triggerer_ran_is_one_event_after_a_restart_and_none_repeats(
    airflow: Airflow, vvp_emulator: VVPEmulator, add_deployment: AddDeployment
) -> None:
    """Where a trigger can write a Variable (3.0.5+): the failures meanwhile are events, once. Before: missed."""
    durable = get_base_airflow_version_tuple() >= DURABLE_WATERMARK_SINCE
    deployment_id = add_deployment("stream")
    first, second, third = (uuid.uuid4().hex for _ in range(3))
    for job_id in (first, second):
        vvp_emulator.add_job({"jobId": job_id, "deploymentId": deployment_id}, timeline=[["RUNNING", None]])
    (airflow.dags / "on_flink_failure.py").write_text(textwrap.dedent(WATCHER_DAG.format(deployment_id=deployment_id)))
    airflow.run("db", "migrate")
    airflow.run("dags", "reserialize")
    if airflow.query("SELECT count(*) FROM trigger") == [(0,)]:
        # Airflow 3.0 gives a watcher its trigger only once the asset's DAG is in the DB: a second pass.
        airflow.run("dags", "reserialize")
    assert airflow.query("SELECT count(*) FROM trigger") == [(1,)]

    def polls() -> int:
        return vvp_emulator.request_counts().get("ListJobs", 0)

    def after_polls(count: int) -> None:
        before = polls()
        airflow.wait_for(lambda: polls() >= before + count, f"{count} polls")

    airflow.start_triggerer()
    after_polls(2)  # the first one took note of the running jobs
    vvp_emulator.state.set_job_timeline(first, [["FAILED", None]])
    airflow.wait_for(lambda: airflow.failed_jobs_of_asset_events() == [first], "asset event of the first failure")

    airflow.kill_triggerer()
    vvp_emulator.state.set_job_timeline(second, [["FAILED", None]])
    # A job that starts and fails while no triggerer runs is news too.
    vvp_emulator.add_job({"jobId": third, "deploymentId": deployment_id}, timeline=[["FAILED", None]])
    time.sleep(1)
    assert airflow.failed_jobs_of_asset_events() == [first]

    airflow.start_triggerer()
    if durable:
        airflow.wait_for(lambda: len(airflow.failed_jobs_of_asset_events()) >= 3, "events of the failures meanwhile")
    # More polls of the new triggerer: nothing is yielded again.
    after_polls(4)

    events = airflow.failed_jobs_of_asset_events()
    assert events[0] == first
    if durable:
        assert sorted(events[1:]) == sorted([second, third])
        assert airflow.watermark()[deployment_id] == {
            first: ["RUNNING", "FAILED"],
            second: ["RUNNING", "FAILED"],
            third: ["FAILED"],
        }
    else:
        assert events == [first]
        assert airflow.watermark() == {}
