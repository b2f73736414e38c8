"""The hook's deployment reads, sync and async, over real HTTP: malformed answers, the job summary, the newest one."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_flink_vvp.api import Deployment, VVPApiError
from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook
from airflow_provider_flink_vvp.testing import EmulatorState, ManualClock, VVPEmulator

SEED = json.loads((Path(__file__).parent / "data" / "GetDeploymentsByName.response.json").read_text())
DEPLOYMENT = SEED["data"][0]
CONN_ID = "vvp_answers"
KEY_ID, SECRET = "answers-key", "Qx7vL2pTn9wZ4rB8"  # random-looking, as a real secret: no text of it recurs


class CannedServer(ThreadingHTTPServer):
    """Answers every request with ``body`` (HTTP 200), whatever it asks."""

    daemon_threads = True
    body = b""


class _CannedHandler(BaseHTTPRequestHandler):
    server: CannedServer

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def canned() -> Iterator[CannedServer]:
    server = CannedServer(("127.0.0.1", 0), _CannedHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def connect(monkeypatch: pytest.MonkeyPatch, url: str) -> FlinkVVPHook:
    connection = {
        "conn_type": "flink_vvp",
        "host": url,
        "login": KEY_ID,
        "password": SECRET,
        "extra": {"workspace": "ws", "namespace": "ns", "retry_limit": 1, "timeout": 5},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(connection))
    return FlinkVVPHook(CONN_ID)


async def latest_both_ways(hook: FlinkVVPHook, **arguments: Any) -> list[Deployment | VVPApiError]:
    """``get_latest_deployment`` and ``aget_latest_deployment``: each one's deployment or VVPApiError."""
    outcomes: list[Deployment | VVPApiError] = []
    try:
        outcomes.append(hook.get_latest_deployment("deploymentName", **arguments))
    except VVPApiError as error:
        outcomes.append(error)
    try:
        outcomes.append(await hook.aget_latest_deployment("deploymentName", **arguments))
    except VVPApiError as error:
        outcomes.append(error)
    finally:
        await hook.aclose()
    return outcomes


def answer(*deployments: dict[str, Any], request_id: str = "R-answers") -> bytes:
    return json.dumps({**SEED, "requestId": request_id, "data": list(deployments)}).encode()


def deployment(**fields: Any) -> dict[str, Any]:
    return {**copy.deepcopy(DEPLOYMENT), **fields}


MALFORMED = [
    (answer(deployment(jobSummary={"running": -1})), "jobSummary.running"),
    (answer(deployment(jobSummary={"running": True})), "jobSummary.running"),
    (answer(deployment(jobSummary={"running": "2"})), "jobSummary.running"),
    (answer(deployment(jobSummary={"running": 10**30})), "jobSummary.running"),
    (answer(deployment(jobSummary="RUNNING")), "jobSummary"),
    (answer(deployment(deploymentId=None)), "deploymentId"),
    (answer(deployment(deploymentId="")), "deploymentId"),
    (answer(deployment(deploymentId=42)), "deploymentId"),
    (answer(deployment(createdAt=1e300)), "createdAt"),
    (answer(deployment(createdAt="-1")), "createdAt"),
    (answer(deployment(), "not a deployment"), "data[1]"),
    (answer(deployment(), deployment(deploymentId=None)), "data[1]: deploymentId"),
]


@pytest.mark.parametrize(("body", "named"), MALFORMED)
async def test_malformed_answers_are_invalid_responses_on_both_paths(
    monkeypatch: pytest.MonkeyPatch, canned: CannedServer, body: bytes, named: str
) -> None:
    canned.body = body
    hook = connect(monkeypatch, f"http://127.0.0.1:{canned.server_address[1]}")
    for outcome in await latest_both_ways(hook):
        assert isinstance(outcome, VVPApiError)
        assert (outcome.code, outcome.action, outcome.request_id) == (
            "InvalidResponse",
            "GetDeploymentsByName",
            "R-answers",
        )
        assert named in outcome.message


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 200_000,
        b'{"requestId": "R", "success": true, "data": [' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_000 + b"]}",
        b'{"requestId": "R", "success": true, "data": NaN}',
    ],
)
async def test_bodies_too_deep_or_not_json_are_invalid_responses_on_both_paths(
    monkeypatch: pytest.MonkeyPatch, canned: CannedServer, body: bytes
) -> None:
    canned.body = body
    hook = connect(monkeypatch, f"http://127.0.0.1:{canned.server_address[1]}")
    for outcome in await latest_both_ways(hook):
        assert isinstance(outcome, VVPApiError)
        assert (outcome.code, outcome.action) == ("InvalidResponse", "GetDeploymentsByName")


@pytest.mark.parametrize(
    "without_summary",
    [
        [{k: v for k, v in DEPLOYMENT.items() if k != "jobSummary"}],
        [deployment(jobSummary=None)],
        # The newest lacks it; an older one has it.
        [deployment(deploymentId="old", createdAt="1"), deployment(deploymentId="new", jobSummary=None)],
    ],
)
async def test_a_deployment_read_without_the_job_summary_it_asked_for_is_an_invalid_response(
    monkeypatch: pytest.MonkeyPatch, canned: CannedServer, without_summary: list[dict[str, Any]]
) -> None:
    canned.body = answer(*without_summary)
    hook = connect(monkeypatch, f"http://127.0.0.1:{canned.server_address[1]}")
    for outcome in await latest_both_ways(hook):
        assert isinstance(outcome, VVPApiError)
        assert (outcome.code, outcome.action) == ("InvalidResponse", "GetDeploymentsByName")
        assert "jobSummary" in outcome.message
    for outcome in await latest_both_ways(hook, ignore_job_summary=True):
        assert isinstance(outcome, Deployment)
        assert outcome.job_summary is None


def _state(order: str, created: list[tuple[str, str, str]]) -> EmulatorState:
    state = EmulatorState(clock=ManualClock(), deployment_order=order)
    state.add_access_key(KEY_ID, SECRET)
    for deployment_id, created_at, modified_at in created:
        state.add_deployment(
            deployment(
                deploymentId=deployment_id, namespace="ns", workspace="ws", createdAt=created_at, modifiedAt=modified_at
            )
        )
    return state


@pytest.mark.parametrize("order", ["newest_first", "oldest_first"])
@pytest.mark.parametrize(
    ("created", "newest_first"),
    [
        ([("a", "100", "100"), ("b", "300", "300"), ("c", "200", "900")], ["b", "c", "a"]),
        ([("a", "1714058507", "1"), ("b", "1714058507000", "2"), ("c", "1714058506", "9")], ["b", "a", "c"]),
    ],
)
async def test_the_newest_deployment_is_chosen_by_its_times_not_by_the_answer_s_order(
    monkeypatch: pytest.MonkeyPatch, order: str, created: list[tuple[str, str, str]], newest_first: list[str]
) -> None:
    state = _state(order, created)
    sent = [d["deploymentId"] for d in state.deployments_by_name("ws", "ns", "deploymentName")]
    if order == "oldest_first":
        assert sent[0] != newest_first[0]  # the emulator's answer does lead with another
    with VVPEmulator(state) as emulator:
        hook = connect(monkeypatch, emulator.url)
        assert [d.deployment_id for d in hook.get_deployments_by_name("deploymentName")] == newest_first
        try:
            listed = await hook.aget_deployments_by_name("deploymentName")
            assert [d.deployment_id for d in listed] == newest_first
        finally:
            await hook.aclose()
        for outcome in await latest_both_ways(hook):
            assert isinstance(outcome, Deployment)
            assert outcome.deployment_id == newest_first[0]


JOB = {"jobId": "j-1", "deploymentId": "d-1", "status": {"currentJobStatus": "RUNNING"}, "startTime": 1714058507000}


@pytest.mark.parametrize(
    ("job", "named"),
    [
        ({**JOB, "jobId": None}, "jobId"),
        ({**JOB, "jobId": 7}, "jobId"),
        ({**JOB, "deploymentId": ""}, "deploymentId"),
        ({**JOB, "status": "RUNNING"}, "status"),
        ({**JOB, "status": {"currentJobStatus": "FAILED", "failure": "OOM"}}, "failure"),
        ({**JOB, "startTime": 1e300}, "startTime"),
        ([JOB], "data must be an object"),
    ],
)
async def test_malformed_jobs_are_invalid_responses_on_both_paths(
    monkeypatch: pytest.MonkeyPatch, canned: CannedServer, job: Any, named: str
) -> None:
    canned.body = json.dumps({"requestId": "R-job", "success": True, "data": job}).encode()
    hook = connect(monkeypatch, f"http://127.0.0.1:{canned.server_address[1]}")
    errors = []
    with pytest.raises(VVPApiError) as info:
        hook.get_job("j-1")
    errors.append(info.value)
    try:
        with pytest.raises(VVPApiError) as info:
            await hook.aget_job("j-1")
        errors.append(info.value)
    finally:
        await hook.aclose()
    for error in errors:
        assert (error.code, error.action, error.request_id) == ("InvalidResponse", "GetJob", "R-job")
        assert named in error.message
