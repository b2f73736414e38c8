"""Tests of your own DAG against the local emulator: real HTTP, real signatures, no cloud account.

The first test needs no Airflow metadata DB; the second runs a DAG file with ``dag.test()`` in a throwaway
AIRFLOW_HOME whose DAGs folder is the one holding the DAG file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
STATE_FILE = HERE / "getting_started_state.json"
DAG_FILE = HERE.parents[1] / "example_dags" / "example_flink_vvp.py"  # your DAG file
DEPLOYMENT_ID = "11111111-2222-3333-4444-555555555555"

# Before anything imports Airflow: a home of its own (the test never touches ~/airflow) and the DAGs folder.
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="my-dag-tests-")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAG_FILE.parent)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"

import pytest

from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook
from airflow_provider_flink_vvp.testing import EmulatorState, Fault, FaultKind, ManualClock, VVPEmulator


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[VVPEmulator]:
    # A manual clock: the job's timeline moves only when the test advances it.
    with VVPEmulator(EmulatorState.from_file(STATE_FILE, clock=ManualClock())) as emulator:
        connection = {
            "conn_type": "flink_vvp",
            "host": emulator.url,
            "login": "my-test-key",
            "password": "my-test-secret",
            "extra": {"workspace": "a14bd5d90a1234", "namespace": "default-namespace", "retry_delay": 0.1},
        }
        monkeypatch.setenv("AIRFLOW_CONN_FLINK_VVP_DEFAULT", json.dumps(connection))
        yield emulator


def test_the_hook_rides_out_throttling(emulator: VVPEmulator) -> None:
    # The next GetDeploymentsByName is throttled; the hook retries it.
    emulator.inject(Fault(FaultKind.THROTTLE, action="GetDeploymentsByName"))

    deployment = FlinkVVPHook().get_latest_deployment("orders-enrichment")

    assert deployment.deployment_id == DEPLOYMENT_ID
    assert emulator.request_counts()["GetDeploymentsByName"] == 2


def test_the_dag_finds_the_deployment_and_waits_until_its_job_runs(emulator: VVPEmulator) -> None:
    subprocess.run([Path(sys.executable).with_name("airflow"), "db", "migrate"], check=True, capture_output=True)
    from airflow.dag_processing.dagbag import DagBag  # Airflow 3.2+; airflow.models.dagbag before

    dag = DagBag(dag_folder=DAG_FILE).get_dag("example_flink_vvp")
    emulator.advance(10)  # the job's STARTING phase is over: it is RUNNING

    run = dag.test(run_conf={"deployment_name": "orders-enrichment"})

    assert run.state == "success"
    assert emulator.request_counts()["GetDeploymentsByName"] >= 2  # the operator's look and the sensor's
