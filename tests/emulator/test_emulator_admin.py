"""The emulator as another process drives it: its state saved and loaded again, and the admin API."""

from __future__ import annotations

import copy
import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_flink_vvp.api import operations
from airflow_provider_flink_vvp.testing import EmulatorState, ManualClock, VVPEmulator
from tests.emulator.test_emulator_cli import by_name, running

TIMELINE = [["STARTING", 10], ["RUNNING", 20], ["FINISHED", None]]


def _state_with_job(seed: dict[str, Any], timeline: list[list[Any]], *, start: float | None = None) -> EmulatorState:
    state = EmulatorState(clock=ManualClock(start))
    state.add_access_key("ak", "sk")
    state.add_deployment(copy.deepcopy(seed))
    state.add_job(
        {"jobId": "job-1", "deploymentId": seed["deploymentId"], "status": {"currentJobStatus": "STARTING"}},
        timeline=timeline,
    )
    return state


def _status(state: EmulatorState) -> str:
    return str(state.all_jobs()[0]["status"]["currentJobStatus"])


@pytest.mark.parametrize(
    ("saved_after", "then", "expected"),
    [
        (0, 0, "STARTING"),
        (4, 5.9, "STARTING"),  # 10 s of STARTING: 6 left when saved
        (4, 6, "RUNNING"),
        (15, 14.9, "RUNNING"),  # 20 s of RUNNING from 10: 15 left when saved
        (15, 15, "FINISHED"),
        (40, 0, "FINISHED"),
        (40, 1000, "FINISHED"),
    ],
)
def test_a_saved_state_loaded_again_goes_on_where_it_was(
    seed: dict[str, Any], saved_after: float, then: float, expected: str
) -> None:
    state = _state_with_job(seed, TIMELINE, start=1_000_000)
    assert isinstance(state.clock, ManualClock)
    state.clock.advance(saved_after)
    document = json.loads(json.dumps(state.to_document()))  # what a file holds
    loaded = EmulatorState.from_document(document, clock=ManualClock(5_000_000))
    assert isinstance(loaded.clock, ManualClock)
    loaded.clock.advance(then)
    assert _status(loaded) == expected
    assert loaded.access_keys == {"ak": "sk"}
    assert loaded.deployment(seed["workspace"], seed["namespace"], seed["deploymentId"])["name"] == seed["name"]


def test_a_job_without_a_timeline_keeps_its_status_through_a_save(seed: dict[str, Any]) -> None:
    state = EmulatorState(clock=ManualClock())
    state.add_deployment(copy.deepcopy(seed))
    state.add_job({"jobId": "j", "deploymentId": seed["deploymentId"], "status": {"currentJobStatus": "FAILED"}})
    loaded = EmulatorState.from_document(state.to_document(), clock=ManualClock())
    assert _status(loaded) == "FAILED"
    assert loaded.to_document()["jobs"][0]["timeline"] == [["FAILED", None]]


def test_sigterm_saves_the_state_and_a_restart_on_the_same_port_serves_it(seed: dict[str, Any], tmp_path: Path) -> None:
    state_file, saved = tmp_path / "state.json", tmp_path / "saved.json"
    job = {"jobId": "job-1", "deploymentId": seed["deploymentId"], "status": {}, "timeline": [["RUNNING", None]]}
    state_file.write_text(json.dumps({"access_keys": {"ak": "sk"}, "deployments": [seed], "jobs": [job]}))
    history = seed["jobSummary"]["running"]
    with running("--state", str(state_file), "--save-state", str(saved)) as (process, url):
        assert by_name(url, "ak", "sk", seed).json()["data"][0]["jobSummary"]["running"] == history + 1
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    port = url.rsplit(":", 1)[1]
    with running("--state", str(saved), "--port", port) as (process, again):
        assert again == url
        assert by_name(again, "ak", "sk", seed).json()["data"][0]["jobSummary"]["running"] == history + 1
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_an_unwritable_save_path_exits_2_naming_it(seed: dict[str, Any], tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    state_file.write_text(json.dumps({"deployments": [seed]}))
    with running("--state", str(state_file), "--save-state", "/nonexistent/dir/saved.json") as (process, _):
        process.terminate()
        assert process.wait(timeout=10) == 2
        assert process.stderr is not None
        assert "cannot save the state to /nonexistent/dir/saved.json" in process.stderr.read()


@pytest.fixture
def admin(seed: dict[str, Any]) -> Any:
    with VVPEmulator(_state_with_job(seed, [["STARTING", None]]), admin=True) as emulator:
        yield emulator


def _signed_get(emulator: VVPEmulator, seed: dict[str, Any]) -> requests.Response:
    return by_name(emulator.url, "ak", "sk", seed)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "check"),
    [
        ("GET", "/_emulator/jobs", None, 200, lambda doc, em: doc["jobs"][0]["statusSince"] == em.now() * 1000),
        (
            "POST",
            "/_emulator/jobs/job-1/timeline",
            {"timeline": [["RUNNING", 1], ["FAILED", None]]},
            200,
            lambda doc, em: doc["status"]["currentJobStatus"] == "RUNNING",
        ),
        ("POST", "/_emulator/jobs/nope/timeline", {"timeline": [["RUNNING", None]]}, 404, None),
        ("POST", "/_emulator/jobs/job-1/timeline", {"timeline": [["NOT_A_STATE", None]]}, 400, None),
        ("POST", "/_emulator/jobs/job-1/timeline", {}, 400, None),
        ("POST", "/_emulator/faults", {"throttle": 1.0}, 200, lambda doc, em: doc["rates"] == {"throttle": 1.0}),
        ("POST", "/_emulator/faults", {"throttle": 2.0}, 400, None),
        ("POST", "/_emulator/faults", {"not_a_fault": 0.5}, 400, None),
        ("POST", "/_emulator/faults", [1], 400, None),
        (
            "POST",
            "/_emulator/queue",
            {"faults": [{"kind": "throttle"}, {"kind": "drip"}]},
            200,
            lambda doc, em: doc == {"pending": 2} and em.faults.pending()[1].kind == "drip",
        ),
        ("POST", "/_emulator/queue", {"faults": [{"kind": "nope"}]}, 400, None),
        ("POST", "/_emulator/queue", {"faults": [{"kind": "drip", "colour": "red"}]}, 400, None),
        ("POST", "/_emulator/queue", {"faults": ["drip"]}, 400, None),
        ("GET", "/_emulator/nothing", None, 404, None),
        ("DELETE", "/_emulator/jobs", None, 404, None),
    ],
)
def test_the_admin_api(
    admin: VVPEmulator,
    method: str,
    path: str,
    body: Any,
    status: int,
    check: Callable[[dict[str, Any], VVPEmulator], bool] | None,
) -> None:
    response = requests.request(method, admin.url + path, json=body, timeout=10)
    assert response.status_code == status, response.text
    document = response.json()
    if check is None:
        assert document["error"]
    else:
        assert check(document, admin)
    assert admin.request_counts() == {}  # admin requests are not API requests


def test_faults_set_through_the_admin_api_apply_and_clear(admin: VVPEmulator, seed: dict[str, Any]) -> None:
    requests.post(f"{admin.url}/_emulator/faults", json={"throttle": 1.0}, timeout=10).raise_for_status()
    assert _signed_get(admin, seed).json()["Code"] == "Throttling.User"
    requests.post(f"{admin.url}/_emulator/faults", json={}, timeout=10).raise_for_status()
    assert _signed_get(admin, seed).status_code == 200


def test_a_queued_fault_meets_the_next_request_of_its_action(admin: VVPEmulator, seed: dict[str, Any]) -> None:
    queue = {"faults": [{"kind": "throttle", "action": "GetJob"}, {"kind": "throttle", "action": seed["name"]}]}
    requests.post(f"{admin.url}/_emulator/queue", json=queue, timeout=10).raise_for_status()
    assert _signed_get(admin, seed).status_code == 200  # GetDeploymentsByName: neither queued fault is its
    queue = {"faults": [{"kind": "throttle", "action": "GetDeploymentsByName", "retry_after_ms": 9}]}
    requests.post(f"{admin.url}/_emulator/queue", json=queue, timeout=10).raise_for_status()
    response = _signed_get(admin, seed)
    assert (response.json()["Code"], response.headers["x-acs-retry-after"]) == ("Throttling.User", "9")
    assert _signed_get(admin, seed).status_code == 200


def test_requests_are_counted_by_action_and_second(admin: VVPEmulator, seed: dict[str, Any]) -> None:
    for _ in range(3):
        _signed_get(admin, seed)
    admin.advance(1)
    _signed_get(admin, seed)
    document = requests.get(f"{admin.url}/_emulator/requests", timeout=10).json()
    start = int(admin.now()) - 1
    assert document == {"counts": {"GetDeploymentsByName": 4}, "perSecond": {str(start): 3, str(start + 1): 1}}


def test_without_admin_the_paths_are_the_api_s_unknown_paths(seed: dict[str, Any]) -> None:
    with VVPEmulator(_state_with_job(seed, [["STARTING", None]])) as emulator:
        response = requests.get(f"{emulator.url}/_emulator/jobs", timeout=10)
        # An unsigned request to the API, refused and counted as one.
        assert (response.status_code, response.json()["Code"]) == (400, "IncompleteSignature")
        assert emulator.request_counts() == {"": 1}


def test_a_signed_request_still_works_beside_the_admin_api(admin: VVPEmulator, seed: dict[str, Any]) -> None:
    assert _signed_get(admin, seed).json()["data"][0]["deploymentId"] == seed["deploymentId"]
    assert operations.NAMESPACES_PATH.startswith("/api")  # the admin prefix can never shadow an API path
