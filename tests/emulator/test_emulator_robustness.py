"""The emulator holds up like a server: bursts of connections, silent clients, malformed state files."""

from __future__ import annotations

import json
import selectors
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_flink_vvp.testing import EmulatorState, VVPEmulator
from airflow_provider_flink_vvp.testing import emulator as emulator_cli
from airflow_provider_flink_vvp.testing.emulator import main
from airflow_provider_flink_vvp.testing.server import VVPApplication, VVPHTTPServer

BURST = 300


def _connect_all(address: tuple[str, int], count: int, wait: float) -> tuple[list[socket.socket], int]:
    """Start ``count`` connections at once; the sockets, and how many the kernel completed within ``wait``."""
    sockets = []
    for _ in range(count):
        client = socket.socket()
        client.setblocking(False)
        client.connect_ex(address)
        sockets.append(client)
    deadline = time.monotonic() + wait
    # A selector, not select(): in a long test run these sockets' descriptors can be above select()'s 1024.
    with selectors.DefaultSelector() as selector:
        for client in sockets:
            selector.register(client, selectors.EVENT_WRITE)
        while selector.get_map() and time.monotonic() < deadline:
            for key, _ in selector.select(max(0.0, deadline - time.monotonic())):
                selector.unregister(key.fileobj)
        pending = {key.fileobj for key in selector.get_map().values()}
    connected = sum(
        1 for client in sockets if client not in pending and not client.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    )
    return sockets, connected


def test_a_burst_of_hundreds_of_connections_is_queued_and_answered_promptly(state: EmulatorState) -> None:
    server = VVPHTTPServer(("127.0.0.1", 0), VVPApplication(state))
    sockets: list[socket.socket] = []
    thread: threading.Thread | None = None
    try:
        # Not accepting yet: every connection must wait in the listen backlog, not have its SYN dropped.
        sockets, connected = _connect_all(server.server_address[:2], BURST, wait=0.5)
        assert connected == BURST
        thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
        thread.start()
        started = time.monotonic()
        for client in sockets:
            client.setblocking(True)
            client.settimeout(10)
            client.sendall(b"GET /api/v2/namespaces/ns/deployments HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        answers = [client.recv(64) for client in sockets]
        assert all(answer.startswith(b"HTTP/1.1 ") for answer in answers)
        assert time.monotonic() - started < 10
    finally:
        for client in sockets:
            client.close()
        if thread is not None:  # shutdown() waits for a serve_forever() that is running
            server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "sent",
    [
        b"",
        b"GET /api/v2/namespaces/ns/deplo",
        b"GET /api/v2/namespaces/ns/deployments HTTP/1.1\r\nhost: x\r\n",
        b'POST /api/v2/namespaces/ns/jobs:start HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{"deploy',
    ],
    ids=["nothing", "part of the request line", "headers without their end", "part of the body"],
)
def test_a_silent_connection_is_closed_after_the_idle_timeout(state: EmulatorState, sent: bytes) -> None:
    with VVPEmulator(state, idle_timeout=0.3) as emulator:
        client = socket.create_connection(("127.0.0.1", emulator.port), timeout=10)
        with client:
            client.sendall(sent)
            started = time.monotonic()
            assert client.recv(65536) == b""  # closed by the server, with nothing to say
            assert 0.2 < time.monotonic() - started < 5
        # It still serves others.
        with socket.create_connection(("127.0.0.1", emulator.port), timeout=10) as other:
            other.sendall(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            assert other.recv(64).startswith(b"HTTP/1.1 ")


def test_a_connection_between_requests_is_kept_until_the_idle_timeout(state: EmulatorState) -> None:
    with (
        VVPEmulator(state, idle_timeout=0.5) as emulator,
        socket.create_connection(("127.0.0.1", emulator.port), timeout=10) as client,
    ):
        for _ in range(3):
            client.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            assert client.recv(65536).startswith(b"HTTP/1.1 400")  # unsigned, answered, kept open
            time.sleep(0.2)  # less than the idle timeout: the connection stays open
        started = time.monotonic()
        while client.recv(65536):
            pass
        assert 0.2 < time.monotonic() - started < 5  # the rest of the 0.5 s since the last answer


@pytest.mark.parametrize("idle_timeout", [0, -1, float("nan"), float("inf")])
def test_an_idle_timeout_must_be_a_finite_positive_number(state: EmulatorState, idle_timeout: float) -> None:
    with pytest.raises(ValueError, match="idle_timeout"):
        VVPHTTPServer(("127.0.0.1", 0), VVPApplication(state), idle_timeout=idle_timeout)


SEED: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "data" / "GetDeploymentsByName.response.json").read_text(encoding="utf-8")
)["data"][0]
JOB = {"jobId": "j1", "deploymentId": SEED["deploymentId"], "status": {"currentJobStatus": "RUNNING"}}
SEED_WITHOUT = {name: {k: v for k, v in SEED.items() if k != name} for name in ("deploymentId", "createdAt")}


def _json(document: Any) -> bytes:
    return json.dumps(document).encode()


def _with_deployment(**fields: Any) -> bytes:
    return _json({"deployments": [{**SEED, **fields}]})


def _with_job(**fields: Any) -> bytes:
    return _json({"deployments": [SEED], "jobs": [{**JOB, **fields}]})


# (file content, what the one-line message says)
MALFORMED_STATE_FILES: list[tuple[bytes, str]] = [
    (b"", "not JSON"),
    (b"{", "not JSON"),
    (b"\xff\xfe{}", "not JSON"),
    (b"[" * 100_000, "nested too deep"),
    (b"[]", "the top level must be an object"),
    (b"5", "the top level must be an object"),
    (b"null", "the top level must be an object"),
    (b'"state"', "the top level must be an object"),
    (_json({"deployment": [SEED]}), "unknown keys ['deployment']"),
    (_json({"access_keys": ["ak"]}), "access_keys must be an object"),
    (_json({"access_keys": {"ak": 5}}), "access_keys must be an object"),
    (_json({"access_keys": {"ak": ""}}), "access_keys must be an object"),
    # What no client could send or sign with: refused by the client's own checks.
    (_json({"access_keys": {"a\nb": "sk"}}), "access_keys['a\\nb']: no client could use it: the AccessKey ID"),
    (_json({"access_keys": {"a\tb": "sk"}}), "the AccessKey ID must be printable ASCII"),
    (_json({"access_keys": {"ak": "s\u00e9cret"}}), "access_keys['ak']: no client could use it: the AccessKey Secret"),
    (_json({"access_keys": {"ak": " sk"}}), "the AccessKey Secret must not start or end with whitespace"),
    *[
        (_with_deployment(workspace=value), "deployments[0]: no client could use it: workspace")
        for value in ("w\nx", "w/x", "w\u00e9", " w")
    ],
    *[
        (_with_deployment(namespace=value), "deployments[0]: no client could use it: namespace")
        for value in ("..", ".", "a/b", "n\n", " n")
    ],
    (
        _json({"deployments": [SEED, SEED]}),
        f"deployments[1]: deploymentId {SEED['deploymentId']!r} appears more than once",
    ),
    (_json({"deployments": [SEED], "jobs": [JOB, JOB]}), "jobs[1]: jobId 'j1' appears more than once"),
    (_json({"deployments": {}}), "deployments must be a list of objects"),
    (_json({"deployments": [1]}), "deployments must be a list of objects"),
    (_json({"jobs": "j1"}), "jobs must be a list of objects"),
    (_json({"deployments": [SEED_WITHOUT["deploymentId"]]}), "deployments[0]: a deployment needs deploymentId"),
    (_json({"deployments": [SEED_WITHOUT["createdAt"]]}), "deployments[0]: a deployment needs createdAt"),
    (_with_deployment(name=5), "deployments[0]: name must be strings"),
    (_with_deployment(deploymentId=["d"]), "deploymentId must be strings"),
    (_with_deployment(createdAt=1e300), "createdAt"),
    (_with_deployment(createdAt="yesterday"), "createdAt"),
    (_with_deployment(modifiedAt="NaN"), "modifiedAt"),
    (b'{"deployments": [' + _json({**SEED, "modifiedAt": 1})[:-1] + b', "modifiedAt": NaN}]}', "modifiedAt"),
    (_with_deployment(jobSummary={"running": -1}), "jobSummary.running"),
    (_with_deployment(jobSummary={"running": 1.5}), "jobSummary.running"),
    (_with_deployment(jobSummary="x"), "jobSummary"),
    (_with_deployment(executionMode=1), "executionMode"),
    (_with_job(deploymentId="nobody"), "jobs[0]: job j1 names an unknown deployment"),
    (_with_job(jobId=5), "jobs[0]: not a job the API could send: jobId"),
    (_with_job(status="RUNNING"), "jobs[0]: not a job the API could send: status"),
    (_with_job(status={}), "not a job the API could send: status.currentJobStatus must be one of"),
    (_with_job(status={"currentJobStatus": "PAUSED"}), "status.currentJobStatus must be one of"),
    (_with_job(status={"currentJobStatus": "running"}), "needs a known status.currentJobStatus"),
    (_with_job(startTime=1e300), "startTime"),
    (_with_job(timeline=[["RUNNING", -1], ["FAILED", None]]), "timeline"),
    (_with_job(timeline=[["RUNNING", True], ["FAILED", None]]), "timeline"),
    (_with_job(timeline=[["RUNNING", "1"]]), "timeline"),
    (_with_job(timeline=[["RUNNING", None], ["FAILED", None]]), "only the last state"),
    (_with_job(timeline=[["DANCING", 1]]), "timeline"),
    (_with_job(timeline="RUNNING"), "timeline"),
    (_with_job(timeline=[]), "at least one state"),
    (_with_job(timeline=[["RUNNING"]]), "timeline"),
    (_with_job(timeline=[["RUNNING", 1e999]]), "timeline"),
    (_json({"deployment_order": "random"}), "deployment_order must be one of newest_first, oldest_first"),
    (_json({"deployment_order": 5}), "deployment_order must be a string"),
]


@pytest.fixture(autouse=True)
def _refusal_expected(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test here expects main() to refuse: one that accepts fails at once instead of serving forever."""

    def serve(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the emulator accepted what it should refuse and would serve until stopped")

    monkeypatch.setattr(emulator_cli, "VVPEmulator", serve)


@pytest.mark.parametrize(("content", "problem"), MALFORMED_STATE_FILES)
def test_every_malformed_state_file_is_refused_in_one_line_with_exit_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, problem: str
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    assert main(["--port", "0", "--state", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.endswith("\n")
    assert err.startswith(f"cannot start the emulator: state file {path}: ")
    assert problem in err


@pytest.mark.parametrize(("name", "problem"), [("missing.json", "No such file or directory"), ("", "Is a directory")])
def test_an_unreadable_state_path_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, problem: str
) -> None:
    path = tmp_path / name if name else tmp_path
    assert main(["--port", "0", "--state", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"cannot start the emulator: state file {path}: {problem}\n"


@pytest.mark.parametrize("content", [b"[]", b"[" * 100_000, b'{"deployments": [{"deploymentId": NaN}]}'])
def test_the_command_line_refuses_a_malformed_state_file_without_a_traceback(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    command = [sys.executable, "-m", "airflow_provider_flink_vvp.testing.emulator", "--port", "0", "--state", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)  # noqa: S603 - our own module
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"cannot start the emulator: state file {path}: ")
    assert result.stderr.count("\n") == 1


def test_the_state_file_s_deployment_order_and_the_option_that_overrides_it(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"deployments": [SEED], "deployment_order": "oldest_first"}))
    assert EmulatorState.from_file(path).deployment_order == "oldest_first"
    assert EmulatorState.from_file(path, deployment_order="newest_first").deployment_order == "newest_first"


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        (("--access-key", "no-colon"), "--access-key takes ID:SECRET"),
        (("--access-key", ":s3cr3t-value"), "--access-key takes ID:SECRET"),
        (("--access-key", "a\nb:s3cr3t-value"), "the AccessKey ID must be printable ASCII"),
        (("--access-key", "ak:s3cr3t-value\u00e9"), "the AccessKey Secret must be printable ASCII"),
        (("--access-key", "ak:s3cr3t-value "), "the AccessKey Secret must not start or end with whitespace"),
        (("--starting-seconds", "nan"), "starting must be a finite number of seconds"),
        (("--cancelling-seconds", "-1"), "cancelling must be a finite number of seconds"),
    ],
)
def test_bad_options_are_refused_in_one_line(
    capsys: pytest.CaptureFixture[str], arguments: tuple[str, ...], problem: str
) -> None:
    assert main(["--port", "0", *arguments]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cannot start the emulator: ") and err.count("\n") == 1
    assert problem in err
    assert "s3cr3t-value" not in err
