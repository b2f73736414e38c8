"""``python -m airflow_provider_flink_vvp.testing.emulator``: prints its URL, serves, exits 0 on a signal."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_flink_vvp.api import operations

MODULE = "airflow_provider_flink_vvp.testing.emulator"


def command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", MODULE, "--port", "0", *arguments]


@contextmanager
def running(*arguments: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The emulator in a child process and the URL of its first stdout line; killed if a test fails early."""
    process = subprocess.Popen(  # noqa: S603 - this interpreter, our own module
        command(*arguments),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process, process.stdout.readline().strip()
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def by_name(url: str, key: str, secret: str, deployment: dict[str, Any]) -> requests.Response:
    op = operations.get_deployments_by_name(
        namespace=deployment["namespace"], workspace=deployment["workspace"], deployment_name=deployment["name"]
    )
    prepared = operations.prepare(
        op,
        base_url=url,
        host=url.removeprefix("http://"),
        credentials=operations.Credentials(key, secret),
        date=operations.acs_date(time.time()),
        nonce=uuid.uuid4().hex,
        user_agent="cli-test",
    )
    return requests.get(prepared.url, headers=prepared.headers, timeout=10)


@pytest.fixture
def state_file(tmp_path: Path, seed: dict[str, Any]) -> Path:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"access_keys": {"ak": "sk"}, "deployments": [seed]}), encoding="utf-8")
    return path


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_it_prints_its_url_serves_and_exits_0_on_a_signal(
    state_file: Path, seed: dict[str, Any], stop_signal: signal.Signals
) -> None:
    with running("--state", str(state_file)) as (process, url):
        assert url.startswith("http://127.0.0.1:")
        assert int(url.rsplit(":", 1)[1]) > 0
        response = by_name(url, "ak", "sk", seed)
        assert response.json()["data"] == [seed]
        process.send_signal(stop_signal)
        assert process.wait(timeout=10) == 0
        assert process.stderr is not None
        assert process.stderr.read() == ""  # quiet: no per-request log, no warning


def test_access_keys_and_fault_flags_apply(seed: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"deployments": [seed]}), encoding="utf-8")
    with running("--state", str(path), "--access-key", "k2:s2", "--throttle-rate", "1", "--retry-after-ms", "7") as (
        process,
        url,
    ):
        response = by_name(url, "k2", "s2", seed)
        assert (response.status_code, response.json()["Code"]) == (400, "Throttling.User")
        assert response.headers["x-acs-retry-after"] == "7"
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_verbose_logs_each_request(state_file: Path, seed: dict[str, Any]) -> None:
    with running("--state", str(state_file), "--verbose") as (process, url):
        by_name(url, "ak", "sk", seed)
        process.terminate()
        assert process.wait(timeout=10) == 0
        assert process.stderr is not None
        assert "GET /api/v2/namespaces/default-namespace/deployments/name/deploymentName" in process.stderr.read()


@pytest.mark.parametrize(
    "arguments",
    [("--state", "/nonexistent/state.json"), ("--throttle-rate", "2"), ("--drop-rate", "0.7", "--html-rate", "0.7")],
)
def test_bad_options_exit_2_with_a_message(arguments: tuple[str, ...]) -> None:
    result = subprocess.run(command(*arguments), capture_output=True, text=True, timeout=30)  # noqa: S603
    assert result.returncode == 2
    assert result.stdout == ""
    assert "cannot start the emulator" in result.stderr
