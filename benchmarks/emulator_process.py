"""The VVP emulator in a process of its own (its own process group), and the states the benchmarks give it."""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
SEED_RESPONSE = REPO_ROOT / "tests" / "data" / "GetDeploymentsByName.response.json"

ACCESS_KEY_ID = "bench-access-key-id"
ACCESS_KEY_SECRET = "bench-access-key-secret"  # noqa: S105 - the emulator's test key
WORKSPACE = "ws-bench"
NAMESPACE = "ns-bench"
CONN_ID = "flink_vvp_bench"
WARMUP_DEPLOYMENT = "bench-warmup"

_START_TIMEOUT_SECONDS = 60.0
_STOP_TIMEOUT_SECONDS = 10.0
# The seed's current-state counts would satisfy a "running" wait at once; its history (failed 6...) stays.
_CURRENT_STATES = ("starting", "running", "cancelling")


@dataclass(frozen=True)
class EmulatorProcess:
    """A running emulator: its URL, and the wall-clock times around its state being loaded."""

    url: str
    spawned_at: float
    ready_at: float


def seed_deployment() -> dict[str, Any]:
    """The documented GetDeploymentsByName example's first deployment."""
    document: dict[str, Any] = json.loads(SEED_RESPONSE.read_text(encoding="utf-8"))
    return dict(document["data"][0])


def deployment_name(index: int) -> str:
    return f"bench-deployment-{index:03d}"


def deployment_id(index: int) -> str:
    return f"bench-{index:03d}-0000-0000-0000-000000000000"


def make_deployment(name: str, identifier: str) -> dict[str, Any]:
    """The seed deployment renamed, in the bench namespace, with no job in a current state."""
    deployment = seed_deployment()
    history = {state: 0 if state in _CURRENT_STATES else count for state, count in deployment["jobSummary"].items()}
    deployment.update(
        deploymentId=identifier,
        name=name,
        namespace=NAMESPACE,
        workspace=WORKSPACE,
        createdAt="1700000000",
        jobSummary=history,
    )
    return deployment


def staggered_starting_seconds(count: int, first: float, last: float) -> list[float]:
    """``count`` STARTING durations spread evenly from ``first`` to ``last`` seconds."""
    if count == 1:
        return [first]
    step = (last - first) / (count - 1)
    return [first + step * index for index in range(count)]


def fleet_state(starting_seconds: Sequence[float]) -> dict[str, Any]:
    """One deployment per entry, each with one job STARTING for that long and then RUNNING for good.

    Plus a warm-up deployment whose job runs from the start, which the measured triggers never watch.
    """
    deployments = [make_deployment(deployment_name(i), deployment_id(i)) for i in range(len(starting_seconds))]
    deployments.append(make_deployment(WARMUP_DEPLOYMENT, "bench-warmup-0000-0000-0000-000000000000"))
    jobs = [
        {
            "jobId": f"job-{deployment['deploymentId']}",
            "deploymentId": deployment["deploymentId"],
            "status": {"currentJobStatus": "STARTING"},
            "timeline": [["STARTING", seconds], ["RUNNING", None]] if seconds > 0 else [["RUNNING", None]],
        }
        for deployment, seconds in zip(deployments, [*starting_seconds, 0.0], strict=True)
    ]
    return {"access_keys": {ACCESS_KEY_ID: ACCESS_KEY_SECRET}, "deployments": deployments, "jobs": jobs}


def connection_json(url: str, **extra: Any) -> str:
    """``AIRFLOW_CONN_<ID>`` pointing at the emulator."""
    return json.dumps(
        {
            "conn_type": "flink_vvp",
            "host": url,
            "login": ACCESS_KEY_ID,
            "password": ACCESS_KEY_SECRET,
            "extra": {"workspace": WORKSPACE, "namespace": NAMESPACE, **extra},
        }
    )


@contextlib.contextmanager
def running_emulator(state: dict[str, Any], *, options: Sequence[str] = ()) -> Iterator[EmulatorProcess]:
    """Start the emulator CLI on a free port with ``state``; it is stopped (its whole group) on exit."""
    with tempfile.TemporaryDirectory(prefix="vvp-bench-") as directory:
        state_file = Path(directory) / "state.json"
        state_file.write_text(json.dumps(state), encoding="utf-8")
        log_file = (Path(directory) / "emulator.log").open("w", encoding="utf-8")
        command = [
            sys.executable,
            "-m",
            "airflow_provider_flink_vvp.testing.emulator",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--state",
            str(state_file),
            *options,
        ]
        spawned_at = time.time()
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command, stdout=subprocess.PIPE, stderr=log_file, text=True, start_new_session=True
        )
        try:
            url = _first_line(process, _START_TIMEOUT_SECONDS)
            yield EmulatorProcess(url=url, spawned_at=spawned_at, ready_at=time.time())
        finally:
            _stop_group(process)
            log_file.close()


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise RuntimeError(f"the emulator printed no URL within {timeout:g} s")
    line = process.stdout.readline().strip()
    if not line.startswith("http://"):
        raise RuntimeError(f"the emulator did not start (exit code {process.poll()}): {line!r}")
    return line


def _stop_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(_STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(_STOP_TIMEOUT_SECONDS)
    if process.stdout is not None:
        process.stdout.close()


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so the ``finally`` blocks stop the emulator before the process ends."""

    def exit_now(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, exit_now)


def prepare_airflow_home() -> None:
    """A throwaway AIRFLOW_HOME, set before anything imports Airflow (no-op if one is set already)."""
    if not os.environ.get("AIRFLOW_HOME", "").startswith(tempfile.gettempdir()):
        os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="vvp-bench-airflow-")
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
